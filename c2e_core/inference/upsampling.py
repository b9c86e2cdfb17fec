"""Resizing for the network and edge-aware upsampling of its ab output, in numpy (no torch).

Arrays are ``[..., C, H, W]`` float32. :func:`resize` computes what
``torch.nn.functional.interpolate(mode="bilinear", align_corners=False)`` computes, with or
without ``antialias`` (``tests/test_pipeline.py`` compares them), as two small matrix products.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import lru_cache

import numpy as np

_F32 = np.float32


@lru_cache(maxsize=16)
def _resize_matrix(in_size: int, out_size: int, antialias: bool) -> np.ndarray:
    """``[out_size, in_size]`` weights of a bilinear resize along one axis, as torch's CPU
    kernels compute them (``align_corners=False``; with ``antialias``, the triangle widened by
    the shrink factor and normalised, as in PIL)."""
    scale = in_size / out_size
    matrix = np.zeros((out_size, in_size), dtype=np.float64)
    rows = np.arange(out_size)
    if antialias:
        support = scale if scale >= 1.0 else 1.0
        invscale = 1.0 / scale if scale >= 1.0 else 1.0
        centre = scale * (rows + 0.5)
        first = np.maximum((centre - support + 0.5).astype(np.int64), 0)
        stop = np.minimum((centre + support + 0.5).astype(np.int64), in_size)
        for i in range(out_size):
            taps = np.arange(first[i], stop[i])
            weights = np.maximum(0.0, 1.0 - np.abs((taps - centre[i] + 0.5) * invscale))
            total = weights.sum()
            matrix[i, taps] = weights / total if total else weights
        return matrix.astype(_F32)
    position = np.maximum((rows + 0.5) * scale - 0.5, 0.0)
    low = np.minimum(np.floor(position).astype(np.int64), in_size - 1)
    high = np.minimum(low + 1, in_size - 1)
    lam = np.clip(position - low, 0.0, 1.0)
    np.add.at(matrix, (rows, low), 1.0 - lam)
    np.add.at(matrix, (rows, high), lam)
    return matrix.astype(_F32)


def resize(x: np.ndarray, size: tuple[int, int], antialias: bool) -> np.ndarray:
    """Bilinear resize of ``[..., C, H, W]`` to ``size`` (``align_corners=False``); antialias
    when shrinking."""
    height, width = x.shape[-2:]
    if (height, width) == tuple(size):
        return x
    rows = _resize_matrix(height, int(size[0]), antialias)
    cols = _resize_matrix(width, int(size[1]), antialias)
    # across first, then down, summed in float64: shrink_in_strips's arithmetic, so that a
    # whole image and its strips give the same float32 values
    across = np.matmul(np.asarray(x, np.float64), cols.T.astype(np.float64))
    return np.matmul(rows.astype(np.float64), across).astype(_F32)


def _box(x: np.ndarray, radius: int) -> np.ndarray:
    """Mean over a ``(2r+1)²`` window, borders normalised by the pixels inside (the
    ``avg_pool2d(count_include_pad=False)`` of the guided filter), via running sums."""

    def along(values: np.ndarray, axis: int) -> np.ndarray:
        n = values.shape[axis]
        padded = np.cumsum(values, axis=axis, dtype=np.float64)
        zero = np.zeros_like(np.take(padded, [0], axis=axis))
        padded = np.concatenate((zero, padded), axis=axis)
        index = np.arange(n)
        stop, start = np.minimum(index + radius + 1, n), np.maximum(index - radius, 0)
        sums = np.take(padded, stop, axis=axis) - np.take(padded, start, axis=axis)
        shape = [1] * values.ndim
        shape[axis] = n
        return sums / (stop - start).reshape(shape)

    return along(along(x, -1), -2).astype(_F32)


def guided_coefficients(
    ab_low: np.ndarray, guide_low: np.ndarray, radius: int = 2, eps: float = 1e-3
) -> np.ndarray:
    """The fast guided filter's (He & Sun 2015) smoothed local model at low resolution,
    ``[..., 4, h, w]``: the slopes ``a`` (2) and offsets ``b`` (2) of ``ab ≈ a·guide + b``;
    :func:`apply_guided` applies them to any rows of the full-resolution guide, so that colour
    edges follow the luminance edges of the full image."""
    mean_g = _box(guide_low, radius)
    mean_ab = _box(ab_low, radius)
    cov = _box(guide_low * ab_low, radius) - mean_g * mean_ab
    var = _box(guide_low * guide_low, radius) - mean_g * mean_g
    a = cov / (var + _F32(eps))
    b = mean_ab - a * mean_g
    return np.concatenate((_box(a, radius), _box(b, radius)), axis=-3)


@lru_cache(maxsize=16)
def _bilinear_taps(in_size: int, out_size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The two source indices and the second one's weight of each output position of a
    bilinear resize along one axis (``align_corners=False``): the two nonzero entries of each
    row of ``_resize_matrix(in_size, out_size, False)``."""
    position = np.maximum((np.arange(out_size) + 0.5) * (in_size / out_size) - 0.5, 0.0)
    low = np.minimum(np.floor(position).astype(np.int64), in_size - 1)
    high = np.minimum(low + 1, in_size - 1)
    return low, high, np.clip(position - low, 0.0, 1.0).astype(_F32)


