"""Color2Embed: colour encoder + colour UNet behind one small interface."""

from __future__ import annotations

import torch
from torch import nn

#: ab predicted by the network are ``tanh`` outputs; multiply by this for Lab units.
AB_SCALE = 110.0


class Color2Embed(nn.Module):
    """The whole network. Interface every registered architecture provides:

    - ``embed(reference_rgb [B,3,H,W] in [0,1]) -> z [B, embed_dim, 1, 1]``
    - ``predict_ab(l_norm [B,1,H,W] = (L-50)/50, z) -> ab / 110 [B,2,H,W]``, H and W multiples
      of ``size_multiple``.
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
