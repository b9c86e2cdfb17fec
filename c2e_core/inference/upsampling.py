"""Resizing for the network and edge-aware upsampling of its ab output, in numpy (no torch).

Arrays are ``[..., C, H, W]`` float32. :func:`resize` computes what
``torch.nn.functional.interpolate(mode="bilinear", align_corners=False)`` computes, with or
without ``antialias`` (``tests/test_pipeline.py`` compares them), as two banded passes.
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


@lru_cache(maxsize=32)
def _resize_taps(in_size: int, out_size: int, antialias: bool) -> tuple[np.ndarray, np.ndarray]:
    """The band of :func:`_resize_matrix`: for every output position, the first of ``K``
    consecutive source indices (``[out_size, K]``) and their weights (zero where the row has
    fewer taps). A resize is ``K`` gathers instead of a dense product (a 4x shrink: about
    nine taps where the product would touch the whole row)."""
    matrix = _resize_matrix(in_size, out_size, antialias)
    nonzero = matrix != 0
    count = max(1, int(nonzero.sum(axis=1).max()))
    first = np.minimum(np.argmax(nonzero, axis=1), in_size - count)
    index = first[:, None] + np.arange(count)
    return index, np.take_along_axis(matrix, index, axis=1).astype(_F32)


def _apply_taps(x: np.ndarray, taps: tuple[np.ndarray, np.ndarray], axis: int) -> np.ndarray:
    """``x`` (float32) resampled along ``axis`` by the band of :func:`_resize_taps`."""
    index, weights = taps
    shape = [1] * x.ndim
    shape[axis] = index.shape[0]
    out = None
    for k in range(index.shape[1]):
        term = np.take(x, index[:, k], axis=axis)
        term *= weights[:, k].reshape(shape)
        out = term if out is None else np.add(out, term, out=out)
    return out


def resize(x: np.ndarray, size: tuple[int, int], antialias: bool) -> np.ndarray:
    """Bilinear resize of ``[..., C, H, W]`` to ``size`` (``align_corners=False``); antialias
    when shrinking."""
    height, width = x.shape[-2:]
    if (height, width) == tuple(size):
        return x
    across = _apply_taps(np.asarray(x, _F32), _resize_taps(width, int(size[1]), antialias), -1)
    return _apply_taps(across, _resize_taps(height, int(size[0]), antialias), -2)


def _box(x: np.ndarray, radius: int) -> np.ndarray:
    """Mean over a ``(2r+1)²`` window, borders normalised by the pixels inside (the
    ``avg_pool2d(count_include_pad=False)`` of the guided filter): ``2r+1`` shifted slices
    summed along each axis (float32 sums of a few terms; at the guided filter's radius 2 over
    ten times faster than running sums in float64, measured)."""

    def along(values: np.ndarray, axis: int) -> np.ndarray:
        n = values.shape[axis]
        pad = [(0, 0)] * values.ndim
        pad[axis] = (radius, radius)
        padded = np.pad(values, pad)
        window = [slice(None)] * values.ndim
        total = None
        for offset in range(2 * radius + 1):
            window[axis] = slice(offset, offset + n)
            part = padded[tuple(window)]
            total = part.copy() if total is None else np.add(total, part, out=total)
        index = np.arange(n)
        inside = np.minimum(index + radius, n - 1) - np.maximum(index - radius, 0) + 1
        shape = [1] * values.ndim
        shape[axis] = n
        return total / inside.astype(_F32).reshape(shape)

    x = np.asarray(x, _F32)
    return along(along(x, x.ndim - 1), x.ndim - 2)


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


def upsample_rows(x: np.ndarray, size: tuple[int, int], start: int, stop: int) -> np.ndarray:
    """Rows ``start:stop`` of the bilinear (``align_corners=False``) resize of ``x``
    ``[..., C, h, w]`` to ``size``, computing only those rows (from the source rows they need):
    a strip of an upsampling that would not fit in memory whole. Across the few source rows
    first, then down. Equal to slicing :func:`resize` up to float rounding."""
    height, width = size
    index, weights = _resize_taps(x.shape[-2], int(height), False)
    index, weights = index[start:stop], weights[start:stop]
    first = int(index.min())
    source = np.asarray(x[..., first : int(index.max()) + 1, :], _F32)
    across = _apply_taps(source, _resize_taps(x.shape[-1], int(width), False), -1)
    return _apply_taps(across, (index - first, weights), -2)


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
    cols = _resize_taps(width, int(size[1]), True)
    across = None
    for start, stop in strips:
        part = _apply_taps(np.asarray(rows(start, stop), _F32), cols, -1)
        if across is None:
            across = np.empty((*part.shape[:-2], height, size[1]), dtype=_F32)
        across[..., start:stop, :] = part
    assert across is not None
    return _apply_taps(across, _resize_taps(height, int(size[0]), True), -2)
