"""The one registry of architectures and presets: every registered preset builds, trains a step
at 64² and round-trips its weights (like timm's tests over ``list_models()``)."""

from __future__ import annotations

import pytest
import torch

from c2e_core.plugins import create_plugin_host
from c2e_core.weights.build import (
    BACKBONES,
    architecture_of,
    build_from_config,
    build_model,
    load_state_strictly,
    preset_config,
)
from c2e_core.weights.store import read_weights, save_weights

REGISTRY = create_plugin_host(load_entry_points=False).presets()


def _inputs(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    l_norm = torch.rand(2, 1, 64, 64, generator=generator) * 2 - 1
    return l_norm, torch.rand(2, 3, 64, 64, generator=generator)


def test_the_registry_holds_the_built_in_presets():
    assert {"paper", "small", "corr-small"} <= set(REGISTRY)
    assert REGISTRY["paper"].architecture == "color2embed"
    assert REGISTRY["corr-small"].architecture == "color2embed-corr"
    used = {
        p.config.encoder_backbone
        for p in REGISTRY.values()
        if hasattr(p.config, "encoder_backbone")
    }
    assert used == set(BACKBONES)  # so the tests below cover every colour-encoder backbone


@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_preset_builds_runs_forward_and_backward_at_64(name):
    preset = REGISTRY[name]
    assert preset_config(name) == preset.config and architecture_of(preset.config) == (
        preset.architecture
    )
    torch.manual_seed(0)
    model = build_from_config(preset.config).train()
    l_norm, reference = _inputs()
    ab = model(l_norm, reference)
    assert ab.shape == (2, 2, 64, 64) and torch.isfinite(ab).all()
    ab.square().mean().backward()
    trainable = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    assert trainable and all(p.grad is not None for _, p in trainable), [
        n for n, p in trainable if p.grad is None
    ]


@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_preset_weights_round_trip(name, tmp_path):
    preset = REGISTRY[name]
    torch.manual_seed(1)
    model = build_from_config(preset.config)
    path = tmp_path / f"{name}.c2e.pt"
    save_weights(
        path,
        architecture=preset.architecture,
        config=preset.config.to_dict(),
        state_dict=model.state_dict(),
    )
    stored = read_weights(path)
    torch.manual_seed(2)  # other random weights, replaced by the stored ones
    again = load_state_strictly(build_model(stored.architecture, stored.config), stored.state_dict)
    l_norm, reference = _inputs(3)
    with torch.no_grad():
        assert torch.equal(model(l_norm, reference), again(l_norm, reference))


def test_a_plugin_architecture_joins_the_registry():
    from dataclasses import dataclass

    from c2e_core import hookimpl
    from c2e_core.weights.build import ModelConfig, build_color2embed

    @dataclass(frozen=True)
    class TinyConfig:
        width: int = 8

        def to_dict(self):
            return {"width": self.width}

        @classmethod
        def from_dict(cls, data):
            return cls(**data)

    def build(config):
        config = TinyConfig.from_dict(config) if isinstance(config, dict) else config
        return build_color2embed(ModelConfig(unet_widths=(config.width,) * 5, embed_dim=8,
                                             backbone_widths=(8,) * 5, encoder_hidden=8,
                                             encoder_mlp_hidden=8))  # fmt: skip

    class Plugin:
        @hookimpl
        def c2e_register_architectures(self, register):
            register("tiny-net", build, "test", config_class=TinyConfig,
                     presets={"tiny-8": TinyConfig()})  # fmt: skip

    host = create_plugin_host(load_entry_points=False)
    host.register(Plugin(), name="tiny")
    assert host.presets()["tiny-8"].architecture == "tiny-net"
    config = preset_config("tiny-8", host)
    assert architecture_of(config, host) == "tiny-net"
    assert build_from_config(config, host).unet.inc is not None
    with pytest.raises(ValueError, match="unknown model preset 'nope' .*tiny-8"):
        preset_config("nope", host)
