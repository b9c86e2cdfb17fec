"""Cleaning up the predicted colours: a bilateral grid over the target's lightness, in numpy.

A correspondence model copies reference colours cell by cell, and where the target is flat (a
wall, a sky, skin) and the reference holds nothing like it, neighbouring cells match different
reference content: soft blotches of foreign colour. Averaging ab over pixels that are close in
position *and* in lightness (a bilateral grid: cells of ``CELL`` pixels times bins of
``RANGE_STEP`` L units; each pixel splats into its cell's two nearest bins with tent weights,
the grid is blurred ``[1, 2, 1]`` along all three axes and sliced back, bilinearly in space and
linearly in lightness) makes each flat region one colour and keeps colour changes where the
lightness changes by much more than ``RANGE_STEP`` (about three steps keep them whole). A plain
average mixes a blotch into its region (an orange patch on a pale wall leaves a peach haze), so
the average is made robust, a few rounds of mode seeking (``ROBUST_ROUNDS``): each pixel is
weighted by how close its colour is to the previous round's average there (a Gaussian of
``ROBUST_SIGMA`` ab units), and a region's dominant colour wins over the minority.

It works on the network's output, before the guided upsampling: at the default working size
256 it costs a few tens of milliseconds; at ``size="native"`` it runs on every pixel.

Averaging narrows the ab histogram, so on its own it would give back less of a foreign
reference's palette (paler colours). :func:`keep_palette` then maps each ab channel, by one
monotone function, back onto the distribution the network predicted: a flat region stays one
colour, and the picture keeps the spread of colours it had (``training/README.md`` measures
both steps). The map is fitted between the ``PALETTE_TAIL`` and ``1 - PALETTE_TAIL``
quantiles only, and goes on with slope 1 beyond them: the network's outermost few per cent are
the blotches the grid removed, and mapping the cleaned picture's own extremes (the deepest
part of a sky's gradient, a lit cheek) onto them painted those colours back as saturated discs.
"""

from __future__ import annotations

import numpy as np

_F32 = np.float32
#: The grid's spatial cell, in pixels of the image it cleans (the network's working size);
#: 12 looked calmer than 8 in a blind review of the exemplar pairs (``training/README.md``).
CELL = 12
#: The grid's lightness bins, in L units (0-100).
RANGE_STEP = 8.0
#: Rounds of re-weighting that make the grid's average seek each neighbourhood's dominant colour.
ROBUST_ROUNDS = 3
#: The ab distance (Lab units) at which a pixel's weight in those rounds is ``e^-1/2``.
ROBUST_SIGMA = 10.0
#: Rows sliced at a time (bounds the memory at native size).
STRIP_ROWS = 256
#: Quantile levels of the monotone map that gives the cleaned channels their palette back.
PALETTE_LEVELS = 256
#: The share of pixels at each end of a channel's distribution that the palette map is not
#: fitted to: beyond it the map shifts the colours (slope 1) instead. 0.03 took the discs and
#: face blotches out of the exemplar pairs and was no worse on the decision split than 0.01 or
#: 0.05.
PALETTE_TAIL = 0.03
#: Pixels (a regular subsample) that the palette's quantiles are measured on, at most.
PALETTE_SAMPLES = 1 << 20


def lightness_bins(lum: np.ndarray, range_step: float) -> tuple[np.ndarray, np.ndarray, int]:
    """Each pixel's lower bin and its weight on the upper one (tents centred at multiples of
    ``range_step``, covering 0 to 100, so the two weights sum to 1) and the number of bins."""
    count = int(np.ceil(100.0 / range_step - 1e-6)) + 1
    position = np.clip(lum, 0.0, 100.0) / _F32(range_step)
    lower = np.minimum(position.astype(np.int64), count - 2)
    return lower, (position - lower).astype(_F32), count


