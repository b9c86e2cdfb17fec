"""The offline evaluation protocol: targets, metrics, the three baselines, runs and reports.

The protocol is ``../shared/docs/data-and-evaluation.md``'s. Targets are colour photos with the
shorter side resized to 256 (antialiased) and centre-cropped to 256²; every method sees only the
target's lightness (it is given the grey image ``Lab(L, 0, 0)``), keeps that L and predicts ab.
References are either *self-warped* (the training augmentation of the ground truth,
:func:`~c2e_core.data.reference.synthesize_references`, seeded per image) or *cross* (another
photo of the set, a fixed seeded derangement).

Metrics (numpy / scikit-image, images are float ``[H, W, 3]`` sRGB in [0, 1]):

* :func:`psnr_rgb` -- PSNR over all RGB samples, data range 1, capped at :data:`PSNR_CAP` dB;
* :func:`ciede2000` -- mean ``skimage.color.deltaE_ciede2000`` of the two images' Lab;
* :func:`colourfulness` -- Hasler & Suesstrunk (2003), on the 0-255 scale;
* :func:`ab_histogram` / :func:`histogram_intersection` -- normalised 32x32 histogram of (a, b)
  over [-110, 110]² and HIS = sum of bin-wise minima (1 for identical histograms, 0 for disjoint).

Baselines (:data:`BASELINES`, ``method(target_rgb, reference_rgb) -> rgb``, all keep the target's
L): ``gray``, ``reinhard`` and ``lookup``, from the inference side,
:mod:`c2e_core.inference.baselines`.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from c2e_core.inference.baselines import (
    BASELINE_LABELS,
    BASELINES,
    Method,
    baseline_gray,
    baseline_lookup,
    baseline_reinhard,
    gray_target,
)
from c2e_core.inference.pipeline import OptionError
from c2e_core.options import DEFAULT_CLEAN, DEFAULT_KEEP_PALETTE

__all__ = [
    "AB_RANGE",
    "BASELINES",
    "BASELINE_LABELS",
    "MODES",
    "PSNR_CAP",
    "EvalError",
    "ab_histogram",
    "baseline_gray",
    "baseline_lookup",
    "baseline_reinhard",
    "ciede2000",
    "colourfulness",
    "contact_sheet",
    "cross_pairs",
    "evaluate",
    "gray_target",
    "histogram_intersection",
    "prepare_targets",
    "psnr_rgb",
    "self_warped_references",
    "write_report",
]

#: PSNR of (near-)identical images: the MSE is floored at 1e-10, so PSNR never exceeds 100 dB.
PSNR_CAP = 100.0
#: Range of a and b covered by :func:`ab_histogram` (sRGB colours lie well inside it).
AB_RANGE = (-110.0, 110.0)
MODES = ("self-warped", "cross")
METRICS = ("psnr", "delta_e", "colourfulness", "his_gt", "his_ref")
#: Contact sheet layout: square tiles, padding between them, height of the header row.
SHEET_TILE, SHEET_PAD, SHEET_HEADER = 128, 4, 16
SHEET_ROWS_PER_MODE = 4


class EvalError(OptionError):
    """A user mistake in an evaluation request (bad folder, too few images, bad option); an
    :class:`~c2e_core.inference.pipeline.OptionError` (so a ``ValueError``) that the CLI prints in
    one line.
    """


# --------------------------------------------------------------------------- targets


def _prepare(rgb: np.ndarray, size: int) -> np.ndarray:
    from c2e_core.inference.colour import channels_first
    from c2e_core.inference.upsampling import resize

    height, width = rgb.shape[:2]
    scale = size / min(height, width)
    shape = (max(size, round(height * scale)), max(size, round(width * scale)))
    planar = np.clip(resize(channels_first(rgb), shape, antialias=True), 0.0, 1.0)
    top, left = (shape[0] - size) // 2, (shape[1] - size) // 2
    crop = np.moveaxis(planar[:, top : top + size, left : left + size], 0, -1)
    return np.ascontiguousarray(crop, dtype=np.float32)


def prepare_targets(paths: Sequence[str | Path], size: int = 256) -> list[np.ndarray]:
    """Read each image and give it the protocol's shape: shorter side resized to ``size``
    (bilinear, antialiased), centre ``size``² crop. Returns float32 ``[size, size, 3]`` sRGB
    arrays in [0, 1] (alpha dropped, grey sources as grey RGB). Unreadable files raise
    :class:`~c2e_core.files.images.ImageReadError`."""
    from c2e_core.files.images import read_image

    if isinstance(size, bool) or not isinstance(size, int) or size < 1:
        raise EvalError(f"size must be a positive integer, not {size!r}")
    return [_prepare(read_image(path).rgb, size) for path in paths]


# --------------------------------------------------------------------------- metrics


def _check_pair(pred: np.ndarray, gt: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    pred, gt = np.asarray(pred, dtype=np.float64), np.asarray(gt, dtype=np.float64)
    if pred.shape != gt.shape or pred.ndim != 3 or pred.shape[-1] != 3:
        raise ValueError(
            f"expected two [H, W, 3] images of one shape, got {pred.shape}, {gt.shape}"
        )
    return pred, gt


def psnr_rgb(pred: np.ndarray, gt: np.ndarray) -> float:
    """PSNR (dB) over all RGB samples of two float images in [0, 1] (data range 1).

    The MSE is floored at 1e-10, so identical images give :data:`PSNR_CAP` (100 dB), never inf.
    """
    pred, gt = _check_pair(pred, gt)
    mse = max(float(np.mean((pred - gt) ** 2)), 10.0 ** (-PSNR_CAP / 10.0))
    return float(10.0 * np.log10(1.0 / mse))


def ciede2000(pred: np.ndarray, gt: np.ndarray) -> float:
    """Mean CIEDE2000 colour difference (``skimage.color.deltaE_ciede2000`` of ``rgb2lab``)."""
    from skimage.color import deltaE_ciede2000, rgb2lab

    pred, gt = _check_pair(pred, gt)
    return float(np.mean(deltaE_ciede2000(rgb2lab(gt), rgb2lab(pred))))


def colourfulness(rgb: np.ndarray) -> float:
    """Hasler & Suesstrunk (2003) colourfulness of float RGB in [0, 1], computed on 0-255:
    ``sqrt(sd(rg)² + sd(yb)²) + 0.3 sqrt(mean(rg)² + mean(yb)²)`` with ``rg = R - G`` and
    ``yb = (R + G) / 2 - B``. 0 for any grey image; about 30-60 for typical photos."""
    x = np.asarray(rgb, dtype=np.float64) * 255.0
    r, g, b = x[..., 0], x[..., 1], x[..., 2]
    rg, yb = r - g, 0.5 * (r + g) - b
    spread = np.sqrt(rg.std() ** 2 + yb.std() ** 2)
    mean = np.sqrt(rg.mean() ** 2 + yb.mean() ** 2)
    return float(spread + 0.3 * mean)


def ab_histogram(rgb: np.ndarray, bins: int = 32) -> np.ndarray:
    """Normalised ``[bins, bins]`` histogram of (a, b) over :data:`AB_RANGE`² (sums to 1);
    Lab from ``skimage.color.rgb2lab``."""
    from skimage.color import rgb2lab

    lab = rgb2lab(np.asarray(rgb, dtype=np.float64))
    a = np.clip(lab[..., 1].ravel(), *AB_RANGE)
    b = np.clip(lab[..., 2].ravel(), *AB_RANGE)
    hist, _, _ = np.histogram2d(a, b, bins=bins, range=(AB_RANGE, AB_RANGE))
    return hist / max(hist.sum(), 1.0)


def histogram_intersection(h1: np.ndarray, h2: np.ndarray) -> float:
    """Histogram intersection ``sum(min(h1, h2))`` of two normalised histograms, in [0, 1]."""
    h1, h2 = np.asarray(h1, dtype=np.float64), np.asarray(h2, dtype=np.float64)
    if h1.shape != h2.shape:
        raise ValueError(f"histograms differ in shape: {h1.shape} and {h2.shape}")
    return float(np.minimum(h1, h2).sum())


# --------------------------------------------------------------------------- references


def self_warped_references(images: Sequence[np.ndarray], seed: int = 0) -> list[np.ndarray]:
    """The training augmentation (authors' recipe) of each ground truth; image ``i`` uses a
    generator seeded with ``seed * 1_000_003 + i``, so a reference never depends on batching."""
    from c2e_core.data.reference import ReferenceRecipe, synthesize_references

    recipe = ReferenceRecipe()
    out = []
    for index, rgb in enumerate(images):
        generator = torch.Generator().manual_seed(seed * 1_000_003 + index)
        tensor = torch.from_numpy(np.ascontiguousarray(rgb, dtype=np.float32)).permute(2, 0, 1)
        warped = synthesize_references(tensor[None], recipe, generator)[0]
        out.append(np.ascontiguousarray(warped.permute(1, 2, 0).numpy(), dtype=np.float32))
    return out


def cross_pairs(count: int, seed: int = 0) -> list[int]:
    """A fixed derangement: ``pairs[i]`` is the reference image of image ``i`` (never ``i``).

    The images are shuffled with ``numpy.random.default_rng(seed)`` and each takes the next one
    in the shuffled cycle as its reference.
    """
    if count < 2:
        raise EvalError(f"cross references need at least 2 images, found {count}")
    order = np.random.default_rng(seed).permutation(count)
    pairs = [0] * count
    for k, image in enumerate(order):
        pairs[int(image)] = int(order[(k + 1) % count])
    return pairs


# --------------------------------------------------------------------------- evaluation


def _model_method(
    model_spec: str, device: str, size: int, clean: float, keep_palette: bool
) -> tuple[str, Method, dict[str, Any]]:
    from c2e_core.inference.pipeline import Colorizer

    colorizer = Colorizer.from_weights(model_spec, device=device, size=size, reference_size=size)

    def method(target_rgb: np.ndarray, reference_rgb: np.ndarray) -> np.ndarray:
        return colorizer.colorize(
            target_rgb, reference=reference_rgb, clean=clean, keep_palette=keep_palette
        ).rgb

    info = dict(colorizer.info, device=str(colorizer.device), clean=clean,
                keep_palette=keep_palette)  # fmt: skip
    cleaned = f", clean {clean:g}" if clean else ""
    if clean and not keep_palette:
        cleaned += " without the palette step"
    return f"Color2Embed ({info.get('weights', model_spec)}{cleaned})", method, info


def _metrics(out: np.ndarray, gt: np.ndarray, h_gt: np.ndarray, h_ref: np.ndarray) -> dict:
    h_out = ab_histogram(out)
    return {
        "psnr": psnr_rgb(out, gt),
        "delta_e": ciede2000(out, gt),
        "colourfulness": colourfulness(out),
        "his_gt": histogram_intersection(h_out, h_gt),
        "his_ref": histogram_intersection(h_out, h_ref),
    }


def _mean(rows: Sequence[dict[str, float]]) -> dict[str, float]:
    return {key: float(np.mean([row[key] for row in rows])) for key in rows[0]}


def evaluate(
    data_dir: str | Path,
    *,
    model_spec: str | None = None,
    mode: str = "both",
    limit: int | None = None,
    seed: int = 0,
    device: str = "auto",
    examples: int = SHEET_ROWS_PER_MODE,
    size: int = 256,
    clean: float = DEFAULT_CLEAN,
    keep_palette: bool = DEFAULT_KEEP_PALETTE,
) -> dict[str, Any]:
    """Run the protocol on the images under ``data_dir`` (recursive, sorted; the first
    ``limit``) for the baselines and, with ``model_spec`` (weights name or file), the model.

    Returns a JSON-ready dict -- ``methods`` (key -> label), ``modes[mode]`` with ``means``
    (method -> metric -> value), ``ground_truth_colourfulness``, ``reference_colourfulness`` and
    ``per_image`` rows -- plus ``examples`` (``mode`` -> the first ``examples`` images' arrays,
    for the contact sheet; :func:`write_report` leaves them out of the JSON) and ``seconds``.
    Metric keys: ``psnr``, ``delta_e``, ``colourfulness``, ``his_gt``, ``his_ref``.
    ``size`` is the protocol's 256; smaller sizes (multiples of 16) are for quick checks only.
    ``clean``: the model's colour cleanup (:mod:`c2e_core.inference.cleanup`), 0 to 1 (by
    default the library's, as ``c2e colorize``); ``keep_palette``: its palette step.
    """
    from c2e_core.data.folder import find_images
    from c2e_core.options import check_clean, check_keep_palette

    started = time.perf_counter()
    clean = check_clean(clean)
    keep_palette = check_keep_palette(keep_palette)
    modes = list(MODES) if mode == "both" else [mode]
    if mode != "both" and mode not in MODES:
        raise EvalError(f"mode must be self-warped, cross or both, not {mode!r}")
    if isinstance(size, bool) or not isinstance(size, int) or size < 16 or size % 16:
        raise EvalError(f"size must be a multiple of 16 and at least 16, not {size!r}")
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
        raise EvalError(f"limit must be a positive integer, not {limit!r}")
    try:
        paths = find_images(data_dir)
    except ValueError as exc:  # DatasetError: missing folder, no images
        raise EvalError(str(exc)) from None
    paths = paths[:limit] if limit is not None else paths
    root = Path(data_dir)
    names = [path.relative_to(root).as_posix() for path in paths]
    truths = prepare_targets(paths, size)
    targets = [gray_target(rgb) for rgb in truths]
    truth_hists = [ab_histogram(rgb) for rgb in truths]

    methods: dict[str, Method] = dict(BASELINES)
    labels = dict(BASELINE_LABELS)
    model_info: dict[str, Any] | None = None
    if model_spec is not None:
        label, method, model_info = _model_method(model_spec, device, size, clean, keep_palette)
        methods["model"], labels["model"] = method, label

    results: dict[str, Any] = {
        "protocol": "../shared/docs/data-and-evaluation.md (centre crops, target L kept)",
        "data": str(data_dir),
        "images": len(paths),
        "size": size,
        "seed": seed,
        "model": model_info,
        "methods": labels,
        "modes": {},
        "examples": {},
    }
    for current in modes:
        if current == "self-warped":
            references = self_warped_references(truths, seed)
            ref_names = [f"self-warped {name}" for name in names]
        else:
            pairs = cross_pairs(len(truths), seed)
            references = [truths[j] for j in pairs]
            ref_names = [names[j] for j in pairs]
        rows, per_method = [], {key: [] for key in methods}
        shown = []
        for index, (gt, target, ref) in enumerate(zip(truths, targets, references, strict=True)):
            h_ref = ab_histogram(ref)
            row: dict[str, Any] = {"image": names[index], "reference": ref_names[index]}
            outputs = {}
            for key, method in methods.items():
                out = np.clip(method(target, ref), 0.0, 1.0)
                row[key] = _metrics(out, gt, truth_hists[index], h_ref)
                per_method[key].append(row[key])
                outputs[key] = out
            row["ground_truth_colourfulness"] = colourfulness(gt)
            row["reference_colourfulness"] = colourfulness(ref)
            rows.append(row)
            if index < examples:
                shown.append(
                    {"name": names[index], "target": target, "reference": ref,
                     "outputs": outputs, "ground_truth": gt}
                )  # fmt: skip
        results["modes"][current] = {
            "means": {key: _mean(values) for key, values in per_method.items()},
            "ground_truth_colourfulness": float(
                np.mean([r["ground_truth_colourfulness"] for r in rows])
            ),
            "reference_colourfulness": float(np.mean([r["reference_colourfulness"] for r in rows])),
            "per_image": rows,
        }
        results["examples"][current] = shown
    results["seconds"] = round(time.perf_counter() - started, 3)
    return results


# --------------------------------------------------------------------------- report


def _markdown(results: dict[str, Any]) -> str:
    lines = ["# Colorization evaluation", ""]
    lines.append(
        f"{results['images']} images from `{results['data']}`, {results['size']}² centre crops; "
        "every method "
        "keeps the target's L and predicts ab. Protocol: `data-and-evaluation.md`."
    )
    model = results.get("model")
    if model is None:
        lines.append("")
        lines.append("**Baselines only**: no model weights were given (`--weights`).")
    else:
        lines.append("")
        lines.append(f"Model: `{model.get('weights')}` ({model.get('architecture')}).")
    for mode, block in results["modes"].items():
        gt_c = block["ground_truth_colourfulness"]
        lines += ["", f"## {mode} references", ""]
        lines.append(
            f"| method | PSNR RGB ↑ | ΔE2000 ↓ | colourfulness (ground truth {gt_c:.1f}) "
            "| HIS vs ground truth ↑ | HIS vs reference ↑ |"
        )
        lines.append("|---|---|---|---|---|---|")
        for key, means in block["means"].items():
            lines.append(
                f"| {results['methods'][key]} | {means['psnr']:.2f} | {means['delta_e']:.2f} "
                f"| {means['colourfulness']:.1f} | {means['his_gt']:.2f} | {means['his_ref']:.2f} |"
            )
        if mode == "cross":
            lines += [
                "",
                "With cross references the ground-truth columns reward ignoring the reference; "
                "HIS vs reference measures how well the colours follow it.",
            ]
    lines.append("")
    return "\n".join(lines)


def _tile(rgb: np.ndarray) -> Any:
    from PIL import Image

    array = (np.clip(rgb, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
    image = Image.fromarray(array, "RGB")
    return image.resize((SHEET_TILE, SHEET_TILE), Image.Resampling.LANCZOS)


def contact_sheet(results: dict[str, Any]) -> Any:
    """A PIL image: header row of labels, then one row per example image (every mode):
    target (grey), reference, each method, ground truth; tiles ``SHEET_TILE``² px."""
    from PIL import Image, ImageDraw, ImageFont

    keys = list(results["methods"])
    headers = ["target (L)", "reference", *[results["methods"][k] for k in keys], "ground truth"]
    rows = [(mode, ex) for mode, shown in results["examples"].items() for ex in shown]
    step = SHEET_TILE + SHEET_PAD
    width = SHEET_PAD + len(headers) * step
    height = SHEET_HEADER + SHEET_PAD + len(rows) * step
    sheet = Image.new("RGB", (width, height), (255, 255, 255))
    draw = ImageDraw.Draw(sheet)
    font = ImageFont.load_default()
    for column, text in enumerate(headers):
        draw.text((SHEET_PAD + column * step + 2, 2), text[:22], fill=(0, 0, 0), font=font)
    for row, (mode, ex) in enumerate(rows):
        tiles = [ex["target"], ex["reference"], *[ex["outputs"][k] for k in keys]]
        tiles.append(ex["ground_truth"])
        top = SHEET_HEADER + SHEET_PAD + row * step
        for column, rgb in enumerate(tiles):
            sheet.paste(_tile(rgb), (SHEET_PAD + column * step, top))
        caption = f"{mode}: {ex['name']}"[:22]
        box = draw.textbbox((SHEET_PAD + 2, top + 2), caption, font=font)
        draw.rectangle(box, fill=(0, 0, 0))
        draw.text((SHEET_PAD + 2, top + 2), caption, fill=(255, 255, 255), font=font)
    return sheet


def write_report(results: dict[str, Any], out_dir: str | Path) -> dict[str, Path]:
    """Write ``results.json`` (everything but the example arrays), ``results.md`` (one table
    per mode) and ``contact_sheet.png`` into ``out_dir`` (created); returns their paths."""
    from c2e_core.files.images import write_image

    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise EvalError(f"{out}: exists and is not a folder")
    out.mkdir(parents=True, exist_ok=True)
    plain = {key: value for key, value in results.items() if key != "examples"}
    paths = {
        "json": out / "results.json",
        "markdown": out / "results.md",
        "contact_sheet": out / "contact_sheet.png",
    }
    paths["json"].write_text(json.dumps(plain, indent=2) + "\n", encoding="utf-8")
    paths["markdown"].write_text(_markdown(results), encoding="utf-8")
    sheet = np.asarray(contact_sheet(results), dtype=np.float32) / 255.0
    write_image(paths["contact_sheet"], sheet, None, bit_depth=8)
    return paths
