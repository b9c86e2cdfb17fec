"""Colour management: images with an embedded ICC profile, converted to sRGB and back.

The network works in sRGB. An image whose file embeds an ICC profile is converted to sRGB when
read (:func:`to_srgb`), and results go back to that profile (:func:`from_srgb`) in files that
carry the same profile bytes. Matrix/TRC profiles (Adobe RGB, Display P3, ProPhoto, most camera
and scanner profiles) and gray profiles with a gray TRC are converted here in floating point,
precisely enough for 16-bit and float images: each channel's curve ('curv' gamma or table,
'para'), then one 3x3 matrix through the D50 connection space into linear sRGB, then the sRGB
curve. Other profiles (lookup tables) go through LittleCMS (Pillow's ImageCms) at 8 bits per
channel. The intent is relative colorimetric; values outside sRGB (or outside the profile, on
the way back) are clipped.

Gray profiles only go one way: a colorized gray image is colour, so its output is sRGB.
Whatever cannot be honoured is said once, as a :class:`ProfileWarning`.
"""

from __future__ import annotations

import io
import struct
import warnings
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from c2e_core.files.strips import STRIP_PIXELS, row_strips

__all__ = ["ProfileWarning", "colour_space", "from_srgb", "to_srgb"]

#: The D50 white of the ICC connection space.
_D50 = np.array([0.9642, 1.0, 0.8249])
_BRADFORD = np.array(
    [[0.8951, 0.2664, -0.1614], [-0.7502, 1.7135, 0.0367], [0.0389, -0.0685, 1.0296]]
)
#: Tags that make a CMM use lookup tables instead of the matrix and curves.
_LUT_TAGS = (b"A2B0", b"A2B1", b"A2B2", b"B2A0", b"B2A1", b"B2A2", b"D2B0", b"B2D0")


class ProfileWarning(UserWarning):
    """An embedded ICC profile that is ignored, used one way only, or at reduced precision."""


class _BadProfile(ValueError):
    """A profile (or a tag of it) that cannot be parsed."""


@dataclass(frozen=True)
class _Curve:
    """A tone curve, device value -> linear: ICC's most general parametric form
    ``(a x + b)^g + e`` for ``x >= d``, else ``c x + f``; or a non-decreasing ``table`` sampled
    at even steps and interpolated linearly (``inverse_table``: see :func:`_tabulated`)."""

    g: float = 1.0
    a: float = 1.0
    b: float = 0.0
    c: float = 0.0
    d: float = 0.0
    e: float = 0.0
    f: float = 0.0
    table: np.ndarray | None = None
    inverse_table: tuple[np.ndarray, np.ndarray] | None = None

    def forward(self, x: np.ndarray) -> np.ndarray:
        x = np.clip(x, 0.0, 1.0)
        if self.table is not None:
            grid = np.linspace(0.0, 1.0, self.table.size)
            return np.interp(x, grid, self.table).astype(np.float32)
        power = np.power(np.maximum(self.a * x + self.b, 0.0), self.g) + self.e
        if self.d <= 0.0:
            return power.astype(np.float32)
        return np.where(x >= self.d, power, self.c * x + self.f).astype(np.float32)

    def inverse(self, y: np.ndarray) -> np.ndarray:
        if self.inverse_table is not None:
            values, x = self.inverse_table
            out = np.interp(y, values, x)
            out = np.where(y <= values[0], x[0], np.where(y >= values[-1], x[-1], out))
            return out.astype(np.float32)
        root = np.power(np.maximum(y - self.e, 0.0), 1.0 / self.g)
        power = (root - self.b) / self.a
        if self.d > 0.0:
            knee = (self.a * self.d + self.b) ** self.g + self.e
            linear = (y - self.f) / self.c if self.c > 0.0 else np.full_like(y, self.d)
            power = np.where(y >= knee, power, linear)
        return np.clip(power, 0.0, 1.0).astype(np.float32)


#: The sRGB curve, as LittleCMS's built-in sRGB profile has it.
_SRGB_CURVE = _Curve(g=2.4, a=1 / 1.055, b=0.055 / 1.055, c=1 / 12.92, d=0.04045)


