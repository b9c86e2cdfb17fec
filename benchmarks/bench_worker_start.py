"""The worker as the host plugins start it: spawn -> ``hello``, then a first 1024² colorize.

Contenders, interleaved (the order rotates every repeat), each a fresh worker process started
through the plugins' client:

* ``light``: this version on the runtime weights (``default``) in a Python where torch cannot
  be imported (``tests/no_torch.py``: what ``pip install c2e-studio`` gives);
* ``torch``: this version with the torch model (``--weights default-torch``);
* ``previous`` (with ``--previous DIR``): an earlier checkout's worker on its default weights.

    python benchmarks/bench_worker_start.py [--repeats 5] [--previous DIR]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from datetime import date
from pathlib import Path

import numpy as np
from bench_inference import cpu_name, photo_pair

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "c2e_plugins" / "client"))
from c2e_client import Pixels, WorkerClient  # noqa: E402 (the plugins' stdlib-only client)


def pixels(array: np.ndarray) -> Pixels:
    height, width = array.shape[:2]
    return Pixels(width, height, "RGB", "u8", np.ascontiguousarray(array).tobytes())


def one_start(args: list[str], env: dict[str, str], cwd: Path, target, reference):
    """Seconds from spawn to ``hello``, and for the first colorize after it."""
    start = time.perf_counter()
    client = WorkerClient(sys.executable, args=args, env=env, cwd=str(cwd))
    client.start(timeout=300)
    hello = time.perf_counter() - start
    start = time.perf_counter()
    client.colorize(target, reference, timeout=300)
    first = time.perf_counter() - start
    client.close()
    return hello, first


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--previous", type=Path, help="a checkout of an earlier c2e version")
    args = parser.parse_args()
    target, reference = (pixels(a) for a in photo_pair())
    env = {**os.environ, "C2E_DISABLE_PLUGIN_AUTOLOAD": "1"}
    contenders = {
        "light (runtime weights, no torch)": (
            [str(REPO / "tests" / "no_torch.py"), "worker"], {**env, "PYTHONPATH": str(REPO)},
            REPO),
        "torch (default-torch)": (
            ["-m", "c2e_core", "worker", "--weights", "default-torch"],
            {**env, "PYTHONPATH": str(REPO)}, REPO),
    }  # fmt: skip
    if args.previous is not None:
        contenders["previous version (torch)"] = (
            ["-m", "c2e_core", "worker"], {**env, "PYTHONPATH": str(args.previous)},
            args.previous)  # fmt: skip
    names = list(contenders)
    times: dict[str, list[tuple[float, float]]] = {name: [] for name in names}
    for name in names:  # warm the file cache once
        one_start(*contenders[name], target, reference)
    for repeat in range(args.repeats):
        shift = repeat % len(names)
        for name in names[shift:] + names[:shift]:
            times[name].append(one_start(*contenders[name], target, reference))
    print(f"{date.today()} · {cpu_name()} · {os.cpu_count()} cores · {args.repeats} "
          "interleaved repeats, medians")  # fmt: skip
    for name in names:
        hello = statistics.median(t[0] for t in times[name])
        first = statistics.median(t[1] for t in times[name])
        print(f"  {name:36s} spawn -> hello {hello:6.2f} s   first 1024² colorize {first:6.2f} s")


if __name__ == "__main__":
    main()
