"""sRGB <-> CIE Lab conversion in torch, matching ``skimage.color.rgb2lab`` / ``lab2rgb``.

Tensors are channel-first, ``[..., 3, H, W]`` (any leading dimensions, any device). The
computation runs in float32 whatever the input dtype, and float32 is returned. The constants
are skimage's: illuminant D65, 2 degree observer, sRGB companding, skimage's RGB->XYZ matrix
and its ``0.008856`` / ``7.787`` CIE Lab thresholds.
"""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = [
    "XYZ_FROM_RGB",
    "RGB_FROM_XYZ",
    "D65_WHITE",
    "rgb_to_lab",
    "rgb_to_lightness",
    "gray_from_lightness",
    "lab_to_rgb",
    "lab_to_rgb_in_gamut",
    "srgb_to_linear",
    "linear_to_srgb",
    "split_l_ab",
]

# skimage.color.colorconv.xyz_from_rgb (sRGB specification).
XYZ_FROM_RGB: tuple[tuple[float, float, float], ...] = (
    (0.412453, 0.357580, 0.180423),
    (0.212671, 0.715160, 0.072169),
    (0.019334, 0.119193, 0.950227),
)
# numpy.linalg.inv(XYZ_FROM_RGB) in float64, as skimage computes ``rgb_from_xyz``.
RGB_FROM_XYZ: tuple[tuple[float, float, float], ...] = (
    (3.2404813432005266, -1.5371515162713183, -0.4985363261688878),
    (-0.9692549499965682, 1.8759900014898907, 0.04155592655829284),
    (0.055646639135177166, -0.20404133836651123, 1.0573110696453443),
)
# skimage's xyz_tristimulus_values(illuminant="D65", observer="2").
D65_WHITE: tuple[float, float, float] = (0.95047, 1.0, 1.08883)

_LAB_EPS = 0.008856  # skimage's threshold on XYZ / white (forward)
_LAB_KAPPA = 7.787
_LAB_INV_EPS = 0.2068966  # skimage's threshold on f(t) (inverse)
_LAB_OFFSET = 16.0 / 116.0


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


def _largest_chroma_in_gamut(lab: Tensor, steps: int, tolerance: float) -> Tensor:
    """For Lab pixels ``[3, N]``, the largest factor ``s`` in [0, 1] (within ``2**-steps``) for
    which ``(L, s a, s b)`` is inside linear sRGB's cube, by bisection.

    L's contribution is computed once; each step only redoes the X and Z terms. All pixels'
    brackets halve together, so only the feasible end is kept: it rises by the current
    half-width where the midpoint fits.
    """
    lum, a, b = lab
    fy = (lum + 16.0) / 116.0
    matrix = torch.tensor(RGB_FROM_XYZ, dtype=torch.float32, device=lab.device)
    matrix = matrix * torch.tensor(D65_WHITE, dtype=torch.float32, device=lab.device)
    # centre the cube on 0: inside means |lin - 0.5| <= 0.5 + tolerance for every channel
    fixed = matrix[:, 1:2] * _f_inverse(fy)[None] - 0.5  # [3, N], the Y term
    da, db = a / 500.0, b / 200.0
    low = torch.zeros_like(lum)
    for step in range(1, steps + 1):
        half = 0.5**step
        mid = low + half
        tx = _f_inverse(torch.addcmul(fy, mid, da))
        tz = _f_inverse(torch.addcmul(fy, mid, db, value=-1.0).clamp_min_(0.0))
        lin = torch.addcmul(fixed, matrix[:, 0:1], tx[None])
        lin.addcmul_(matrix[:, 2:3], tz[None])
        fits = lin.abs_().amax(dim=0) <= 0.5 + tolerance
        low.add_(fits, alpha=half)
    return low


def lab_to_rgb_in_gamut(lab: Tensor, steps: int = 8, tolerance: float = 1e-6) -> Tensor:
    """Lab to sRGB keeping L: out-of-gamut pixels lose chroma (ab scaled towards 0, hue kept)
    instead of being clipped per channel, which would change their lightness.

    The largest in-gamut chroma factor is found by bisection on the offending pixels only,
    testing linear RGB (the sRGB curve maps [0, 1] onto itself, so the test is the same).
    8 steps leave at most 1/256 of the chroma on the table (under 0.5 ab units, below 8-bit
    quantisation); the result is always inside the gamut.
    """
    x = _check(lab, "lab")
    lin = _lab_to_linear_rgb(x)
    channels_first = lin.movedim(-3, 0)
    lin_flat = channels_first.reshape(3, -1)  # [3, P]: a view for a single image
    outside = ((lin_flat - 0.5).abs_().amax(dim=0) > 0.5 + tolerance).nonzero().squeeze(1)
    if outside.numel():
        lab_out = x.movedim(-3, 0).reshape(3, -1).index_select(1, outside)  # [3, N]
        lab_out[1:] *= _largest_chroma_in_gamut(lab_out, steps, tolerance)
        lin_flat.index_copy_(1, outside, _lab_to_linear_rgb(lab_out[:, :, None])[:, :, 0])
        lin = lin_flat.reshape(channels_first.shape).movedim(0, -3)
    return linear_to_srgb(lin.clamp_(0.0, 1.0))


def split_l_ab(lab: Tensor) -> tuple[Tensor, Tensor]:
    """Split ``[..., 3, H, W]`` Lab into L ``[..., 1, H, W]`` and ab ``[..., 2, H, W]``."""
    if lab.dim() < 3 or lab.shape[-3] != 3:
        raise ValueError(f"lab must have shape [..., 3, H, W], got {tuple(lab.shape)}")
    return lab[..., :1, :, :], lab[..., 1:, :, :]