def _colorants(
    primaries: tuple[tuple[float, float], ...], white: tuple[float, float]
) -> np.ndarray:
    """Linear RGB -> D50 XYZ for chromaticities, adapted with Bradford (as ICC profiles are)."""

    def xyz(xy: tuple[float, float]) -> np.ndarray:
        return np.array([xy[0] / xy[1], 1.0, (1.0 - xy[0] - xy[1]) / xy[1]])

    columns = np.stack([xyz(p) for p in primaries], axis=1)
    matrix = columns * np.linalg.solve(columns, xyz(white))[None, :]
    scale = (_BRADFORD @ _D50) / (_BRADFORD @ xyz(white))
    return np.linalg.inv(_BRADFORD) @ np.diag(scale) @ _BRADFORD @ matrix


_SRGB_TO_XYZ = _colorants(((0.64, 0.33), (0.30, 0.60), (0.15, 0.06)), (0.3127, 0.3290))


@dataclass(frozen=True)
class _Profile:
    """What c2e uses of a profile: its colour space, and its curves and matrix to linear sRGB
    when it is a matrix/TRC (or gray TRC) profile; ``curves is None``: lookup tables."""

    data: bytes
    space: str
    curves: tuple[_Curve, ...] | None = None
    matrix: np.ndarray | None = None  # linear device RGB -> linear sRGB
    inverse: np.ndarray | None = None  # linear sRGB -> linear device RGB


# --------------------------------------------------------------------------- parsing


def colour_space(data: bytes) -> str:
    """The colour space an ICC profile describes ("RGB", "GRAY", "CMYK", ...; "" if unknown)."""
    return data[16:20].decode("latin-1").strip() if len(data) >= 128 else ""


def _tags(data: bytes) -> dict[bytes, bytes]:
    if len(data) < 132 or data[36:40] != b"acsp":
        raise _BadProfile("not an ICC profile")
    (count,) = struct.unpack_from(">I", data, 128)
    if 132 + 12 * count > len(data):
        raise _BadProfile("truncated tag table")
    tags = {}
    for index in range(count):
        signature, offset, size = struct.unpack_from(">4sII", data, 132 + 12 * index)
        if offset + size > len(data) or size < 8:
            raise _BadProfile(f"tag {signature.decode('latin-1')!r} lies outside the profile")
        tags[signature] = data[offset : offset + size]
    return tags


def _s15(body: bytes, offset: int, count: int) -> list[float]:
    if len(body) < offset + 4 * count:
        raise _BadProfile("truncated tag")
    return [v / 65536 for v in struct.unpack_from(f">{count}i", body, offset)]


def _curve(body: bytes) -> _Curve:
    kind = body[:4]
    if kind == b"curv":
        (count,) = struct.unpack_from(">I", body, 8)
        if len(body) < 12 + 2 * count:
            raise _BadProfile("truncated 'curv' tag")
        if count == 0:
            return _Curve()
        if count == 1:
            (gamma,) = struct.unpack_from(">H", body, 12)
            if gamma == 0:
                raise _BadProfile("a 'curv' gamma of 0")
            return _Curve(g=gamma / 256)
        return _tabulated(np.frombuffer(body, ">u2", count, 12).astype(np.float64) / 65535)
    if kind == b"para":
        (function,) = struct.unpack_from(">H", body, 8)
        count = {0: 1, 1: 3, 2: 4, 3: 5, 4: 7}.get(function)
        if count is None:
            raise _BadProfile(f"unknown 'para' function {function}")
        p = _s15(body, 12, count) + [0.0] * (7 - count)
        g, a, b, c, d, e, f = p
        if function == 0:
            curve = _Curve(g=g)
        elif function in (1, 2):  # (ax + b)^g (+ c) above -b/a, 0 (or c) below
            e = c if function == 2 else 0.0
            curve = _Curve(g=g, a=a, b=b, c=0.0, d=-b / a if a else 0.0, e=e, f=e)
        else:
            curve = _Curve(g=g, a=a, b=b, c=c, d=d, e=e, f=f)
        if curve.g <= 0 or curve.a <= 0 or curve.c < 0:
            raise _BadProfile("a 'para' curve that does not increase")
        return curve
    raise _BadProfile(f"a curve of type {kind.decode('latin-1')!r}")


