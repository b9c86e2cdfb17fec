"""The colour cleanup (c2e_core.inference.cleanup): one colour per flat region, edges kept."""

from __future__ import annotations

import numpy as np
import pytest

from c2e_core.inference.cleanup import (
    PALETTE_TAIL,
    bilateral_clean,
    clean_colours,
    keep_palette,
    lightness_bins,
)


def _flat(height: int, width: int, lightness: float) -> np.ndarray:
    return np.full((1, 1, height, width), lightness, np.float32)


@pytest.mark.parametrize("shape", [(64, 48), (37, 53), (5, 9)])
def test_a_uniform_colour_stays_as_it_is(shape):
    rng = np.random.default_rng(0)
    lightness = rng.uniform(0, 100, (1, 1, *shape)).astype(np.float32)
    ab = np.broadcast_to(np.float32([12.0, -7.0]).reshape(1, 2, 1, 1), (1, 2, *shape))
    cleaned = bilateral_clean(ab, lightness)
    assert cleaned.shape == (1, 2, *shape) and cleaned.dtype == np.float32
    np.testing.assert_allclose(cleaned, ab, atol=1e-4)


def test_a_blotch_inside_a_flat_region_takes_the_region_colour():
    lightness = _flat(64, 64, 60.0)
    ab = np.zeros((1, 2, 64, 64), np.float32)
    ab[:, 0], ab[:, 1] = 10.0, 10.0
    ab[:, :, 28:34, 28:34] = np.float32([-30.0, 40.0]).reshape(1, 2, 1, 1)  # a 6x6 blotch
    cleaned = bilateral_clean(ab, lightness)
    before = np.abs(ab[:, :, 28:34, 28:34] - 10.0).max()
    after = np.abs(cleaned[:, :, 28:34, 28:34] - 10.0).max()
    assert after < 0.25 * before
    assert np.abs(cleaned[:, :, :8, :8] - 10.0).max() < 0.5  # far from it: unchanged


@pytest.mark.parametrize("step", [8.0, 7.0, 12.5])
def test_every_lightness_from_0_to_100_has_two_bins_weighing_one(step):
    lum = np.linspace(0, 100, 1001, dtype=np.float32)
    lower, upper_weight, count = lightness_bins(lum, step)
    assert lower.min() == 0 and lower.max() == count - 2
    assert (count - 1) * step >= 100  # the top bin reaches white
    np.testing.assert_allclose(lower * step + upper_weight * step, lum, atol=1e-3)
    assert ((upper_weight >= 0) & (upper_weight <= 1)).all()


def test_white_keeps_its_colour_next_to_a_darker_region_as_well_as_mid_grey_does():
    """The bins reach L 100: a white region is weighed like any other (no bleeding into it)."""
    bleed = {}
    for light, dark in ((100.0, 76.0), (60.0, 36.0)):
        lightness = _flat(32, 64, dark)
        lightness[..., 32:] = light
        ab = np.zeros((1, 2, 32, 64), np.float32)
        ab[:, 0, :, :32] = 40.0
        bleed[light] = float(bilateral_clean(ab, lightness)[0, 0, :, 32:].max())
    assert bleed[100.0] <= bleed[60.0] + 0.5 and bleed[100.0] < 1.0


def test_non_finite_colours_carry_no_weight():
    lightness = _flat(40, 40, 50.0)
    ab = np.full((1, 2, 40, 40), 5.0, np.float32)
    ab[0, :, 10, 10], ab[0, 1, 30, 5] = np.nan, np.inf
    cleaned = bilateral_clean(ab, lightness)
    assert np.isfinite(cleaned).all()
    np.testing.assert_allclose(cleaned, 5.0, atol=1e-4)


def test_colours_on_either_side_of_a_lightness_edge_do_not_mix():
    lightness = _flat(32, 64, 30.0)
    lightness[..., 32:] = 70.0
    ab = np.zeros((1, 2, 32, 64), np.float32)
    ab[:, 0, :, :32], ab[:, 0, :, 32:] = 25.0, -25.0
    cleaned = bilateral_clean(ab, lightness)
    np.testing.assert_allclose(cleaned, ab, atol=1e-3)  # even at the edge itself


