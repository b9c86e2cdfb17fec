"""sRGB <-> CIE Lab for the inference pipeline, in numpy (no torch).

Arrays are channel-first, ``[..., 3, H, W]`` float32, as the networks see them. The constants
and thresholds are skimage's (D65, 2 degree observer), shared with the torch conversion of
:mod:`c2e_core.modeling.colour` that the networks and training use; ``tests/test_colour.py``
checks that the two agree.
"""

from __future__ import annotations

import numpy as np

from c2e_core.modeling.lab_constants import (
    D65_WHITE,
    LAB_EPS,
    LAB_INV_EPS,
    LAB_KAPPA,
    LAB_OFFSET,
    RGB_FROM_XYZ,
    XYZ_FROM_RGB,
)

_F32 = np.float32
_LINEAR_FROM_LAB = (np.asarray(RGB_FROM_XYZ) * np.asarray(D65_WHITE)).astype(_F32)  # [rgb, xyz]


def channels_first(image: np.ndarray) -> np.ndarray:
    """An ``[H, W, C]`` image as the contiguous float32 ``[C, H, W]`` these functions take."""
    return np.ascontiguousarray(np.moveaxis(np.asarray(image, np.float32), -1, 0))


def _pow(x: np.ndarray, exponent: float) -> np.ndarray:
    """``x ** exponent`` for ``x > 0`` via exp/log, in place where it can (numpy's float32
    kernels; few passes over memory, which bounds these conversions on a CPU)."""
    out = np.log(x)
    out *= _F32(exponent)
    return np.exp(out, out=out)


def _below(x: np.ndarray, threshold: float, out: np.ndarray, low) -> np.ndarray:
    """``out`` with the elements where ``x <= threshold`` replaced by ``low(x)`` there: the
    branch of a piecewise curve that few pixels take, computed only for them."""
    mask = x <= threshold
    if mask.any():
        out[mask] = low(x[mask])
    return out


def _mix(matrix, channels: np.ndarray) -> list[np.ndarray]:
    """Rows of ``matrix`` (K x 3) applied to the 3 channels (dimension -3): K arrays."""
    c0, c1, c2 = channels[..., 0, :, :], channels[..., 1, :, :], channels[..., 2, :, :]
    rows = []
    for m0, m1, m2 in matrix:
        row = c0 * _F32(m0)
        row += c1 * _F32(m1)
        row += c2 * _F32(m2)
        rows.append(row)
    return rows


def srgb_to_linear(rgb: np.ndarray) -> np.ndarray:
    """The sRGB decoding function (IEC 61966-2-1), float32."""
    x = np.asarray(rgb, dtype=_F32)
    base = np.maximum(x, _F32(0.04045))
    base += _F32(0.055)
    base /= _F32(1.055)
    return _below(x, 0.04045, _pow(base, 2.4), lambda v: v / _F32(12.92))


def linear_to_srgb(lin: np.ndarray) -> np.ndarray:
    """The sRGB encoding function of linear-light values, float32."""
    high = _pow(np.maximum(lin, _F32(0.0031308)), 1.0 / 2.4)
    high *= _F32(1.055)
    high -= _F32(0.055)
    return _below(lin, 0.0031308, high, lambda v: v * _F32(12.92))


def _f_forward(t: np.ndarray) -> np.ndarray:
    cube_root = _pow(np.maximum(t, _F32(LAB_EPS)), 1.0 / 3.0)
    return _below(t, LAB_EPS, cube_root, lambda v: _F32(LAB_KAPPA) * v + _F32(LAB_OFFSET))


def _f_inverse(f: np.ndarray) -> np.ndarray:
    """The inverse of Lab's ``f``: ``f**3``, linear below :data:`LAB_INV_EPS`, written as
    ``max(f, e)**3 + min(f - e, 0) / kappa`` (no mask: ``np.where`` costs more than the rest
    together, and the dark branch is common in these images). Above ``e`` it is ``f**3``
    exactly; below, skimage's line ``(f - 16/116) / kappa`` less 4e-8 (the cube at ``e`` and
    the line differ by that much in skimage's rounded constants, a tiny jump this form has
    not)."""
    edge = _F32(LAB_INV_EPS)
    base = np.maximum(f, edge)
    cube = base * base
    cube *= base
    below = np.subtract(f, edge, out=base)
    np.minimum(below, _F32(0.0), out=below)
    below /= _F32(LAB_KAPPA)
    cube += below
    return cube


def rgb_to_lightness(rgb: np.ndarray) -> np.ndarray:
    """CIE L ``[..., 1, H, W]`` in [0, 100] of sRGB ``[..., 3, H, W]`` in [0, 1]."""
    (y,) = _mix(XYZ_FROM_RGB[1:2], srgb_to_linear(rgb))  # Y / white Y, which is 1
    return (_F32(116.0) * _f_forward(y) - _F32(16.0))[..., None, :, :]


def gray_to_lightness(gray: np.ndarray) -> np.ndarray:
    """CIE L ``[..., 1, H, W]`` of sRGB gray levels ``[..., H, W]`` in [0, 1] (R = G = B): what
    :func:`rgb_to_lightness` gives for them, with one channel's work instead of three (the
    matrix's Y row sums to 1, so Y is the gray's linear value)."""
    y = srgb_to_linear(gray)
    return (_F32(116.0) * _f_forward(y) - _F32(16.0))[..., None, :, :]


def is_gray(rgb: np.ndarray) -> bool:
    """Whether every pixel of ``[..., H, W, 3]`` (channels last) has R = G = B."""
    red, green, blue = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    return bool(np.array_equal(red, green) and np.array_equal(green, blue))


