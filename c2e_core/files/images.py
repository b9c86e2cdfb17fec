"""Reading and writing images of every kind users have, as float32 sRGB plus untouched alpha.

Reading goes through Pillow, except where Pillow would lose precision: 16-bit colour PNGs
(decoded by the small zlib PNG reader below) and 16-bit / float colour TIFFs (``tifffile``).
An embedded ICC profile is converted to sRGB on reading and can be embedded again on writing
(:mod:`c2e_core.files.colour_profiles`). Writing is atomic: a temporary file in the destination
folder is renamed over the destination only once it is complete.

Mode names: Pillow's for what Pillow decodes ("L", "LA", "RGB", "RGBA", "P", "CMYK", "I;16",
"F", ...); for sources Pillow cannot hold, ``<layout>;16`` or ``<layout>;F`` ("RGB;16",
"RGBA;16", "LA;16", "RGB;F", "RGBA;F", "LA;F") and "I;16" / "F" for 16-bit / float gray.
"""

from __future__ import annotations

import dataclasses
import os
import secrets
import struct
import threading
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from c2e_core.errors import ImageReadError, ImageWriteError, InputError
from c2e_core.files.colour_profiles import colour_space, to_srgb
from c2e_core.files.strips import STRIP_PIXELS, row_strips

__all__ = [
    "ImageData",
    "ImageReadError",
    "ImageWriteError",
    "MAX_PIXELS_ENV",
    "max_image_pixels",
    "pixel_limit",
    "read_image",
    "from_array",
    "to_array",
    "write_image",
    "pil_image_from",
    "decode_png16",
    "encode_png16",
]

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_TIFF_MAGICS = (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")
_WRITE_FORMATS = {
    ".png": "PNG",
    ".jpg": "JPEG",
    ".jpeg": "JPEG",
    ".tif": "TIFF",
    ".tiff": "TIFF",
    ".webp": "WEBP",
}
_FORMAT_DEPTHS = {"PNG": (8, 16), "JPEG": (8,), "TIFF": (8, 16, 32), "WEBP": (8,)}
#: Environment variable raising (or lowering) the decompression-bomb limit, in pixels.
MAX_PIXELS_ENV = "C2E_MAX_IMAGE_PIXELS"
_pixel_limit: ContextVar[int | None] = ContextVar("c2e_pixel_limit", default=None)
_PILLOW_LIMIT_LOCK = threading.Lock()
_MAX_ICC_BYTES = 64 << 20


@dataclass
class ImageData:
    """A decoded image.

    ``rgb``: float32 ``[H, W, 3]`` sRGB-encoded values in [0, 1] (gray sources are replicated).
    ``alpha``: the alpha channel exactly as stored in the source (its own dtype), ``[H, W]``.
    ``bit_depth``: 8, 16, or 32 (floating point) bits per sample of the source.
    ``mode``: the source mode (see the module docstring). ``is_gray``: no colour channels.
    ``icc_profile``: the source's embedded RGB ICC profile that ``rgb`` was converted to sRGB
    from, and that results go back to and carry; ``None``: the source's values are sRGB (no
    profile, or a gray one, or one that cannot be used back).
    """

    rgb: np.ndarray
    alpha: np.ndarray | None
    bit_depth: int
    mode: str
    is_gray: bool
    icc_profile: bytes | None = None

    @property
    def height(self) -> int:
        return int(self.rgb.shape[0])

    @property
    def width(self) -> int:
        return int(self.rgb.shape[1])


# --------------------------------------------------------------------------- pixel limit


def max_image_pixels() -> int | None:
    """The largest image read, in pixels: :func:`pixel_limit` if set, else
    ``$C2E_MAX_IMAGE_PIXELS``, else Pillow's decompression-bomb limit
    (``2 * Image.MAX_IMAGE_PIXELS``; ``None``: no limit)."""
    chosen = _pixel_limit.get()
    if chosen is not None:
        return chosen
    raw = os.environ.get(MAX_PIXELS_ENV, "").strip()
    if raw:
        try:
            value = int(raw)
        except ValueError:
            value = 0
        if value <= 0:
            raise InputError(f"{MAX_PIXELS_ENV}={raw!r} must be a positive whole number of pixels")
        return value
    pillow = Image.MAX_IMAGE_PIXELS
    return None if pillow is None else 2 * int(pillow)


@contextmanager
def pixel_limit(pixels: int | None) -> Iterator[None]:
    """Within the block, read images of up to ``pixels`` pixels (``None``: the default)."""
    if pixels is not None and pixels <= 0:
        raise InputError(f"the pixel limit must be positive, not {pixels}")
    token = _pixel_limit.set(pixels)
    try:
        yield
    finally:
        _pixel_limit.reset(token)


def _check_pixels(width: int, height: int) -> None:
    """Refuse an image larger than :func:`max_image_pixels` (a decompression-bomb guard);
    ``ValueError``, which :func:`read_image` reports naming the file."""
    limit = max_image_pixels()
    pixels = int(width) * int(height)
    if limit is not None and pixels > limit:
        raise ValueError(
            f"{width}x{height} = {pixels} pixels is more than the limit of {limit} (a guard "
            f"against decompression bombs); if you trust the file, raise it with --max-pixels "
            f"{pixels} or {MAX_PIXELS_ENV}={pixels}"
        )


def _pillow_open(path: Path) -> Image.Image:
    """``Image.open`` with Pillow's own bomb check off: :func:`_check_pixels` applies c2e's."""
    with _PILLOW_LIMIT_LOCK:
        saved = Image.MAX_IMAGE_PIXELS
        Image.MAX_IMAGE_PIXELS = None
        try:
            im = Image.open(path)
        finally:
            Image.MAX_IMAGE_PIXELS = saved
    try:
        _check_pixels(*im.size)
    except ValueError:
        im.close()
        raise
    return im


def quiet_decoders() -> None:
    """Keep Pillow's metadata warnings and tifffile's log off stderr, for a program (the CLI)
    that reports every failure as one line; libraries using c2e keep their own settings."""
    import logging
    import warnings

    warnings.filterwarnings("ignore", category=UserWarning, module=r"PIL\.")
    logging.getLogger("tifffile").addHandler(logging.NullHandler())  # not logging's last resort


# --------------------------------------------------------------------------- helpers


def _max_value(dtype: np.dtype | type) -> int | None:
    dt = np.dtype(dtype)
    if dt == np.uint8:
        return 255
    if dt == np.uint16:
        return 65535
    return None


def to_unit_float(values: np.ndarray) -> np.ndarray:
    """uint8 / uint16 / float samples -> float32 in [0, 1] (one output array, no temporaries
    the size of the image)."""
    maxval = _max_value(values.dtype)
    if maxval is not None:
        out = values.astype(np.float32)
        return np.divide(out, np.float32(maxval), out=out)
    if values.dtype == np.float32 and values.size and 0.0 <= values.min() <= values.max() <= 1.0:
        return values  # already clean (NaN fails the comparison): no copy of a huge array
    out = values.astype(np.float32)
    np.nan_to_num(out, copy=False, nan=0.0, posinf=1.0, neginf=0.0)
    return np.clip(out, 0.0, 1.0, out=out)


def quantise(x: np.ndarray, dtype: np.dtype | type, truncate: bool = False) -> np.ndarray:
    """float in [0, 1] -> ``dtype`` (round half up, or truncate); float dtypes are clipped.
    Works through the rows in strips (no float copy of a huge image is made), so its memory
    is the output plus a few MB."""
    dt = np.dtype(dtype)
    maxval = _max_value(dt)
    if maxval is None and dt.kind != "f":
        raise ValueError(f"unsupported output dtype {dt}")
    x = np.asarray(x)
    out = np.empty(x.shape, dtype=dt)
    height, row_size = (x.shape[0], x[:1].size) if x.ndim else (1, 1)
    for start, stop in row_strips(height, row_size, STRIP_PIXELS):
        rows = slice(start, stop) if x.ndim else ()
        # float32 is exact enough for 16-bit codes and several times faster than float64.
        part = np.nan_to_num(np.asarray(x[rows], dtype=np.float32), nan=0.0, copy=True)
        np.clip(part, 0.0, 1.0, out=part)
        if maxval is not None:
            np.multiply(part, np.float32(maxval), out=part)
            if not truncate:
                np.add(part, np.float32(0.5), out=part)
            np.floor(part, out=part)
        out[rows] = part
    return out


def _convert_samples(values: np.ndarray, dtype: np.dtype | type, truncate: bool) -> np.ndarray:
    """Convert samples to ``dtype``; unchanged (bit-exact) when the dtype already matches."""
    dt = np.dtype(dtype)
    if values.dtype == dt:
        return values
    src_max, dst_max = _max_value(values.dtype), _max_value(dt)
    if src_max == 255 and dst_max == 65535:
        return values.astype(np.uint16) * np.uint16(257)  # exact widening
    if src_max is not None and dst_max is None:
        return (values.astype(np.float64) / src_max).astype(dt)
    if values.dtype.kind == "f":  # quantise clips and cleans floats itself, slice by slice
        return quantise(values, dt, truncate)
    return quantise(to_unit_float(values), dt, truncate)


def _gray_to_rgb(gray: np.ndarray) -> np.ndarray:
    return np.repeat(gray[:, :, None], 3, axis=2)


def _orient(arr: np.ndarray, orientation: int) -> np.ndarray:
    """Apply an EXIF orientation (1-8) to an ``[H, W, ...]`` array, like ``exif_transpose``."""
    if orientation == 2:
        arr = arr[:, ::-1]
    elif orientation == 3:
        arr = arr[::-1, ::-1]
    elif orientation == 4:
        arr = arr[::-1]
    elif orientation == 5:
        arr = np.swapaxes(arr, 0, 1)
    elif orientation == 6:
        arr = np.rot90(arr, k=-1)
    elif orientation == 7:
        arr = np.rot90(arr, k=-1)[::-1]
    elif orientation == 8:
        arr = np.rot90(arr, k=1)
    return np.ascontiguousarray(arr)


def _exif_orientation(raw_exif: bytes | None) -> int:
    if not raw_exif:
        return 1
    try:
        exif = Image.Exif()
        exif.load(raw_exif)
        value = int(exif.get(0x0112, 1))
    except Exception:  # a broken EXIF block never stops a read
        return 1
    return value if 1 <= value <= 8 else 1


def _make(
    samples: np.ndarray, alpha: np.ndarray | None, bit_depth: int, mode: str, is_gray: bool
) -> ImageData:
    rgb = to_unit_float(samples)
    if rgb.ndim == 2:
        rgb = _gray_to_rgb(rgb)
    return ImageData(
        rgb=np.ascontiguousarray(rgb, dtype=np.float32),
        alpha=None if alpha is None else np.ascontiguousarray(alpha),
        bit_depth=bit_depth,
        mode=mode,
        is_gray=is_gray,
    )


def _with_profile(image: ImageData, icc: bytes | None, source: str) -> ImageData:
    """``image`` (the source's own values) converted from its embedded ICC profile ``icc`` to
    sRGB, keeping the profile results go back to (:func:`~.colour_profiles.to_srgb`)."""
    if not icc:
        return image
    rgb, restore = to_srgb(
        image.rgb, bytes(icc), is_gray=image.is_gray, bit_depth=image.bit_depth, source=source
    )
    return dataclasses.replace(
        image, rgb=np.ascontiguousarray(rgb, np.float32), icc_profile=restore
    )


# --------------------------------------------------------------------------- 16-bit PNG


def _unfilter(raw: np.ndarray, height: int, rowbytes: int, bpp: int) -> np.ndarray:
    """Undo PNG row filtering; ``raw`` is ``height * (1 + rowbytes)`` bytes."""
    rows = raw.reshape(height, 1 + rowbytes)
    ftypes = rows[:, 0]
    filt = rows[:, 1:]
    if np.any(ftypes > 4):
        raise ValueError("invalid PNG filter type")
    if not np.any(ftypes >= 3):  # None / Sub / Up only: row by row, vectorised along the row
        out = np.empty((height, rowbytes), dtype=np.uint8)
        prev = np.zeros(rowbytes, dtype=np.uint8)
        for y in range(height):
            ft = ftypes[y]
            row = filt[y]
            if ft == 1:
                lanes = row.reshape(-1, bpp)
                row = np.cumsum(lanes, axis=0, dtype=np.uint8).reshape(-1)
            elif ft == 2:
                row = row + prev
            out[y] = row
            prev = out[y]
        return out
    # Average / Paeth present: wavefront over anti-diagonals, all rows at once.
    width = rowbytes // bpp
    f = filt.reshape(height, width, bpp).astype(np.int16)
    rec = np.zeros((height + 1, width + 1, bpp), dtype=np.int16)
    ft_all = ftypes.astype(np.int16)
    for s in range(width + height - 1):
        y0, y1 = max(0, s - width + 1), min(height, s + 1)
        ys = np.arange(y0, y1)
        xs = s - ys
        left = rec[ys + 1, xs]
        up = rec[ys, xs + 1]
        ul = rec[ys, xs]
        ft = ft_all[ys][:, None]
        pa = np.abs(up - ul)
        pb = np.abs(left - ul)
        pc = np.abs(left + up - 2 * ul)
        paeth = np.where((pa <= pb) & (pa <= pc), left, np.where(pb <= pc, up, ul))
        pred = np.select(
            [ft == 1, ft == 2, ft == 3, ft == 4],
            [left, up, (left + up) >> 1, paeth],
            default=0,
        )
        rec[ys + 1, xs + 1] = (f[ys, xs] + pred) & 255
    return rec[1:, 1:].astype(np.uint8).reshape(height, rowbytes)


_ADAM7 = (
    (0, 0, 8, 8),
    (4, 0, 8, 8),
    (0, 4, 4, 8),
    (2, 0, 4, 4),
    (0, 2, 2, 4),
    (1, 0, 2, 2),
    (0, 1, 1, 2),
)  # (x0, y0, dx, dy)


def decode_png16(data: bytes) -> tuple[np.ndarray, int, bytes | None]:
    """Decode a 16-bit PNG to a native uint16 ``[H, W, C]`` array.

    Returns ``(array, colour_type, raw_exif)``. Supports colour types 0, 2, 4, 6, Adam7
    interlacing and a 16-bit tRNS colour key (returned as an extra alpha channel).
    Raises ``ValueError`` on anything malformed.
    """
    if not data.startswith(_PNG_SIGNATURE):
        raise ValueError("not a PNG file")
    pos = len(_PNG_SIGNATURE)
    header: tuple[int, ...] | None = None
    idat: list[bytes] = []
    trns: bytes | None = None
    exif: bytes | None = None
    while True:
        if pos + 8 > len(data):
            raise ValueError("truncated PNG (no IEND chunk)")
        length, ctype = struct.unpack(">I4s", data[pos : pos + 8])
        body = data[pos + 8 : pos + 8 + length]
        crc_bytes = data[pos + 8 + length : pos + 12 + length]
        if len(body) != length or len(crc_bytes) != 4:
            raise ValueError("truncated PNG chunk")
        if zlib.crc32(ctype + body) != struct.unpack(">I", crc_bytes)[0]:
            raise ValueError(f"bad CRC in PNG {ctype.decode('latin-1')} chunk")
        pos += 12 + length
        if ctype == b"IHDR":
            header = struct.unpack(">IIBBBBB", body)
        elif ctype == b"IDAT":
            idat.append(body)
        elif ctype == b"tRNS":
            trns = body
        elif ctype == b"eXIf":
            exif = body
        elif ctype == b"IEND":
            break
    if header is None:
        raise ValueError("PNG without IHDR chunk")
    width, height, depth, ctype_, _comp, _filter, interlace = header
    channels = {0: 1, 2: 3, 4: 2, 6: 4}.get(ctype_)
    if depth != 16 or channels is None:
        raise ValueError(f"unsupported PNG bit depth {depth} / colour type {ctype_}")
    if width == 0 or height == 0:
        raise ValueError("PNG with zero size")
    _check_pixels(width, height)
    try:
        raw = np.frombuffer(zlib.decompress(b"".join(idat)), dtype=np.uint8)
    except zlib.error as exc:
        raise ValueError(f"corrupt PNG image data ({exc})") from exc
    bpp = 2 * channels
    passes = [(0, 0, 1, 1)] if interlace == 0 else _ADAM7
    out = np.empty((height, width, channels), dtype=np.uint16)
    offset = 0
    for x0, y0, dx, dy in passes:
        pw = (width - x0 + dx - 1) // dx if width > x0 else 0
        ph = (height - y0 + dy - 1) // dy if height > y0 else 0
        if pw == 0 or ph == 0:
            continue
        nbytes = ph * (1 + pw * bpp)
        if offset + nbytes > raw.size:
            raise ValueError("truncated PNG image data")
        rows = _unfilter(raw[offset : offset + nbytes], ph, pw * bpp, bpp)
        offset += nbytes
        samples = rows.reshape(ph, pw, channels, 2)
        values = (samples[..., 0].astype(np.uint16) << 8) | samples[..., 1]
        out[y0::dy, x0::dx] = values
    if trns is not None and ctype_ in (0, 2) and len(trns) == 2 * channels:
        key = np.array(struct.unpack(f">{channels}H", trns), dtype=np.uint16)
        alpha = np.where(np.all(out == key, axis=2), 0, 65535).astype(np.uint16)
        out = np.concatenate([out, alpha[:, :, None]], axis=2)
    return out, ctype_, exif


def _png_icc_profile(data: bytes) -> bytes | None:
    """The ICC profile of a PNG's iCCP chunk (which comes before the image data); ``None`` if
    there is none or it does not decompress (Pillow ignores those too)."""
    pos = len(_PNG_SIGNATURE)
    while pos + 8 <= len(data):
        length, ctype = struct.unpack(">I4s", data[pos : pos + 8])
        if ctype in (b"IDAT", b"IEND"):
            return None
        if ctype == b"iCCP":
            body = data[pos + 8 : pos + 8 + length]
            compressed = body[body.find(b"\0") + 2 :]  # name, NUL, compression method
            try:
                inflater = zlib.decompressobj()
                profile = inflater.decompress(compressed, _MAX_ICC_BYTES)
            except zlib.error:
                return None
            return profile if inflater.eof else None
        pos += 12 + length
    return None


def _png_chunk(ctype: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + ctype + body + struct.pack(">I", zlib.crc32(ctype + body))


def encode_png16(samples: np.ndarray, level: int = 6, *, icc_profile: bytes | None = None) -> bytes:
    """Encode uint16 ``[H, W]`` or ``[H, W, C]`` (C in 1-4) samples as a 16-bit PNG, with the
    ICC profile ``icc_profile`` in an iCCP chunk if given."""
    arr = np.asarray(samples)
    if arr.dtype != np.uint16:
        raise ValueError(f"encode_png16 needs uint16 samples, got {arr.dtype}")
    if arr.ndim == 2:
        arr = arr[:, :, None]
    if arr.ndim != 3 or arr.shape[2] not in (1, 2, 3, 4) or 0 in arr.shape[:2]:
        raise ValueError(f"cannot encode an array of shape {samples.shape} as PNG")
    height, width, channels = arr.shape
    colour_type = {1: 0, 2: 4, 3: 2, 4: 6}[channels]
    bpp = 2 * channels
    big = np.ascontiguousarray(arr, dtype=">u2").view(np.uint8).reshape(height, width * bpp)
    filtered = np.empty((height, 1 + width * bpp), dtype=np.uint8)
    filtered[:, 0] = 1  # Sub filter
    filtered[:, 1 : 1 + bpp] = big[:, :bpp]
    filtered[:, 1 + bpp :] = big[:, bpp:] - big[:, :-bpp]
    ihdr = struct.pack(">IIBBBBB", width, height, 16, colour_type, 0, 0, 0)
    iccp = b"ICC Profile\0\0" + zlib.compress(icc_profile) if icc_profile else None
    return b"".join(
        (
            _PNG_SIGNATURE,
            _png_chunk(b"IHDR", ihdr),
            _png_chunk(b"iCCP", iccp) if iccp else b"",
            _png_chunk(b"IDAT", zlib.compress(filtered.tobytes(), level)),
            _png_chunk(b"IEND", b""),
        )
    )


def _read_png16(path: Path) -> ImageData:
    data = path.read_bytes()
    arr, colour_type, exif = decode_png16(data)
    arr = _orient(arr, _exif_orientation(exif))
    channels = arr.shape[2]
    gray = colour_type in (0, 4)
    colour = arr[:, :, :1] if gray else arr[:, :, :3]
    alpha = arr[:, :, -1] if channels in (2, 4) else None
    samples = colour[:, :, 0] if gray else colour
    layout = (
        ("LA" if alpha is not None else "I") if gray else ("RGBA" if alpha is not None else "RGB")
    )
    mode = "I;16" if layout == "I" else f"{layout};16"
    return _with_profile(_make(samples, alpha, 16, mode, gray), _png_icc_profile(data), str(path))


# --------------------------------------------------------------------------- TIFF via tifffile


def _read_tiff(path: Path) -> ImageData:
    try:
        import tifffile
    except ImportError as exc:  # pragma: no cover - a declared dependency
        raise ValueError("this TIFF needs the 'tifffile' package") from exc
    with tifffile.TiffFile(path) as tif:
        page = tif.pages[0]
        _check_pixels(int(page.imagewidth), int(page.imagelength))
        arr = page.asarray()
        photometric = int(page.photometric)
        planar = int(page.planarconfig)
        orient_tag = page.tags.get("Orientation")
        orientation = int(orient_tag.value) if orient_tag is not None else 1
        samples_per_pixel = int(page.samplesperpixel)
        extras = tuple(int(e) for e in (page.extrasamples or ()))
        icc_tag = page.tags.get(34675)  # InterColorProfile
        icc = icc_tag.value if icc_tag is not None and isinstance(icc_tag.value, bytes) else None
    arr = np.asarray(arr)
    if samples_per_pixel > 1 and arr.ndim == 3 and planar == 2:
        arr = np.moveaxis(arr, 0, -1)
    if arr.ndim == 2:
        arr = arr[:, :, None]
    if arr.ndim != 3:
        raise ValueError(f"unsupported TIFF layout {arr.shape}")
    kind = arr.dtype
    if kind == np.uint8:
        depth = 8
    elif kind == np.uint16:
        depth = 16
    elif kind.kind == "f":
        depth = 32
        arr = arr.astype(np.float32) if kind == np.float16 else arr
    else:
        raise ValueError(f"unsupported TIFF sample type {kind}")
    if photometric not in (1, 2) and not (photometric == 0 and depth != 32):
        raise ValueError(f"unsupported TIFF photometric interpretation {photometric}")
    arr = _orient(arr, orientation)
    channels = arr.shape[2]
    gray = photometric in (0, 1)
    ncolour = 1 if gray else 3
    if channels < ncolour:
        raise ValueError("TIFF has fewer samples than its colour space needs")
    colour = arr[:, :, :ncolour]
    if photometric == 0:  # min-is-white
        maxval = _max_value(colour.dtype)
        colour = (maxval - colour).astype(colour.dtype)
    has_alpha = channels > ncolour and bool(extras) and extras[0] in (1, 2)
    alpha = arr[:, :, ncolour] if has_alpha else None
    samples = colour[:, :, 0] if gray else colour
    layout = ("LA" if has_alpha else "L") if gray else ("RGBA" if has_alpha else "RGB")
    if depth == 8:
        mode = layout
    elif layout == "L":
        mode = "I;16" if depth == 16 else "F"
    else:
        mode = f"{layout};{16 if depth == 16 else 'F'}"
    return _with_profile(_make(samples, alpha, depth, mode, gray), icc, str(path))


def _tiff_needs_tifffile(im: Image.Image) -> bool:
    tags = getattr(im, "tag_v2", {})
    bits = tags.get(258, (8,))
    bits = bits if isinstance(bits, tuple) else (bits,)
    sample_format = tags.get(339, (1,))
    sample_format = sample_format if isinstance(sample_format, tuple) else (sample_format,)
    spp = int(tags.get(277, 1))
    if spp == 1:
        return im.mode not in ("1", "L", "P", "I;16", "I;16B", "I;16L", "I;16N", "I", "F")
    return max(bits) > 8 or any(int(s) == 3 for s in sample_format)


# --------------------------------------------------------------------------- Pillow path


def _from_pil(im: Image.Image, source: str) -> ImageData:
    return _with_profile(_decode_pil(im), im.info.get("icc_profile"), source)


def _decode_pil(im: Image.Image) -> ImageData:
    mode = im.mode
    transparency = im.info.get("transparency")
    im = ImageOps.exif_transpose(im)
    if mode in ("1", "L"):
        if transparency is not None and mode == "L" and isinstance(transparency, int):
            gray = np.asarray(im.convert("L"))
            alpha = np.where(gray == transparency, 0, 255).astype(np.uint8)
            return _make(gray, alpha, 8, mode, True)
        return _make(np.asarray(im.convert("L")), None, 8, mode, True)
    if mode in ("LA", "La"):
        arr = np.asarray(im.convert("LA"))
        return _make(arr[:, :, 0], arr[:, :, 1], 8, mode, True)
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
        arr = np.asarray(im)
        if mode == "I":
            arr = np.clip(arr, 0, 65535)
        gray = arr.astype(np.uint16)
        alpha = None
        if isinstance(transparency, int):
            alpha = np.where(gray == transparency, 0, 65535).astype(np.uint16)
        return _make(gray, alpha, 16, mode, True)
    if mode == "F":
        return _make(np.asarray(im, dtype=np.float32), None, 32, mode, True)
    if mode in ("RGBA", "RGBa", "PA") or (mode in ("P", "RGB") and transparency is not None):
        arr = np.asarray(im.convert("RGBA"))
        return _make(arr[:, :, :3], arr[:, :, 3], 8, mode, False)
    if mode in ("RGB", "RGBX", "P", "CMYK", "YCbCr", "LAB", "HSV"):
        return _make(np.asarray(im.convert("RGB")), None, 8, mode, False)
    raise ValueError(f"unsupported image mode {mode!r}")


def _png_header(path: Path) -> tuple[int, int] | None:
    with open(path, "rb") as fh:
        head = fh.read(33)
    if len(head) < 33 or not head.startswith(_PNG_SIGNATURE) or head[12:16] != b"IHDR":
        return None
    return head[24], head[25]


def read_image(path: str | os.PathLike[str]) -> ImageData:
    """Read an image file into an :class:`ImageData` (EXIF orientation applied).

    Raises :class:`ImageReadError` naming the file if it is missing, unreadable, corrupt or of
    an unsupported kind.
    """
    p = Path(path)
    if not p.exists():
        raise ImageReadError(f"cannot read image '{p}': file not found")
    if p.is_dir():
        raise ImageReadError(f"cannot read image '{p}': it is a folder")
    try:
        with open(p, "rb") as fh:
            magic = fh.read(4)
        png = _png_header(p)
        if png is not None and png[0] == 16 and png[1] in (2, 4, 6):
            return _read_png16(p)
        try:
            im = _pillow_open(p)
        except UnidentifiedImageError:
            if magic in _TIFF_MAGICS:
                return _read_tiff(p)
            raise ValueError("not a recognised image format") from None
        with im:
            if im.format == "TIFF" and _tiff_needs_tifffile(im):
                return _read_tiff(p)
            im.load()
            return _from_pil(im, str(p))
    except InputError:
        raise
    except MemoryError:
        raise
    except Exception as exc:  # corrupt data surfaces as many exception types
        detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ImageReadError(f"cannot read image '{p}': {detail}") from exc


# --------------------------------------------------------------------------- arrays


def from_array(
    array: np.ndarray, *, has_alpha: bool | None = None, icc_profile: bytes | None = None
) -> ImageData:
    """Wrap a numpy image (uint8, uint16, float32/64 in [0, 1]) as :class:`ImageData`.

    Shapes: ``[H, W]``, ``[H, W, 1]``, ``[H, W, 2]`` (gray + alpha), ``[H, W, 3]``,
    ``[H, W, 4]``. ``has_alpha=None`` infers alpha from 2 / 4 channels; ``has_alpha=False``
    with 4 channels ignores the fourth channel. The values are sRGB, or in the colour space of
    ``icc_profile`` (converted to sRGB, like a file's embedded profile).
    """
    arr = np.asarray(array)
    if arr.dtype == np.uint8:
        depth, suffix = 8, ""
    elif arr.dtype == np.uint16:
        depth, suffix = 16, ";16"
    elif arr.dtype in (np.float32, np.float64):
        depth, suffix = 32, ";F"
    else:
        raise ValueError(f"unsupported image array dtype {arr.dtype}")
    if arr.ndim == 2:
        arr = arr[:, :, None]
    if arr.ndim != 3 or arr.shape[2] not in (1, 2, 3, 4) or 0 in arr.shape[:2]:
        raise ValueError(f"unsupported image array shape {tuple(np.shape(array))}")
    channels = arr.shape[2]
    gray = channels <= 2
    alpha_present = channels in (2, 4) if has_alpha is None else has_alpha
    if alpha_present and channels not in (2, 4):
        raise ValueError(f"has_alpha=True needs 2 or 4 channels, got {channels}")
    if not alpha_present and channels == 2:
        raise ValueError("a 2-channel array is gray + alpha; has_alpha=False is not possible")
    colour = arr[:, :, 0] if gray else arr[:, :, :3]
    alpha = arr[:, :, -1].copy() if alpha_present else None
    layout = ("LA" if alpha_present else "L") if gray else ("RGBA" if alpha_present else "RGB")
    if layout == "L":
        mode = {8: "L", 16: "I;16", 32: "F"}[depth]
    else:
        mode = layout + suffix
    return _with_profile(_make(colour, alpha, depth, mode, gray), icc_profile, "the array")


def to_array(
    image: ImageData, rgb: np.ndarray, dtype: Any = np.uint8, *, truncate: bool = False
) -> np.ndarray:
    """Quantise float ``rgb`` ``[H, W, 3]`` to ``dtype`` and re-attach ``image``'s alpha.

    uint8 / uint16 outputs round half up (``floor(x * max + 0.5)``) unless ``truncate``;
    float outputs are clipped to [0, 1]. The alpha is returned bit-exact when its dtype is the
    output dtype, otherwise scaled (uint8 <-> uint16 <-> float). Returns ``[H, W, 3 or 4]``.
    """
    rgb = np.asarray(rgb)
    if rgb.shape != (image.height, image.width, 3):
        raise ValueError(f"rgb has shape {rgb.shape}, expected {(image.height, image.width, 3)}")
    dt = np.dtype(dtype)
    out = quantise(rgb, dt, truncate)
    if image.alpha is None:
        return out
    alpha = _convert_samples(image.alpha, dt, truncate)
    return np.concatenate([out, alpha[:, :, None]], axis=2)


# --------------------------------------------------------------------------- writing


def pil_image_from(rgb: np.ndarray, alpha: np.ndarray | None = None) -> Image.Image:
    """An 8-bit Pillow image ("RGB"/"RGBA", or "L"/"LA" for ``[H, W]`` gray) from samples."""
    colour = _convert_samples(np.asarray(rgb), np.uint8, False)
    if colour.ndim == 3 and colour.shape[2] == 1:
        colour = colour[:, :, 0]
    if alpha is None:
        return Image.fromarray(np.ascontiguousarray(colour))
    a = _convert_samples(np.asarray(alpha), np.uint8, False)
    stacked = np.concatenate(
        [colour if colour.ndim == 3 else colour[:, :, None], a[:, :, None]], axis=2
    )
    return Image.fromarray(np.ascontiguousarray(stacked))


def _prepare_samples(
    rgb: np.ndarray, alpha: np.ndarray | None, bit_depth: int, truncate: bool
) -> np.ndarray:
    arr = np.asarray(rgb)
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[:, :, 0]
    if not (arr.ndim == 2 or (arr.ndim == 3 and arr.shape[2] == 3)) or 0 in arr.shape[:2]:
        raise ValueError(f"rgb must be [H, W, 3] or [H, W] gray, got shape {np.shape(rgb)}")
    if arr.dtype not in (np.uint8, np.uint16) and arr.dtype.kind != "f":
        raise ValueError(f"unsupported sample dtype {arr.dtype}")
    dt = {8: np.uint8, 16: np.uint16, 32: np.float32}[bit_depth]
    colour = _convert_samples(arr, dt, truncate)
    if alpha is None:
        return colour
    a = np.asarray(alpha)
    if a.shape != arr.shape[:2]:
        raise ValueError(f"alpha has shape {a.shape}, expected {arr.shape[:2]}")
    if a.dtype not in (np.uint8, np.uint16) and a.dtype.kind != "f":
        raise ValueError(f"unsupported alpha dtype {a.dtype}")
    a = _convert_samples(a, dt, truncate)
    if colour.ndim == 2:
        colour = colour[:, :, None]
    return np.concatenate([colour, a[:, :, None]], axis=2)


def _check_profile(icc: bytes, channels: int) -> None:
    """An ICC profile must describe the samples it is written with (gray or RGB)."""
    expected = "GRAY" if channels in (1, 2) else "RGB"
    if colour_space(icc) != expected:
        found = colour_space(icc) or "unknown"
        raise ValueError(f"an ICC profile for {found} data cannot describe {expected} samples")


def _encoder(
    fmt: str, samples: np.ndarray, bit_depth: int, icc: bytes | None
) -> Callable[[str], None]:
    channels = 1 if samples.ndim == 2 else samples.shape[2]
    if icc and (fmt != "WEBP" or channels > 2):  # WebP: gray becomes RGB below
        _check_profile(icc, channels)
    if fmt == "PNG" and bit_depth == 16:

        def write_png16(tmp: str) -> None:
            with open(tmp, "wb") as fh:
                fh.write(encode_png16(samples, icc_profile=icc))

        return write_png16
    if fmt == "TIFF":
        import tifffile

        def write_tiff(tmp: str) -> None:
            kwargs: dict[str, Any] = {
                "photometric": "minisblack" if channels in (1, 2) else "rgb",
                "compression": "zlib",
            }
            if channels in (2, 4):
                kwargs["extrasamples"] = ("unassalpha",)
            tifffile.imwrite(tmp, samples, iccprofile=icc or None, **kwargs)

        return write_tiff
    if fmt == "JPEG" and channels in (2, 4):
        raise ValueError("JPEG cannot store an alpha channel; drop it or write PNG/TIFF/WebP")
    options: dict[str, Any] = {"quality": 95} if fmt in ("JPEG", "WEBP") else {}
    if icc:
        options["icc_profile"] = icc
    if fmt == "WEBP" and channels in (1, 2):
        if icc:
            _check_profile(icc, 3)
        samples = (
            _gray_to_rgb(samples)
            if channels == 1
            else np.concatenate([_gray_to_rgb(samples[:, :, 0]), samples[:, :, 1:]], axis=2)
        )

    def write_pil(tmp: str) -> None:
        arr = samples[:, :, 0] if samples.ndim == 3 and samples.shape[2] == 1 else samples
        Image.fromarray(np.ascontiguousarray(arr)).save(tmp, format=fmt, **options)

    return write_pil


def _temp_path(dest: Path) -> str:
    for _ in range(100):
        tmp = dest.with_name(f".{dest.name}.{secrets.token_hex(6)}.tmp")
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        except FileExistsError:
            continue
        os.close(fd)
        return str(tmp)
    raise OSError(f"cannot create a temporary file next to '{dest}'")  # pragma: no cover


def write_image(
    path: str | os.PathLike[str],
    rgb: np.ndarray,
    alpha: np.ndarray | None = None,
    bit_depth: int = 8,
    *,
    truncate: bool = False,
    icc_profile: bytes | None = None,
) -> None:
    """Write ``rgb`` (float in [0, 1], or uint8/uint16 samples) and optional alpha atomically.

    The format comes from the extension: .png (8/16 bit), .jpg/.jpeg (8), .tif/.tiff
    (8/16/32 float), .webp (8). ``[H, W]`` input writes gray. Float samples are quantised
    with round half up unless ``truncate``; alpha is converted to ``bit_depth`` (bit-exact if
    it already has that depth). ``icc_profile`` is embedded as it is (the samples must already
    be in its colour space; no profile: sRGB). The file appears complete or not at all; on
    failure :class:`ImageWriteError` is raised and nothing is left behind.
    """
    dest = Path(path)
    fmt = _WRITE_FORMATS.get(dest.suffix.lower())
    if fmt is None:
        known = ", ".join(sorted(_WRITE_FORMATS))
        raise ImageWriteError(
            f"cannot write image '{dest}': unknown extension '{dest.suffix}' (use {known})"
        )
    if bit_depth not in _FORMAT_DEPTHS[fmt]:
        depths = "/".join(str(d) for d in _FORMAT_DEPTHS[fmt])
        raise ImageWriteError(
            f"cannot write image '{dest}': {fmt} supports bit depth {depths}, not {bit_depth}"
        )
    if not dest.parent.is_dir():
        raise ImageWriteError(f"cannot write image '{dest}': folder '{dest.parent}' not found")
    try:
        samples = _prepare_samples(rgb, alpha, bit_depth, truncate)
        encode = _encoder(fmt, samples, bit_depth, icc_profile)
    except ValueError as exc:
        raise ImageWriteError(f"cannot write image '{dest}': {exc}") from exc
    try:
        tmp = _temp_path(dest)
    except OSError as exc:
        raise ImageWriteError(f"cannot write image '{dest}': {exc.strerror or exc}") from exc
    try:
        encode(tmp)
        os.replace(tmp, dest)
    except BaseException as exc:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        if isinstance(exc, OSError):
            raise ImageWriteError(f"cannot write image '{dest}': {exc.strerror or exc}") from exc
        raise
