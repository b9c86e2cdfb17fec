"""sRGB <-> CIE Lab conversion in torch, matching ``skimage.color.rgb2lab`` / ``lab2rgb``: what
the networks and training compute in. The inference pipeline converts with its numpy twin,
:mod:`c2e_core.inference.colour` (``tests/test_colour.py`` holds them equal), which also has the
gamut fit the outputs use.

Tensors are channel-first, ``[..., 3, H, W]`` (any leading dimensions, any device). The
computation runs in float32 whatever the input dtype, and float32 is returned. The constants
are skimage's: illuminant D65, 2 degree observer, sRGB companding, skimage's RGB->XYZ matrix
and its ``0.008856`` / ``7.787`` CIE Lab thresholds.
"""

from __future__ import annotations

import torch
from torch import Tensor

from c2e_core.modeling.lab_constants import (
    D65_WHITE,
    RGB_FROM_XYZ,
    XYZ_FROM_RGB,
)
from c2e_core.modeling.lab_constants import (
    LAB_EPS as _LAB_EPS,
)
from c2e_core.modeling.lab_constants import (
    LAB_INV_EPS as _LAB_INV_EPS,
)
from c2e_core.modeling.lab_constants import (
    LAB_KAPPA as _LAB_KAPPA,
)
from c2e_core.modeling.lab_constants import (
    LAB_OFFSET as _LAB_OFFSET,
)

__all__ = [
    "XYZ_FROM_RGB",
    "RGB_FROM_XYZ",
    "D65_WHITE",
    "rgb_to_lab",
    "rgb_to_lightness",
    "gray_from_lightness",
    "lab_to_rgb",
    "srgb_to_linear",
    "linear_to_srgb",
    "split_l_ab",
]



def _check(x: Tensor, name: str) -> Tensor:
    if x.dim() < 3 or x.shape[-3] != 3:
        raise ValueError(f"{name} must have shape [..., 3, H, W], got {tuple(x.shape)}")
    return x.to(torch.float32)


def _mix(matrix: tuple[tuple[float, float, float], ...], x: Tensor) -> Tensor:
    """Apply a K x 3 matrix over the channel dimension (-3) of ``x`` (float32): ``[..., K, H, W]``
    (K = 3 for a colour-space change, 1 for a single row such as Y)."""
    m = torch.tensor(matrix, dtype=torch.float32, device=x.device)
    # flatten + broadcasting matmul, no -1 in a reshape: exportable, and fine for 0 pixels
    return torch.matmul(m, x.flatten(-2)).reshape(*x.shape[:-3], len(matrix), *x.shape[-2:])


def _select(x: Tensor, threshold: float, above: Tensor, below: Tensor) -> Tensor:
    """``where(x > threshold, above, below)``, as a float-mask lerp (much faster on CPU)."""
    return torch.lerp(below, above, torch.gt(x, threshold).to(x.dtype))


def _pow(x: Tensor, exponent: float) -> Tensor:
    """``x ** exponent`` for ``x > 0`` via exp/log (several times faster than ``pow`` on CPU)."""
    return torch.exp(torch.log(x) * exponent)


def srgb_to_linear(rgb: Tensor) -> Tensor:
    """The sRGB decoding function (IEC 61966-2-1), float32; the clamp keeps gradients finite."""
    x = rgb.to(torch.float32)
    return _select(x, 0.04045, _pow((x.clamp_min(0.04045) + 0.055) / 1.055, 2.4), x / 12.92)


def _f_forward(t: Tensor) -> Tensor:
    """CIE Lab's companding ``t -> f`` of XYZ / white (skimage's thresholds)."""
    cube_root = _pow(t.clamp_min(_LAB_EPS), 1.0 / 3.0)
    return _select(t, _LAB_EPS, cube_root, _LAB_KAPPA * t + _LAB_OFFSET)


