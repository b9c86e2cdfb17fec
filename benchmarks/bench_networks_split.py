"""Two weights' networks, per reference and per target, interleaved A/B in one process.

``embed`` (once per reference: the worker and the plugins keep a reference's code) and
``predict_ab`` (once per target and preview) timed apart at working size 256, fp32, on random
inputs; each repeat times A then B (the order alternates), and the medians are printed. It shows
where a change's cost lands, e.g. the default weights' eight reference orientations.

    python benchmarks/bench_networks_split.py --a OLD.c2e.onnx --b default [--repeats 15]
"""

from __future__ import annotations

import argparse
import statistics
import time
from datetime import date

import numpy as np
from bench_inference import cpu_name

from c2e_core.inference.pipeline import Colorizer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--a", required=True, help="weights A (name or file, torch or runtime)")
    parser.add_argument("--b", required=True, help="weights B (name or file, torch or runtime)")
    parser.add_argument("--repeats", type=int, default=15)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    reference = rng.random((1, 3, 256, 256), dtype=np.float32)
    l_norm = rng.random((1, 1, 256, 256), dtype=np.float32) * 2 - 1
    networks = {key: Colorizer.from_weights(spec, device="cpu").networks
                for key, spec in (("a", args.a), ("b", args.b))}  # fmt: skip
    codes = {key: net.embed(reference) for key, net in networks.items()}
    for key, net in networks.items():  # warm-up
        for _ in range(2):
            net.predict_ab(l_norm, codes[key])
    times: dict[tuple[str, str], list[float]] = {}
    for repeat in range(args.repeats):
        for key in ("a", "b") if repeat % 2 == 0 else ("b", "a"):
            net, code = networks[key], codes[key]
            start = time.perf_counter()
            net.embed(reference)
            middle = time.perf_counter()
            net.predict_ab(l_norm, code)
            end = time.perf_counter()
            times.setdefault((key, "embed"), []).append(middle - start)
            times.setdefault((key, "predict_ab"), []).append(end - middle)
    print(f"{date.today()} · {cpu_name()} · {args.repeats} interleaved repeats · 256², fp32")
    for key, spec in (("a", args.a), ("b", args.b)):
        embed, predict = (statistics.median(times[key, p]) * 1000 for p in ("embed", "predict_ab"))
        print(f"{key.upper()} {spec}: embed (per reference) {embed:.1f} ms, "
              f"predict_ab (per target) {predict:.1f} ms")


if __name__ == "__main__":
    main()