def _interpolate(x: np.ndarray, taps: tuple[np.ndarray, ...], axis: int) -> np.ndarray:
    """``x`` resampled along ``axis`` by two-tap linear interpolation (:func:`_bilinear_taps`)."""
    low, high, lam = taps
    shape = [1] * x.ndim
    shape[axis] = lam.size
    lam = lam.reshape(shape)
    first = np.take(x, low, axis=axis)
    out = np.take(x, high, axis=axis)
    out -= first
    out *= lam
    out += first
    return out


def upsample_rows(x: np.ndarray, size: tuple[int, int], start: int, stop: int) -> np.ndarray:
    """Rows ``start:stop`` of the bilinear (``align_corners=False``) resize of ``x``
    ``[..., C, h, w]`` to ``size``, computing only those rows (from the source rows they need):
    a strip of an upsampling that would not fit in memory whole. Two taps per output value,
    across the few source rows first, then down (no matrix product: its BLAS threads would fight the strips' threads).
    Equal to slicing :func:`resize` up to float rounding."""
    height, width = size
    low, high, lam = (t[start:stop] for t in _bilinear_taps(x.shape[-2], int(height)))
    first = int(low.min())
    source = np.asarray(x[..., first : int(high.max()) + 1, :], _F32)
    across = _interpolate(source, _bilinear_taps(x.shape[-1], int(width)), axis=-1)
    return _interpolate(across, (low - first, high - first, lam), axis=-2)


def apply_guided(
    coefficients: np.ndarray, guide_rows: np.ndarray, size: tuple[int, int], start: int
) -> np.ndarray:
    """ab of the rows ``start:start + guide_rows.height`` of a ``size`` image from
    :func:`guided_coefficients`: ``a`` and ``b`` upsampled there and applied to the guide."""
    stop = start + guide_rows.shape[-2]
    up = upsample_rows(coefficients, size, start, stop)
    return up[..., :2, :, :] * guide_rows + up[..., 2:, :, :]


def shrink_in_strips(
    rows: Callable[[int, int], np.ndarray],
    height: int,
    width: int,
    size: tuple[int, int],
    strips: Sequence[tuple[int, int]],
) -> np.ndarray:
    """Antialiased bilinear shrink of a ``height x width`` image to ``size`` that never holds
    the whole image: ``rows(start, stop)`` gives ``[..., C, stop - start, width]``; each strip
    is shrunk across, then the narrow result down. Equal to :func:`resize` of the whole image
    up to float rounding (the filter is separable)."""
    cols = _resize_matrix(width, int(size[1]), True).T.astype(np.float64)
    across = None
    for start, stop in strips:
        part = np.matmul(np.asarray(rows(start, stop), np.float64), cols)
        if across is None:
            across = np.empty((*part.shape[:-2], height, size[1]), dtype=np.float64)
        across[..., start:stop, :] = part
    assert across is not None
    down = _resize_matrix(height, int(size[0]), True).astype(np.float64)
    return np.matmul(down, across).astype(_F32)
