"""The project's extension of Color2Embed: target features, the attention prior, blending."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from c2e_core.inference.pipeline import Colorizer
from c2e_core.modeling.colour import gray_from_lightness, rgb_to_lab
from c2e_core.modeling.correspondence import (
    EMPTY_BIAS,
    LINEAR_EPS,
    Correspondence,
    ReferenceCode,
    blend_reference_codes,
    cell_colour_models,
    choose_orientation,
    linear_prior,
    orient,
)
from c2e_core.weights.build import (
    COLOR2EMBED_CORR,
    CorrConfig,
    build_color2embed_corr,
    build_model,
    init_for_training,
    load_state_strictly,
)
from c2e_core.weights.store import read_weights, save_weights

TINY = {"unet_widths": [8, 8, 16, 16, 16], "embed_dim": 16, "encoder_hidden": 16,
        "encoder_mlp_hidden": 16}  # fmt: skip


def tiny(seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    return init_for_training(build_model(COLOR2EMBED_CORR, TINY))


def test_gray_from_lightness_has_that_lightness():
    l_norm = torch.linspace(-1, 1, 101).view(1, 1, 1, 101)
    gray = gray_from_lightness(l_norm * 50 + 50)
    assert gray.shape == (1, 3, 1, 101)
    lab = rgb_to_lab(gray)
    torch.testing.assert_close(lab[:, :1], l_norm * 50 + 50, atol=2e-3, rtol=0)
    assert lab[:, 1:].abs().max() < 0.01  # neutral (skimage's matrix leaves ~0.005)


def test_forward_backward_trains_all_but_the_frozen_features():
    model = tiny().train()
    assert not model.features.training  # frozen ImageNet statistics stay in eval mode
    ab = model(torch.rand(2, 1, 64, 48) * 2 - 1, torch.rand(2, 3, 64, 64))
    ab.square().mean().backward()
    assert ab.shape == (2, 2, 64, 48) and ab.abs().max() <= 1
    assert all(p.grad is None for p in model.features.parameters())
    trainable = [p for p in model.parameters() if p.requires_grad]
    assert trainable and all(p.grad is not None for p in trainable)


def test_starts_as_the_warped_reference_prior():
    """Zero-initialised correction: at the start the output is the attention prior itself, so
    a self-reference reproduces the target's colours roughly (blocky at stride 8)."""
    model = tiny().eval()
    rgb = torch.zeros(1, 3, 64, 64)
    rgb[:, 0, :, :32] = 0.9  # red left half, blue right half
    rgb[:, 2, :, 32:] = 0.9
    lab = rgb_to_lab(rgb)
    with torch.no_grad():
        ab = model(lab[:, :1] / 50 - 1, rgb) * 110
    assert ab[0, 0, 32, 4] > 30 and ab[0, 1, 32, 60] < -30  # red stays red, blue stays blue


def test_empty_reference_tokens_are_ignored():
    model = tiny().eval()
    reference = torch.rand(1, 3, 64, 64)
    reference[..., :32, :] = 0  # black fill of a rotated reference holds no colour
    with torch.no_grad():
        code = model.embed(reference)
    assert code.keys.shape[:2] == code.values.shape[:2] == code.bias.shape == (1, 64)
    assert code.values.shape[2] == 6
    assert (code.bias[0, :32] == EMPTY_BIAS).all() and (code.bias[0, 32:] == 0).all()


def test_blend_concatenates_tokens_with_log_shares():
    a = ReferenceCode(torch.ones(1, 4, 1, 1), torch.ones(1, 3, 5), torch.zeros(1, 3, 6),
                      torch.zeros(1, 3), torch.zeros(1, 3))  # fmt: skip
    b = ReferenceCode(torch.zeros(1, 4, 1, 1), torch.ones(1, 2, 5), torch.ones(1, 2, 6),
                      torch.zeros(1, 2), torch.ones(1, 2))  # fmt: skip
    blend = blend_reference_codes([a, b], [3.0, 1.0])
    torch.testing.assert_close(blend.z, torch.full((1, 4, 1, 1), 0.75))
    assert blend.keys.shape == (1, 5, 5) and blend.values.shape == (1, 5, 6)
    assert blend.orientation.tolist() == [[0, 0, 0, 1, 1]]
    torch.testing.assert_close(blend.bias[0], torch.tensor([np.log(0.75)] * 3 + [np.log(0.25)] * 2,
                                                           dtype=torch.float32))  # fmt: skip


