"""The colour cleanup (c2e_core.inference.cleanup): one colour per flat region, edges kept."""

from __future__ import annotations

import numpy as np
import pytest

from c2e_core.inference.cleanup import bilateral_clean, clean_colours, lightness_bins


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


def test_amount_blends_linearly_and_zero_changes_nothing():
    rng = np.random.default_rng(1)
    lightness = rng.uniform(0, 100, (1, 1, 32, 32)).astype(np.float32)
    ab = rng.normal(0, 20, (1, 2, 32, 32)).astype(np.float32)
    assert clean_colours(ab, lightness, 0.0) is ab
    full = clean_colours(ab, lightness, 1.0)
    np.testing.assert_allclose(full, bilateral_clean(ab, lightness), atol=1e-6)
    np.testing.assert_allclose(clean_colours(ab, lightness, 0.5), (ab + full) / 2, atol=1e-4)
