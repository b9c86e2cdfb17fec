"""Model configurations and construction of registered architectures."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, fields
from typing import Any, ClassVar

import torch
from torch import nn

from c2e_core.errors import StateDictError
from c2e_core.modeling.color2embed import Color2Embed
from c2e_core.modeling.color_encoder import IMAGENET_MEAN, IMAGENET_STD, ColorEncoder, VGGBackbone
from c2e_core.modeling.unet import ColorUNet

#: The architecture name of the paper's model.
COLOR2EMBED = "color2embed"
#: The architecture name of the project's extension (target features and a correspondence).
COLOR2EMBED_CORR = "color2embed-corr"


#: The single-number sizes both configurations hold.
_SCALAR_SIZES = ("skip_stride", "embed_dim", "encoder_hidden", "encoder_mlp_hidden")


class _SizedConfig:
    """What both configurations share: their size checks and the plain-dict round trip (tuples
    as lists) that weights files and recipes store."""

    #: ``(field, length)`` of the tuple fields: each must hold that many positive integers.
    _TUPLE_SIZES: ClassVar[tuple[tuple[str, int], ...]] = ()

    def _check_sizes(self) -> None:
        for name, expected in self._TUPLE_SIZES:
            value = getattr(self, name)
            if len(value) != expected or not all(isinstance(v, int) and v > 0 for v in value):
                raise ValueError(f"{name} must be {expected} positive integers, not {list(value)}")
        for name in _SCALAR_SIZES:
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
                raise ValueError(f"{name} must be a positive integer, not {value!r}")

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        return {k: list(v) if isinstance(v, tuple) else v for k, v in data.items()}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Any:
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown model config keys: {', '.join(sorted(unknown))}")
        values = {k: tuple(v) if isinstance(v, list) else v for k, v in data.items()}
        return cls(**values)


@dataclass(frozen=True)
class ModelConfig(_SizedConfig):
    """Shape of a Color2Embed network. ``paper`` is the authors' architecture.

    Smaller variants change widths or the colour encoder's backbone; the names of all modules
    stay the same, so every variant loads with the same code.
    """

    unet_widths: tuple[int, ...] = (64, 128, 256, 512, 512)
    up_kernels: tuple[int, ...] = (3, 3, 5, 5)
    skip_stride: int = 4
    embed_dim: int = 512
    encoder_backbone: str = "vgg19"
    backbone_widths: tuple[int, ...] = (64, 128, 256, 512, 512)
    encoder_hidden: int = 512
    encoder_mlp_hidden: int = 256

    _TUPLE_SIZES: ClassVar[tuple[tuple[str, int], ...]] = (
        ("unet_widths", 5), ("backbone_widths", 5), ("up_kernels", 4),
    )  # fmt: skip

    def __post_init__(self) -> None:
        self._check_sizes()
        if self.encoder_backbone not in BACKBONES:
            known = ", ".join(sorted(BACKBONES))
            raise ValueError(
                f"unknown colour-encoder backbone {self.encoder_backbone!r} (known: {known})"
            )


@dataclass(frozen=True)
class Backbone:
    """A colour-encoder backbone (stride 16), its output channels and the input normalisation
    the encoder applies to RGB in [0, 1] before it."""

    module: nn.Module
    channels: int
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD


def _vgg19(config: ModelConfig) -> Backbone:
    backbone = VGGBackbone(config.backbone_widths)
    return Backbone(backbone, backbone.out_channels)


def _effnet_lite0(config: ModelConfig) -> Backbone:
    """EfficientNet-lite0 to block 10 (ImageNet weights can be loaded for training); it scales
    its input itself, so the encoder passes RGB in [0, 1] through (``backbone_widths`` unused)."""
    from c2e_core.modeling.efficientnet_lite import EffNetLite0Backbone

    backbone = EffNetLite0Backbone()
    return Backbone(backbone, backbone.out_channels, (0.0, 0.0, 0.0), (1.0, 1.0, 1.0))


#: Colour-encoder backbones by name: ``builder(config) -> Backbone``.
BACKBONES: dict[str, Callable[[ModelConfig], Backbone]] = {
    "vgg19": _vgg19,
    "effnet-lite0": _effnet_lite0,
}


@dataclass(frozen=True)
class CorrConfig(_SizedConfig):
    """Shape of a :class:`~c2e_core.modeling.correspondence.CorrColor2Embed` network: the
    project's extension of the paper (frozen EfficientNet-lite0 features of target and
    reference, an attention prior at stride 8, the paper's modulated decoder)."""

    unet_widths: tuple[int, ...] = (16, 32, 64, 128, 128)
    up_kernels: tuple[int, ...] = (3, 3, 5, 5)
    skip_stride: int = 4
    embed_dim: int = 128
    encoder_hidden: int = 128
    encoder_mlp_hidden: int = 128
    temperature: float = 0.02
    freeze_features: bool = True
    #: 1: the reference as it is; 8: also its quarter turns and mirror images, the best
    #: matching kept per target (no weights of its own: any corr weights can use either).
    reference_orientations: int = 1
    #: What a turned copy's match score must beat the upright ones' by to be chosen.
    upright_margin: float = 0.02
    #: 8: the target matches the reference's cells at stride 8; 4: at stride 4, with the
    #: backbone's texture block (block 2) in the keys (more key channels: other weights).
    target_stride: int = 8

    _TUPLE_SIZES: ClassVar[tuple[tuple[str, int], ...]] = (("unet_widths", 5), ("up_kernels", 4))
    #: Fields that hold no weights: trained weights can be given other values
    #: (``training/bundle_weights.py --set``).
    INFERENCE_FIELDS: ClassVar[tuple[str, ...]] = ("reference_orientations", "upright_margin")

    def __post_init__(self) -> None:
        self._check_sizes()
        if not 0 < float(self.temperature) < 10:
            raise ValueError(f"temperature must be in (0, 10), not {self.temperature!r}")
        if self.reference_orientations not in (1, 8):
            raise ValueError(
                f"reference_orientations must be 1 or 8, not {self.reference_orientations!r}"
            )
        if not 0 <= float(self.upright_margin) < 1:  # a cosine similarity's margin; NaN fails
            raise ValueError(f"upright_margin must be in [0, 1), not {self.upright_margin!r}")
        if self.target_stride not in (8, 4):
            raise ValueError(f"target_stride must be 8 or 4, not {self.target_stride!r}")


