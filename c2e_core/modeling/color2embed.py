"""Color2Embed: colour encoder + colour UNet behind one small interface."""

from __future__ import annotations

import torch
from torch import nn

#: ab predicted by the network are ``tanh`` outputs; multiply by this for Lab units.
AB_SCALE = 110.0
#: Half the range of L: the network sees ``L / L_HALF_RANGE - 1``, L in [0, 100] -> [-1, 1].
L_HALF_RANGE = 50.0


class LabScaling:
    """The network's own input and output scaling (like segment-anything's ``Sam.preprocess``).

    Mixed into the model classes, so callers never write the constants: lightness in [0, 100]
    goes in as ``normalize_lightness(L)``, the network's ab come out as ``ab_from_output(y)``.
    A plain instance is the paper's scaling, for architectures that do not define their own.
    """

    ab_scale: float = AB_SCALE

    def normalize_lightness(self, lum: torch.Tensor) -> torch.Tensor:
        """L in [0, 100] -> the network input ``(L - 50) / 50`` in [-1, 1]."""
        return lum / L_HALF_RANGE - 1

    def lightness_from_normalized(self, l_norm: torch.Tensor) -> torch.Tensor:
        """The inverse of :meth:`normalize_lightness`."""
        return (l_norm + 1) * L_HALF_RANGE

    def ab_from_output(self, output: torch.Tensor) -> torch.Tensor:
        """The network's ab output (``tanh``, in [-1, 1]) -> ab in Lab units."""
        return output * self.ab_scale

    def output_from_ab(self, ab: torch.Tensor) -> torch.Tensor:
        """ab in Lab units -> the network's output scale (training targets, reference colours)."""
        return ab / self.ab_scale


#: The paper's scaling, for modules without their own (:func:`lab_scaling`).
PAPER_SCALING = LabScaling()


def lab_scaling(model: object) -> LabScaling:
    """The scaling ``model`` owns, or the paper's where it has none (a plugin's architecture)."""
    return model if isinstance(model, LabScaling) else PAPER_SCALING


class Color2Embed(LabScaling, nn.Module):
    """The whole network. Interface every registered architecture provides:

    - ``embed(reference_rgb [B,3,H,W] in [0,1]) -> z [B, embed_dim, 1, 1]``
    - ``predict_ab(l_norm [B,1,H,W], z) -> ab / 110 [B,2,H,W]``, H and W multiples of
      ``size_multiple``; ``l_norm`` is :meth:`normalize_lightness` of L (``(L-50)/50``) and the
      output's ab in Lab units :meth:`ab_from_output` of it.
    """

    size_multiple = 16

    def __init__(self, encoder: nn.Module, unet: nn.Module, embed_dim: int = 512):
        super().__init__()
        self.encoder = encoder
        self.unet = unet
        self.embed_dim = embed_dim

    def embed(self, reference_rgb: torch.Tensor) -> torch.Tensor:
        return self.encoder(reference_rgb)

    def predict_ab(self, l_norm: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        return self.unet(l_norm, z)

    def forward(self, l_norm: torch.Tensor, reference_rgb: torch.Tensor) -> torch.Tensor:
        return self.predict_ab(l_norm, self.embed(reference_rgb))