def rgb_to_lab(rgb: Tensor) -> Tensor:
    """Convert sRGB in [0, 1] (``[..., 3, H, W]``) to CIE Lab (L in [0, 100]), float32."""
    x = _check(rgb, "rgb")
    lin = srgb_to_linear(x)
    xyz = _mix(XYZ_FROM_RGB, lin)
    white = torch.tensor(D65_WHITE, dtype=torch.float32, device=x.device).view(3, 1, 1)
    t = xyz / white
    f = _f_forward(t)
    fx, fy, fz = f.unbind(dim=-3)
    lum = 116.0 * fy - 16.0
    a = 500.0 * (fx - fy)
    b = 200.0 * (fy - fz)
    return torch.stack((lum, a, b), dim=-3)


def rgb_to_lightness(rgb: Tensor) -> Tensor:
    """CIE L (``[..., 1, H, W]``, [0, 100]) of sRGB in [0, 1]: ``rgb_to_lab(rgb)[..., :1, :, :]``
    without the a and b work (the pipeline needs only the target's lightness)."""
    x = _check(rgb, "rgb")
    y = _mix(XYZ_FROM_RGB[1:2], srgb_to_linear(x))  # Y / white Y, which is 1
    return 116.0 * _f_forward(y) - 16.0


def _lab_to_linear_rgb(x: Tensor) -> Tensor:
    """Lab (float32, ``[..., 3, H, W]``) to linear-light RGB, unclipped."""
    lum, a, b = x.unbind(dim=-3)
    fy = (lum + 16.0) / 116.0
    fx = a / 500.0 + fy
    fz = (fy - b / 200.0).clamp_min(0.0)
    f = torch.stack((fx, fy, fz), dim=-3)
    t = _f_inverse(f)
    white = torch.tensor(D65_WHITE, dtype=torch.float32, device=x.device).view(3, 1, 1)
    return _mix(RGB_FROM_XYZ, t * white)


def linear_to_srgb(lin: Tensor) -> Tensor:
    """The sRGB encoding function (IEC 61966-2-1) of linear-light values, float32."""
    high = 1.055 * _pow(lin.clamp_min(0.0031308), 1.0 / 2.4) - 0.055
    return _select(lin, 0.0031308, high, lin * 12.92)


def gray_from_lightness(lum: Tensor) -> Tensor:
    """The sRGB gray ``[..., 3, H, W]`` in [0, 1] whose CIE L is ``lum`` (``[..., 1, H, W]``,
    [0, 100]): ``lab_to_rgb`` of ``(L, 0, 0)`` without the a and b work, float32."""
    y = _f_inverse((lum.to(torch.float32) + 16.0) / 116.0).clamp(0.0, 1.0)  # Y / white Y
    return linear_to_srgb(y).expand(*lum.shape[:-3], 3, *lum.shape[-2:])


def lab_to_rgb(lab: Tensor, clip: bool = True) -> Tensor:
    """Convert CIE Lab (``[..., 3, H, W]``) to sRGB, float32.

    Like skimage, negative Z is clamped to 0 (skimage also warns; this does not). With
    ``clip=True`` (skimage's behaviour) the result is clipped to [0, 1]; with ``clip=False``
    out-of-gamut colours keep their values outside [0, 1].
    """
    rgb = linear_to_srgb(_lab_to_linear_rgb(_check(lab, "lab")))
    return rgb.clamp(0.0, 1.0) if clip else rgb


def _f_inverse(f: Tensor) -> Tensor:
    """CIE Lab's inverse companding ``f -> t`` (skimage's thresholds)."""
    return _select(f, _LAB_INV_EPS, f * f * f, (f - _LAB_OFFSET) / _LAB_KAPPA)


def split_l_ab(lab: Tensor) -> tuple[Tensor, Tensor]:
    """Split ``[..., 3, H, W]`` Lab into L ``[..., 1, H, W]`` and ab ``[..., 2, H, W]``."""
    if lab.dim() < 3 or lab.shape[-3] != 3:
        raise ValueError(f"lab must have shape [..., 3, H, W], got {tuple(lab.shape)}")
    return lab[..., :1, :, :], lab[..., 1:, :, :]
