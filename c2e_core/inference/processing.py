"""Built-in pre- and post-processing steps (registered through ``c2e_register_processors``).

Pre steps change what the network *sees* (``rgb [B,3,H,W]`` in [0,1]); the result is always
recombined with the target's original L. Post steps edit the full-resolution Lab result.
"""

from __future__ import annotations

import torch


def auto_contrast(
    rgb: torch.Tensor, role: str, low: float = 0.005, high: float = 0.995
) -> torch.Tensor:
    """Stretch each image's intensity between two quantiles (helps faded scans); targets only."""
    if role != "target":
        return rgb
    flat = rgb.flatten(1)
    sample = flat[:, :: max(1, flat.shape[1] // 65536)]
    lo = torch.quantile(sample, low, dim=1).view(-1, 1, 1, 1)
    hi = torch.quantile(sample, high, dim=1).view(-1, 1, 1, 1)
    return ((rgb - lo) / (hi - lo).clamp_min(1e-3)).clamp(0, 1)


def saturation(lab: torch.Tensor, target_lab: torch.Tensor, factor: float = 1.0) -> torch.Tensor:
    """Scale chroma (ab) by ``factor``."""
    out = lab.clone()
    out[:, 1:] = lab[:, 1:] * float(factor)
    return out