def rgb_to_lab(rgb: np.ndarray) -> np.ndarray:
    """sRGB ``[..., 3, H, W]`` in [0, 1] -> CIE Lab (L in [0, 100]), float32."""
    xyz = _mix(XYZ_FROM_RGB, srgb_to_linear(rgb))
    fx, fy, fz = (_f_forward(c / _F32(w)) for c, w in zip(xyz, D65_WHITE, strict=True))
    lab = (_F32(116.0) * fy - _F32(16.0), _F32(500.0) * (fx - fy), _F32(200.0) * (fy - fz))
    return np.stack(lab, axis=-3)


def _lab_to_linear(lum: np.ndarray, a: np.ndarray, b: np.ndarray) -> list[np.ndarray]:
    """Lab channels -> the three linear-light RGB channels, unclipped."""
    fy = (lum + _F32(16.0)) / _F32(116.0)
    t = np.stack((_f_inverse(a / _F32(500.0) + fy), _f_inverse(fy),
                  _f_inverse(np.maximum(fy - b / _F32(200.0), _F32(0.0)))), axis=-3)  # fmt: skip
    return _mix(_LINEAR_FROM_LAB, t)


def lab_to_rgb(lab: np.ndarray, clip: bool = True) -> np.ndarray:
    """CIE Lab ``[..., 3, H, W]`` -> sRGB float32 (negative Z clamped to 0, like skimage);
    ``clip``: clipped to [0, 1] per channel (skimage's, and the authors' pipeline's)."""
    lab = np.asarray(lab, dtype=_F32)
    rgb = linear_to_srgb(np.stack(_lab_to_linear(*np.moveaxis(lab, -3, 0)), axis=-3))
    return np.clip(rgb, 0.0, 1.0) if clip else rgb


def _largest_chroma_in_gamut(lab: np.ndarray, steps: int, tolerance: float) -> np.ndarray:
    """For Lab pixels ``[3, N]``, the largest ``s`` in [0, 1] with ``(L, s a, s b)`` inside
    linear sRGB's cube: ``steps`` of bisection (every bracket halving at once: the feasible end
    rises by the half-width where the midpoint fits), then the crossing of the cube's face
    interpolated linearly inside the last bracket. The interpolation makes ``s`` continuous in
    the input (a bisection alone jumps by a bracket where a midpoint sits on the face, which
    moves a channel near 0 by several 8-bit levels through the sRGB curve)."""
    lum, a, b = lab
    fy = (lum + _F32(16.0)) / _F32(116.0)
    ty = _f_inverse(fy)
    # per channel: linear value = centre + x * tx + z * tz, the cube centred on 0
    rows = [(_F32(x), _F32(y) * ty - _F32(0.5), _F32(z)) for x, y, z in _LINEAR_FROM_LAB]
    da, db = a / _F32(500.0), b / _F32(200.0)
    limit = _F32(0.5 + tolerance)

    def excess(scale: np.ndarray) -> np.ndarray:
        """How far the farthest channel is outside the cube at ``scale`` (<= 0: inside)."""
        tx = _f_inverse(fy + scale * da)
        tz = fy - scale * db
        tz = _f_inverse(np.maximum(tz, _F32(0.0), out=tz))
        worst = None
        for x, centre, z in rows:
            value = tx * x
            value += centre
            value += tz * z
            value = np.abs(value, out=value)
            worst = value if worst is None else np.maximum(worst, value, out=worst)
        worst -= limit
        return worst

    low = np.zeros_like(lum)
    for step in range(1, steps + 1):
        half = _F32(0.5**step)
        low += half * (excess(low + half) <= 0)
    width = _F32(0.5**steps)
    inside, outside = excess(low), excess(low + width)
    span = outside - inside
    part = np.clip(-inside / np.where(span > 0, span, _F32(1.0)), 0.0, 1.0)
    return low + width * np.where(span > 0, part, _F32(0.0)).astype(_F32)


def lab_to_rgb_in_gamut(lab: np.ndarray, steps: int = 8, tolerance: float = 1e-6) -> np.ndarray:
    """Lab ``[..., 3, H, W]`` -> sRGB keeping L: out-of-gamut pixels lose chroma (ab scaled
    towards 0, hue kept) instead of being clipped per channel, which would change their
    lightness. The chroma factor: ``steps`` of bisection, then interpolated to the gamut's face
    (:func:`_largest_chroma_in_gamut`); a sliver past the face is clipped, which moves L by far
    less than a level."""
    lab = np.asarray(lab, dtype=_F32)
    shape = lab.shape
    flat = np.moveaxis(lab, -3, 0).reshape(3, -1)  # [3, P]
    lin = np.stack(_lab_to_linear(*flat[:, None, :]), axis=0)[:, 0]  # [3, P]
    away = np.abs(lin[0] - _F32(0.5))
    for channel in lin[1:]:
        np.maximum(away, np.abs(channel - _F32(0.5)), out=away)
    outside = np.flatnonzero(away > _F32(0.5 + tolerance))
    if outside.size:
        lab_out = flat[:, outside]
        scale = _largest_chroma_in_gamut(lab_out, steps, tolerance)
        fitted = _lab_to_linear(lab_out[0][None], (lab_out[1] * scale)[None],
                                (lab_out[2] * scale)[None])  # fmt: skip
        lin[:, outside] = np.stack(fitted, axis=0)[:, 0]
    rgb = linear_to_srgb(np.clip(lin, 0.0, 1.0, out=lin))
    return np.moveaxis(rgb.reshape(3, *shape[:-3], *shape[-2:]), 0, -3)
