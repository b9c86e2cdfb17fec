"""Two weights colorizing the same 1024² photo end to end, interleaved A/B in one process.

Each repeat times A then B (the order alternates every repeat), with the reference embedded
every time (cold), at working size 256, fp32; it prints both medians and the median of the
per-repeat ratios B/A, so drift of the machine hits both alike.

    python benchmarks/bench_side_by_side.py --a OLD.c2e.onnx --b default [--repeats 15]
    python benchmarks/bench_side_by_side.py --a default --b default --clean-a 0  # the cleanup

A and B are weights names or files, torch (``*.c2e.pt``) or runtime (``*.c2e.onnx``).
"""

from __future__ import annotations

import argparse
import statistics
import time
from datetime import date

import numpy as np
import torch
from bench_inference import cpu_name, photo_pair

from c2e_core.inference.pipeline import Colorizer
from c2e_core.options import ColorizeRequest


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--a", required=True, help="weights A (name or file)")
    parser.add_argument("--b", required=True, help="weights B (name or file)")
    parser.add_argument("--clean-a", type=float, default=None,
                        help="A's colour cleanup (0-1; default: the library's)")
    parser.add_argument("--clean-b", type=float, default=None,
                        help="B's colour cleanup (0-1; default: the library's)")
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: default)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    target, reference = photo_pair()
    runs = {}
    cleans = {key: ColorizeRequest(clean=value).clean  # None: the library's default
              for key, value in (("a", args.clean_a), ("b", args.clean_b))}
    for key, spec in (("a", args.a), ("b", args.b)):
        colorizer = Colorizer.from_weights(spec, device="cpu")  # torch or runtime weights

        def run(colorizer=colorizer, clean=cleans[key]) -> np.ndarray:
            colorizer.forget()  # the reference is embedded every time
            result = colorizer.colorize(target, reference=reference, clean=clean)
            return result.to_array(np.uint8)

        for _ in range(2):
            run()
        runs[key] = run
    times: dict[str, list[float]] = {"a": [], "b": []}
    for repeat in range(args.repeats):
        for key in ("a", "b") if repeat % 2 == 0 else ("b", "a"):
            start = time.perf_counter()
            runs[key]()
            times[key].append(time.perf_counter() - start)
    ratios = [b / a for a, b in zip(times["a"], times["b"], strict=True)]
    print(f"{date.today()} · {cpu_name()} · {torch.get_num_threads()} threads · "
          f"torch {torch.__version__} · {args.repeats} interleaved repeats")  # fmt: skip
    for key, spec in (("a", args.a), ("b", args.b)):
        t = sorted(times[key])
        print(f"{key.upper()} {spec} (clean {cleans[key]:g}): median {statistics.median(t):.3f} s "
              f"(min {t[0]:.3f}, max {t[-1]:.3f})")  # fmt: skip
    print(f"B/A ratio: median {statistics.median(ratios):.3f}")


if __name__ == "__main__":
    main()
