"""Resizing for the network and edge-aware upsampling of its ab output."""

from __future__ import annotations

from collections.abc import Callable, Sequence

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
    coefficients = guided_coefficients(ab_low, guide_low, radius, eps)
    size = tuple(guide_high.shape[-2:])
    a, b = F.interpolate(coefficients, size=size, mode="bilinear", align_corners=False).split(2, 1)
    return a * guide_high + b


def guided_coefficients(
    ab_low: torch.Tensor, guide_low: torch.Tensor, radius: int = 2, eps: float = 1e-3
) -> torch.Tensor:
    """The fast guided filter's smoothed local model at low resolution, ``[B, 4, h, w]``: the
    slopes ``a`` (2) and offsets ``b`` (2) of ``ab ≈ a·guide + b``; :func:`apply_guided` uses
    them on any rows of the full-resolution guide."""
    mean_g = _box(guide_low, radius)
    mean_ab = _box(ab_low, radius)
    cov = _box(guide_low * ab_low, radius) - mean_g * mean_ab
    var = _box(guide_low * guide_low, radius) - mean_g * mean_g
    a = cov / (var + eps)
    b = mean_ab - a * mean_g
    return torch.cat((_box(a, radius), _box(b, radius)), dim=1)


def _source_index(out_size: int, in_size: int, start: int, stop: int, device: torch.device):
    """Bilinear (``align_corners=False``) source indices and weights of output positions
    ``start:stop``, as :func:`torch.nn.functional.interpolate` computes them."""
    scale = in_size / out_size
    position = (torch.arange(start, stop, device=device, dtype=torch.float32) + 0.5) * scale - 0.5
    position = position.clamp_min_(0.0)
    low = position.floor().long().clamp_max_(in_size - 1)
    high = (low + 1).clamp_max_(in_size - 1)
    return low, high, (position - low).clamp_(0.0, 1.0)


def upsample_rows(x: torch.Tensor, size: tuple[int, int], start: int, stop: int) -> torch.Tensor:
    """Rows ``start:stop`` of the bilinear (``align_corners=False``) resize of ``x``
    ``[B, C, h, w]`` to ``size``, computing only those rows: a strip of an upsampling that
    would not fit in memory whole. Equal to slicing :func:`resize` up to float rounding."""
    height, width = size
    in_h, in_w = x.shape[-2:]
    top, bottom, wy = _source_index(height, in_h, start, stop, x.device)
    first, last = int(top.min()), int(bottom.max()) + 1
    rows = x[..., first:last, :]
    left, right, wx = _source_index(width, in_w, 0, width, x.device)
    across = torch.lerp(rows[..., left], rows[..., right], wx.to(x.dtype))  # [B, C, r, W]
    upper, lower = across[..., top - first, :], across[..., bottom - first, :]
    return torch.lerp(upper, lower, wy.to(x.dtype)[:, None])


def apply_guided(
    coefficients: torch.Tensor, guide_rows: torch.Tensor, size: tuple[int, int], start: int
) -> torch.Tensor:
    """ab of the rows ``start:start + guide_rows.height`` of a ``size`` image from
    :func:`guided_coefficients`: upsample ``a`` and ``b`` there and apply them to the guide."""
    stop = start + guide_rows.shape[-2]
    a, b = upsample_rows(coefficients, size, start, stop).split(2, dim=1)
    return a * guide_rows + b


def shrink_in_strips(
    rows: Callable[[int, int], torch.Tensor],
    height: int,
    width: int,
    size: tuple[int, int],
    strips: Sequence[tuple[int, int]],
) -> torch.Tensor:
    """Antialiased bilinear shrink of a ``height x width`` image to ``size`` that never holds
    the whole image: ``rows(start, stop)`` gives ``[1, C, stop - start, width]``; each strip is
    shrunk across (rows are independent), then the narrow result down. Equal to
    :func:`resize` of the whole image up to float rounding (the filter is separable)."""
    across = None
    for start, stop in strips:
        part = rows(start, stop)
        if across is None:
            across = part.new_empty((*part.shape[:2], height, size[1]))
        across[..., start:stop, :] = resize(part, (stop - start, size[1]), antialias=True)
    assert across is not None
    return resize(across, size, antialias=True)