#: Named configurations: ``paper`` (the authors', 48 M parameters) and ``small`` (2.8 M: an
#: EfficientNet-lite0 colour encoder and a quarter-width UNet; the bundled default weights).
#: The built-in plugin registers them; look presets up in the one registry, :func:`preset_config`.
PRESETS: dict[str, ModelConfig] = {
    "paper": ModelConfig(),
    "small": ModelConfig(
        unet_widths=(16, 32, 64, 128, 128),
        embed_dim=128,
        encoder_backbone="effnet-lite0",
        encoder_hidden=128,
        encoder_mlp_hidden=128,
    ),
}


#: Named configurations of the project's extension (registered likewise): ``corr-small`` (the
#: bundled default weights).
CORR_PRESETS: dict[str, CorrConfig] = {"corr-small": CorrConfig()}


def preset_config(preset: str, host: Any = None) -> Any:
    """The configuration object of a registered preset name (``ValueError`` for an unknown one)."""
    presets = _host(host).presets()
    if preset not in presets:
        raise ValueError(f"unknown model preset {preset!r} (known: {', '.join(presets)})")
    return presets[preset].config


def build_backbone(config: ModelConfig) -> Backbone:
    """The colour encoder's backbone, its output channels and input normalisation."""
    return BACKBONES[config.encoder_backbone](config)


def build_color2embed(config: ModelConfig | dict[str, Any] | None = None) -> Color2Embed:
    """Build the network (random weights, eval mode). ``None`` means the ``paper`` preset."""
    if config is None:
        config = PRESETS["paper"]
    elif isinstance(config, dict):
        config = ModelConfig.from_dict(config)
    backbone = build_backbone(config)
    encoder = ColorEncoder(
        backbone.module,
        backbone.channels,
        hidden=config.encoder_hidden,
        mlp_hidden=config.encoder_mlp_hidden,
        embed_dim=config.embed_dim,
        mean=backbone.mean,
        std=backbone.std,
    )
    unet = ColorUNet(config.unet_widths, config.up_kernels, config.embed_dim, config.skip_stride)
    return Color2Embed(encoder, unet, config.embed_dim).eval()


