"""Runtime weights (onnxruntime) against the torch path, and the paper model against the
authors' code, side by side in one run.

Contenders, interleaved (the order rotates every repeat), each timed on the same inputs:

* ``default``: the bundled default weights as runtime weights (``default``, onnxruntime) and as
  the torch model (``default-torch``) in this version's pipeline, and — with ``--previous DIR``,
  a checkout of an earlier version — that version's pipeline with its weights named
  ``--previous-weights`` (``default``: its default weights, which are runtime weights since
  2026-12-01 and were torch weights before; its own process, started once, asked for one timed
  run per round): the two networks alone at 256², and a 1024² photo
  end to end at working size 256 (the reference embedded every time);
* ``paper``: the paper architecture in the authors' test pipeline
  (``../shared/anchors/color2embed-official``, their unmodified code, imported by path), in
  c2e's torch path, and exported to runtime weights in c2e's runtime path (random weights:
  the authors' and c2e's each their own, as timing needs no trained weights).

Prints each contender's median and the median of the per-repeat ratios against the torch path.

    python benchmarks/bench_runtime.py [--repeats 9] [--threads 2] [--anchors DIR] [--previous DIR]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import date
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from bench_inference import cpu_name, photo_pair
from timed_child import TimedChild

from c2e_core.inference.pipeline import Colorizer
from c2e_core.runtime.networks import runtime_version
from c2e_core.weights.build import build_color2embed
from c2e_core.weights.onnx_export import export_onnx

ANCHORS = Path(__file__).resolve().parents[2] / "shared" / "anchors" / "color2embed-official"


def interleaved(runs: dict[str, Callable[[], object]], repeats: int) -> dict[str, list[float]]:
    """Times of each run, ``repeats`` rounds, the order rotating every round (two warm-ups).
    A run with an ``elapsed`` attribute (another process) reports its own time."""
    for run in runs.values():
        run()
        run()
    names = list(runs)
    times: dict[str, list[float]] = {name: [] for name in names}
    for repeat in range(repeats):
        shift = repeat % len(names)
        for name in names[shift:] + names[:shift]:
            start = time.perf_counter()
            runs[name]()
            elapsed = time.perf_counter() - start
            times[name].append(getattr(runs[name], "elapsed", elapsed))
    return times


def report(title: str, times: dict[str, list[float]], base: str) -> None:
    print(f"\n{title}")
    for name, values in times.items():
        line = f"  {name:28s} median {statistics.median(values) * 1000:7.1f} ms"
        if name != base:
            ratios = [b / t for b, t in zip(times[base], values, strict=True)]
            line += f"   {base} / this: median {statistics.median(ratios):.2f}x"
        print(line)


def network_runs(colorizer: Colorizer) -> Callable[[], object]:
    """Both networks at 256² through a colorizer's backend (numpy in and out)."""
    rng = np.random.default_rng(0)
    reference = rng.random((1, 3, 256, 256), dtype=np.float32)
    l_norm = rng.random((1, 1, 256, 256), dtype=np.float32) * 2 - 1
    networks = colorizer.networks

    def run() -> object:
        return networks.predict_ab(l_norm, networks.embed(reference))

    return run


#: The child that times an earlier version's pipeline (``--previous``): one run per line read.
PREVIOUS_CHILD = """
import sys, time, numpy as np
sys.path.insert(0, sys.argv[1] + "/benchmarks")
from bench_inference import photo_pair
from c2e_core.inference.pipeline import Colorizer
target, reference = photo_pair()
colorizer = Colorizer.from_weights(sys.argv[2], device="cpu")
for line in sys.stdin:
    colorizer.forget()
    start = time.perf_counter()
    colorizer.colorize(target, reference=reference).to_array(np.uint8)
    print(time.perf_counter() - start, flush=True)
"""


class PreviousVersion:
    """An earlier checkout's pipeline in a process of its own, timed from inside it (a run of
    :func:`interleaved` with an ``elapsed``)."""

    def __init__(self, folder: Path, weights: str, threads: int):
        self.child = TimedChild(PREVIOUS_CHILD, folder, (folder, weights), threads)
        self.elapsed = 0.0

    def __call__(self) -> None:
        self.elapsed = self.child.time()

    def close(self) -> None:
        self.child.close()


def end_to_end(colorizer: Colorizer, target: np.ndarray, reference: np.ndarray):
    def run() -> np.ndarray:
        colorizer.forget()  # the reference is embedded every time
        return colorizer.colorize(target, reference=reference).to_array(np.uint8)

    return run


