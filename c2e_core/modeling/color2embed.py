"""Color2Embed: colour encoder + colour UNet behind one small interface."""

from __future__ import annotations

import torch
from torch import nn

from c2e_core.modeling.lab_constants import AB_SCALE, L_HALF_RANGE, LabScaling

__all__ = ["AB_SCALE", "L_HALF_RANGE", "LabScaling", "Color2Embed", "lab_scaling"]


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
