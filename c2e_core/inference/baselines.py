"""The classical baselines: colour transfer without a network, on the inference side.

``c2e colorize --method`` runs them and the evaluation protocol
(:mod:`c2e_core.training.evaluation`) reports them next to the model. Each is
``method(target_rgb, reference_rgb) -> rgb`` on float ``[H, W, 3]`` sRGB in [0, 1] and keeps the
target's L (out-of-gamut colours lose chroma, never lightness): ``gray`` (ab = 0), ``reinhard``
(global Lab statistics transfer of ab) and ``lookup`` (luminance-keyed lookup after Welsh et al.
2002).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from c2e_core.inference.colour import channels_first, lab_to_rgb_in_gamut, rgb_to_lab
from c2e_core.inference.pipeline import OptionError, as_image

__all__ = [
    "BASELINES",
    "BASELINE_LABELS",
    "LOOKUP_BINS",
    "REINHARD_MIN_STD",
    "Method",
    "baseline_gray",
    "baseline_lookup",
    "baseline_reinhard",
    "colorize_with_baseline",
    "gray_target",
]

#: Luminance bins of the lookup baseline (over L in [0, 100]).
LOOKUP_BINS = 64
#: Below this standard deviation of a or b (Lab units) a target counts as grey for Reinhard.
REINHARD_MIN_STD = 1.0


# --------------------------------------------------------------------------- colour helpers


def _lab(rgb: np.ndarray) -> np.ndarray:
    """``[H, W, 3]`` sRGB in [0, 1] -> float32 Lab ``[H, W, 3]`` (the pipeline's conversion)."""
    return np.moveaxis(rgb_to_lab(channels_first(rgb)), 0, -1)


def _rgb_keeping_l(lab: np.ndarray) -> np.ndarray:
    """Lab ``[H, W, 3]`` -> sRGB float32 in [0, 1], chroma reduced where out of gamut (L kept)."""
    rgb = lab_to_rgb_in_gamut(channels_first(lab))
    return np.ascontiguousarray(np.moveaxis(rgb, 0, -1), np.float32)


def _with_ab(lum: np.ndarray, ab: np.ndarray) -> np.ndarray:
    """sRGB of lightness ``lum [H, W]`` and chroma ``ab [H, W, 2]`` (or ``[2]``, broadcast)."""
    lab = np.empty((*lum.shape, 3), dtype=np.float32)
    lab[..., 0] = lum
    lab[..., 1:] = ab
    return _rgb_keeping_l(lab)


def gray_target(rgb: np.ndarray) -> np.ndarray:
    """The grey image with ``rgb``'s lightness: ``Lab(L, 0, 0)`` as sRGB float32."""
    lum = _lab(rgb)[..., 0]
    return _with_ab(lum, np.zeros(2, dtype=np.float32))


# --------------------------------------------------------------------------- baselines


def baseline_gray(target_rgb: np.ndarray, reference_rgb: np.ndarray) -> np.ndarray:
    """The target's lightness with ab = 0."""
    return gray_target(target_rgb)


def baseline_reinhard(target_rgb: np.ndarray, reference_rgb: np.ndarray) -> np.ndarray:
    """Reinhard et al. (2001) global statistics transfer in Lab, on ab only (L is kept):
    ``ab = (ab_t - mean_t) * sd_r / sd_t + mean_r`` per channel. A channel with
    ``sd_t < REINHARD_MIN_STD`` (a grey target) gets the reference's mean, a constant tint."""
    target, reference = _lab(target_rgb), _lab(reference_rgb)
    ab_t = target[..., 1:].reshape(-1, 2).astype(np.float64)
    ab_r = reference[..., 1:].reshape(-1, 2).astype(np.float64)
    mean_t, std_t = ab_t.mean(axis=0), ab_t.std(axis=0)
    mean_r, std_r = ab_r.mean(axis=0), ab_r.std(axis=0)
    scale = np.where(std_t >= REINHARD_MIN_STD, std_r / np.maximum(std_t, 1e-12), 0.0)
    ab = (target[..., 1:] - mean_t) * scale + mean_r
    return _with_ab(target[..., 0], ab.astype(np.float32))


def baseline_lookup(
    target_rgb: np.ndarray, reference_rgb: np.ndarray, bins: int = LOOKUP_BINS
) -> np.ndarray:
    """Luminance-keyed colour lookup in the style of Welsh et al. (2002).

    The reference's L is remapped to the target's mean and standard deviation; each of ``bins``
    equal L bins over [0, 100] gets the mean reference ab of its pixels (empty bins: linear
    interpolation between the nearest filled bins, the end values held beyond them); each
    target pixel gets the ab of its L bin.
    """
    target, reference = _lab(target_rgb), _lab(reference_rgb)
    l_t = target[..., 0].astype(np.float64)
    l_r = reference[..., 0].ravel().astype(np.float64)
    std_r = l_r.std()
    scale = l_t.std() / std_r if std_r > 1e-6 else 0.0
    l_r = (l_r - l_r.mean()) * scale + l_t.mean()

    def bin_of(lum: np.ndarray) -> np.ndarray:
        return np.clip((lum / 100.0 * bins).astype(np.int64), 0, bins - 1)

    ref_bins = bin_of(l_r)
    count = np.bincount(ref_bins, minlength=bins).astype(np.float64)
    filled = np.flatnonzero(count)
    table = np.zeros((bins, 2), dtype=np.float64)
    for channel in range(2):
        sums = np.bincount(ref_bins, weights=reference[..., 1 + channel].ravel(), minlength=bins)
        means = sums[filled] / count[filled]
        table[:, channel] = np.interp(np.arange(bins), filled, means)
    ab = table[bin_of(l_t)].astype(np.float32)
    return _with_ab(target[..., 0], ab)


Method = Callable[[np.ndarray, np.ndarray], np.ndarray]
#: The baselines every report includes, as ``method(target_rgb, reference_rgb) -> rgb``.
BASELINES: dict[str, Method] = {
    "gray": baseline_gray,
    "reinhard": baseline_reinhard,
    "lookup": baseline_lookup,
}
BASELINE_LABELS = {"gray": "gray", "reinhard": "Reinhard", "lookup": "luminance lookup"}


def colorize_with_baseline(name: str, target: Any, reference: Any) -> np.ndarray:
    """Colorize ``target`` from ``reference`` with a baseline, at the target's full resolution.

    ``target`` / ``reference``: a path, PIL image, array or
    :class:`~c2e_core.files.images.ImageData`.
    Returns float32 ``[H, W, 3]`` sRGB in [0, 1] (the target's alpha is the caller's to keep).
    The target's lightness is kept exactly; ``reinhard`` on a colour target transfers the
    reference's ab statistics onto the target's own ab (on a grey one: a constant tint).
    """
    method = BASELINES.get(name)
    if method is None:
        raise OptionError(f"unknown method {name!r} (available: {', '.join(BASELINES)})")
    return method(as_image(target).rgb, as_image(reference).rgb)