def _cell_axis(size: int, cells: int, cell: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Bilinear taps between cell centres along one axis (``align_corners=False``, clamped at
    the borders): lower cell, upper cell and the upper one's weight, per pixel."""
    position = np.maximum((np.arange(size) + 0.5) / cell - 0.5, 0.0)
    lower = np.minimum(position.astype(np.int64), cells - 1)
    upper = np.minimum(lower + 1, cells - 1)
    return lower, upper, np.clip(position - lower, 0.0, 1.0).astype(_F32)


def _blur3(grid: np.ndarray, axis: int, edge: bool) -> np.ndarray:
    """``[1, 2, 1] / 4`` along ``axis``: borders repeated (``edge``) or zero beyond them."""
    pad = [(0, 0)] * grid.ndim
    pad[axis] = (1, 1)
    padded = np.pad(grid, pad, mode="edge" if edge else "constant")
    n = grid.shape[axis]
    window = [slice(None)] * grid.ndim

    def shifted(offset: int) -> np.ndarray:
        window[axis] = slice(offset, offset + n)
        return padded[tuple(window)]

    return _F32(0.25) * shifted(0) + _F32(0.5) * shifted(1) + _F32(0.25) * shifted(2)


def bilateral_clean(
    ab: np.ndarray,
    lightness: np.ndarray,
    cell: int = CELL,
    range_step: float = RANGE_STEP,
    rounds: int = ROBUST_ROUNDS,
    sigma: float = ROBUST_SIGMA,
) -> np.ndarray:
    """``ab`` ``[1, 2, H, W]`` averaged over pixels near in position and in ``lightness``
    (``[1, 1, H, W]``, L in 0-100); returns float32 ``[1, 2, H, W]``. The average is made
    robust by ``rounds`` of re-weighting: each pixel counts ``exp(-d² / 2 sigma²)``, ``d`` its
    ab distance from the previous round's average there, so that a neighbourhood's dominant
    colour wins over a minority of foreign ones instead of mixing with them. Non-finite ab
    values carry no weight (and come back as their neighbourhood's colour)."""
    ab = np.asarray(ab, _F32)[0]
    lum = np.asarray(lightness, _F32)[0, 0]
    grid = _BilateralGrid(np.nan_to_num(lum), cell, range_step)
    finite = np.isfinite(ab).all(axis=0)
    values = np.where(finite, ab, _F32(0.0))
    weight = finite.astype(_F32)
    splatted = grid.splat(values, weight)
    for _ in range(rounds):
        distance = np.square(values - grid.mean(splatted, fallback=values)).sum(axis=0)
        distance *= _F32(-0.5 / (sigma * sigma))
        splatted = grid.splat(values, np.exp(distance, out=distance) * weight)
    return grid.mean(splatted, fallback=values)[None]


class _BilateralGrid:
    """A bilateral grid over one image's lightness: cells of ``cell`` pixels times bins of
    ``range_step`` L units; :meth:`splat` accumulates weighted ab into a grid (each pixel into
    its cell's two nearest bins with tent weights, then blurred ``[1, 2, 1]`` along all three
    axes) and :meth:`mean` slices a grid's weighted mean back, bilinearly in space and
    linearly in lightness."""

    def __init__(self, lum: np.ndarray, cell: int, range_step: float):
        height, width = self.shape = lum.shape
        self.rows, self.cols = -(-height // cell), -(-width // cell)
        self.lower, self.upper_weight, self.bins = lightness_bins(lum, range_step)
        self.cell_index = ((np.arange(height) // cell)[:, None] * self.cols
                           + (np.arange(width) // cell)[None])  # fmt: skip
        self.y_taps = _cell_axis(height, self.rows, cell)
        self.x_taps = _cell_axis(width, self.cols, cell)

    def splat(self, values: np.ndarray, weight: np.ndarray) -> np.ndarray:
        """The blurred grid ``[3, bins, rows, cols]`` (weighted a, b and the weights) of
        ``values`` ``[2, H, W]`` weighted by ``weight`` ``[H, W]``."""
        grid = np.zeros((3, self.bins * self.rows * self.cols), np.float64)
        for bin_offset, tent in ((0, 1.0 - self.upper_weight), (1, self.upper_weight)):
            index = ((self.lower + bin_offset) * (self.rows * self.cols) + self.cell_index).ravel()
            share = (tent * weight).ravel()
            for channel, plane in enumerate((values[0].ravel() * share,
                                             values[1].ravel() * share, share)):  # fmt: skip
                grid[channel] += np.bincount(index, plane, minlength=grid.shape[1])
        blurred = grid.astype(_F32).reshape(3, self.bins, self.rows, self.cols)
        for axis, edge in ((1, False), (2, True), (3, True)):  # lightness, rows, columns
            blurred = _blur3(blurred, axis, edge)
        return blurred

    def mean(self, grid: np.ndarray, fallback: np.ndarray) -> np.ndarray:
        """``grid``'s (from :meth:`splat`) weighted mean ab at every pixel, ``[2, H, W]``;
        ``fallback``'s value
        where the neighbourhood held no weight. Per strip of rows, the grid rows it needs are
        first interpolated across to every column (small: cells times bins), then each pixel
        gathers its two bins of the two rows around it by flat index (several times faster than
        indexing the 4-d grid with three index arrays)."""
        height, width = self.shape
        y_low, y_high, y_weight = self.y_taps
        x_low, x_high, x_weight = self.x_taps
        columns = np.arange(width)
        out = np.empty((2, height, width), _F32)
        for start in range(0, height, STRIP_ROWS):
            stop = min(start + STRIP_ROWS, height)
            first, last = int(y_low[start]), int(y_high[stop - 1])
            rows = grid[:, :, first : last + 1]
            wide = np.take(rows, x_low, axis=-1)
            wide *= 1 - x_weight
            wide += np.take(rows, x_high, axis=-1) * x_weight
            wide = wide.reshape(3, -1)
            plane = (last + 1 - first) * width
            top_rows = (y_low[start:stop, None] - first) * width + columns
            bottom_rows = (y_high[start:stop, None] - first) * width + columns
            wy = y_weight[start:stop, None]
            total = np.zeros((3, stop - start, width), _F32)
            for bin_offset in (0, 1):
                bin_start = (self.lower[start:stop] + bin_offset) * plane
                top = wide.take(bin_start + top_rows, axis=1)
                bottom = wide.take(bin_start + bottom_rows, axis=1)
                upper = self.upper_weight[start:stop]
                total += (upper if bin_offset else 1 - upper) * (top * (1 - wy) + bottom * wy)
            # a pixel's own cell holds its weight unless all its neighbourhood had none
            empty = total[2] <= 1e-8
            out[:, start:stop] = total[:2] / np.where(empty, _F32(1.0), total[2])
            out[:, start:stop][:, empty] = fallback[:, start:stop][:, empty]
        return out


def _quantiles(values: np.ndarray, levels: np.ndarray) -> np.ndarray | None:
    """The finite ``values``' quantiles at ``levels`` (a regular subsample of at most
    :data:`PALETTE_SAMPLES` of them), or None when none is finite: ``np.quantile``'s linear
    rule from one sort (``np.quantile`` partitions once per level, eight times slower here)."""
    flat = values.ravel()
    flat = np.sort(flat[:: max(1, -(-flat.size // PALETTE_SAMPLES))])  # the stride rounded up
    flat = flat[np.isfinite(flat)]  # still sorted
    if not flat.size:
        return None
    position = levels * (flat.size - 1)
    lower = np.floor(position).astype(np.int64)
    upper = np.minimum(lower + 1, flat.size - 1)
    weight = position - lower
    return flat[lower] * (1.0 - weight) + flat[upper] * weight


def keep_palette(
    cleaned: np.ndarray, raw: np.ndarray, levels: int = PALETTE_LEVELS, tail: float = PALETTE_TAIL
) -> np.ndarray:
    """``cleaned`` (``[1, 2, H, W]``) with each ab channel remapped by one monotone,
    piecewise-linear function so that its distribution is ``raw``'s between the ``tail`` and
    ``1 - tail`` quantiles (quantile mapping at ``levels`` levels); beyond ``cleaned``'s own
    quantiles there, the map goes on with slope 1 from its end knots (``tail`` 0: fitted to
    the whole distribution). Equal values stay equal, so a region the cleanup made flat stays
    flat; the picture gets back the spread of colours, and so the palette, that averaging took.
    Non-finite values stay as they are."""
    if not 0.0 <= tail < 0.5:
        raise ValueError(f"the palette map's tail must be at least 0 and below 0.5, not {tail}")
    return _keep_palette_in_place(np.array(cleaned, _F32, copy=True), raw, levels, tail)


def _keep_palette_in_place(
    out: np.ndarray, raw: np.ndarray, levels: int, tail: float
) -> np.ndarray:
    """:func:`keep_palette` writing into ``out`` (float32), a strip of rows at a time."""
    at = np.linspace(tail, 1.0 - tail, levels + 1)
    for channel in range(out.shape[1]):
        source = _quantiles(out[0, channel], at)
        goal = _quantiles(np.asarray(raw[0, channel], _F32), at)
        if source is None or goal is None:
            continue
        # equal source quantiles (a flat stretch) map to the mean of their goals
        knots, which = np.unique(source, return_inverse=True)
        goals = np.bincount(which, goal) / np.bincount(which)
        plane = out[0, channel]
        for start in range(0, plane.shape[0], STRIP_ROWS):
            rows = plane[start : start + STRIP_ROWS]
            beyond = np.minimum(rows - knots[0], 0) + np.maximum(rows - knots[-1], 0)
            rows[...] = np.interp(rows, knots, goals) + beyond
    return out


def clean_colours(
    ab: np.ndarray,
    lightness: np.ndarray,
    amount: float,
    cell: int = CELL,
    range_step: float = RANGE_STEP,
    palette: bool = True,
) -> np.ndarray:
    """``ab`` moved ``amount`` (0: unchanged, 1: all the way) towards :func:`bilateral_clean`,
    then, with ``palette``, given its palette back (:func:`keep_palette`)."""
    if amount <= 0:
        return ab
    cleaned = bilateral_clean(ab, lightness, cell, range_step)  # a new array, changed in place
    if amount < 1:
        cleaned -= ab
        cleaned *= _F32(amount)
        cleaned += ab
    if not palette:
        return cleaned
    return _keep_palette_in_place(cleaned, ab, PALETTE_LEVELS, PALETTE_TAIL)
