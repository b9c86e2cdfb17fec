"""Built-in pre- and post-processing steps (registered through ``c2e_register_processors``).

Pre steps change what the network *sees* (``rgb [B,3,H,W]`` in [0,1]); the result is always
recombined with the target's original L. Post steps edit the full-resolution Lab result.
"""

from __future__ import annotations

import math
from typing import Any

import torch


def _number(value: Any, name: str, low: float = -math.inf, high: float = math.inf) -> float:
    """An option as a finite float from ``low`` to ``high``; ``ValueError`` otherwise (a
    step's ``ValueError`` is the user's option error, never a bug)."""
    try:
        number = float(value)
    except (TypeError, ValueError, OverflowError):
        number = math.nan
    if not (math.isfinite(number) and low <= number <= high):
        limits = f" from {low:g} to {high:g}" if math.isfinite(low) else ""
        raise ValueError(f"{name} must be a finite number{limits}, not {value!r:.40}")
    return number


def auto_contrast(
    rgb: torch.Tensor, role: str, low: float = 0.005, high: float = 0.995
) -> torch.Tensor:
    """Stretch each image's intensity between two quantiles (helps faded scans); targets only.

    ``low`` and ``high``: the quantiles, ``0 <= low < high <= 1``."""
    low, high = _number(low, "low", 0.0, 1.0), _number(high, "high", 0.0, 1.0)
    if low >= high:
        raise ValueError(f"low must be below high, not {low:g} and {high:g}")
    if role != "target":
        return rgb
    flat = rgb.flatten(1)
    sample = flat[:, :: max(1, flat.shape[1] // 65536)]
    lo = torch.quantile(sample, low, dim=1).view(-1, 1, 1, 1)
    hi = torch.quantile(sample, high, dim=1).view(-1, 1, 1, 1)
    return ((rgb - lo) / (hi - lo).clamp_min(1e-3)).clamp(0, 1)


def saturation(lab: torch.Tensor, target_lab: torch.Tensor, factor: float = 1.0) -> torch.Tensor:
    """Scale chroma (ab) by ``factor`` (a finite number)."""
    out = lab.clone()
    out[:, 1:] = lab[:, 1:] * _number(factor, "factor")
    return out
