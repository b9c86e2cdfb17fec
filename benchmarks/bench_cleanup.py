"""The colour cleanup alone (``clean_colours``: the bilateral grid, then the palette step), at
working size 256² and at a native 2048×1920, this version against an earlier checkout's, each
repeat timing both (the order alternating), the earlier one in a process of its own.

    python benchmarks/bench_cleanup.py --previous /work/prev [--repeats 15]

The inputs are smooth random ab and lightness (seeded), the same in both processes. Prints the
medians, and the median of the per-repeat ratios previous / this.
"""

from __future__ import annotations

import argparse
import statistics
from datetime import date
from pathlib import Path

from timed_child import TimedChild

#: Times ``clean_colours`` on the inputs ``inputs(height, width)`` makes, once per line read
#: (``"height width palette"``); the folder of the version to time is ``sys.argv[1]``.
CHILD = """
import sys, time
sys.path.insert(0, sys.argv[1])
sys.path.insert(0, sys.argv[2])
from bench_cleanup import inputs
from c2e_core.inference.cleanup import clean_colours
cache = {}
for line in sys.stdin:
    height, width, palette = line.split()
    key = (int(height), int(width))
    if key not in cache:
        cache[key] = inputs(*key)
    ab, lum = cache[key]
    kwargs = {} if palette == "default" else {"palette": palette == "on"}
    start = time.perf_counter()
    clean_colours(ab, lum, 1.0, **kwargs)
    print(time.perf_counter() - start, flush=True)
"""

SHAPES = ((256, 256), (1920, 2048))


def inputs(height: int, width: int):
    """Smooth random ab ``[1, 2, H, W]`` (about +-40) and L ``[1, 1, H, W]`` (0-100), seeded."""
    import numpy as np

    rng = np.random.default_rng(0)

    def smooth(channels: int, scale: float):
        coarse = rng.normal(0, 1, (channels, height // 16 + 2, width // 16 + 2))
        fine = coarse.repeat(16, axis=1).repeat(16, axis=2)[:, :height, :width]
        noise = rng.normal(0, 0.1, (channels, height, width))
        return ((fine + noise) * scale).astype(np.float32)[None]

    return smooth(2, 20.0), np.clip(smooth(1, 25.0) + 50.0, 0, 100)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--previous", type=Path, required=True, help="an earlier checkout")
    parser.add_argument("--repeats", type=int, default=15)
    args = parser.parse_args()
    from bench_inference import cpu_name  # torch and the pipeline: not in the children

    here = Path(__file__).resolve().parent

    def version(folder: Path) -> TimedChild:  # this file's inputs, the folder's cleanup
        return TimedChild(CHILD, folder, (folder, here))

    this, previous = version(here.parent), version(args.previous.resolve())
    print(f"{date.today()} · {cpu_name()} · clean 1 · {args.repeats} interleaved repeats")
    for height, width in SHAPES:
        times: dict[str, list[float]] = {"previous": [], "this": []}
        for repeat in range(args.repeats + 2):
            order = ("previous", "this") if repeat % 2 == 0 else ("this", "previous")
            for name in order:
                child = previous if name == "previous" else this
                elapsed = child.time(f"{height} {width} default")
                if repeat >= 2:  # two warm-ups
                    times[name].append(elapsed)
        ratio = statistics.median(p / t for p, t in zip(times["previous"], times["this"],
                                                       strict=True))  # fmt: skip
        print(f"  {width}x{height}: previous {statistics.median(times['previous']) * 1000:7.1f} ms"
              f"  this {statistics.median(times['this']) * 1000:7.1f} ms"
              f"  previous/this {ratio:.2f}x")
        calm = [this.time(f"{height} {width} off") for _ in range(args.repeats)]
        print(f"  {width}x{height}: this, without the palette step "
              f"{statistics.median(calm) * 1000:7.1f} ms")
    this.close()
    previous.close()


if __name__ == "__main__":
    main()