def authors_pipeline(anchors: Path, target: np.ndarray, reference: np.ndarray):
    """The authors' model (random weights) and test pipeline (test_gray2color.py's steps:
    skimage Lab, bilinear resizes, lab2rgb): end to end, and the networks alone."""
    sys.path.insert(0, str(anchors))
    import vgg_model  # the authors' code, by path

    vgg_model.vgg19.__init__.__defaults__ = (None, False)  # no ImageNet download
    from models import ColorEncoder, ColorUNet
    from skimage import color

    torch.manual_seed(0)
    encoder, unet = ColorEncoder().eval(), ColorUNet().eval()
    height, width = target.shape[:2]

    def run() -> np.ndarray:
        lab = torch.from_numpy(color.rgb2lab(target).astype(np.float32)).permute(2, 0, 1)[None]
        lab[:, :1] -= 50
        ref = torch.from_numpy(reference.astype(np.float32)).permute(2, 0, 1)[None]
        with torch.no_grad():
            ref_in = F.interpolate(ref / 255.0, size=(256, 256), mode="bilinear",
                                   align_corners=False)  # fmt: skip
            l_in = F.interpolate(lab[:, :1] / 50.0, size=(256, 256), mode="bilinear",
                                 align_corners=False)  # fmt: skip
            ab = F.interpolate(unet((l_in, encoder(ref_in))) * 110, size=(height, width),
                               mode="bilinear", align_corners=False)  # fmt: skip
        out = torch.cat((lab[:, :1] + 50, ab), 1)[0].permute(1, 2, 0).numpy().astype(np.float64)
        return (np.clip(color.lab2rgb(out), 0, 1) * 255).astype(np.uint8)

    def network() -> object:
        with torch.no_grad():
            return unet((torch.rand(1, 1, 256, 256) * 2 - 1, encoder(torch.rand(1, 3, 256, 256))))

    return run, network


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=9)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: default)")
    parser.add_argument("--anchors", type=Path, default=ANCHORS, help="the authors' code")
    parser.add_argument("--previous", type=Path, help="a checkout of an earlier c2e version")
    parser.add_argument("--previous-weights", default="default",
                        help="the weights name in that version (default: its default weights)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    target, reference = photo_pair()
    print(f"{date.today()} · {cpu_name()} · {torch.get_num_threads()} threads · torch "
          f"{torch.__version__} · onnxruntime {runtime_version()} · fp32 · {args.repeats} "
          "interleaved repeats")  # fmt: skip

    runtime_default = Colorizer.from_weights("default", device="cpu")
    torch_default = Colorizer.from_weights("default-torch", device="cpu")
    report("default weights, both networks at 256²", interleaved({
        "torch": network_runs(torch_default), "runtime (onnx)": network_runs(runtime_default),
    }, args.repeats), "torch")  # fmt: skip
    runs = {"torch": end_to_end(torch_default, target, reference),
            "runtime (onnx)": end_to_end(runtime_default, target, reference)}  # fmt: skip
    previous = None
    if args.previous is not None:
        previous = PreviousVersion(args.previous, args.previous_weights, args.threads)
        runs = {f"previous version ({args.previous_weights})": previous, **runs}
    times = interleaved(runs, args.repeats)
    report("default weights, 1024² end to end at working size 256", times, next(iter(runs)))
    if previous is not None:
        previous.close()
    print(json.dumps({k: statistics.median(v) for k, v in times.items()}))

    if not args.anchors.is_dir():
        print(f"\n(the authors' code is not at {args.anchors}: paper model skipped)")
        return
    authors_e2e, authors_net = authors_pipeline(args.anchors, target, reference)
    torch.manual_seed(0)
    paper = build_color2embed()  # random weights: timing needs no trained ones
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "paper.c2e.onnx"
        export_onnx(paper, "color2embed", {}, path)
        runtime_paper = Colorizer.from_weights(path, device="cpu", compat="official")
    torch_paper = Colorizer(paper, device="cpu", compat="official")
    report("paper model, both networks at 256²", interleaved({
        "authors' code": authors_net, "torch": network_runs(torch_paper),
        "runtime (onnx)": network_runs(runtime_paper),
    }, args.repeats), "authors' code")  # fmt: skip
    report("paper model, 1024² end to end (compat=official, the authors' pipeline)", interleaved({
        "authors' code": authors_e2e, "torch": end_to_end(torch_paper, target, reference),
        "runtime (onnx)": end_to_end(runtime_paper, target, reference),
    }, args.repeats), "authors' code")  # fmt: skip


if __name__ == "__main__":
    main()
