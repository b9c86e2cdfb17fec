"""The colour UNet: grayscale L plus a colour embedding -> ab / 110 (tanh).

Module and parameter names follow the authors' ``colorUNet`` so that their state dict maps 1:1.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from c2e_core.modeling.modulated_conv import ModulatedConv2d


class DoubleConv(nn.Module):
    """[Conv3x3 -> BN -> LReLU(0.1)] x 2."""

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        self.double_conv = nn.Sequential(
            nn.Conv2d(in_channels, out_channels, 3, padding=1),
            nn.BatchNorm2d(out_channels),
            nn.LeakyReLU(0.1, inplace=True),
            nn.Conv2d(out_channels, out_channels, 3, padding=1),
            nn.BatchNorm2d(out_channels),
            nn.LeakyReLU(0.1, inplace=True),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.double_conv(x)


class ResBlock(nn.Module):
    """``y = bottle_conv(x)``; ``(double_conv(y) + y) / sqrt(2)``, no activation after the sum."""

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        self.bottle_conv = nn.Conv2d(in_channels, out_channels, 1)
        self.double_conv = nn.Sequential(
            nn.Conv2d(out_channels, out_channels, 3, padding=1),
            nn.BatchNorm2d(out_channels),
            nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(out_channels, out_channels, 3, padding=1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.bottle_conv(x)
        return (self.double_conv(y) + y) / math.sqrt(2)


class Down(nn.Module):
    """Conv4x4 stride 2 -> LReLU(0.1) -> ResBlock."""

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        self.main = nn.Sequential(
            nn.Conv2d(in_channels, in_channels, 4, stride=2, padding=1),
            nn.LeakyReLU(0.1, inplace=True),
            ResBlock(in_channels, out_channels),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.main(x)


class UpBlock(nn.Module):
    """Upsample the coarse features, join every ``skip_stride``-th skip channel, modulate by z."""

    def __init__(
        self,
        coarse_channels: int,
        skip_channels: int,
        out_channels: int,
        kernel_size: int,
        embed_dim: int = 512,
        skip_stride: int = 4,
    ):
        super().__init__()
        self.skip_stride = skip_stride
        kept_skip = math.ceil(skip_channels / skip_stride)
        self.conv_s = nn.Conv2d(coarse_channels, out_channels, 1)
        self.conv_cat = nn.Sequential(
            nn.Conv2d(coarse_channels + kept_skip, out_channels, 1),
            nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(out_channels, out_channels, 3, padding=1),
            nn.LeakyReLU(0.2, inplace=True),
        )
        self.SDFT = ModulatedConv2d(out_channels, kernel_size, embed_dim)

    def forward(self, coarse: torch.Tensor, skip: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        coarse = F.interpolate(coarse, scale_factor=2, mode="bilinear", align_corners=False)
        shortcut = self.conv_s(coarse)
        x = torch.cat([coarse, skip[:, :: self.skip_stride]], dim=1)
        x = self.SDFT(self.conv_cat(x), z)
        return x + shortcut


class ModulatedDecoder(nn.Module):
    """The paper's decoder: four :class:`UpBlock` s (``up1`` … ``up4``, the authors' names) from
    stride 16 back to full size, each joining a skip and modulated by the embedding ``z``."""

    def _build_decoder(
        self, widths: Sequence[int], up_kernels: Sequence[int], embed_dim: int, skip_stride: int
    ) -> None:
        w0, w1, w2, w3, w4 = widths
        k1, k2, k3, k4 = up_kernels
        self.up1 = UpBlock(w4, w3, w2, k1, embed_dim, skip_stride)
        self.up2 = UpBlock(w2, w2, w1, k2, embed_dim, skip_stride)
        self.up3 = UpBlock(w1, w1, w0, k3, embed_dim, skip_stride)
        self.up4 = UpBlock(w0, w0, w0, k4, embed_dim, skip_stride)

    def _decode(self, skips: Sequence[torch.Tensor], z: torch.Tensor) -> torch.Tensor:
        """``skips``: the encoder's outputs at strides 1, 2, 4, 8 and 16 (coarsest last)."""
        x1, x2, x3, x4, x5 = skips
        x = self.up1(x5, x4, z)
        x = self.up2(x, x3, z)
        x = self.up3(x, x2, z)
        return self.up4(x, x1, z)


class ColorUNet(ModulatedDecoder):
    """``(l_norm [B,1,H,W] in [-1,1], z [B|1,E,1,1]) -> ab/110 [B,2,H,W]``; H, W multiples of 16.

    ``widths`` are the five encoder widths (paper: 64, 128, 256, 512, 512).
    """

    def __init__(
        self,
        widths: Sequence[int] = (64, 128, 256, 512, 512),
        up_kernels: Sequence[int] = (3, 3, 5, 5),
        embed_dim: int = 512,
        skip_stride: int = 4,
    ):
        super().__init__()
        w0, w1, w2, w3, w4 = widths
        self.inc = DoubleConv(1, w0)
        self.down1 = Down(w0, w1)
        self.down2 = Down(w1, w2)
        self.down3 = Down(w2, w3)
        self.down4 = Down(w3, w4)
        self._build_decoder(widths, up_kernels, embed_dim, skip_stride)
        self.outc = nn.Sequential(
            nn.Conv2d(w0, w0, 3, padding=1),
            nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(w0, 2, 3, padding=1),
            nn.Tanh(),
        )

    def forward(self, l_norm: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        x1 = self.inc(l_norm)
        x2 = self.down1(x1)
        x3 = self.down2(x2)
        x4 = self.down3(x3)
        x5 = self.down4(x4)
        return self.outc(self._decode((x1, x2, x3, x4, x5), z))
