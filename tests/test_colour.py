from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from skimage import color
from skimage.color import colorconv

from c2e_core.modeling.colour import lab_to_rgb, rgb_to_lab, split_l_ab


def _cube_chunks(n_chunks: int = 16):
    """All 256^3 8-bit colours as float64 [N, 3] chunks (red varies slowest)."""
    levels = np.arange(256, dtype=np.float64) / 255.0
    g, b = np.meshgrid(levels, levels, indexing="ij")
    gb = np.stack([g.ravel(), b.ravel()], axis=1)
    per = 256 // n_chunks
    for start in range(0, 256, per):
        reds = levels[start : start + per]
        rgb = np.empty((per * gb.shape[0], 3))
        rgb[:, 0] = np.repeat(reds, gb.shape[0])
        rgb[:, 1:] = np.tile(gb, (per, 1))
        yield rgb


def _to_chw(x: np.ndarray) -> torch.Tensor:
    """[N, 3] -> [3, N/256, 256] float32 tensor."""
    return torch.from_numpy(x.T.reshape(3, -1, 256).astype(np.float32))


def _from_chw(t: torch.Tensor) -> np.ndarray:
    return t.reshape(3, -1).T.double().numpy()


def test_rgb_to_lab_matches_skimage_on_whole_srgb_cube():
    worst = 0.0
    for rgb in _cube_chunks():
        ref = color.rgb2lab(rgb)
        ours = _from_chw(rgb_to_lab(_to_chw(rgb)))
        worst = max(worst, float(np.abs(ours - ref).max()))
    assert worst < 1e-3


def test_lab_roundtrip_on_whole_srgb_cube():
    worst = 0.0
    for rgb in _cube_chunks():
        x = _to_chw(rgb)
        back = lab_to_rgb(rgb_to_lab(x), clip=False)
        worst = max(worst, float((back - x).abs().max()))
    assert worst < 1e-3