def test_weights_round_trip(tmp_path):
    model = tiny(1)
    path = tmp_path / "corr.c2e.pt"
    save_weights(path, architecture=COLOR2EMBED_CORR, config=CorrConfig.from_dict(TINY).to_dict(),
                 state_dict=model.state_dict(), metadata={})  # fmt: skip
    weights = read_weights(path)
    rebuilt = build_model(weights.architecture, weights.config)
    again = load_state_strictly(rebuilt, weights.state_dict)
    l_norm, reference = torch.rand(1, 1, 32, 32) * 2 - 1, torch.rand(1, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(again(l_norm, reference), model.eval()(l_norm, reference))


def test_colorizer_blends_several_references_and_keeps_lightness():
    colorizer = Colorizer(tiny(2), device="cpu", size=64)
    rng = np.random.default_rng(0)
    target = rng.integers(0, 256, (70, 50, 3), dtype=np.uint8)
    refs = [rng.integers(0, 256, (40, 60, 3), dtype=np.uint8) for _ in range(2)]
    code = ReferenceCode(*colorizer.embed(refs, weights=[2, 1]))
    single = ReferenceCode(*colorizer.embed(refs[0]))
    assert code.keys.shape[1] == 2 * single.keys.shape[1]  # both references' tokens
    out = colorizer.colorize(target, embedding=code)
    lum = rgb_to_lab(torch.from_numpy(target).permute(2, 0, 1).float() / 255)[0]
    out_lum = rgb_to_lab(torch.from_numpy(out.to_array(np.float32)).permute(2, 0, 1))[0]
    assert (out_lum - lum).abs().max() < 1.0


def test_the_eight_orientations_are_the_quarter_turns_of_the_image_and_its_mirror():
    x = torch.rand(1, 3, 5, 7)
    for orientation in range(8):
        mirrored = x.flip(-1) if orientation >= 4 else x
        expected = torch.rot90(mirrored, orientation % 4, dims=(-2, -1))
        assert torch.equal(orient(x, orientation), expected)


def test_each_orientations_tokens_are_those_of_the_turned_image():
    """The colour conversion and the cells' colour models run once and are turned with the
    tokens: each orientation's tokens equal those of the image turned first, black fill
    included (the values to float rounding: the cells' sums run in another order)."""
    model = tiny(2).eval()
    model.reference_orientations = 8
    torch.manual_seed(3)
    reference = torch.rand(1, 3, 48, 32)
    reference[..., :8, :16] = 0  # black fill: no colour there
    with torch.no_grad():
        code = model.embed(reference)
        model.reference_orientations = 1
        for orientation in range(8):
            alone = model.embed(orient(reference, orientation))
            mine = code.orientation[0] == orientation
            assert torch.equal(code.keys[:, mine], alone.keys)
            assert torch.equal(code.bias[:, mine], alone.bias)
            torch.testing.assert_close(code.values[:, mine], alone.values, atol=1e-5, rtol=0)
        assert torch.equal(code.z, model.embed(reference).z)
    assert (code.bias == EMPTY_BIAS).any()


def test_a_turned_reference_is_matched_in_its_upright_orientation():
    """With eight orientations the target keeps the copy its features match best: a reference
    turned a quarter is matched as if upright, and the prediction equals the upright one's."""
    model = tiny(3).eval()
    model.reference_orientations = 8
    torch.manual_seed(4)
    reference = torch.rand(1, 3, 64, 48)
    l_norm = rgb_to_lab(reference)[:, :1] / 50 - 1
    with torch.no_grad():
        upright = model.predict_ab(l_norm, model.embed(reference))
        code = model.embed(torch.rot90(reference, 1, dims=(-2, -1)))
        turned = model.predict_ab(l_norm, code)
    assert code.keys.shape[1] == 8 * 48 and sorted(set(code.orientation[0].tolist())) == list(
        range(8))
    torch.testing.assert_close(turned, upright, atol=1e-5, rtol=0)


def test_blended_references_turn_together_in_orientation_order():
    model = tiny(6).eval()
    model.reference_orientations = 8
    with torch.no_grad():
        codes = [model.embed(torch.rand(1, 3, 64, 48)), model.embed(torch.rand(1, 3, 32, 32))]
        blend = blend_reference_codes(codes, [1.0, 1.0])
        kept = choose_orientation(model.correspondence.keys(torch.rand(1, 152, 8, 8)), blend, 8,
                                  model.upright_margin)  # fmt: skip
    assert blend.orientation.tolist() == [sorted(blend.orientation[0].tolist())]
    assert kept.keys.shape == (1, 48 + 16, 152) and len(set(kept.orientation[0].tolist())) == 1


def test_an_upright_reference_stays_upright_unless_a_turn_matches_clearly_better():
    orientation = torch.arange(8.0).repeat_interleave(2)[None]  # two tokens per orientation
    keys = torch.where(orientation[..., None] == 1, torch.eye(2)[0], torch.eye(2)[1])
    code = ReferenceCode(torch.zeros(1, 4, 1, 1), keys, torch.zeros(1, 16, 6),
                         torch.zeros(1, 16), orientation)  # fmt: skip
    target = torch.eye(2)[None, :1]  # matches only the quarter turn's tokens
    kept = choose_orientation(target, code, 8, upright_margin=0.0)
    assert kept.orientation.tolist() == [[1.0, 1.0]] and kept.keys.shape == (1, 2, 2)
    # its cosine 1 against the upright copy's 0 does not clear a margin of 2
    assert choose_orientation(target, code, 8, 2.0).orientation.tolist() == [[0.0, 0.0]]
    assert choose_orientation(target, code, 1, 0.0) is code
    one_orientation = code._replace(orientation=torch.zeros(1, 16))  # a code of another model
    with pytest.raises(ValueError, match="not made in 8 orientations"):
        choose_orientation(target, one_orientation, 8, 0.0)


def _two_orientations_code(empty_first: bool) -> ReferenceCode:
    """Eight orientations of two tokens; orientation 0's first token is the target's own key
    (cosine 1) but holds no colour when ``empty_first``; the rest match it at cosine 0.5."""
    orientation = torch.arange(8.0).repeat_interleave(2)[None]
    half = torch.tensor([0.5, 3**0.5 / 2])
    keys = half.repeat(1, 16, 1)
    keys[0, 0] = torch.tensor([1.0, 0.0])
    keys[0, 2] = torch.tensor([0.9, 0.19**0.5])  # orientation 1: cosine 0.9
    bias = torch.full((1, 16), float(np.log(0.3)))  # a blended reference's share: not empty
    if empty_first:
        bias[0, 0] = EMPTY_BIAS
    return ReferenceCode(torch.zeros(1, 4, 1, 1), keys, torch.zeros(1, 16, 6), bias, orientation)


def test_tokens_without_colour_neither_score_an_orientation_nor_give_confidence():
    target = torch.tensor([[[1.0, 0.0]]])
    # orientation 0 wins on its cosine-1 token, unless that token is empty
    assert choose_orientation(target, _two_orientations_code(False), 8, 0.0).orientation[0, 0] == 0
    assert choose_orientation(target, _two_orientations_code(True), 8, 0.0).orientation[0, 0] == 1
    attention = Correspondence(2)
    with torch.no_grad():
        code = _two_orientations_code(True)
        confidence = attention(target, code, (1, 1))[0, -1, 0, 0]
        assert abs(float(confidence) - 0.9) < 1e-5  # the best token that holds colour
        nothing = code._replace(bias=torch.full((1, 16), EMPTY_BIAS))
        assert float(attention(target, nothing, (1, 1))[0, -1, 0, 0]) == -1.0
        # a cosine a rounding above 1 still leaves an empty reference's confidence at -1
        above_one = torch.tensor([[[1.0 + 1e-6, 0.0]]])
        assert float(attention(above_one, nothing, (1, 1))[0, -1, 0, 0]) == -1.0
        # an all-empty reference stays upright, as every orientation scores -1
        assert choose_orientation(above_one, nothing, 8, 0.02).orientation[0, 0] == 0


def test_the_attention_keeps_autocasts_dtype():
    """The empty tokens' penalty is added in the similarities' dtype: under bf16 autocast the
    warped values and the confidence stay bf16 (as with the masked fill before)."""
    attention = Correspondence(2)
    code = _two_orientations_code(True)
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        out = attention(torch.tensor([[[1.0, 0.0]]]), code, (1, 1))
    assert out.dtype == torch.bfloat16


def test_a_code_per_target_chooses_as_each_alone():
    codes = [_two_orientations_code(False), _two_orientations_code(True)]
    both = ReferenceCode(*(torch.cat(parts) for parts in zip(*codes, strict=True)))
    target = torch.tensor([[[1.0, 0.0]]]).repeat(2, 1, 1)
    kept = choose_orientation(target, both, 8, 0.0)
    for i, code in enumerate(codes):
        alone = choose_orientation(target[i : i + 1], code, 8, 0.0)
        for got, expected in zip(kept[1:], alone[1:], strict=True):
            assert torch.equal(got[i : i + 1], expected)


def test_a_model_matching_at_stride_4_attends_from_four_times_the_target_cells():
    """``target_stride=4``: the texture block joins the keys (24 more channels, on both
    sides), the reference keeps its cells at stride 8, and each 4x4 target cell attends."""
    torch.manual_seed(7)
    model = init_for_training(build_model(COLOR2EMBED_CORR, {**TINY, "target_stride": 4,
                                                             "reference_orientations": 8}))
    model.eval()  # fmt: skip
    seen = []
    model.correspondence.register_forward_hook(lambda module, args, out: seen.append(
        (args[0].shape, out.shape)))  # fmt: skip
    with torch.no_grad():
        code = model.embed(torch.rand(1, 3, 64, 48))
        ab = model.predict_ab(torch.rand(2, 1, 48, 80) * 2 - 1, code)
    assert code.keys.shape == (1, 8 * 8 * 6, 40 + 112 + 24)
    assert seen == [(torch.Size([2, 12 * 20, 176]), torch.Size([2, 7, 12, 20]))]
    assert ab.shape == (2, 2, 48, 80) and bool(torch.isfinite(ab).all())


def test_config_is_checked():
    with pytest.raises(ValueError, match="unet_widths"):
        CorrConfig(unet_widths=(8, 8))
    with pytest.raises(ValueError, match="temperature"):
        build_color2embed_corr({"temperature": 0})
    with pytest.raises(ValueError, match="reference_orientations"):
        CorrConfig(reference_orientations=4)
    with pytest.raises(ValueError, match="target_stride"):
        CorrConfig(target_stride=2)
    with pytest.raises(ValueError, match="unknown model config keys"):
        CorrConfig.from_dict({"encoder_backbone": "vgg19"})


def test_cell_models_fit_ab_as_a_line_of_lightness_over_valid_pixels():
    l_norm = torch.linspace(-0.5, 0.5, 64).view(1, 1, 1, 64).expand(1, 1, 8, 64).contiguous()
    ab = torch.cat((0.4 * l_norm + 0.1, -0.2 * l_norm), dim=1)
    valid = torch.ones(1, 1, 8, 64)
    valid[..., 32:] = 0  # right half is black fill: ignored
    ab = ab * valid + (1 - valid) * 0.9
    values, lit = cell_colour_models(l_norm, ab, valid, (8, 32))
    assert lit.flatten().tolist() == [1.0, 0.0]
    mean_ab, alpha, beta = values[..., 0, 0].split(2, dim=1)
    var = l_norm[..., :32].var(unbiased=False)
    shrink = var / (var + LINEAR_EPS)  # the regulariser pulls alpha towards 0
    torch.testing.assert_close(alpha[0], torch.tensor([0.4, -0.2]) * shrink, atol=1e-5, rtol=0)
    torch.testing.assert_close(mean_ab + 0, beta + alpha * l_norm[..., :32].mean())
    prior8 = torch.cat((values[..., :1], torch.ones(1, 1, 1, 1)), dim=1)  # + a confidence
    prior = linear_prior(prior8, l_norm[..., :32])
    expected = alpha.view(1, 2, 1, 1) * l_norm[..., :32] + beta.view(1, 2, 1, 1)
    torch.testing.assert_close(prior, expected)