def build_color2embed_corr(config: CorrConfig | dict[str, Any] | None = None) -> nn.Module:
    """Build the correspondence extension (random weights, eval mode); ``None``: ``corr-small``."""
    from c2e_core.modeling.correspondence import (
        CorrColor2Embed,
        Correspondence,
        CorrUNet,
        build_colour_head,
        key_taps,
    )
    from c2e_core.modeling.efficientnet_lite import EffNetLite0Backbone

    if config is None:
        config = CORR_PRESETS["corr-small"]
    elif isinstance(config, dict):
        config = CorrConfig.from_dict(config)
    features = EffNetLite0Backbone(last_block=10)
    correspondence = Correspondence(
        sum(features.net.out_channels(key_taps(int(config.target_stride)))),
        temperature=float(config.temperature),
    )
    head = build_colour_head(config.embed_dim, config.encoder_hidden, config.encoder_mlp_hidden)
    unet = CorrUNet(config.unet_widths, config.up_kernels, config.embed_dim, config.skip_stride)
    model = CorrColor2Embed(
        features, correspondence, head, unet, config.embed_dim, config.freeze_features,
        int(config.reference_orientations), float(config.upright_margin),
        int(config.target_stride),
    )  # fmt: skip
    return model.eval()


def build_from_config(config: Any, host: Any = None) -> nn.Module:
    """Build the registered architecture a configuration object belongs to (eval mode)."""
    return build_model(architecture_of(config, host), config, host)


def architecture_of(config: Any, host: Any = None) -> str:
    """The registered architecture whose ``config_class`` ``config`` is an instance of."""
    for architecture in _host(host).architectures().values():
        if architecture.config_class is not None and type(config) is architecture.config_class:
            return architecture.name
    raise ValueError(f"no registered architecture takes a {type(config).__name__}")


def init_for_training(model: nn.Module) -> nn.Module:
    """He-normal convolution weights and zero biases, for training from scratch.

    PyTorch's default initialisation shrinks the signal through the colour encoder's ten
    ReLU convolutions so far that, in small variants, the embedding starts (and stays) the same
    for every reference. The last convolution is scaled down so ``tanh`` starts unsaturated.
    Frozen parameters are left alone; modules with a ``zero_init_()`` method are reset by it.
    """
    frozen = {id(p) for p in model.parameters() if not p.requires_grad}
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, nn.Conv2d) and id(module.weight) not in frozen:
                nn.init.kaiming_normal_(module.weight, a=0.2, nonlinearity="leaky_relu")
                if module.bias is not None:
                    nn.init.zeros_(module.bias)
        last = [m for m in model.unet.modules() if isinstance(m, nn.Conv2d)][-1]
        last.weight.mul_(0.1)
        for module in model.modules():  # parts that must start as an identity or a no-op
            if hasattr(module, "zero_init_"):
                module.zero_init_()
    return model


def build_model(architecture: str, config: Any = None, host: Any = None) -> nn.Module:
    """Build any registered architecture by name (built-in or from a plugin), in eval mode.

    ``config``: a dict (the form stored in weights files), an instance of the architecture's
    ``config_class``, or ``None`` for the builder's default."""
    architectures = _host(host).architectures()
    if architecture not in architectures:
        known = ", ".join(sorted(architectures)) or "none"
        raise ValueError(f"unknown architecture {architecture!r} (registered: {known})")
    config = dict(config or {}) if config is None or isinstance(config, Mapping) else config
    return architectures[architecture].builder(config).eval()


def _host(host: Any) -> Any:
    """``host``, or the process-wide plugin host: the registry of architectures and presets."""
    if host is not None:
        return host
    from c2e_core.plugins import get_plugin_host

    return get_plugin_host()




def load_state_strictly(model: nn.Module, state_dict: dict[str, Any]) -> nn.Module:
    """Load ``state_dict`` into ``model``; any missing, unexpected or mis-shaped tensor is an error.

    Non-persistent buffers are not expected. Returns the model in eval mode.
    """
    expected = model.state_dict()
    missing = [k for k in expected if k not in state_dict]
    if missing:
        more = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
        raise StateDictError(f"weights are missing tensor {missing[0]!r}{more}")
    unexpected = [k for k in state_dict if k not in expected]
    if unexpected:
        more = f" (and {len(unexpected) - 1} more)" if len(unexpected) > 1 else ""
        raise StateDictError(f"weights have unexpected tensor {unexpected[0]!r}{more}")
    for key, tensor in expected.items():
        given = state_dict[key]
        if tuple(given.shape) != tuple(tensor.shape):
            raise StateDictError(
                f"tensor {key!r} has shape {list(given.shape)}, "
                f"the model needs {list(tensor.shape)}"
            )
    model.load_state_dict(state_dict, strict=True)
    return model.eval()
