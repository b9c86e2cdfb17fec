"""Run ``c2e`` (or, with ``--worker-check TARGET REFERENCE``, the worker through the plugins'
client) in a Python where torch cannot be imported: the light runtime's test.

    python tests/no_torch.py colorize ...        # c2e's arguments
    python tests/no_torch.py --worker-check target.jpg reference.jpg

Exits with c2e's status; fails (status 3) if torch got imported anyway.
"""

from __future__ import annotations

import builtins
import importlib.util
import sys

BLOCKED = ("torch", "torchvision")
_real_import = builtins.__import__
_real_find_spec = importlib.util.find_spec


def _blocked(name: str) -> bool:
    return name.split(".")[0] in BLOCKED


def _import(name, *args, **kwargs):
    if _blocked(name):
        raise ModuleNotFoundError(f"No module named {name!r} (blocked)", name=name.split(".")[0])
    return _real_import(name, *args, **kwargs)


def _find_spec(name, *args, **kwargs):
    return None if _blocked(name) else _real_find_spec(name, *args, **kwargs)


def worker_check(target: str, reference: str) -> int:
    """The worker as the host plugins start it, without torch: hello, then one colorize."""
    from pathlib import Path

    from PIL import Image

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "c2e_plugins" / "client"))
    from c2e_client import Pixels, WorkerClient

    def pixels(path: str) -> Pixels:
        image = Image.open(path).convert("RGB")
        return Pixels(image.width, image.height, "RGB", "u8", image.tobytes())

    client = WorkerClient(sys.executable, args=[__file__, "worker"])
    hello = client.start(timeout=120)
    result = client.colorize(pixels(target), pixels(reference))
    client.close()
    assert (result.width, result.height) == Image.open(target).size
    print(f"worker ok: torch {hello['torch_version']}, default weights {hello['default_weights']}")
    return 0


def main() -> int:
    builtins.__import__ = _import
    importlib.util.find_spec = _find_spec
    if sys.argv[1:2] == ["--worker-check"]:
        return worker_check(*sys.argv[2:4])
    from c2e_core.cli import main as c2e

    status = c2e(sys.argv[1:])
    if any(_blocked(name) for name in sys.modules):
        print("torch was imported", file=sys.stderr)
        return 3
    return status


if __name__ == "__main__":
    sys.exit(main())
