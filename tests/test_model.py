"""The network: the paper configuration's sizes, smaller variants, the modulated convolution."""

from __future__ import annotations

import pytest
import torch

from c2e_core.modeling.modulated_conv import ModulatedConv2d
from c2e_core.weights.build import ModelConfig, build_color2embed, build_model
from tests.conftest import TINY_CONFIG


def count(module: torch.nn.Module) -> float:
    return sum(p.numel() for p in module.parameters()) / 1e6


def test_paper_configuration_has_the_authors_sizes():
    model = build_color2embed(ModelConfig())
    assert count(model.encoder.backbone) == pytest.approx(15.3, abs=0.05)
    assert count(model.encoder.feature2vector) == pytest.approx(13.4, abs=0.05)
    assert count(model.unet) == pytest.approx(19.4, abs=0.05)
    assert not model.training


def test_paper_shapes_at_256():
    model = build_color2embed()
    unet = model.unet
    shapes = {}
    for name in ("inc", "down1", "down2", "down3", "down4", "up1", "up2", "up3", "up4"):
        getattr(unet, name).register_forward_hook(
            lambda m, i, o, name=name: shapes.__setitem__(name, tuple(o.shape[1:]))
        )
    with torch.no_grad():
        z = model.embed(torch.rand(1, 3, 256, 256))
        ab = model.predict_ab(torch.zeros(1, 1, 256, 256), z)
    assert z.shape == (1, 512, 1, 1)
    assert ab.shape == (1, 2, 256, 256) and ab.abs().max() <= 1
    assert shapes == {
        "inc": (64, 256, 256), "down1": (128, 128, 128), "down2": (256, 64, 64),
        "down3": (512, 32, 32), "down4": (512, 16, 16), "up1": (256, 32, 32),
        "up2": (128, 64, 64), "up3": (64, 128, 128), "up4": (64, 256, 256),
    }  # fmt: skip


def test_small_variant_trains_forward_and_backward():
    model = build_model("color2embed", TINY_CONFIG).train()
    ab = model(torch.rand(2, 1, 64, 48) * 2 - 1, torch.rand(2, 3, 64, 64))
    ab.square().mean().backward()
    assert ab.shape == (2, 2, 64, 48)
    assert all(p.grad is not None for p in model.parameters())
    assert count(model) < 0.2


def test_config_roundtrip_and_unknown_keys():
    config = ModelConfig.from_dict(TINY_CONFIG)
    assert ModelConfig.from_dict(config.to_dict()) == config
    with pytest.raises(ValueError, match="unknown model config keys: colour"):
        ModelConfig.from_dict({"colour": 1})
    with pytest.raises(ValueError, match="backbone"):
        build_color2embed({"encoder_backbone": "resnet"})


def test_modulation_stays_fp32_under_autocast_and_demodulates():
    conv = ModulatedConv2d(16, 3, embed_dim=32)
    z = torch.randn(2, 32, 1, 1)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        weight = conv.modulated_weight(z)
        out = conv(torch.randn(2, 16, 8, 8), z)
    assert weight.dtype == torch.float32
    assert out.dtype == torch.bfloat16
    norms = weight.pow(2).sum(dim=(2, 3, 4))
    torch.testing.assert_close(norms, torch.ones_like(norms), atol=1e-5, rtol=0)


def test_batched_embeddings_equal_one_by_one():
    conv = ModulatedConv2d(8, 5, embed_dim=16)
    x, z = torch.randn(3, 8, 10, 12), torch.randn(3, 16, 1, 1)
    batched = conv(x, z)
    single = torch.cat([conv(x[i : i + 1], z[i : i + 1]) for i in range(3)])
    # batched and per-sample grouped convolutions take other CPU kernels (float32 sums in another
    # order); a sample given another's modulated weights would be off by the output's own scale
    close = {"atol": 1e-4 * float(single.detach().abs().max()), "rtol": 0.0}
    torch.testing.assert_close(batched, single, **close)
    shared = conv(x, z[:1])  # one reference for the whole batch
    torch.testing.assert_close(shared[1:2], conv(x[1:2], z[:1]), **close)


def test_the_exported_form_of_a_modulated_convolution_is_the_same_convolution():
    """The export scales the input by the style and the output by the demodulation around the
    fixed weights (so that onnxruntime can lay them out once): the same numbers as the
    modulated weights' convolution, to float rounding."""
    conv = ModulatedConv2d(16, 5, embed_dim=32)
    x, z = torch.randn(2, 16, 12, 10), torch.randn(1, 32, 1, 1)
    with torch.no_grad():
        fused = conv(x, z)
        exported = conv._exported_forward(x, z)
    torch.testing.assert_close(exported, fused, atol=1e-5 * float(fused.abs().max()), rtol=0)


def test_the_model_owns_its_scaling():
    from c2e_core.modeling.color2embed import PAPER_SCALING, lab_scaling
    from c2e_core.weights.build import build_color2embed_corr

    model = build_model("color2embed", TINY_CONFIG)
    lum = torch.tensor([0.0, 25.0, 50.0, 100.0])
    torch.testing.assert_close(model.normalize_lightness(lum), torch.tensor([-1.0, -0.5, 0, 1]))
    torch.testing.assert_close(model.lightness_from_normalized(model.normalize_lightness(lum)), lum)
    assert model.ab_scale == 110.0
    torch.testing.assert_close(
        model.ab_from_output(torch.tensor([-1.0, 0.5])), torch.tensor([-110, 55.0])
    )
    torch.testing.assert_close(
        model.output_from_ab(torch.tensor([-110, 55.0])), torch.tensor([-1, 0.5])
    )
    assert lab_scaling(model) is model and lab_scaling(build_color2embed_corr()).ab_scale == 110.0
    assert lab_scaling(torch.nn.Identity()) is PAPER_SCALING  # a plugin's module without one
