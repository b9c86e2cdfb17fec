"""Which GEGL pixel format the plug-in reads and writes, and how the worker sees it.

Standard library only, so it is tested without GIMP. GEGL converts from the image's own
storage (any precision, any colour space) to the format asked for and back, so the layer keeps
its bit depth: 8-bit as ``u8``, 16-bit as ``u16``, half as ``f16``, float as ``f32`` (32-bit
integer and double images travel as ``f32``, which keeps 24 significant bits). Linear images
are read linear (the worker converts to sRGB for the model and back); the others as sRGB.
"""

from __future__ import annotations

from typing import NamedTuple

#: GIMP's sample type -> (babl type, protocol dtype).
SAMPLE_TYPES = {
    "U8": ("u8", "u8"),
    "U16": ("u16", "u16"),
    "U32": ("float", "f32"),
    "HALF": ("half", "f16"),
    "FLOAT": ("float", "f32"),
    "DOUBLE": ("float", "f32"),
}
#: The reference is read as 8-bit sRGB: its colour statistics are all the model uses.
REFERENCE_FORMAT = "R'G'B' u8"
#: A reference larger than this (longest side, pixels) is scaled down before it is sent.
REFERENCE_LIMIT = 1024


class Layout(NamedTuple):
    """A GEGL format and the matching worker protocol image layout."""

    gegl_format: str
    channels: str
    dtype: str
    linear: bool


def layer_layout(precision: str, has_alpha: bool) -> Layout:
    """The layout for a layer of an image with GIMP precision ``precision``.

    ``precision``: a ``Gimp.Precision`` value's name, e.g. ``"U16_NON_LINEAR"`` (an optional
    ``GIMP_PRECISION_`` prefix is ignored); ``_LINEAR``, ``_NON_LINEAR`` or ``_PERCEPTUAL``.
    """
    name = precision.upper()
    if name.startswith("GIMP_PRECISION_"):
        name = name[len("GIMP_PRECISION_") :]
    sample, _, curve = name.partition("_")
    if sample not in SAMPLE_TYPES or curve not in ("LINEAR", "NON_LINEAR", "PERCEPTUAL"):
        raise ValueError(f"unknown GIMP precision {precision!r}")
    babl_type, dtype = SAMPLE_TYPES[sample]
    linear = curve == "LINEAR"
    model = ("RGB" if linear else "R'G'B'") + ("A" if has_alpha else "")
    return Layout(f"{model} {babl_type}", "RGBA" if has_alpha else "RGB", dtype, linear)


def mask_layout(layer: Layout) -> Layout:
    """The selection's layout for a layer: 8-bit for 8-bit layers, else float."""
    if layer.dtype == "u8":
        return Layout("Y u8", "A", "u8", True)
    return Layout("Y float", "A", "f32", True)


def reference_size(width: int, height: int, limit: int = REFERENCE_LIMIT) -> tuple[int, int]:
    """The size a ``width`` x ``height`` reference is sent at: at most ``limit`` pixels on its
    longest side, aspect ratio kept."""
    longest = max(width, height)
    if longest <= limit:
        return width, height
    scale = float(limit) / longest
    return max(1, int(round(width * scale))), max(1, int(round(height * scale)))

