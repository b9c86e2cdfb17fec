"""Resizing for the network and edge-aware upsampling of its ab output."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def resize(x: torch.Tensor, size: tuple[int, int], antialias: bool) -> torch.Tensor:
    """Bilinear resize of ``[B,C,H,W]`` (``align_corners=False``); antialias when shrinking."""
    if tuple(x.shape[-2:]) == tuple(size):
        return x
    return F.interpolate(x, size=size, mode="bilinear", align_corners=False, antialias=antialias)


def _box(x: torch.Tensor, radius: int) -> torch.Tensor:
    """Mean over a (2r+1)² window with edge-normalised borders."""
    return F.avg_pool2d(x, 2 * radius + 1, stride=1, padding=radius, count_include_pad=False)


def guided_upsample(
    ab_low: torch.Tensor,
    guide_low: torch.Tensor,
    guide_high: torch.Tensor,
    radius: int = 2,
    eps: float = 1e-3,
) -> torch.Tensor:
    """Fast guided filter (He & Sun 2015): fit ``ab ≈ a·guide + b`` locally at low resolution,
    upsample ``a`` and ``b`` bilinearly and apply them to the full-resolution guide.

    ``ab_low [B,2,h,w]``; ``guide_low [B,1,h,w]`` and ``guide_high [B,1,H,W]`` are the luminance
    scaled to about [0, 1]. Colour edges then follow the luminance edges of the full image.
    """
    mean_g = _box(guide_low, radius)
    mean_ab = _box(ab_low, radius)
    cov = _box(guide_low * ab_low, radius) - mean_g * mean_ab
    var = _box(guide_low * guide_low, radius) - mean_g * mean_g
    a = cov / (var + eps)
    b = mean_ab - a * mean_g
    a, b = _box(a, radius), _box(b, radius)
    size = tuple(guide_high.shape[-2:])
    a = F.interpolate(a, size=size, mode="bilinear", align_corners=False)
    b = F.interpolate(b, size=size, mode="bilinear", align_corners=False)
    return a * guide_high + b