def _tabulated(table: np.ndarray) -> _Curve:
    """A table curve. Its inverse interpolates between the ends of the table's flat runs, so
    that every rising segment is inverted exactly; the value of a flat run goes to one of its
    ends (the same colour either way), the lowest value to the first entry, the highest to the
    last."""
    steps = np.diff(table)
    if np.any(steps < 0):
        raise _BadProfile("a decreasing 'curv' table")
    ends = np.r_[True, steps > 0] | np.r_[steps > 0, True]
    grid = np.linspace(0.0, 1.0, table.size)
    return _Curve(table=table, inverse_table=(table[ends], grid[ends]))


def _xyz(body: bytes) -> list[float]:
    if body[:4] != b"XYZ ":
        raise _BadProfile("a colorant that is not an XYZ tag")
    return _s15(body, 8, 3)


@lru_cache(maxsize=16)
def _parse(data: bytes) -> _Profile:
    """Parse ``data``; lookup-table profiles and those without usable curves get ``curves=None``
    (LittleCMS decides about them). Raises :class:`_BadProfile` for a damaged profile."""
    tags = _tags(data)
    space = colour_space(data)
    if any(t in tags for t in _LUT_TAGS) or data[20:24] != b"XYZ ":
        return _Profile(data, space)
    if space == "GRAY" and b"kTRC" in tags:
        return _Profile(data, space, curves=(_curve(tags[b"kTRC"]),))
    names = (b"rXYZ", b"gXYZ", b"bXYZ", b"rTRC", b"gTRC", b"bTRC")
    if space != "RGB" or not all(n in tags for n in names):
        return _Profile(data, space)
    to_xyz = np.array([_xyz(tags[n]) for n in names[:3]]).T
    if abs(np.linalg.det(to_xyz)) < 1e-6:
        raise _BadProfile("its colorants are not independent")
    matrix = np.linalg.solve(_SRGB_TO_XYZ, to_xyz)
    curves = tuple(_curve(tags[n]) for n in names[3:])
    return _Profile(
        data,
        space,
        curves=curves,
        matrix=matrix.astype(np.float32),
        inverse=np.linalg.inv(matrix).astype(np.float32),
    )


# --------------------------------------------------------------------------- LittleCMS


@lru_cache(maxsize=16)
def _littlecms(data: bytes, mode: str, inverse: bool):
    """A LittleCMS transform between ``data`` and sRGB (``inverse``: from sRGB), 8 bits per
    channel, ``mode`` "RGB" or "L" on the profile's side; raises ``ValueError`` if impossible."""
    try:
        from PIL import ImageCms
    except ImportError as exc:  # Pillow built without LittleCMS
        raise ValueError("Pillow has no LittleCMS (ImageCms)") from exc
    try:
        profile = ImageCms.ImageCmsProfile(io.BytesIO(data))
        srgb = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB"))
        ends = ((srgb, "RGB"), (profile, mode)) if inverse else ((profile, mode), (srgb, "RGB"))
        return ImageCms.buildTransform(
            ends[0][0], ends[1][0], ends[0][1], ends[1][1], ImageCms.Intent.RELATIVE_COLORIMETRIC
        )
    except (ImageCms.PyCMSError, OSError, TypeError, ValueError) as exc:
        raise ValueError(str(exc) or type(exc).__name__) from exc


def _apply_littlecms(values: np.ndarray, data: bytes, mode: str, inverse: bool) -> np.ndarray:
    from PIL import Image, ImageCms

    levels = np.floor(np.clip(values, 0.0, 1.0) * np.float32(255) + np.float32(0.5))
    image = Image.fromarray(levels.astype(np.uint8), mode)
    result = ImageCms.applyTransform(image, _littlecms(data, mode, inverse))
    return np.asarray(result, dtype=np.float32) / np.float32(255)


def _description(data: bytes) -> str:
    try:
        from PIL import ImageCms

        text = ImageCms.ImageCmsProfile(io.BytesIO(data)).profile.profile_description
    except Exception:  # only for messages
        return "ICC profile"
    return f"ICC profile '{text.strip()}'" if text and text.strip() else "ICC profile"