def _lab_grid() -> np.ndarray:
    lum = np.linspace(0.0, 100.0, 41)
    ab = np.linspace(-128.0, 127.0, 52)
    grid = np.stack(np.meshgrid(lum, ab, ab, indexing="ij"), axis=-1).reshape(-1, 3)
    return grid[: (grid.shape[0] // 256) * 256]


def test_lab_to_rgb_matches_skimage_including_out_of_gamut():
    lab = _lab_grid()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # skimage warns about negative Z clipped to 0
        ref = color.lab2rgb(lab)
        xyz = color.lab2xyz(lab)
    ours = _from_chw(lab_to_rgb(_to_chw(lab)))
    assert np.abs(ours - ref).max() < 1e-3
    # Unclipped: skimage's own pipeline before its final clip.
    lin = xyz @ colorconv.rgb_from_xyz.T
    unclipped_ref = np.where(lin > 0.0031308, 1.055 * np.abs(lin) ** (1 / 2.4) - 0.055, lin * 12.92)
    unclipped = _from_chw(lab_to_rgb(_to_chw(lab), clip=False))
    assert (unclipped_ref < 0).any() and (unclipped_ref > 1).any()  # grid leaves the gamut
    np.testing.assert_allclose(unclipped, unclipped_ref, atol=1e-3, rtol=1e-5)
    assert ours.min() >= 0.0 and ours.max() <= 1.0


def test_batch_dims_and_low_precision_inputs_return_float32():
    x = torch.rand(2, 3, 3, 5, 7)
    lab = rgb_to_lab(x)
    assert lab.shape == x.shape and lab.dtype == torch.float32
    flat = rgb_to_lab(x.reshape(6, 3, 5, 7)).reshape(2, 3, 3, 5, 7)
    torch.testing.assert_close(lab, flat)
    half = rgb_to_lab(x.to(torch.bfloat16))
    assert half.dtype == torch.float32
    torch.testing.assert_close(half, rgb_to_lab(x.to(torch.bfloat16).float()))
    assert lab_to_rgb(lab.half()).dtype == torch.float32


def test_known_values_and_gradients():
    x = torch.tensor([[1.0, 0.0], [1.0, 0.0], [1.0, 0.0]]).reshape(3, 1, 2)
    lab = rgb_to_lab(x)
    white_ref = color.rgb2lab(np.ones((1, 1, 3)))[0, 0]  # ~(100, 0.005, -0.010) in skimage
    np.testing.assert_allclose(lab[:, 0, 0].numpy(), white_ref, atol=1e-4)
    assert abs(float(lab[0, 0, 0]) - 100.0) < 1e-3
    torch.testing.assert_close(lab[:, 0, 1], torch.zeros(3), atol=1e-4, rtol=0)
    x = torch.rand(1, 3, 4, 4, requires_grad=True)
    lab_to_rgb(rgb_to_lab(x), clip=False).sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()


def test_rejects_non_channel_first_input():
    with pytest.raises(ValueError, match=r"\[\.\.\., 3, H, W\]"):
        rgb_to_lab(torch.rand(4, 4, 3))
    with pytest.raises(ValueError):
        lab_to_rgb(torch.rand(2, 4, 4))


def test_split_l_ab():
    lab = rgb_to_lab(torch.rand(2, 3, 4, 5))
    lum, ab = split_l_ab(lab)
    assert lum.shape == (2, 1, 4, 5) and ab.shape == (2, 2, 4, 5)
    torch.testing.assert_close(torch.cat([lum, ab], dim=1), lab)


def lab_to_rgb_in_gamut(lab: torch.Tensor) -> torch.Tensor:
    """The pipeline's gamut fit (numpy, :mod:`c2e_core.inference.colour`) on a tensor."""
    from c2e_core.inference.colour import lab_to_rgb_in_gamut as fit

    return torch.from_numpy(fit(lab.numpy()))


def test_gamut_fit_keeps_lightness_and_hue():
    gen = torch.Generator().manual_seed(0)
    lab = torch.stack(
        [
            torch.rand(64, 64, generator=gen) * 100,
            torch.randn(64, 64, generator=gen) * 80,
            torch.randn(64, 64, generator=gen) * 80,
        ]
    )
    rgb = lab_to_rgb_in_gamut(lab)
    assert rgb.min() >= 0 and rgb.max() <= 1
    back = rgb_to_lab(rgb)
    assert (back[0] - lab[0]).abs().max() < 0.05  # L kept (per-channel clipping moves it a lot)
    clipped_l = rgb_to_lab(lab_to_rgb(lab, clip=True))[0]
    assert (clipped_l - lab[0]).abs().max() > 5
    chroma = lab[1:].norm(dim=0)
    keep = chroma > 10
    hue_in = torch.atan2(lab[2], lab[1])[keep]
    hue_out = torch.atan2(back[2], back[1])[keep]
    delta = torch.remainder(hue_out - hue_in + torch.pi, 2 * torch.pi) - torch.pi
    assert delta.abs().median() < 0.05


def test_gamut_fit_keeps_nearly_all_the_chroma_that_fits():
    """The chroma factor is the largest in-gamut one (bisection, then interpolated to the
    gamut's face): 1/256 more chroma leaves the gamut for at least one pixel in a hundred, and
    1/128 less never."""
    from c2e_core.modeling.colour import _lab_to_linear_rgb

    gen = torch.Generator().manual_seed(1)
    lab = torch.stack(
        [
            5 + torch.rand(1, 48, 48, generator=gen) * 90,
            torch.randn(1, 48, 48, generator=gen) * 70,
            torch.randn(1, 48, 48, generator=gen) * 70,
        ],
        dim=1,
    )
    fitted = rgb_to_lab(lab_to_rgb_in_gamut(lab))
    chroma_in, chroma_out = lab[:, 1:].norm(dim=1), fitted[:, 1:].norm(dim=1)
    reduced = chroma_out < chroma_in - 0.5
    assert reduced.float().mean() > 0.2  # many pixels were outside the gamut
    factor = (chroma_out / chroma_in)[reduced]
    ab = lab[:, 1:].permute(1, 0, 2, 3)[:, reduced]

    def outside(scale: float) -> torch.Tensor:
        probe = torch.cat([lab[:, :1].permute(1, 0, 2, 3)[:, reduced], ab * scale])[:, :, None]
        lin = _lab_to_linear_rgb(probe)
        return ((lin < -1e-4) | (lin > 1 + 1e-4)).any(dim=0)[:, 0]

    assert outside(factor + 1 / 256).float().mean() > 0.01
    assert not outside((factor - 1 / 128).clamp_min(0)).any()


def test_rgb_to_lightness_is_lab_l():
    from c2e_core.modeling.colour import rgb_to_lightness

    x = torch.rand(2, 3, 17, 19, generator=torch.Generator().manual_seed(2))
    torch.testing.assert_close(rgb_to_lightness(x), rgb_to_lab(x)[:, :1], atol=1e-4, rtol=0)
    torch.testing.assert_close(rgb_to_lightness(x[0]), rgb_to_lab(x[0])[:1], atol=1e-4, rtol=0)


def test_the_pipelines_numpy_conversion_is_the_torch_one():
    """c2e_core.inference.colour (numpy, what the pipeline runs) against
    c2e_core.modeling.colour (torch, what the networks and training compute in): the whole
    8-bit cube forward, and Lab far outside the gamut back (clipped and unclipped)."""
    from c2e_core.inference import colour as pipeline_colour
    from c2e_core.modeling import colour as torch_colour

    for rgb in _cube_chunks(64):
        planar = _to_chw(rgb).numpy()
        for name in ("rgb_to_lab", "rgb_to_lightness"):
            expected = getattr(torch_colour, name)(torch.from_numpy(planar)).numpy()
            got = getattr(pipeline_colour, name)(planar)
            np.testing.assert_allclose(got, expected, atol=2e-4, rtol=0)
    rng = np.random.default_rng(5)
    lab = np.concatenate((rng.random((1, 1, 64, 64)) * 100,
                          rng.standard_normal((1, 2, 64, 64)) * 60), axis=1).astype(np.float32)
    for clip in (True, False):
        expected = torch_colour.lab_to_rgb(torch.from_numpy(lab), clip=clip).numpy()
        got = pipeline_colour.lab_to_rgb(lab, clip=clip)
        assert got.shape == expected.shape and got.dtype == np.float32
        np.testing.assert_allclose(got, expected, atol=1e-5, rtol=1e-5)


def test_gray_lightness_is_the_rgb_path_for_every_8_bit_and_16_bit_level():
    """The pipeline's shortcut for gray targets: one channel's L, as the three-channel path."""
    from c2e_core.inference.colour import gray_to_lightness, is_gray
    from c2e_core.inference.colour import rgb_to_lightness as numpy_lightness
    from c2e_core.modeling.lab_constants import XYZ_FROM_RGB

    assert sum(XYZ_FROM_RGB[1]) == 1.0  # why Y of a gray is its linear value
    for levels in (255, 65535):
        gray = (np.arange(levels + 1, dtype=np.float32) / levels).reshape(1, -1)
        planar = np.repeat(gray[None], 3, axis=0)  # [3, 1, N]
        expected = numpy_lightness(planar)  # a few of L's float32 steps apart at most:
        np.testing.assert_allclose(gray_to_lightness(gray), expected, atol=5e-5, rtol=0)
        assert is_gray(np.moveaxis(planar, 0, -1))
    tinted = np.full((2, 3, 3), 0.5, np.float32)
    tinted[1, 2, 2] = 0.5001
    assert not is_gray(tinted)


def test_f_inverse_is_skimages_piecewise_curve():
    """The mask-free form of Lab's inverse ``f``: the cube exactly above the threshold, the
    line below it within the 4e-8 that skimage's rounded constants leave between the two."""
    from c2e_core.inference.colour import _f_inverse
    from c2e_core.modeling.lab_constants import LAB_INV_EPS, LAB_KAPPA, LAB_OFFSET

    f = np.linspace(-0.5, 1.5, 200_001, dtype=np.float32)
    got = _f_inverse(f)
    cube = f > np.float32(LAB_INV_EPS)
    np.testing.assert_array_equal(got[cube], f[cube] * f[cube] * f[cube])
    line = (f[~cube].astype(np.float64) - LAB_OFFSET) / LAB_KAPPA
    np.testing.assert_allclose(got[~cube], line, atol=6e-8, rtol=0)
