"""Built-in pre- and post-processing steps (registered through ``c2e_register_processors``).

Pre steps change what the network *sees* (``rgb [B,3,H,W]`` in [0,1], a float32 numpy array);
the result is always recombined with the target's original L. Post steps edit the
full-resolution Lab result (``[1,3,rows,W]`` float32 arrays, strip by strip).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np


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
    rgb: np.ndarray, role: str, low: float = 0.005, high: float = 0.995
) -> np.ndarray:
    """Stretch each image's intensity between two quantiles (helps faded scans); targets only.

    ``low`` and ``high``: the quantiles, ``0 <= low < high <= 1``."""
    low, high = _number(low, "low", 0.0, 1.0), _number(high, "high", 0.0, 1.0)
    if low >= high:
        raise ValueError(f"low must be below high, not {low:g} and {high:g}")
    if role != "target":
        return rgb
    flat = rgb.reshape(rgb.shape[0], -1)
    sample = flat[:, :: max(1, flat.shape[1] // 65536)]
    lo = np.quantile(sample, low, axis=1).astype(np.float32).reshape(-1, 1, 1, 1)
    hi = np.quantile(sample, high, axis=1).astype(np.float32).reshape(-1, 1, 1, 1)
    return np.clip((rgb - lo) / np.maximum(hi - lo, np.float32(1e-3)), 0, 1)


def saturation(lab: np.ndarray, target_lab: np.ndarray, factor: float = 1.0) -> np.ndarray:
    """Scale chroma (ab) by ``factor`` (a finite number)."""
    out = lab.copy()
    out[:, 1:] = lab[:, 1:] * np.float32(_number(factor, "factor"))
    return out
