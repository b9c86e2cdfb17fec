"""Score weights on the decision split the way the quality issue measures: the references and
metrics of ``shared/probes/protocol.py`` (imported from there, not copied), in one process.

Self-warped references for several seeds (``--seeds``; protocol.py itself uses seed 0 only, and
on 22 photos one draw of warps moves PSNR by a few tenths of a dB), and with ``--cross`` the
next photo as the reference (histogram intersection vs that reference). Prints one JSON line:
the model's and the luminance lookup's mean PSNR, CIEDE2000, colourfulness, HIS vs ground truth
and vs the reference.

    python training/decision_eval.py split/decision --weights runs/x/final.c2e.pt --seeds 3 --cross
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

PROBES = Path(__file__).resolve().parents[2] / "shared" / "probes"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("photos", help="the decision split's folder (training/splits.py)")
    parser.add_argument("--weights", default="default-torch", help="weights name or file")
    parser.add_argument("--seeds", type=int, default=3, help="draws of self-warped references")
    parser.add_argument("--cross", action="store_true", help="also the next photo as reference")
    parser.add_argument("--reference-size", type=int, default=256,
                        help="working size of the references (long side)")
    parser.add_argument("--clean", type=float, default=None,
                        help="the colour cleanup, 0 to 1 (default: c2e colorize --clean's)")
    parser.add_argument("--keep-palette", action=argparse.BooleanOptionalAction, default=None,
                        help="the cleanup's palette step (default: c2e colorize's, on)")
    parser.add_argument("--probes", type=Path, default=PROBES, help="folder of protocol.py")
    args = parser.parse_args(argv)
    sys.path.insert(0, str(args.probes))
    import protocol  # the measuring stick, by path
    from skimage import color

    from c2e_core.inference.pipeline import Colorizer
    from c2e_core.options import ColorizeRequest

    request = ColorizeRequest(clean=args.clean, keep_palette=args.keep_palette)
    clean, keep_palette = request.clean, request.keep_palette

    files = sorted(f for f in glob.glob(os.path.join(args.photos, "*"))
                   if f.lower().endswith((".jpg", ".png")))  # fmt: skip
    truths = [protocol.load(f) for f in files]
    colorizer = Colorizer.from_weights(args.weights, device="cpu",
                                       reference_size=args.reference_size)
    started = time.perf_counter()

    def gray_and_lightness(gt: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        lum = color.rgb2lab(gt)[..., 0]
        flat = np.dstack([lum, 0 * lum, 0 * lum])
        return np.uint8(np.clip(color.lab2rgb(flat) * 255 + 0.5, 0, 255)), lum

    def model(gray: np.ndarray, reference: np.ndarray) -> np.ndarray:
        return colorizer.colorize(gray, reference=reference, clean=clean,
                                  keep_palette=keep_palette).to_array(np.uint8)

    rows: dict[str, list[dict[str, float]]] = {"model": [], "lookup": []}
    for seed in range(args.seeds):
        rng = np.random.default_rng(seed)
        references = [protocol.selfwarp(gt, rng) for gt in truths]
        for gt, reference in zip(truths, references, strict=True):
            gray, lum = gray_and_lightness(gt)
            rows["model"].append(protocol.metrics(model(gray, reference), gt, reference))
            lut = np.dstack([lum, protocol.lumalut(lum, reference)])
            lut_rgb = np.uint8(np.clip(color.lab2rgb(lut) * 255 + 0.5, 0, 255))
            rows["lookup"].append(protocol.metrics(lut_rgb, gt, reference))
    result: dict[str, object] = {
        name: {key: round(float(np.mean([r[key] for r in values])), 3) for key in values[0]}
        for name, values in rows.items()
    }
    if args.cross:
        cross = []
        for index, gt in enumerate(truths):
            reference = truths[(index + 1) % len(truths)]
            cross.append(protocol.metrics(model(gray_and_lightness(gt)[0], reference), gt,
                                          reference)["HIS_ref"])  # fmt: skip
        result["cross_HIS_ref"] = round(float(np.mean(cross)), 3)
    result.update(weights=args.weights, reference_size=args.reference_size, clean=clean,
                  keep_palette=keep_palette,
                  photos=len(truths), seeds=args.seeds,
                  seconds=round(time.perf_counter() - started, 1))  # fmt: skip
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