def test_amount_blends_linearly_then_the_palette_comes_back_and_zero_changes_nothing():
    rng = np.random.default_rng(1)
    lightness = rng.uniform(0, 100, (1, 1, 32, 32)).astype(np.float32)
    ab = rng.normal(0, 20, (1, 2, 32, 32)).astype(np.float32)
    assert clean_colours(ab, lightness, 0.0) is ab
    cleaned = bilateral_clean(ab, lightness)
    np.testing.assert_allclose(
        clean_colours(ab, lightness, 1.0), keep_palette(cleaned, ab), atol=1e-6
    )
    np.testing.assert_allclose(
        clean_colours(ab, lightness, 0.5), keep_palette((ab + cleaned) / 2, ab), atol=1e-4
    )


def _quantiles(ab: np.ndarray, low: float = PALETTE_TAIL) -> np.ndarray:
    return np.quantile(ab[0].reshape(2, -1), np.linspace(low, 1 - low, 25), axis=1)


def test_the_palette_is_the_raw_predictions_and_each_channel_keeps_its_order():
    rng = np.random.default_rng(2)
    raw = rng.normal(0, 25, (1, 2, 48, 40)).astype(np.float32)
    narrowed = np.float32(0.3) * raw + rng.normal(0, 1, raw.shape).astype(np.float32)
    out = keep_palette(narrowed, raw)
    assert out.shape == raw.shape and out.dtype == np.float32
    assert narrowed.std() < 0.5 * raw.std()
    np.testing.assert_allclose(_quantiles(out), _quantiles(raw), atol=0.6)
    np.testing.assert_allclose(_quantiles(keep_palette(narrowed, raw, tail=0.0), 0.02),
                               _quantiles(raw, 0.02), atol=0.6)  # fmt: skip
    for channel in range(2):  # one monotone map per channel: the order of the values is kept
        order = np.argsort(narrowed[0, channel], axis=None)
        assert (np.diff(out[0, channel].ravel()[order]) >= -1e-4).all()


def test_beyond_the_fitted_quantiles_the_palette_map_only_shifts():
    rng = np.random.default_rng(6)
    raw = rng.normal(0, 25, (1, 2, 48, 40)).astype(np.float32)
    narrowed = np.float32(0.3) * raw
    out = keep_palette(narrowed, raw)
    for channel in range(2):
        values, mapped = narrowed[0, channel].ravel(), out[0, channel].ravel()
        low, high = np.quantile(values, [PALETTE_TAIL, 1 - PALETTE_TAIL])
        goal_low, goal_high = np.quantile(raw[0, channel], [PALETTE_TAIL, 1 - PALETTE_TAIL])
        ends = ((values < low - 0.1, goal_low - low), (values > high + 0.1, goal_high - high))
        for tail, joins in ends:
            shift = mapped[tail] - values[tail]  # slope 1 in both tails, joining the fitted map
            assert tail.sum() > 20 and np.ptp(shift) < 0.05
            assert abs(np.median(shift) - joins) < 0.3


def test_the_palette_tail_must_leave_a_middle_to_fit():
    ab = np.zeros((1, 2, 4, 4), np.float32)
    for tail in (-0.1, 0.5, 0.6):
        with pytest.raises(ValueError, match="tail"):
            keep_palette(ab, ab, tail=tail)


def test_the_palette_step_paints_no_disc_of_a_blotch_colour_onto_a_smooth_gradient():
    # a sky: b falls smoothly from -20 to -40 towards the top; the raw prediction had the same
    # sky with a 2 % blotch of b = -90 that the grid averaged away
    sky = np.linspace(-40, -20, 50, dtype=np.float32)[:, None].repeat(50, 1)
    cleaned = np.stack([np.zeros_like(sky), sky])[None]
    raw = cleaned.copy()
    raw[0, 1, 20:27, 20:27] = -90.0
    fitted_to_the_ends = keep_palette(cleaned, raw, tail=0.0)  # the map before 2026-12-04
    assert fitted_to_the_ends[0, 1, 0].max() < -70  # the top row took the blotch's colour
    out = keep_palette(cleaned, raw)
    assert np.abs(out - cleaned).max() < 2.0


