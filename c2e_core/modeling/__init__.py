"""Pure ``nn.Module``s of Color2Embed: no file I/O, no device logic, no configuration parsing."""

from c2e_core.modeling.color2embed import Color2Embed
from c2e_core.modeling.color_encoder import ColorEncoder, VGGBackbone
from c2e_core.modeling.efficientnet_lite import EfficientNetLite0
from c2e_core.modeling.modulated_conv import ModulatedConv2d
from c2e_core.modeling.unet import ColorUNet

__all__ = [
    "Color2Embed",
    "ColorEncoder",
    "ColorUNet",
    "EfficientNetLite0",
    "ModulatedConv2d",
    "VGGBackbone",
]
