"""Krita pixel layouts and byte-level helpers (standard library only, no Krita, no Qt).

Krita hands out pixels as raw bytes: RGBA U8 and U16 are stored B, G, R, A; F16 and F32 are
R, G, B, A; samples are little-endian. These helpers map that onto the worker protocol's
image layouts and apply a selection to the alpha channel without numpy.
"""

from __future__ import annotations

import re
import struct
from typing import NamedTuple

#: Krita colour depth -> (protocol channels, protocol dtype) for RGBA documents.
RGBA_LAYOUTS = {
    "U8": ("BGRA", "u8"),
    "U16": ("BGRA", "u16"),
    "F16": ("RGBA", "f16"),
    "F32": ("RGBA", "f32"),
}
SAMPLE_SIZES = {"u8": 1, "u16": 2, "f16": 2, "f32": 4}
#: Profiles with sRGB primaries and the sRGB transfer curve: sent as they are.
SRGB_PROFILES = frozenset(
    ["sRGB built-in", "Artifex Software sRGB ICC Profile", "sRGB IEC61966-2.1"]
)
#: Profiles with sRGB primaries and a linear (gamma 1.0) curve: sent with ``linear: true``.
LINEAR_SRGB_PROFILES = frozenset(
    [
        "scRGB (linear)",
        "krita-2.5, lcms sRGB built-in with linear gamma TRC",
        "Artifex Software scRGB ICCProfile",
    ]
)
#: The profiles the plugin converts other RGB profiles to (and back) through Krita.
SRGB_PROFILE = "sRGB-elle-V2-srgbtrc.icc"
LINEAR_SRGB_PROFILE = "sRGB-elle-V2-g10.icc"

_PARTIAL = re.compile(b"[\x01-\xfe]+")
_ZERO = re.compile(b"\x00+")


class Rect(NamedTuple):
    """A pixel rectangle in document coordinates."""

    x: int
    y: int
    width: int
    height: int

    @property
    def empty(self) -> bool:
        return self.width <= 0 or self.height <= 0

    def intersected(self, other: Rect) -> Rect:
        """The overlap of two rectangles (empty when they do not overlap)."""
        left, top = max(self.x, other.x), max(self.y, other.y)
        right = min(self.x + self.width, other.x + other.width)
        bottom = min(self.y + self.height, other.y + other.height)
        return Rect(left, top, max(0, right - left), max(0, bottom - top))


def profile_encoding(profile: str) -> str | None:
    """``"srgb"`` or ``"linear"`` for profiles with sRGB primaries, else None (convert first)."""
    if profile in SRGB_PROFILES:
        return "srgb"
    if profile in LINEAR_SRGB_PROFILES:
        return "linear"
    if profile.startswith("sRGB-elle-"):  # sRGB-elle-V2-srgbtrc.icc, sRGB-elle-V4-g10.icc ...
        if profile.endswith("-srgbtrc.icc"):
            return "srgb"
        if profile.endswith("-g10.icc"):
            return "linear"
    return None


def is_linear_profile(profile: str) -> bool:
    """Whether a profile name says its curve is linear (gamma 1.0), whatever its primaries."""
    lowered = profile.lower()
    return "-g10" in lowered or "linear" in lowered


def multiply_alpha(data: bytes, mask: bytes, dtype: str) -> bytes:
    """Multiply the alpha of 4-channel pixels (alpha last) by a one-byte-per-pixel mask.

    Pixels where the mask is 255 are returned unchanged and where it is 0 get alpha 0; only the
    soft pixels in between are computed one by one, so typical selections stay fast.
    """
    size = SAMPLE_SIZES[dtype]
    stride = 4 * size
    alpha_at = 3 * size
    if len(data) != len(mask) * stride:
        raise ValueError(f"mask and pixels differ in size: {len(mask)} vs {len(data)}")
    out = bytearray(data)
    for zeros in _ZERO.finditer(mask):
        start, end = zeros.span()
        for byte in range(size):
            first = start * stride + alpha_at + byte
            out[first : end * stride : stride] = bytes(end - start)
    scale = _ALPHA_SCALERS[dtype]
    for run in _PARTIAL.finditer(mask):
        for index in range(run.start(), run.end()):
            scale(out, index * stride + alpha_at, mask[index])
    return bytes(out)


def _scale_u8(buffer: bytearray, offset: int, weight: int) -> None:
    buffer[offset] = (buffer[offset] * weight + 127) // 255


def _scale_u16(buffer: bytearray, offset: int, weight: int) -> None:
    (value,) = struct.unpack_from("<H", buffer, offset)
    struct.pack_into("<H", buffer, offset, (value * weight + 127) // 255)


def _float_scaler(code: str):
    def scale(buffer: bytearray, offset: int, weight: int) -> None:
        (value,) = struct.unpack_from(code, buffer, offset)
        struct.pack_into(code, buffer, offset, value * (weight / 255.0))

    return scale


_ALPHA_SCALERS = {
    "u8": _scale_u8,
    "u16": _scale_u16,
    "f16": _float_scaler("<e"),
    "f32": _float_scaler("<f"),
}
