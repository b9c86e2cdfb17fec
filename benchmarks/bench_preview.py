"""The dialogs' live preview at photo sizes, as the plugins compute it: the shared client's
``shrink`` of a large target (8 and 16 bits) and its reference, then previews through a real
worker on the light runtime (``tests/no_torch.py``): a new reference (not seen before), then a
new strength with the same reference (its embedding cached by the worker). The host's own
reading of the pixels (Krita's ``pixelData``, GIMP's GEGL) is not included.

    python benchmarks/bench_preview.py [--repeats 5] [--megapixels 24] [--previous DIR]

With ``--previous DIR`` (a checkout of an earlier version) a second worker runs that version's
code, and every preview is asked of both workers in turn (the order alternating), so the two
are timed side by side in one run; the client's shrinking is this version's for both.
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
from c2e_client.preview import (  # noqa: E402
    PREVIEW_REFERENCE_SIDE,
    preview_side,
    shrink,
)


def large(array: np.ndarray, height: int, width: int, dtype: str) -> Pixels:
    """``array`` tiled up to ``height`` x ``width``, RGBA, as a host would hand it over."""
    reps = (-(-height // array.shape[0]), -(-width // array.shape[1]), 1)
    rgb = np.tile(array, reps)[:height, :width]
    rgba = np.dstack([rgb, np.full(rgb.shape[:2], 255, np.uint8)])
    if dtype == "u16":
        rgba = rgba.astype("<u2") * 257
    return Pixels(width, height, "RGBA", dtype, np.ascontiguousarray(rgba).tobytes())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--megapixels", type=float, default=24.0)
    parser.add_argument("--previous", type=Path, help="a checkout of an earlier c2e version")
    args = parser.parse_args()
    gray, coffee = photo_pair()
    width = int(round((args.megapixels * 1e6 * 1.5) ** 0.5))
    height = int(round(width / 1.5))
    rng = np.random.default_rng(0)
    other = np.ascontiguousarray(coffee[:, ::-1, [2, 0, 1]])  # another palette
    clients = {"this": light_worker(REPO)}
    if args.previous is not None:
        clients["previous"] = light_worker(args.previous.resolve())
    print(f"{date.today()} · {cpu_name()} · {os.cpu_count()} cores · target {width}x{height} "
          f"RGBA · {args.repeats} repeats, medians · light runtime worker"
          + (" · this version and the previous, interleaved" if len(clients) > 1 else ""))
    for dtype in ("u8", "u16"):
        target = large(gray, height, width, dtype)
        references = [large(coffee, 3000, 4000, "u8"), large(other, 3000, 4000, "u8")]
        for size in (256, 512):
            timings: dict[str, list[float]] = {k: [] for k in ("shrink target",
                                                               "shrink reference")}
            for version in clients:
                for k in ("new reference", "new strength"):
                    timings[k if version == "this" else f"{k} (previous)"] = []
            for repeat in range(args.repeats):
                side = preview_side(max(width, height), size)
                started = time.perf_counter()
                small = shrink(target, side)
                timings["shrink target"].append(time.perf_counter() - started)
                started = time.perf_counter()
                refs = [shrink(r, PREVIEW_REFERENCE_SIDE) for r in references]
                timings["shrink reference"].append((time.perf_counter() - started) / 2)
                # a reference the worker has not seen (its embedding not cached), then the same
                # reference at another strength
                noise = rng.integers(0, 255, size=64, dtype=np.uint8).tobytes()
                base = refs[repeat % 2]
                fresh = Pixels(base.width, base.height, base.channels, "u8",
                               noise + base.data[64:])  # fmt: skip
                order = list(clients) if repeat % 2 == 0 else list(clients)[::-1]
                for version in order:
                    suffix = "" if version == "this" else " (previous)"
                    for name, strength in (("new reference", 1.0), ("new strength", 0.6)):
                        started = time.perf_counter()
                        clients[version].colorize(small, fresh, options={"size": size,
                                                                         "strength": strength})
                        timings[name + suffix].append(time.perf_counter() - started)
            line = "  ".join(f"{k} {statistics.median(v) * 1000:6.0f} ms"
                             for k, v in timings.items())  # fmt: skip
            print(f"  {dtype:3s} working size {size:4d} (preview {small.width}x{small.height}): "
                  f"{line}")
    for client in clients.values():
        client.close()


def light_worker(folder: Path) -> WorkerClient:
    """A started worker on the light runtime (torch hidden) running the code in ``folder``."""
    env = {**os.environ, "C2E_DISABLE_PLUGIN_AUTOLOAD": "1", "PYTHONPATH": str(folder)}
    client = WorkerClient(sys.executable, args=[str(folder / "tests" / "no_torch.py"), "worker"],
                          env=env, cwd=str(folder))  # fmt: skip
    client.start(timeout=300)
    return client


if __name__ == "__main__":
    main()
