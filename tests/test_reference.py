"""Self-reference synthesis (c2e_core.data.reference): geometry, noise, statistics, devices."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from c2e_core.data.reference import (
    ReferenceParams,
    ReferenceRecipe,
    control_points,
    rotation_flip_grid,
    sample_parameters,
    synthesize_references,
    tps_grid,
    warp_statistics,
)
from c2e_core.modeling.colour import rgb_to_lab
from tests.conftest import assert_same_image

NO_NOISE = ReferenceRecipe(noise="none")


def _image(batch: int, height: int, width: int, seed: int = 0) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return torch.rand(batch, 3, height, width, generator=gen)


def _identity_grid(height: int, width: int) -> torch.Tensor:
    ys = (torch.arange(height) + 0.5) / height * 2 - 1
    xs = (torch.arange(width) + 0.5) / width * 2 - 1
    gy, gx = torch.meshgrid(ys, xs, indexing="ij")
    return torch.stack((gx, gy), dim=-1)


def _params(src, dst, batch=1, angle=0.0, hflip=False, vflip=False, seeds=None):
    src = torch.tensor(src, dtype=torch.float32).expand(batch, -1, -1)
    dst = torch.tensor(dst, dtype=torch.float32).expand(batch, -1, -1)
    flag = torch.ones(batch, dtype=torch.bool)
    return ReferenceParams(
        src, dst, flag & hflip, flag & vflip, torch.full((batch,), float(angle)), seeds
    )


# --- recipe -------------------------------------------------------------------------------------


def test_recipe_defaults_are_the_released_code():
    recipe = ReferenceRecipe()
    assert recipe.noise == "uniform" and recipe.noise_amplitude == 5.0
    assert recipe.tps_moving_points == 2 and recipe.tps_fixed_corners
    assert recipe.tps_point_range == (0.3, 0.7) and recipe.tps_shift_range == (-0.25, 0.25)
    assert recipe.warp_interpolation == "bicubic" and recipe.rotation_interpolation == "nearest"
    assert recipe.hflip_p == recipe.vflip_p == 0.5 and recipe.rotation_degrees == (0.0, 360.0)
    assert recipe.fill == 0.0 and recipe.num_control_points == 6


def test_recipe_dict_round_trip_and_unknown_keys():
    recipe = ReferenceRecipe(noise="gaussian", tps_point_range=(0.2, 0.8), hflip_p=0.0)
    data = recipe.to_dict()
    assert data["tps_point_range"] == [0.2, 0.8]  # TOML arrays
    assert ReferenceRecipe.from_dict(data) == recipe
    assert ReferenceRecipe.from_dict({"noise": "none"}) == NO_NOISE
    with pytest.raises(ValueError, match="noize.*rotation"):
        ReferenceRecipe.from_dict({"noize": "none", "rotation": 3})


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"noise": "salt"}, "noise must be one of"),
        ({"noise_amplitude": -1}, "noise_amplitude"),
        ({"tps_moving_points": -1}, "tps_moving_points"),
        ({"tps_moving_points": 1.5}, "tps_moving_points"),
        ({"tps_point_range": (0.7, 0.3)}, "low <= high"),
        ({"tps_point_range": (0.5, 1.5)}, "within \\[0, 1\\]"),
        ({"tps_shift_range": (0.1,)}, "tps_shift_range must be a pair"),
        ({"tps_fixed_corners": "yes"}, "tps_fixed_corners"),
        ({"warp_interpolation": "lanczos"}, "warp_interpolation"),
        ({"hflip_p": 2.0}, "hflip_p"),
        ({"rotation_degrees": (0.0, math.inf)}, "rotation_degrees"),
        ({"fill": "black"}, "fill"),
    ],
)
def test_recipe_validation(kwargs, message):
    with pytest.raises(ValueError, match=message):
        ReferenceRecipe(**kwargs)


# --- identity -----------------------------------------------------------------------------------


@pytest.mark.parametrize("size", [(32, 32), (24, 40)])
def test_identity_tps_grid_hits_pixel_centres(size):
    params = ReferenceParams.identity(2)
    grid = tps_grid(params.src, params.dst, *size)
    assert grid.shape == (2, *size, 2)
    torch.testing.assert_close(grid, _identity_grid(*size).expand(2, -1, -1, -1), atol=1e-6,
                               rtol=0)
    image = _image(2, *size)
    for mode in ("bilinear", "bicubic", "nearest"):
        out = F.grid_sample(image, grid, mode=mode, padding_mode="zeros", align_corners=False)
        torch.testing.assert_close(out, image, atol=1e-5, rtol=0)


@pytest.mark.parametrize("size", [(32, 32), (24, 40)])
def test_identity_parameters_give_the_input(size):
    image = _image(3, *size)
    params = ReferenceParams.identity(3)
    torch.testing.assert_close(synthesize_references(image, NO_NOISE, params=params), image,
                               atol=1e-5, rtol=0)
    # Identity parameters carry no noise seeds, so even the noisy recipe adds nothing.
    torch.testing.assert_close(synthesize_references(image, params=params), image, atol=1e-5,
                               rtol=0)


# --- TPS geometry -------------------------------------------------------------------------------


def _blob(size: int, centre: float, sigma: float = 1.5) -> torch.Tensor:
    coords = torch.arange(size) + 0.5
    g = torch.exp(-((coords - centre * size) ** 2) / (2 * sigma**2))
    return (g[:, None] * g[None, :]).expand(1, 3, size, size).contiguous()


def _centroid(image: torch.Tensor) -> tuple[float, float]:
    weight = image[0, 0]
    coords = torch.arange(weight.shape[0]) + 0.5
    total = weight.sum()
    return ((weight.sum(0) * coords).sum() / total).item(), (
        (weight.sum(1) * coords).sum() / total
    ).item()


@pytest.mark.parametrize(("p", "d"), [(0.4, 0.15), (0.6, -0.2), (0.5, 0.25)])
def test_a_moved_point_moves_its_content_along_the_diagonal(p, d):
    size = 64
    corners = [[0.0, 0.0], [1.0, 0.0], [1.0, 1.0], [0.0, 1.0]]
    params = _params(corners + [[p, p]], corners + [[p + d, p + d]])
    out = synthesize_references(_blob(size, p), NO_NOISE, params=params)
    x, y = _centroid(out)  # pixel units, measured from the top-left corner
    assert x == pytest.approx((p + d) * size, abs=1.0)
    assert y == pytest.approx((p + d) * size, abs=1.0)
    peak = int(out[0, 0].argmax())
    assert abs(peak // size + 0.5 - (p + d) * size) <= 1.0


def test_non_square_tps_and_degenerate_layouts_are_finite():
    image = _image(4, 20, 36)
    for recipe in (
        ReferenceRecipe(noise="none", tps_fixed_corners=False),  # collinear points only
        ReferenceRecipe(noise="none", tps_moving_points=0),
        ReferenceRecipe(noise="none", tps_moving_points=0, tps_fixed_corners=False),
        ReferenceRecipe(noise="none", tps_moving_points=5),
    ):
        gen = torch.Generator().manual_seed(1)
        out = synthesize_references(image, recipe, generator=gen)
        assert out.shape == image.shape and torch.isfinite(out).all()
        assert out.min() >= 0 and out.max() <= 1


def test_warp_statistics_match_the_recipe():
    stats = warp_statistics(ReferenceRecipe(), size=256, samples=512,
                            generator=torch.Generator().manual_seed(0))
    assert stats["displacement"].shape == (512,) and stats["black"].shape == (512,)
    # Authors' recipe: median largest displacement ~70 px; black median well under 1 %,
    # 90th percentile ~14 %. Measured here: 73.6 px, 0.28 %, 12.8 %.
    assert 55 <= stats["displacement_median"] <= 85
    assert stats["black_median"] < 0.01
    assert 0.08 <= stats["black_p90"] <= 0.20


def test_warp_statistics_black_fraction_equals_sampling_a_ones_image():
    gen = torch.Generator().manual_seed(3)
    params = sample_parameters(16, generator=gen)
    grid = tps_grid(params.src, params.dst, 64, 64)
    ones = torch.ones(16, 1, 64, 64)
    sampled = F.grid_sample(ones, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    black = (sampled < 0.5).flatten(1).float().mean(1)
    outside = (grid.abs() > 1).any(-1).flatten(1).float().mean(1)
    # They differ only for positions within half a pixel of a corner (product of two weights).
    assert (outside <= black).all() and (black - outside).max() < 0.01


# --- flips and rotation -------------------------------------------------------------------------


@pytest.mark.parametrize("k", [0, 1, 2, 3])
@pytest.mark.parametrize(("hflip", "vflip"), [(False, False), (True, False), (False, True),
                                              (True, True)])
def test_flips_and_right_angle_rotations_are_exact(k, hflip, vflip):
    image = _image(2, 16, 16)
    params = ReferenceParams.identity(2)
    params = ReferenceParams(
        params.src, params.dst, torch.full((2,), hflip), torch.full((2,), vflip),
        torch.full((2,), k * math.pi / 2),
    )
    expected = image
    if hflip:
        expected = torch.flip(expected, dims=(-1,))
    if vflip:
        expected = torch.flip(expected, dims=(-2,))
    expected = torch.rot90(expected, k, dims=(-2, -1))
    # The TPS pass (bicubic at pixel centres) is exact to ~1e-6; the nearest pass adds nothing.
    out = synthesize_references(image, NO_NOISE, params=params)
    torch.testing.assert_close(out, expected, atol=1e-5, rtol=0)
    grid = rotation_flip_grid(params.angle, params.hflip, params.vflip, 16, 16)
    exact = F.grid_sample(image, grid, mode="nearest", align_corners=False)
    assert torch.equal(exact, expected)


def test_rotation_on_a_non_square_image_is_about_the_centre():
    image = _image(1, 6, 10)
    angle = torch.tensor([math.pi / 2])
    no = torch.zeros(1, dtype=torch.bool)
    out = F.grid_sample(image, rotation_flip_grid(angle, no, no, 6, 10), mode="nearest",
                        align_corners=False)
    # A 10-tall, 6-wide rotated image centred in the 6x10 frame: columns 2..7 show the middle
    # rows of rot90, the rest is black (pixels are not stretched).
    assert torch.equal(out[..., 2:8], torch.rot90(image, 1, dims=(-2, -1))[..., 2:8, :])
    assert not out[..., :2].any() and not out[..., 8:].any()
    half_turn = F.grid_sample(image, rotation_flip_grid(angle * 2, no, no, 6, 10),
                              mode="nearest", align_corners=False)
    assert torch.equal(half_turn, torch.flip(image, dims=(-2, -1)))


# --- noise --------------------------------------------------------------------------------------


@pytest.mark.parametrize(("noise", "std"), [("uniform", 5 / 255 / math.sqrt(3)),
                                             ("gaussian", 5 / 255), ("none", 0.0)])
def test_noise_statistics_on_mid_grey(noise, std):
    grey = torch.full((2, 3, 128, 128), 0.5)
    identity = ReferenceParams.identity(2)
    params = ReferenceParams(identity.src, identity.dst, identity.hflip, identity.vflip,
                             identity.angle, noise_seeds=torch.tensor([11, 12]))
    out = synthesize_references(grey, ReferenceRecipe(noise=noise), params=params)
    delta = out - grey
    if noise == "none":
        torch.testing.assert_close(out, grey, atol=1e-6, rtol=0)
        return
    assert delta.mean().abs() < 2e-4
    assert delta.std().item() == pytest.approx(std, rel=0.03)
    if noise == "uniform":
        assert delta.abs().max() <= 5 / 255 + 1e-5
    assert not torch.equal(delta[0], delta[1])  # each sample has its own noise


def test_sampled_parameters_follow_the_recipe():
    recipe = ReferenceRecipe(hflip_p=1.0, vflip_p=0.0, rotation_degrees=(10.0, 20.0))
    params = sample_parameters(256, recipe, torch.Generator().manual_seed(0))
    assert params.src.shape == params.dst.shape == (256, 6, 2)
    torch.testing.assert_close(params.src[:, :4], params.dst[:, :4])  # fixed corners
    p, q = params.src[:, 4:], params.dst[:, 4:]
    assert torch.equal(p[..., 0], p[..., 1]) and torch.equal(q[..., 0], q[..., 1])  # diagonal
    assert p.min() >= 0.3 and p.max() <= 0.7
    shift = (q - p)[..., 0]
    assert shift.min() >= -0.25 - 1e-6 and shift.max() <= 0.25 + 1e-6
    assert params.hflip.all() and not params.vflip.any()
    degrees = torch.rad2deg(params.angle)
    assert degrees.min() >= 10.0 - 1e-4 and degrees.max() <= 20.0 + 1e-4
    assert params.noise_seeds is not None and params.noise_seeds.device.type == "cpu"
    assert sample_parameters(4, NO_NOISE).noise_seeds is None
    src = control_points(torch.tensor([[0.5]]), fixed_corners=False)
    assert src.tolist() == [[[0.5, 0.5]]]


# --- colour ---------------------------------------------------------------------------------------


def _ab_histogram(rgb: torch.Tensor) -> np.ndarray:
    lab = rgb_to_lab(rgb)[0]
    keep = (rgb[0] > 0).any(0)  # ignore pure-black pixels (the warp's and rotation's fill)
    h, _, _ = np.histogram2d(lab[1][keep].numpy(), lab[2][keep].numpy(), bins=32,
                             range=[[-110, 110], [-110, 110]])
    return h / h.sum()


def test_references_keep_the_ab_histogram():
    skimage_data = pytest.importorskip("skimage.data")
    photo = torch.from_numpy(skimage_data.astronaut()).permute(2, 0, 1)[None].float() / 255
    photo = F.interpolate(photo, size=(256, 256), mode="area")
    original = _ab_histogram(photo)
    batch = photo.expand(16, -1, -1, -1)

    def intersections(recipe: ReferenceRecipe) -> np.ndarray:
        refs = synthesize_references(batch, recipe, torch.Generator().manual_seed(0))
        return np.array([np.minimum(original, _ab_histogram(r[None])).sum() for r in refs])

    # Measured: median 0.825 (min 0.76) with the default noise; 0.906 (min 0.79) geometry only.
    default = intersections(ReferenceRecipe())
    assert np.median(default) >= 0.8 and default.min() >= 0.7
    geometry = intersections(NO_NOISE)
    assert np.median(geometry) >= 0.85 and geometry.min() >= 0.75


# --- batching, determinism, devices -------------------------------------------------------------


def test_batched_equals_one_by_one():
    image = _image(5, 48, 40)
    params = sample_parameters(5, generator=torch.Generator().manual_seed(7))
    batched = synthesize_references(image, params=params)
    single = torch.cat([synthesize_references(image[i : i + 1], params=params[i])
                        for i in range(5)])
    assert_same_image(batched, single)


def test_deterministic_given_the_generator():
    image = _image(4, 32, 32)
    first = synthesize_references(image, generator=torch.Generator().manual_seed(5))
    again = synthesize_references(image, generator=torch.Generator().manual_seed(5))
    other = synthesize_references(image, generator=torch.Generator().manual_seed(6))
    assert torch.equal(first, again)
    assert not torch.equal(first, other)
    assert synthesize_references(image).shape == image.shape  # global RNG when no generator


def test_input_checks():
    with pytest.raises(ValueError, match="B, 3, H, W"):
        synthesize_references(torch.rand(3, 8, 8))
    with pytest.raises(ValueError, match="float"):
        synthesize_references(torch.zeros(1, 3, 8, 8, dtype=torch.uint8))
    with pytest.raises(ValueError, match="batch of 2"):
        synthesize_references(torch.rand(1, 3, 8, 8), params=ReferenceParams.identity(2))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_runs_on_cuda_like_on_cpu():
    cuda = torch.device("cuda")
    image = _image(8, 64, 48)
    params = sample_parameters(8, NO_NOISE, torch.Generator().manual_seed(2))
    cpu_out = synthesize_references(image, NO_NOISE, params=params)
    gpu_out = synthesize_references(image.to(cuda), NO_NOISE, params=params.to(cuda))
    assert gpu_out.device.type == "cuda"
    # Nearest rotation may pick a neighbouring pixel where a sample lands on a half-pixel.
    mismatch = ((gpu_out.cpu() - cpu_out).abs() > 1e-3).float().mean().item()
    assert mismatch < 1e-3
    gen = torch.Generator(device=cuda)
    first = synthesize_references(image.to(cuda), generator=gen.manual_seed(4))
    again = synthesize_references(image.to(cuda), generator=gen.manual_seed(4))
    assert torch.equal(first, again) and torch.isfinite(first).all()


def test_foreign_regions_come_from_the_next_reference():
    from c2e_core.data.reference import paste_foreign_regions

    refs = torch.stack([torch.full((3, 32, 40), float(i) / 4) for i in range(4)])
    recipe = ReferenceRecipe(foreign_p=1.0, foreign_area=(0.25, 0.25))
    out = paste_foreign_regions(refs, recipe, torch.Generator().manual_seed(0))
    for i in range(4):
        replaced = (out[i, 0] == refs[(i - 1) % 4, 0]).float().mean()
        assert 0.18 < float(replaced) < 0.32  # a quarter of the image, as a whole rectangle
        assert ((out[i] == refs[i]) | (out[i] == refs[(i - 1) % 4])).all()
    off = paste_foreign_regions(refs, ReferenceRecipe(), torch.Generator().manual_seed(0))
    assert off is refs
    with pytest.raises(ValueError, match="foreign_area"):
        ReferenceRecipe(foreign_area=(0.0, 0.5))


def test_reframed_references_show_an_enlarged_part_of_the_image():
    from c2e_core.data.reference import reframe_references

    size = 64
    ramp = (torch.arange(size, dtype=torch.float32) + 0.5) / size  # pixel centres' x in (0, 1)
    rgb = torch.stack((ramp.expand(size, size), ramp.expand(size, size).T,
                       torch.full((size, size), 0.5)))[None].repeat(6, 1, 1, 1)  # fmt: skip
    recipe = ReferenceRecipe(reframe_p=1.0, reframe_side=(0.5, 0.5))
    out = reframe_references(rgb, recipe, torch.Generator().manual_seed(3))
    assert out.shape == rgb.shape
    for image in out:
        # a window half the image's side, enlarged 2x: the ramps keep their direction with half
        # the slope, stay inside the original range and cover half of it
        slope_x = (image[0, :, 1:] - image[0, :, :-1]).mean() * size
        slope_y = (image[1, 1:, :] - image[1, :-1, :]).mean() * size
        assert slope_x == pytest.approx(0.5, abs=0.02) and slope_y == pytest.approx(0.5, abs=0.02)
        for channel in (0, 1):
            low, high = float(image[channel].min()), float(image[channel].max())
            assert 0.0 <= low and high <= 1.0 and high - low == pytest.approx(0.5, abs=0.03)
    # the places differ from image to image
    assert len({round(float(image[0].min()), 3) for image in out}) > 1
    # off by default: the same tensor, nothing drawn from the generator
    generator = torch.Generator().manual_seed(5)
    assert reframe_references(rgb, ReferenceRecipe(), generator) is rgb
    untouched = torch.Generator().manual_seed(5)
    assert torch.equal(torch.rand(1, generator=generator), torch.rand(1, generator=untouched))
    with pytest.raises(ValueError, match="reframe_side"):
        ReferenceRecipe(reframe_side=(0.0, 0.5))
