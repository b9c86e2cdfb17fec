"""StyleGAN2-style modulated convolution: the paper's PFFB, the authors' ``SDFT`` block."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


class ModulatedConv2d(nn.Module):
    """Convolution whose weights are scaled per input channel by the colour embedding.

    ``s = modulation(z)`` gives one factor per input channel (no +1 offset, may be negative);
    ``w = scale * weight * s`` is demodulated per output channel and applied without bias.
    Modulation and demodulation always run in fp32 (the 1e-8 underflows in fp16), also under
    autocast; the convolution itself runs in the input's dtype.
    """

    def __init__(self, channels: int, kernel_size: int, embed_dim: int = 512):
        super().__init__()
        self.channels = channels
        self.kernel_size = kernel_size
        self.scale = 1.0 / math.sqrt(channels * kernel_size**2)
        # Authors' layout: [1, out, in, k, k].
        self.weight = nn.Parameter(torch.randn(1, channels, channels, kernel_size, kernel_size))
        self.modulation = nn.Conv2d(embed_dim, channels, 1, bias=True)

    def _style(self, z: torch.Tensor) -> torch.Tensor:
        """One factor per input channel, ``[B, in, 1, 1]`` (fp32), for embeddings ``z``."""
        mod = self.modulation
        return F.conv2d(z.float(), mod.weight.float(), mod.bias.float())

    def modulated_weight(self, z: torch.Tensor) -> torch.Tensor:
        """Demodulated weights ``[B, out, in, k, k]`` (fp32) for embeddings ``[B, E, 1, 1]``."""
        with torch.autocast(device_type=z.device.type, enabled=False):
            style = self._style(z).view(z.shape[0], 1, self.channels, 1, 1)
            weight = self.scale * self.weight.float() * style
            demod = torch.rsqrt(weight.pow(2).sum([2, 3, 4]) + 1e-8)
            return weight * demod.view(z.shape[0], self.channels, 1, 1, 1)

    def forward(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """``x``: ``[B, C, H, W]``; ``z``: ``[B, E, 1, 1]``, or ``[1, E, 1, 1]`` for all."""
        if z.shape[0] == 1 and torch.onnx.is_in_onnx_export():
            return self._exported_forward(x, z)
        batch, channels, height, width = x.shape
        weight = self.modulated_weight(z)
        dtype = x.dtype if x.is_floating_point() else torch.float32
        if torch.is_autocast_enabled(x.device.type):
            dtype = torch.get_autocast_dtype(x.device.type)
        padding = self.kernel_size // 2
        if weight.shape[0] == 1:  # one reference for the whole batch: an ordinary convolution
            return F.conv2d(x.to(dtype), weight[0].to(dtype), padding=padding)
        if weight.shape[0] != batch:
            raise ValueError(f"{weight.shape[0]} embeddings for a batch of {batch}")
        grouped = weight.reshape(batch * channels, channels, self.kernel_size, self.kernel_size)
        out = F.conv2d(
            x.reshape(1, batch * channels, height, width).to(dtype),
            grouped.to(dtype),
            padding=padding,
            groups=batch,
        )
        return out.view(batch, channels, height, width)

    def _exported_forward(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """The same convolution for one embedding, written for onnxruntime: the input scaled
        per channel by the style, the fixed weights, the output scaled by the demodulation
        (StyleGAN2's unfused form; equal up to float rounding). Fixed weights let onnxruntime
        lay them out once for its blocked convolution: measured, the 5x5 one at 256² ran
        12.7 -> 8.9 ms."""
        style = self._style(z)  # [1, in, 1, 1]
        weight = self.scale * self.weight.float()[0]  # [out, in, k, k]
        demod = torch.rsqrt((weight * style.view(1, self.channels, 1, 1)).pow(2).sum([1, 2, 3])
                            + 1e-8)  # fmt: skip
        out = F.conv2d(x.float() * style, weight, padding=self.kernel_size // 2)
        return out * demod.view(1, self.channels, 1, 1)