def test_a_region_made_flat_stays_flat_and_a_picture_with_its_palette_is_unchanged():
    rng = np.random.default_rng(3)
    raw = rng.normal(0, 20, (1, 2, 32, 32)).astype(np.float32)
    np.testing.assert_allclose(keep_palette(raw, raw), raw, atol=0.5)
    cleaned = raw.copy()
    cleaned[:, :, :16] = np.float32([4.0, -6.0]).reshape(1, 2, 1, 1)  # half the image one colour
    out = keep_palette(cleaned, raw)
    for channel in range(2):
        assert np.ptp(out[0, channel, :16]) == 0.0
    assert np.isfinite(out).all()


def test_the_palette_quantiles_are_numpys_over_the_finite_values():
    from c2e_core.inference.cleanup import _quantiles

    values = np.random.default_rng(5).normal(0, 10, (37, 41)).astype(np.float32)
    values[3, 4], values[5, 6] = np.nan, -np.inf
    levels = np.linspace(0.0, 1.0, 257)
    finite = values[np.isfinite(values)]
    np.testing.assert_allclose(_quantiles(values, levels), np.quantile(finite, levels), atol=1e-9)
    assert _quantiles(np.full((3, 3), np.nan, np.float32), levels) is None


def test_a_uniform_picture_and_non_finite_values_leave_the_palette_map_defined():
    uniform = np.full((1, 2, 8, 8), 3.0, np.float32)
    np.testing.assert_allclose(keep_palette(uniform, uniform), uniform)
    raw = np.random.default_rng(4).normal(0, 10, (1, 2, 8, 8)).astype(np.float32)
    raw[0, 0, 2, 2] = np.nan
    assert np.isfinite(keep_palette(uniform, raw)).all()


