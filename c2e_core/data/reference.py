"""Self-reference synthesis: the authors' noise + thin-plate-spline + flip/rotation recipe.

A training reference is made from the ground truth itself (paper, Sec. 3.2; released code):

1. per-pixel, per-channel noise on the 0-255 scale (uniform in +-5 in the released code, Gaussian
   sigma 5 in the paper), then clamped to [0, 1];
2. a thin-plate-spline (TPS) warp: the 4 image corners are fixed control points and two points
   ``(p, p)`` on the diagonal (``p ~ U(0.3, 0.7)``, normalised coordinates in [0, 1]) are each
   moved along the diagonal to ``(p + d, p + d)`` with ``d ~ U(-0.25, 0.25)``; bicubic resampling
   with black fill, clamped to [0, 1] after the bicubic overshoot;
3. random horizontal and vertical flips (p 0.5 each) and a rotation of U(0, 360) degrees about the
   image centre (nearest, black fill).

Everything is batched torch (any device, no numpy), deterministic given a ``torch.Generator``.
Sampling (:func:`sample_parameters`) is separate from application (:func:`synthesize_references`)
so that exact parameters can be passed in.

Coordinate conventions
----------------------
* Normalised coordinates ``(x, y)`` are in [0, 1] over the image *extent*, ``x`` along the width
  (columns) and ``y`` along the height (rows), origin at the top-left corner. Pixel ``(i, j)``
  (row, column) has its centre at ``((j + 0.5) / W, (i + 0.5) / H)``; this is
  ``F.grid_sample``'s ``align_corners=False`` convention (grid value ``2 * u - 1``), so an identity
  grid samples exactly at pixel centres. On non-square images the TPS is defined in these
  per-axis normalised coordinates (as in the authors' code).
* The TPS moves *content* from ``src`` to ``dst``: the warped image at ``dst[k]`` shows what the
  input had at ``src[k]``. It is applied by backward warping: the spline is fitted from ``dst`` to
  ``src`` and evaluated at every output pixel to give the input position it samples.
* Rotation angles are in radians, positive = counter-clockwise on screen, so an angle of
  ``k * pi / 2`` equals ``torch.rot90(x, k, dims=(-2, -1))`` on a square image.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = [
    "ReferenceRecipe",
    "ReferenceParams",
    "sample_parameters",
    "control_points",
    "tps_grid",
    "rotation_flip_grid",
    "synthesize_references",
    "warp_statistics",
]

NOISE_KINDS = ("uniform", "gaussian", "none")
INTERPOLATIONS = ("nearest", "bilinear", "bicubic")
# The 4 fixed corner control points, normalised (x, y).
_CORNERS = ((0.0, 0.0), (1.0, 0.0), (1.0, 1.0), (0.0, 1.0))
# Ridge added to the TPS system (normalised coordinates; kernel entries are ~0.1-1).
TPS_REGULARIZATION = 1e-6


def _pair(value: Any, name: str) -> tuple[float, float]:
    if isinstance(value, (str, bytes)) or not hasattr(value, "__len__") or len(value) != 2:
        raise ValueError(f"{name} must be a pair (low, high), got {value!r}")
    low, high = value
    for v in (low, high):
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
            raise ValueError(f"{name} must hold two finite numbers, got {value!r}")
    if low > high:
        raise ValueError(f"{name} must have low <= high, got {value!r}")
    return (float(low), float(high))


def _number(value: Any, name: str, low: float | None = None, high: float | None = None) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    if (low is not None and value < low) or (high is not None and value > high):
        raise ValueError(f"{name} must be in [{low}, {high}], got {value!r}")
    return float(value)


def _choice(value: Any, name: str, options: tuple[str, ...]) -> str:
    if value not in options:
        raise ValueError(f"{name} must be one of {', '.join(options)}; got {value!r}")
    return value


@dataclass(frozen=True)
class ReferenceRecipe:
    """Parameters of the self-reference synthesis; defaults are the authors' released code.

    ``noise``: "uniform" (+-``noise_amplitude``), "gaussian" (sigma = ``noise_amplitude``, the
    paper's wording) or "none"; ``noise_amplitude`` is on the 0-255 scale. TPS:
    ``tps_moving_points`` points ``(p, p)`` with ``p ~ U(tps_point_range)`` (normalised [0, 1])
    moved to ``(p + d, p + d)`` with ``d ~ U(tps_shift_range)``, plus the 4 corners as fixed
    control points when ``tps_fixed_corners``. Rotation angles are drawn uniformly in
    ``rotation_degrees``. ``fill`` is the value of pixels sampled from outside the image (0 =
    black).

    ``foreign_p``: the share of references in which one rectangle (``foreign_area`` of the
    image, aspect ratio 1:2 to 2:1) is replaced by the same region of the next photo's reference
    in the batch (0: off, the authors' recipe). It teaches a model that matches reference content
    what to do where the reference holds nothing like the target, as real references do.

    ``reframe_p``: the share of references made from an enlarged part of the ground truth (a
    square of ``reframe_side`` times its sides, at a random place) instead of all of it, before
    the noise and warps. The rest of the target then has no exact counterpart in the reference,
    only similar content at another scale, as with a real exemplar of the same kind of scene.
    """

    noise: str = "uniform"
    noise_amplitude: float = 5.0
    tps_moving_points: int = 2
    tps_point_range: tuple[float, float] = (0.3, 0.7)
    tps_shift_range: tuple[float, float] = (-0.25, 0.25)
    tps_fixed_corners: bool = True
    warp_interpolation: str = "bicubic"
    hflip_p: float = 0.5
    vflip_p: float = 0.5
    rotation_degrees: tuple[float, float] = (0.0, 360.0)
    rotation_interpolation: str = "nearest"
    fill: float = 0.0
    foreign_p: float = 0.0
    foreign_area: tuple[float, float] = (0.2, 0.5)
    reframe_p: float = 0.0
    reframe_side: tuple[float, float] = (0.5, 0.8)

    def __post_init__(self) -> None:
        def put(name: str, value: Any) -> None:
            object.__setattr__(self, name, value)

        put("noise", _choice(self.noise, "noise", NOISE_KINDS))
        put("noise_amplitude", _number(self.noise_amplitude, "noise_amplitude", 0.0, 255.0))
        moving = self.tps_moving_points
        if isinstance(moving, bool) or not isinstance(moving, int) or moving < 0:
            raise ValueError(f"tps_moving_points must be an integer >= 0, got {moving!r}")
        points = _pair(self.tps_point_range, "tps_point_range")
        if points[0] < 0.0 or points[1] > 1.0:
            raise ValueError(f"tps_point_range must lie within [0, 1], got {points}")
        put("tps_point_range", points)
        put("tps_shift_range", _pair(self.tps_shift_range, "tps_shift_range"))
        if not isinstance(self.tps_fixed_corners, bool):
            raise ValueError(
                f"tps_fixed_corners must be true or false, got {self.tps_fixed_corners!r}"
            )
        put(
            "warp_interpolation",
            _choice(self.warp_interpolation, "warp_interpolation", INTERPOLATIONS),
        )
        put("hflip_p", _number(self.hflip_p, "hflip_p", 0.0, 1.0))
        put("vflip_p", _number(self.vflip_p, "vflip_p", 0.0, 1.0))
        put("rotation_degrees", _pair(self.rotation_degrees, "rotation_degrees"))
        put(
            "rotation_interpolation",
            _choice(self.rotation_interpolation, "rotation_interpolation", INTERPOLATIONS),
        )
        put("fill", _number(self.fill, "fill", 0.0, 1.0))
        put("foreign_p", _number(self.foreign_p, "foreign_p", 0.0, 1.0))
        area = _pair(self.foreign_area, "foreign_area")
        if not 0.0 < area[0] <= area[1] <= 1.0:
            raise ValueError(f"foreign_area must lie within (0, 1], got {area}")
        put("foreign_area", area)
        put("reframe_p", _number(self.reframe_p, "reframe_p", 0.0, 1.0))
        side = _pair(self.reframe_side, "reframe_side")
        if not 0.0 < side[0] <= side[1] <= 1.0:
            raise ValueError(f"reframe_side must lie within (0, 1], got {side}")
        put("reframe_side", side)

    @property
    def num_control_points(self) -> int:
        """Control points of the TPS: the fixed corners (if any) and the moving points."""
        return (len(_CORNERS) if self.tps_fixed_corners else 0) + self.tps_moving_points

    def to_dict(self) -> dict[str, Any]:
        """Plain values (pairs as lists), suitable for a TOML recipe."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ReferenceRecipe:
        """Build from a mapping (e.g. a TOML table); missing keys keep the defaults."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(
                f"unknown reference recipe key(s): {', '.join(unknown)}; "
                f"known keys: {', '.join(sorted(known))}"
            )
        return cls(**dict(data))


@dataclass(frozen=True)
class ReferenceParams:
    """Sampled parameters for a batch of ``B`` references (all tensors on one device).

    ``src``/``dst``: TPS control points ``[B, K, 2]`` float32, normalised ``(x, y)``; content at
    ``src[b, k]`` appears at ``dst[b, k]``. ``hflip``/``vflip``: ``[B]`` bool. ``angle``: ``[B]``
    float32 radians (counter-clockwise). ``noise_seeds``: ``[B]`` int64 on the CPU, one seed per
    sample for its noise (so a batch equals its samples one by one), or ``None`` for no noise.
    """

    src: Tensor
    dst: Tensor
    hflip: Tensor
    vflip: Tensor
    angle: Tensor
    noise_seeds: Tensor | None = None

    def __post_init__(self) -> None:
        b = self.src.shape[0]
        if self.src.dim() != 3 or self.src.shape[-1] != 2 or self.dst.shape != self.src.shape:
            raise ValueError(
                f"src and dst must both be [B, K, 2], got {tuple(self.src.shape)} "
                f"and {tuple(self.dst.shape)}"
            )
        for name in ("hflip", "vflip", "angle"):
            if tuple(getattr(self, name).shape) != (b,):
                raise ValueError(f"{name} must be [{b}], got {tuple(getattr(self, name).shape)}")
        if self.noise_seeds is not None and tuple(self.noise_seeds.shape) != (b,):
            raise ValueError(f"noise_seeds must be [{b}], got {tuple(self.noise_seeds.shape)}")

    @property
    def batch(self) -> int:
        """Number of samples ``B``."""
        return self.src.shape[0]

    def to(self, device: torch.device | str) -> ReferenceParams:
        """The same parameters on ``device`` (noise seeds stay on the CPU)."""
        return ReferenceParams(
            src=self.src.to(device),
            dst=self.dst.to(device),
            hflip=self.hflip.to(device),
            vflip=self.vflip.to(device),
            angle=self.angle.to(device),
            noise_seeds=self.noise_seeds,
        )

    def __getitem__(self, index: int | slice | Tensor) -> ReferenceParams:
        """A sub-batch (an integer index keeps the batch dimension)."""
        if isinstance(index, int):
            index = slice(index, index + 1 if index != -1 else None)
        seeds = None if self.noise_seeds is None else self.noise_seeds[index]
        return ReferenceParams(
            self.src[index], self.dst[index], self.hflip[index], self.vflip[index],
            self.angle[index], seeds,
        )

    @classmethod
    def identity(
        cls,
        batch: int,
        recipe: ReferenceRecipe | None = None,
        device: torch.device | str | None = None,
    ) -> ReferenceParams:
        """Parameters that leave the image unchanged: the recipe's control-point layout with
        ``dst == src`` (moving points spread over ``tps_point_range``), no flips, angle 0, no noise.
        """
        recipe = recipe or ReferenceRecipe()
        n = recipe.tps_moving_points
        lo, hi = recipe.tps_point_range
        p = torch.linspace(lo, hi, n) if n > 1 else torch.full((n,), (lo + hi) / 2)
        src = control_points(p.expand(batch, n), recipe.tps_fixed_corners).to(device)
        false = torch.zeros(batch, dtype=torch.bool, device=device)
        return cls(src, src.clone(), false, false.clone(), torch.zeros(batch, device=device))


def control_points(diagonal: Tensor, fixed_corners: bool = True) -> Tensor:
    """``[B, K, 2]`` control points: the 4 corners (if ``fixed_corners``) then ``(t, t)`` for each
    diagonal position ``t`` in ``diagonal [B, N]`` (normalised coordinates)."""
    b = diagonal.shape[0]
    moving = torch.stack((diagonal, diagonal), dim=-1).to(torch.float32)
    if not fixed_corners:
        return moving
    corners = torch.tensor(_CORNERS, dtype=torch.float32, device=diagonal.device)
    return torch.cat((corners.expand(b, -1, -1), moving), dim=1)


def _uniform(shape: tuple[int, ...], bounds: tuple[float, float], gen, device) -> Tensor:
    low, high = bounds
    return low + (high - low) * torch.rand(shape, generator=gen, device=device)


def sample_parameters(
    batch: int,
    recipe: ReferenceRecipe | None = None,
    generator: torch.Generator | None = None,
    device: torch.device | str | None = None,
) -> ReferenceParams:
    """Draw the random parameters of ``batch`` references (on ``device``, default CPU).

    Draws happen on the generator's device (the CPU when ``generator`` is None, using torch's
    global generator) in a fixed order, so the result is deterministic given the generator.
    """
    recipe = recipe or ReferenceRecipe()
    if batch < 0:
        raise ValueError(f"batch must be >= 0, got {batch}")
    gen_device = generator.device if generator is not None else torch.device("cpu")
    n = recipe.tps_moving_points
    p = _uniform((batch, n), recipe.tps_point_range, generator, gen_device)
    d = _uniform((batch, n), recipe.tps_shift_range, generator, gen_device)
    hflip = torch.rand(batch, generator=generator, device=gen_device) < recipe.hflip_p
    vflip = torch.rand(batch, generator=generator, device=gen_device) < recipe.vflip_p
    degrees = _uniform((batch,), recipe.rotation_degrees, generator, gen_device)
    seeds = torch.randint(0, 2**62, (batch,), generator=generator, device=gen_device)
    return ReferenceParams(
        src=control_points(p, recipe.tps_fixed_corners).to(device),
        dst=control_points(p + d, recipe.tps_fixed_corners).to(device),
        hflip=hflip.to(device),
        vflip=vflip.to(device),
        angle=torch.deg2rad(degrees).to(device),
        noise_seeds=None if recipe.noise == "none" else seeds.cpu(),
    )


def _pixel_centres(height: int, width: int, device: torch.device) -> Tensor:
    """``[H, W, 2]`` normalised ``(x, y)`` of the pixel centres, float32."""
    ys = (torch.arange(height, device=device, dtype=torch.float32) + 0.5) / height
    xs = (torch.arange(width, device=device, dtype=torch.float32) + 0.5) / width
    gy, gx = torch.meshgrid(ys, xs, indexing="ij")
    return torch.stack((gx, gy), dim=-1)


def _tps_kernel(r2: Tensor) -> Tensor:
    """TPS radial basis ``U(r) = r^2 log r^2`` of squared distances (``U(0) = 0``)."""
    return r2 * torch.log(r2.clamp_min(1e-30))


def tps_grid(
    src: Tensor,
    dst: Tensor,
    height: int,
    width: int,
    regularization: float = TPS_REGULARIZATION,
) -> Tensor:
    """``[B, H, W, 2]`` ``F.grid_sample`` grid (``align_corners=False``) of the TPS that moves
    content from ``src`` to ``dst`` (``[B, K, 2]``, normalised ``(x, y)`` in [0, 1]).

    Backward warping: the spline ``f`` with ``f(dst[k]) = src[k]`` is fitted, ``f(x) = x + g(x)``
    with ``g`` interpolating ``src - dst`` (kernel ``r^2 log r^2``, affine part ``[1, x, y]``), and
    evaluated at every output pixel centre. The system ``[B, K+3, K+3]`` is solved in float64 with
    a ridge ``regularization`` on both diagonal blocks, which keeps it solvable when the points are
    collinear (then the undetermined affine part of ``g`` is 0). With ``dst == src`` the grid is the
    identity (pixel centres).
    """
    if src.dim() != 3 or src.shape[-1] != 2 or dst.shape != src.shape:
        raise ValueError(
            f"src and dst must both be [B, K, 2], got {tuple(src.shape)} and {tuple(dst.shape)}"
        )
    b, k, _ = src.shape
    device = src.device
    centres = _pixel_centres(height, width, device).reshape(1, height * width, 2)
    if k == 0:
        return (2.0 * centres - 1.0).reshape(1, height, width, 2).expand(b, -1, -1, -1).clone()
    c = dst.to(torch.float64)
    delta = src.to(torch.float64) - c
    ones = torch.ones(b, k, 1, dtype=torch.float64, device=device)
    poly = torch.cat((ones, c), dim=-1)  # [B, K, 3]
    eye_k = torch.eye(k, dtype=torch.float64, device=device)
    eye_3 = torch.eye(3, dtype=torch.float64, device=device)
    kernel = _tps_kernel((c.unsqueeze(2) - c.unsqueeze(1)).square().sum(-1))
    system = torch.cat(
        (
            torch.cat((kernel + regularization * eye_k, poly), -1),
            torch.cat((poly.transpose(1, 2), -regularization * eye_3.expand(b, 3, 3)), -1),
        ),
        dim=1,
    )
    rhs = torch.cat((delta, torch.zeros(b, 3, 2, dtype=torch.float64, device=device)), dim=1)
    coef = torch.linalg.solve(system, rhs).to(torch.float32)  # [B, K+3, 2]
    weights, affine = coef[:, :k], coef[:, k:]
    ctrl = dst.to(torch.float32)
    r2 = (centres.unsqueeze(2) - ctrl.unsqueeze(1)).square().sum(-1)  # [B, HW, K]
    shift = torch.bmm(_tps_kernel(r2), weights)
    shift = shift + affine[:, :1] + torch.matmul(centres, affine[:, 1:])
    return (2.0 * (centres + shift) - 1.0).reshape(b, height, width, 2)


def rotation_flip_grid(
    angle: Tensor, hflip: Tensor, vflip: Tensor, height: int, width: int
) -> Tensor:
    """``[B, H, W, 2]`` grid (``align_corners=False``) for "flip, then rotate by ``angle``".

    Flips mirror the width (``hflip``) or height (``vflip``); the rotation is about the image
    centre, in pixel units (no stretching on non-square images), counter-clockwise for positive
    angles (radians). Output pixel ``q`` (centred pixel coordinates) samples the input at
    ``F R^-1 q``.
    """
    device = angle.device
    ys = torch.arange(height, device=device, dtype=torch.float32) + 0.5 - height / 2
    xs = torch.arange(width, device=device, dtype=torch.float32) + 0.5 - width / 2
    y, x = torch.meshgrid(ys, xs, indexing="ij")
    cos = torch.cos(angle.to(torch.float64)).to(torch.float32).view(-1, 1, 1)
    sin = torch.sin(angle.to(torch.float64)).to(torch.float32).view(-1, 1, 1)
    x_in = cos * x - sin * y
    y_in = sin * x + cos * y
    x_in = torch.where(hflip.view(-1, 1, 1), -x_in, x_in)
    y_in = torch.where(vflip.view(-1, 1, 1), -y_in, y_in)
    return torch.stack((2.0 * x_in / width, 2.0 * y_in / height), dim=-1)


def _sample(image: Tensor, grid: Tensor, mode: str, fill: float) -> Tensor:
    """``grid_sample`` with constant ``fill`` outside the image (exact for every mode)."""
    if fill == 0.0:
        return F.grid_sample(image, grid, mode=mode, padding_mode="zeros", align_corners=False)
    out = F.grid_sample(image - fill, grid, mode=mode, padding_mode="zeros", align_corners=False)
    return out + fill


def _add_noise(rgb: Tensor, recipe: ReferenceRecipe, seeds: Tensor | None) -> Tensor:
    """Per-pixel, per-channel noise (0-255 scale, one generator per sample), clamped to [0, 1]."""
    if seeds is None or recipe.noise == "none" or recipe.noise_amplitude == 0.0:
        return rgb
    scale = recipe.noise_amplitude / 255.0
    noise = torch.empty_like(rgb)
    for i, seed in enumerate(seeds.tolist()):
        gen = torch.Generator(device=rgb.device).manual_seed(int(seed))
        if recipe.noise == "uniform":
            noise[i].uniform_(-scale, scale, generator=gen)
        else:
            noise[i].normal_(0.0, scale, generator=gen)
    return (rgb + noise).clamp(0.0, 1.0)


def synthesize_references(
    rgb: Tensor,
    recipe: ReferenceRecipe | None = None,
    generator: torch.Generator | None = None,
    params: ReferenceParams | None = None,
) -> Tensor:
    """Synthesise a reference from each ground truth ``rgb [B, 3, H, W]`` (float, in [0, 1]).

    Noise, then the TPS warp (``recipe.warp_interpolation``, fill outside, clamped to [0, 1]),
    then flips, then rotation (``recipe.rotation_interpolation``, fill outside). ``params``
    defaults to :func:`sample_parameters` with ``generator`` on ``rgb``'s device. The noise kind
    and amplitude come from ``recipe``; ``params.noise_seeds`` (``None`` = no noise) fix its
    values. Returns ``[B, 3, H, W]`` in ``rgb``'s dtype and device.
    """
    if rgb.dim() != 4 or rgb.shape[1] != 3:
        raise ValueError(f"rgb must have shape [B, 3, H, W], got {tuple(rgb.shape)}")
    if not rgb.is_floating_point():
        raise ValueError(f"rgb must be a float tensor in [0, 1], got {rgb.dtype}")
    recipe = recipe or ReferenceRecipe()
    b, _, height, width = rgb.shape
    if params is None:
        params = sample_parameters(b, recipe, generator, rgb.device)
    elif params.batch != b:
        raise ValueError(f"params are for a batch of {params.batch}, rgb has {b}")
    params = params.to(rgb.device)
    x = _add_noise(rgb, recipe, params.noise_seeds)
    grid = tps_grid(params.src, params.dst, height, width).to(x.dtype)
    x = _sample(x, grid, recipe.warp_interpolation, recipe.fill).clamp_(0.0, 1.0)
    grid = rotation_flip_grid(params.angle, params.hflip, params.vflip, height, width)
    return _sample(x, grid.to(x.dtype), recipe.rotation_interpolation, recipe.fill)


def reframe_references(
    rgb: Tensor, recipe: ReferenceRecipe, generator: torch.Generator | None = None
) -> Tensor:
    """With probability ``recipe.reframe_p`` per image, an enlarged square part of it: sides
    ``recipe.reframe_side`` times the image's, at a uniform random place, resampled bilinearly
    to the full size. The others are returned unchanged; ``reframe_p`` 0 returns ``rgb`` itself
    (and draws nothing from ``generator``)."""
    if recipe.reframe_p <= 0:
        return rgb
    shape, device = (rgb.shape[0],), rgb.device
    chosen = _uniform(shape, (0.0, 1.0), generator, device) < recipe.reframe_p
    side = _uniform(shape, recipe.reframe_side, generator, device)
    # the window's centre, normalised to [-1, 1], keeps the window inside the image
    centre_x, centre_y = (_uniform(shape, (-1.0, 1.0), generator, device) * (1.0 - side)
                          for _ in range(2))  # fmt: skip
    b = shape[0]
    theta = torch.zeros(b, 2, 3, device=device, dtype=rgb.dtype)
    theta[:, 0, 0], theta[:, 1, 1] = side, side
    theta[:, 0, 2], theta[:, 1, 2] = centre_x, centre_y
    grid = F.affine_grid(theta, list(rgb.shape), align_corners=False)
    window = F.grid_sample(rgb, grid, mode="bilinear", padding_mode="border", align_corners=False)
    return torch.where(chosen.view(b, 1, 1, 1), window, rgb)


def paste_foreign_regions(
    references: Tensor, recipe: ReferenceRecipe, generator: torch.Generator | None = None
) -> Tensor:
    """With probability ``recipe.foreign_p`` per reference, replace one random rectangle of
    ``recipe.foreign_area`` of it by the same region of the next reference in the batch (a
    different photo). Returns a new tensor; a batch of one, or ``foreign_p`` 0, is returned as is.
    """
    b, _, height, width = references.shape
    if recipe.foreign_p <= 0 or b < 2:
        return references
    device = references.device

    def uniform(low: float, high: float) -> Tensor:
        return torch.rand(b, generator=generator, device=device) * (high - low) + low

    chosen = torch.rand(b, generator=generator, device=device) < recipe.foreign_p
    area = uniform(*recipe.foreign_area)
    aspect = torch.exp(uniform(-math.log(2.0), math.log(2.0)))
    rect_h = (area * aspect).sqrt().clamp(max=1.0) * height
    rect_w = (area / aspect).sqrt().clamp(max=1.0) * width
    top = uniform(0.0, 1.0) * (height - rect_h)
    left = uniform(0.0, 1.0) * (width - rect_w)
    rows = torch.arange(height, device=device).view(1, height, 1)
    cols = torch.arange(width, device=device).view(1, 1, width)
    inside = (
        (rows >= top.view(b, 1, 1)) & (rows < (top + rect_h).view(b, 1, 1))
        & (cols >= left.view(b, 1, 1)) & (cols < (left + rect_w).view(b, 1, 1))
    )  # fmt: skip
    mask = (inside & chosen.view(b, 1, 1)).unsqueeze(1)
    return torch.where(mask, references.roll(1, dims=0), references)


def warp_statistics(
    recipe: ReferenceRecipe | None = None,
    size: int = 256,
    samples: int = 512,
    generator: torch.Generator | None = None,
    chunk: int = 32,
) -> dict[str, Any]:
    """Measure the recipe's TPS warp on ``size x size`` images over ``samples`` draws.

    Per sample: ``displacement`` is the largest displacement of the TPS warp field in pixels
    (max over output pixels of ``|f(x) - x|``, from the sampling grid, not of the control
    points); ``black`` is the fraction of output pixels the TPS warp alone fills with black, i.e.
    whose sampling position lies outside the image extent. (Sampling an all-ones image bilinearly
    with zero padding and counting values below 0.5 gives the same count, plus positions inside
    the extent within half a pixel of a corner.) Returns those per-sample tensors
    and their median, 90th percentile and maximum (``displacement_median`` etc.).
    """
    recipe = recipe or ReferenceRecipe()
    disp, black = [], []
    identity = 2.0 * _pixel_centres(size, size, torch.device("cpu")) - 1.0
    for start in range(0, samples, chunk):
        params = sample_parameters(min(chunk, samples - start), recipe, generator)
        grid = tps_grid(params.src, params.dst, size, size)
        offset = (grid - identity) * (size / 2.0)  # normalised [-1, 1] units -> pixels
        disp.append(offset.norm(dim=-1).flatten(1).amax(dim=1))
        outside = (grid.abs() > 1.0).any(dim=-1)
        black.append(outside.flatten(1).float().mean(dim=1))
    stats: dict[str, Any] = {"displacement": torch.cat(disp), "black": torch.cat(black)}
    for name in ("displacement", "black"):
        values = stats[name]
        stats[f"{name}_median"] = values.median().item()
        stats[f"{name}_p90"] = torch.quantile(values, 0.9).item()
        stats[f"{name}_max"] = values.max().item()
    return stats
