"""Cleaning up the predicted colours: a bilateral grid over the target's lightness, in numpy.

A correspondence model copies reference colours cell by cell, and where the target is flat (a
wall, a sky, skin) and the reference holds nothing like it, neighbouring cells match different
reference content: soft blotches of foreign colour. Averaging ab over pixels that are close in
position *and* in lightness (a bilateral grid: cells of ``CELL`` pixels at working size times
bins of ``RANGE_STEP`` L units, splatted with tent weights, blurred ``[1, 2, 1]`` along all three
axes, sliced back bilinearly) makes each flat region one colour and keeps colour changes where
the lightness changes. It works at the network's resolution, before the guided upsampling, so
it costs a few milliseconds whatever the image size.

The trade-off, measured in ``training/README.md``: cleaner regions and higher pixel metrics
(PSNR, CIEDE2000) for a narrower ab histogram, so less of a foreign reference's palette.
"""

from __future__ import annotations

import numpy as np

from c2e_core.inference.upsampling import resize

_F32 = np.float32
#: The grid's spatial cell, in pixels at the network's working size.
CELL = 8
#: The grid's lightness bins, in L units (0-100).
RANGE_STEP = 8.0


def _blur3(grid: np.ndarray, axis: int, edge: bool) -> np.ndarray:
    """``[1, 2, 1] / 4`` along ``axis``: borders repeated (``edge``) or zero beyond them."""
    pad = [(0, 0)] * grid.ndim
    pad[axis] = (1, 1)
    padded = np.pad(grid, pad, mode="edge" if edge else "constant")
    n = grid.shape[axis]
    take = lambda start: np.take(padded, np.arange(start, start + n), axis=axis)  # noqa: E731
    return _F32(0.25) * take(0) + _F32(0.5) * take(1) + _F32(0.25) * take(2)


def bilateral_clean(
    ab: np.ndarray, lightness: np.ndarray, cell: int = CELL, range_step: float = RANGE_STEP
) -> np.ndarray:
    """``ab`` ``[1, 2, H, W]`` averaged over pixels near in position and in ``lightness``
    (``[1, 1, H, W]``, L in 0-100); returns float32 ``[1, 2, H, W]``."""
    ab = np.asarray(ab, _F32)[0]
    lum = np.clip(np.asarray(lightness, _F32)[0, 0], 0.0, 100.0)
    height, width = lum.shape
    rows, cols = -(-height // cell), -(-width // cell)
    centres = np.arange(int(round(100.0 / range_step)) + 1, dtype=_F32) * _F32(range_step)

    def tent(centre: np.ndarray) -> np.ndarray:
        return np.maximum(_F32(0.0), _F32(1.0) - np.abs(lum - centre) / _F32(range_step))

    def splat(values: np.ndarray) -> np.ndarray:  # [C, H, W] -> [C, rows, cols], cell sums
        padded = np.zeros((values.shape[0], rows * cell, cols * cell), _F32)
        padded[:, :height, :width] = values
        return padded.reshape(values.shape[0], rows, cell, cols, cell).sum(axis=(2, 4))

    grid = np.stack([splat(np.concatenate((tent(c) * ab, tent(c)[None]))) for c in centres])
    for axis, edge in ((0, False), (2, True), (3, True)):  # lightness, rows, columns
        grid = _blur3(grid, axis, edge)
    numerator = np.zeros((2, height, width), _F32)
    denominator = np.zeros((height, width), _F32)
    for centre, cells in zip(centres, grid, strict=True):
        weight = tent(centre)
        if not weight.any():
            continue
        # cell centres sit at (i + 0.5) * cell: a bilinear resize of the cells' means
        sliced = resize(cells, (rows * cell, cols * cell), antialias=False)[:, :height, :width]
        numerator += weight * sliced[:2]
        denominator += weight * sliced[2]
    # where the blurred grid holds no weight at all (cannot happen inside the image: every
    # pixel splats into its own cell), keep the prediction
    empty = denominator <= 1e-8
    cleaned = numerator / np.where(empty, _F32(1.0), denominator)
    cleaned[:, empty] = ab[:, empty]
    return cleaned[None]


def clean_colours(
    ab: np.ndarray, lightness: np.ndarray, amount: float, cell: int = CELL
) -> np.ndarray:
    """``ab`` moved ``amount`` (0: unchanged, 1: all the way) towards :func:`bilateral_clean`."""
    if amount <= 0:
        return ab
    cleaned = bilateral_clean(ab, lightness, cell)
    return ab + _F32(amount) * (cleaned - ab) if amount < 1 else cleaned