def _grid_by_definition(ab, lum, cell, step, weight=None):
    """The module docstring's bilateral grid, written out loop by loop (float64, slow); each
    pixel counting ``weight[y, x]`` (default 1)."""
    _, _, height, width = ab.shape
    rows, cols = -(-height // cell), -(-width // cell)
    bins = int(np.ceil(100.0 / step - 1e-6)) + 1
    grid = np.zeros((3, bins + 2, rows, cols))  # a zero bin either side: the blur's borders
    pos = np.clip(lum[0, 0].astype(np.float64), 0, 100) / step
    low = np.minimum(np.floor(pos).astype(int), bins - 2)
    upper = pos - low

    def tents(y, x):  # a pixel's two bins and their weights
        return ((low[y, x], 1 - upper[y, x]), (low[y, x] + 1, upper[y, x]))

    for y in range(height):
        for x in range(width):
            for b, w in tents(y, x):
                share = w * (1.0 if weight is None else weight[y, x])
                grid[:, b + 1, y // cell, x // cell] += share * np.array([*ab[0, :, y, x], 1.0])
    kernel = np.array([0.25, 0.5, 0.25])
    grid = np.apply_along_axis(lambda v: np.convolve(v, kernel, "same"), 1, grid)[:, 1:-1]
    for axis in (2, 3):  # space: borders repeated
        padded = np.concatenate([grid.take([0], axis), grid, grid.take([-1], axis)], axis)
        grid = np.apply_along_axis(lambda v: np.convolve(v, kernel, "valid"), axis, padded)

    def taps(i, n):
        p = max((i + 0.5) / cell - 0.5, 0.0)
        lo = min(int(p), n - 1)
        return lo, min(lo + 1, n - 1), min(max(p - lo, 0.0), 1.0)

    out = np.zeros((1, 2, height, width))
    for y in range(height):
        y0, y1, wy = taps(y, rows)
        for x in range(width):
            x0, x1, wx = taps(x, cols)
            total = np.zeros(3)
            for b, w in tents(y, x):
                g = grid[:, b]
                total += w * ((g[:, y0, x0] * (1 - wx) + g[:, y0, x1] * wx) * (1 - wy)
                              + (g[:, y1, x0] * (1 - wx) + g[:, y1, x1] * wx) * wy)  # fmt: skip
            out[0, :, y, x] = total[:2] / total[2]
    return out


def test_the_grid_is_the_one_the_module_describes():
    rng = np.random.default_rng(3)
    lum = rng.uniform(0, 100, (1, 1, 29, 41)).astype(np.float32)
    ab = rng.normal(0, 30, (1, 2, 29, 41)).astype(np.float32)
    for cell, step in ((12, 8.0), (5, 12.5)):
        expected = _grid_by_definition(ab, lum, cell, step)
        # float32 against float64: a few millionths of an ab unit (a wrong tap is units off)
        got = bilateral_clean(ab, lum, cell, step, rounds=0)
        np.testing.assert_allclose(got, expected, atol=2e-5)


def test_the_robust_rounds_are_the_grid_reweighted_by_distance_from_the_last_average():
    rng = np.random.default_rng(5)
    lum = rng.uniform(0, 100, (1, 1, 23, 31)).astype(np.float32)
    ab = rng.normal(0, 30, (1, 2, 23, 31)).astype(np.float32)
    sigma = 10.0
    expected = _grid_by_definition(ab, lum, 12, 8.0)
    for _ in range(3):
        weight = np.exp(-((ab[0] - expected[0]) ** 2).sum(axis=0) / (2 * sigma * sigma))
        expected = _grid_by_definition(ab, lum, 12, 8.0, weight)
    got = bilateral_clean(ab, lum, 12, 8.0, rounds=3, sigma=sigma)
    np.testing.assert_allclose(got, expected, atol=1e-4)


def test_a_large_foreign_patch_leaves_its_region_the_region_colour_not_a_mixture():
    """A quarter of a flat region in a foreign colour (an orange patch on a pale wall): the
    plain average tints the wall around it towards it; with the robust rounds the wall keeps
    its own colour, and the patch, a minority of its neighbourhood, takes the wall's."""
    lightness = _flat(72, 72, 70.0)
    ab = np.zeros((1, 2, 72, 72), np.float32)
    ab[:, 0], ab[:, 1] = -6.0, -4.0  # a pale cyan wall
    ab[:, :, 18:54, 18:36] = np.float32([25.0, 45.0]).reshape(1, 2, 1, 1)  # an orange quarter
    wall = np.float32([-6.0, -4.0]).reshape(1, 2, 1, 1)
    plain = bilateral_clean(ab, lightness, rounds=0)
    robust = bilateral_clean(ab, lightness)
    ring = np.zeros((72, 72), bool)  # the wall next to the patch, within one cell of it
    ring[6:66, 6:48] = True
    ring[18:54, 18:36] = False
    plain_error = np.abs(plain - wall)[0, :, ring].mean()
    robust_error = np.abs(robust - wall)[0, :, ring].mean()
    assert robust_error < 0.1 * plain_error
    assert np.abs(robust[:, :, 18:54, 18:36] - wall).max() < 1.0
    assert np.abs(robust[:, :, :6, :] - wall).max() < 0.5  # far from it: unchanged


def test_without_the_palette_step_the_cleanup_is_the_grid_alone():
    rng = np.random.default_rng(4)
    lum = rng.uniform(0, 100, (1, 1, 40, 52)).astype(np.float32)
    ab = rng.normal(0, 30, (1, 2, 40, 52)).astype(np.float32)
    grid = bilateral_clean(ab, lum)
    np.testing.assert_array_equal(clean_colours(ab, lum, 1.0, palette=False), grid)
    half = clean_colours(ab, lum, 0.5, palette=False)
    np.testing.assert_allclose(half, ab + 0.5 * (grid - ab), atol=1e-5)
    kept = clean_colours(ab, lum, 1.0)
    assert grid.std() < kept.std()  # the palette step widens the spread back
    assert clean_colours(ab, lum, 0.0, palette=False) is ab
