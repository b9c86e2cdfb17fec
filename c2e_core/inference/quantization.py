"""int8 inference on the CPU.

The convolution stacks whose weights never change — the colour encoder's backbone and the
UNet's contracting path (``inc``, ``down1``…``down4``) — become int8 modules with float inputs
and outputs (PyTorch FX post-training static quantization), calibrated on a few photos that
ship with scikit-image. Everything that depends on the colour embedding (``feature2vector``,
the modulated decoder) stays fp32. Speed and the colour difference this causes are measured
in ``benchmarks/bench_inference.py`` (see BENCHMARKS.md).
"""

from __future__ import annotations

import copy
import warnings
from collections.abc import Sequence

import torch
from torch import nn

from c2e_core.errors import QuantizationError
from c2e_core.modeling.colour import rgb_to_lab

#: Sub-modules quantized, by attribute path; each takes and returns float tensors.
STATIC_PARTS = (
    "encoder.backbone",
    "unet.inc",
    "unet.down1",
    "unet.down2",
    "unet.down3",
    "unet.down4",
)
#: scikit-image's bundled photos (no download needed) used to calibrate activation ranges.
CALIBRATION_PHOTOS = ("astronaut", "coffee", "chelsea", "rocket")


def quantized_engine() -> str:
    """The best quantized-kernel backend of this CPU (x86/fbgemm, else qnnpack on ARM)."""
    engines = torch.backends.quantized.supported_engines
    for engine in ("x86", "fbgemm", "qnnpack"):
        if engine in engines:
            return engine
    raise QuantizationError("this PyTorch build has no quantized CPU kernels; use fp32")


def calibration_batches(size: int = 128) -> list[torch.Tensor]:
    """Calibration references: ``[1,3,size,size]`` RGB in [0, 1] from skimage's photos."""
    import numpy as np
    import skimage.data

    from c2e_core.inference.colour import channels_first
    from c2e_core.inference.upsampling import resize

    batches = []
    for name in CALIBRATION_PHOTOS:
        rgb = np.asarray(getattr(skimage.data, name)(), dtype=np.float32) / 255.0
        planar = channels_first(rgb)[None]
        batches.append(torch.from_numpy(resize(planar, (size, size), antialias=True)))
    return batches


def _get(module: nn.Module, path: str) -> nn.Module:
    for name in path.split("."):
        module = getattr(module, name)
    return module


def _set(module: nn.Module, path: str, value: nn.Module) -> None:
    parent_path, _, name = path.rpartition(".")
    setattr(_get(module, parent_path) if parent_path else module, name, value)


def quantize_static_parts(
    model: nn.Module, calibration: Sequence[torch.Tensor] | None = None
) -> nn.Module:
    """A copy of ``model`` (a :class:`~c2e_core.modeling.Color2Embed`, on the CPU) whose static
    convolution stacks run in int8. ``calibration``: reference-like RGB batches in [0, 1]."""
    from torch.ao.quantization import (
        MinMaxObserver,
        QConfig,
        QConfigMapping,
        default_per_channel_weight_observer,
        quantize_fx,
    )

    try:
        for path in STATIC_PARTS:
            _get(model, path)
    except AttributeError:
        raise QuantizationError(
            f"int8 is only available for the Color2Embed architecture, not {type(model).__name__}"
        ) from None
    engine = quantized_engine()
    torch.backends.quantized.engine = engine
    quantized = copy.deepcopy(model).cpu().eval()
    for module in quantized.modules():  # quantized activations have no in-place variant
        if isinstance(module, (nn.ReLU, nn.LeakyReLU)):
            module.inplace = False
    calibration = list(calibration) if calibration is not None else calibration_batches()
    # Min/max activation ranges: as accurate as histograms here, and calibration is 2x faster.
    qconfig = QConfigMapping().set_global(
        QConfig(
            activation=MinMaxObserver.with_args(reduce_range=engine != "qnnpack"),
            weight=default_per_channel_weight_observer,
        )
    )
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # torch.ao's deprecation notices
        example_inputs = {"encoder.backbone": calibration[0]}
        x = calibration[0].mean(dim=1, keepdim=True)
        for path in STATIC_PARTS[1:]:  # the UNet's stages feed each other
            example_inputs[path] = x
            x = _get(quantized, path)(x)
        prepared = {}
        for path in STATIC_PARTS:
            part = quantize_fx.prepare_fx(_get(quantized, path), qconfig, (example_inputs[path],))
            prepared[path] = part
            _set(quantized, path, part)
        for rgb in calibration:  # observe activations on real photos (the static parts only)
            quantized.embed(rgb)
            x = quantized.normalize_lightness(rgb_to_lab(rgb)[:, :1])  # the UNet's input
            for path in STATIC_PARTS[1:]:
                x = prepared[path](x)
        for path, part in prepared.items():
            _set(quantized, path, quantize_fx.convert_fx(part))
    for parameter in quantized.parameters():
        parameter.requires_grad_(False)
    return quantized