# --------------------------------------------------------------------------- conversions


_IGNORED = "it is ignored: the colours are taken as sRGB and the output has no profile"


def _warn(message: str) -> None:
    warnings.warn(message, ProfileWarning, stacklevel=3)


def _through_matrix(
    rgb: np.ndarray, curves: tuple[_Curve, ...], matrix: np.ndarray, out_curves: tuple[_Curve, ...]
) -> np.ndarray:
    """Linearise with ``curves``, apply ``matrix``, clip, encode with ``out_curves`` (one curve
    for all channels, or one each), strip by strip of rows into one output array."""
    out = np.empty(rgb.shape, np.float32)
    row_size = int(np.prod(rgb.shape[1:-1], dtype=np.int64))
    for start, stop in row_strips(rgb.shape[0], row_size, STRIP_PIXELS):
        part = rgb[start:stop]
        linear = np.empty(part.shape, np.float32)
        for channel in range(3):
            curve = curves[channel if len(curves) == 3 else 0]
            linear[..., channel] = curve.forward(part[..., channel])
        linear = np.clip(linear @ matrix.T, 0.0, 1.0)
        for channel in range(3):
            curve = out_curves[channel if len(out_curves) == 3 else 0]
            out[start:stop, ..., channel] = curve.inverse(linear[..., channel])
    return out


def to_srgb(
    rgb: np.ndarray, data: bytes, *, is_gray: bool, bit_depth: int, source: str
) -> tuple[np.ndarray, bytes | None]:
    """Convert an image's values (float32 ``[H, W, 3]`` in [0, 1], gray replicated) from its
    embedded profile ``data`` to sRGB.

    Returns the sRGB values and the profile results go back to (``data``; ``None``: results
    are sRGB, for gray profiles and those that cannot be used back). A profile that cannot be
    used at all leaves the values as they are (taken as sRGB). What is not honoured is said with
    a :class:`ProfileWarning` naming ``source``.
    """
    try:
        profile = _parse(data)
    except (_BadProfile, struct.error) as exc:
        _warn(f"{source}: its ICC profile cannot be used ({exc}); {_IGNORED}")
        return rgb, None
    if profile.space != ("GRAY" if is_gray else "RGB"):
        _warn(
            f"{source}: its ICC profile is for {profile.space or 'unknown'} data, not "
            f"{'gray' if is_gray else 'RGB'}; {_IGNORED}"
        )
        return rgb, None
    if profile.curves is not None:
        if is_gray:
            gray = _SRGB_CURVE.inverse(np.clip(profile.curves[0].forward(rgb[..., 0]), 0, 1))
            return np.repeat(gray[..., None], 3, axis=2), None
        srgb = _through_matrix(rgb, profile.curves, profile.matrix, (_SRGB_CURVE,))
        return srgb, data
    mode = "L" if is_gray else "RGB"
    name = _description(data)
    try:
        srgb = _apply_littlecms(rgb[..., 0] if is_gray else rgb, data, mode, inverse=False)
    except ValueError as exc:
        _warn(f"{source}: its {name} cannot be used ({exc}); {_IGNORED}")
        return rgb, None
    if bit_depth > 8:
        _warn(
            f"{source}: its {name} is not a matrix/TRC one, so c2e converts it with LittleCMS "
            f"at 8 bits per channel: this {bit_depth}-bit image loses precision"
        )
    if is_gray:
        return srgb, None
    try:
        _littlecms(data, mode, inverse=True)
    except ValueError:
        _warn(
            f"{source}: its {name} converts colours to sRGB but not back; the output is sRGB, "
            "without the profile"
        )
        return srgb, None
    return srgb, data


def from_srgb(rgb: np.ndarray, data: bytes) -> np.ndarray:
    """sRGB float ``[H, W, 3]`` -> the RGB space of the profile ``data`` (one :func:`to_srgb`
    returned), clipped to [0, 1]."""
    profile = _parse(data)
    if profile.curves is not None:
        return _through_matrix(rgb, (_SRGB_CURVE,), profile.inverse, profile.curves)
    return _apply_littlecms(rgb, data, "RGB", inverse=True)
