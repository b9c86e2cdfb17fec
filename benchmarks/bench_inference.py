"""Inference benchmarks: the ``paper`` model with random weights (like the authors' anchors), or
any weights (``--weights default``: the bundled small model) on noise or real photos.

CPU (default): encoder + UNet at 256², and a 1024² target colorized end to end at working
size 256 (colour conversion, resizing, upsampling and recombination included; file decoding
excluded), with the reference embedded every time (cold) and cached (warm).
GPU (``--device cuda``): batch-1 latency at 256², 512², 1024² and batch-64 throughput at 256².

    python benchmarks/bench_inference.py [--device cpu|cuda] [--repeats 5] [--threads 2]
        [--precision fp32|int8|bf16|fp16] [--weights NAME-OR-FILE] [--images noise|photos]
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time
from collections.abc import Callable

import numpy as np
import torch

from c2e_core.inference.pipeline import Colorizer
from c2e_core.weights.build import build_color2embed


def median_seconds(fn: Callable[[], object], repeats: int, warmup: int = 2, sync=None) -> float:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        if sync:
            sync()
        start = time.perf_counter()
        fn()
        if sync:
            sync()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def cpu_name() -> str:
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def colour_difference(model, colorizer: Colorizer, device) -> tuple[str, str]:
    """How far reduced precision moves the colours: astronaut coloured from coffee
    (skimage's photos), against the fp32 pipeline with the same weights."""
    import skimage.data

    from c2e_core.modeling.colour import rgb_to_lab

    target, reference = skimage.data.astronaut(), skimage.data.coffee()
    reference_run = Colorizer(model, device=device).colorize(target, reference=reference)
    reduced_run = colorizer.colorize(target, reference=reference)
    lab_a = rgb_to_lab(torch.from_numpy(reference_run.rgb).permute(2, 0, 1))
    lab_b = rgb_to_lab(torch.from_numpy(reduced_run.rgb).permute(2, 0, 1))
    delta = (lab_a - lab_b).norm(dim=0).flatten()
    return (
        "colour difference vs fp32 (ΔE76, 512² astronaut from coffee)",
        f"mean {delta.mean():.2f}, 99th pct {delta.quantile(0.99):.2f}, max {delta.max():.2f}",
    )


def photo_pair() -> tuple[np.ndarray, np.ndarray]:
    """A realistic pair: scikit-image's astronaut made gray at 1024², coffee at 1024×768."""
    import skimage.data
    from PIL import Image

    gray = Image.fromarray(skimage.data.astronaut()).convert("L").resize((1024, 1024), 1)
    reference = Image.fromarray(skimage.data.coffee()).resize((1024, 768), 1)
    return np.asarray(gray.convert("RGB")), np.asarray(reference)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: default)")
    parser.add_argument("--precision", default="fp32", choices=["fp32", "int8", "bf16", "fp16"])
    parser.add_argument(
        "--weights", help="weights name or file (default: random weights, like the authors')"
    )
    parser.add_argument(
        "--images",
        choices=["noise", "photos"],
        default="noise",
        help="noise (like the authors' anchors) or a gray photo and a colour reference",
    )
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    if args.weights:
        from c2e_core.weights.loader import load_model

        base_model = load_model(args.weights).model
    else:
        base_model = build_color2embed()
    start = time.perf_counter()
    colorizer = Colorizer(base_model, device=args.device, precision=args.precision)
    setup_seconds = time.perf_counter() - start
    networks = colorizer.networks  # the prepared model on its device
    device = networks.device
    sync = torch.cuda.synchronize if device.type == "cuda" else None
    model = networks.model
    rng = np.random.default_rng(0)
    rows: list[tuple[str, str]] = []

    def network(size: int, batch: int = 1) -> Callable[[], object]:
        l_in = torch.randn(batch, 1, size, size, device=device)
        l_in = l_in.contiguous(memory_format=torch.channels_last)
        ref = torch.rand(1, 3, 256, 256, device=device).contiguous(
            memory_format=torch.channels_last
        )

        @torch.inference_mode()
        def run():
            with networks.autocast():
                return model.predict_ab(l_in, model.embed(ref))

        return run

    with torch.inference_mode():
        for size in (256, 512, 1024) if device.type == "cuda" else (256,):
            seconds = median_seconds(network(size), args.repeats, sync=sync)
            rows.append((f"encoder + UNet, batch 1, {size}²", f"{seconds * 1e3:.1f} ms"))
        if device.type == "cuda":
            batch = 64
            seconds = median_seconds(network(256, batch), args.repeats, sync=sync)
            rows.append((f"encoder + UNet, batch {batch}, 256²", f"{batch / seconds:.0f} images/s"))

    if args.images == "photos":
        target, reference = photo_pair()
    else:
        target = rng.integers(0, 256, (1024, 1024, 3), dtype=np.uint8)
        reference = rng.integers(0, 256, (768, 1024, 3), dtype=np.uint8)

    def end_to_end_cold():
        colorizer.forget()
        return colorizer.colorize(target, reference=reference).to_array(np.uint8)

    def end_to_end_warm():
        colorizer.forget(references=False)  # the embedding kept, the target predicted
        return colorizer.colorize(target, reference=reference).to_array(np.uint8)

    seconds = median_seconds(end_to_end_cold, args.repeats, sync=sync)
    rows.append(("1024² target end to end, size 256, reference embedded", f"{seconds:.3f} s"))
    seconds = median_seconds(end_to_end_warm, args.repeats, sync=sync)
    rows.append(("1024² target end to end, size 256, embedding cached", f"{seconds:.3f} s"))
    official = Colorizer(base_model, device=device, compat="official", precision=args.precision)

    def official_cold():
        official.forget()
        return official.colorize(target, reference=reference).to_array(np.uint8)

    seconds = median_seconds(official_cold, args.repeats, sync=sync)
    rows.append(("same, compat=official pipeline, reference embedded", f"{seconds:.3f} s"))

    if args.precision != "fp32":
        rows.append(colour_difference(base_model, colorizer, device))
    rows.append(("Colorizer set-up (model already in memory)", f"{setup_seconds:.2f} s"))

    machine = torch.cuda.get_device_name(device) if device.type == "cuda" else cpu_name()
    print(
        f"machine: {machine}; torch {torch.__version__}; threads {torch.get_num_threads()}; "
        f"precision {args.precision}; median of {args.repeats}"
    )
    print("| what | median |\n|---|---|")
    for what, value in rows:
        print(f"| {what} | {value} |")


if __name__ == "__main__":
    main()
