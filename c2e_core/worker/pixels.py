"""The pixel codec: raw IMAGE buffers (RGBA/BGRA/RGB/BGR/GRAY/GRAYA/A; u8/u16/f16/f32,
little-endian; sRGB-encoded or linear) to and from the float sRGB arrays the pipeline takes.

numpy only at import; the sRGB transfer functions and quantisation are
``c2e_core.modeling.colour``'s and ``c2e_core.files.images``'s, imported when first used, so a
file decodes exactly as the CLI reads it.
"""

from __future__ import annotations

import os
import stat
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from c2e_core.files.strips import STRIP_PIXELS, row_strips
from c2e_core.worker.protocol import RequestError

#: channels -> (count, indices of R, G, B, index of alpha or None)
CHANNEL_LAYOUTS: dict[str, tuple[int, tuple[int, int, int] | None, int | None]] = {
    "RGBA": (4, (0, 1, 2), 3),
    "BGRA": (4, (2, 1, 0), 3),
    "RGB": (3, (0, 1, 2), None),
    "BGR": (3, (2, 1, 0), None),
    "GRAY": (1, (0, 0, 0), None),
    "GRAYA": (2, (0, 0, 0), 1),
    "A": (1, None, 0),
}
#: What a target's layout becomes in the result: grey layouts gain colour.
RESULT_CHANNELS = {"GRAY": "RGB", "GRAYA": "RGBA"}
DTYPES: dict[str, np.dtype] = {
    "u8": np.dtype("<u1"),
    "u16": np.dtype("<u2"),
    "f16": np.dtype("<f2"),
    "f32": np.dtype("<f4"),
}
#: The widest and tallest image accepted, in pixels.
MAX_SIDE = 1 << 17
#: How long reading one ``file`` image may take, in seconds.
FILE_READ_SECONDS = 60.0
#: The most bytes read from a ``file`` at once.
FILE_CHUNK = 1 << 22


def _transfer(x: np.ndarray, function_name: str) -> np.ndarray:
    """Apply the pipeline's sRGB transfer function (``c2e_core.inference.colour``)."""
    from c2e_core.inference import colour

    return getattr(colour, function_name)(np.ascontiguousarray(x, dtype=np.float32))


@dataclass(frozen=True)
class Layout:
    """Width, height, channels, sample type and transfer of a raw pixel buffer."""

    width: int
    height: int
    channels: str
    dtype: str
    linear: bool = False

    @property
    def channel_count(self) -> int:
        return CHANNEL_LAYOUTS[self.channels][0]

    @property
    def nbytes(self) -> int:
        return self.width * self.height * self.channel_count * DTYPES[self.dtype].itemsize

    def describe(self) -> str:
        transfer = " linear" if self.linear else ""
        return f"{self.width}x{self.height} {self.channels} {self.dtype}{transfer}"

    def header(self) -> dict[str, Any]:
        return {
            "width": self.width,
            "height": self.height,
            "channels": self.channels,
            "dtype": self.dtype,
            "linear": self.linear,
        }


def parse_layout(spec: Any, what: str, *, mask: bool = False) -> Layout:
    """Validate an IMAGE object's layout fields; :class:`RequestError` when wrong."""
    if not isinstance(spec, dict):
        raise RequestError(f"{what} must be an image object, not {type(spec).__name__}")
    width, height = spec.get("width"), spec.get("height")
    for name, value in (("width", width), ("height", height)):
        if not isinstance(value, int) or isinstance(value, bool) or not 0 < value <= MAX_SIDE:
            raise RequestError(
                f"{what}: {name} must be a positive integer up to {MAX_SIDE}, not {value!r}"
            )
    channels = spec.get("channels", "A" if mask else None)
    allowed = ("A", "GRAY") if mask else tuple(c for c in CHANNEL_LAYOUTS if c != "A")
    if not isinstance(channels, str) or channels not in allowed:
        names = ", ".join(allowed)
        raise RequestError(f"{what}: channels must be one of {names}, not {channels!r}")
    dtype = spec.get("dtype")
    if not isinstance(dtype, str) or dtype not in DTYPES:
        raise RequestError(f"{what}: dtype must be one of {', '.join(DTYPES)}, not {dtype!r}")
    linear = spec.get("linear", False)
    if not isinstance(linear, bool):
        raise RequestError(f"{what}: linear must be true or false, not {linear!r}")
    return Layout(width, height, "A" if mask else channels, dtype, linear)


def decode_pixels(layout: Layout, data: bytes | bytearray | memoryview, what: str) -> np.ndarray:
    """Raw little-endian samples -> ``[H, W, C]`` array in the layout's dtype (native order)."""
    if len(data) != layout.nbytes:
        raise RequestError(
            f"{what}: a {layout.describe()} image needs {layout.nbytes} bytes, got {len(data)}"
        )
    arr = np.frombuffer(data, dtype=DTYPES[layout.dtype])
    return arr.reshape(layout.height, layout.width, layout.channel_count)


def _row_slices(layout: Layout) -> list[slice]:
    """The layout's rows in strips (:mod:`c2e_core.files.strips`): no temporary the size of
    a huge layer is ever made."""
    strips = row_strips(layout.height, layout.width, STRIP_PIXELS)
    return [slice(start, stop) for start, stop in strips]


def to_unit(samples: np.ndarray) -> np.ndarray:
    """Samples -> float32 in [0, 1] (floats are clipped; NaN becomes 0), exactly as files
    are read (:func:`c2e_core.files.images.to_unit_float`)."""
    from c2e_core.files.images import to_unit_float

    return to_unit_float(samples)


def from_unit(values: np.ndarray, dtype: str, truncate: bool = False) -> np.ndarray:
    """Float in [0, 1] -> samples of ``dtype``, quantised exactly like files are written."""
    from c2e_core.files.images import quantise

    return quantise(values, DTYPES[dtype].newbyteorder("="), truncate)


def image_to_srgb(samples: np.ndarray, layout: Layout) -> np.ndarray:
    """Decoded samples -> float32 ``[H, W, 3]`` sRGB in [0, 1] (alpha dropped), slice by
    slice of rows into the one output array."""
    indices = CHANNEL_LAYOUTS[layout.channels][1]
    assert indices is not None
    rgb = np.empty((layout.height, layout.width, 3), dtype=np.float32)
    for rows in _row_slices(layout):
        part = to_unit(samples[rows][:, :, list(indices)])
        rgb[rows] = _transfer(part, "linear_to_srgb") if layout.linear else part
    return rgb


def target_alpha(samples: np.ndarray, layout: Layout) -> np.ndarray | None:
    """A copy of the target's alpha samples ``[H, W]`` (None for layouts without alpha): all
    that :func:`encode_result` needs of a target when no pixel keeps its own samples."""
    index = CHANNEL_LAYOUTS[layout.channels][2]
    return None if index is None else samples[:, :, index].copy()


def encode_result(
    rgb: np.ndarray,
    layout: Layout,
    *,
    alpha: np.ndarray | None = None,
    original: np.ndarray | None = None,
    keep: np.ndarray | None = None,
    truncate: bool = False,
) -> tuple[Layout, bytearray]:
    """sRGB float ``[H, W, 3]`` -> raw bytes in the target's layout, slice by slice of rows
    straight into the returned buffer.

    ``alpha`` (``[H, W]``, :func:`target_alpha`): copied untouched; ``keep`` (``[H, W]``
    bool): pixels that take the target's own samples, ``original`` ``[H, W, C]``, unchanged.
    """
    channels = RESULT_CHANNELS.get(layout.channels, layout.channels)
    out_layout = Layout(layout.width, layout.height, channels, layout.dtype, layout.linear)
    count, indices, alpha_index = CHANNEL_LAYOUTS[channels]
    assert indices is not None
    if keep is not None and original is None:
        raise ValueError("keep needs the original samples")
    buffer = bytearray(out_layout.nbytes)
    out = np.frombuffer(buffer, dtype=DTYPES[layout.dtype]).reshape(
        layout.height, layout.width, count
    )
    grey = layout.channels in RESULT_CHANNELS
    for rows in _row_slices(layout):
        part = _transfer(rgb[rows], "srgb_to_linear") if layout.linear else rgb[rows]
        out[rows, :, list(indices)] = from_unit(part, layout.dtype, truncate)
        if alpha_index is not None and alpha is not None:
            out[rows, :, alpha_index] = alpha[rows]
        if keep is not None and original is not None:
            kept = keep[rows]
            if kept.any():
                source = original[rows]
                if grey:  # grey target: its samples replicated into the colour channels
                    replicated = out[rows].copy()
                    replicated[:, :, list(indices)] = source[:, :, :1]
                    source = replicated
                out[rows][kept] = source[kept]
    return out_layout, buffer


def read_file(path: Any, nbytes: int, what: str) -> bytes:
    """The ``nbytes`` bytes of the regular file ``path``, opened without blocking and read
    within :data:`FILE_READ_SECONDS`; :class:`RequestError` for anything else (a FIFO, a
    device, a folder, a wrong size, a NUL in the path)."""
    if not isinstance(path, str) or not path or "\0" in path:
        raise RequestError(f"{what}: file must be a path string without NUL characters")
    try:
        if not stat.S_ISREG(os.stat(path).st_mode):
            raise RequestError(f"{what}: {path} is not a regular file")
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0))
    except (OSError, ValueError) as exc:
        raise RequestError(f"{what}: cannot read {path}: {_reason(exc)}") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):  # replaced between stat and open
            raise RequestError(f"{what}: {path} is not a regular file")
        if info.st_size != nbytes:
            raise RequestError(f"{what}: the image needs {nbytes} bytes, {path} has {info.st_size}")
        chunks, remaining = [], nbytes
        deadline = time.monotonic() + FILE_READ_SECONDS
        while remaining:
            if time.monotonic() > deadline:
                raise RequestError(f"{what}: reading {path} took over {FILE_READ_SECONDS:g} s")
            try:
                chunk = os.read(fd, min(remaining, FILE_CHUNK))
            except BlockingIOError:
                time.sleep(0.01)
                continue
            except OSError as exc:
                raise RequestError(f"{what}: cannot read {path}: {_reason(exc)}") from None
            if not chunk:
                raise RequestError(f"{what}: {path} ended after {nbytes - remaining} bytes")
            chunks.append(chunk)
            remaining -= len(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)


def _reason(exc: Exception) -> str:
    return getattr(exc, "strerror", None) or str(exc)


def image_specs(message: dict[str, Any]) -> list[tuple[str, Any, bool]]:
    """The IMAGE objects of a ``colorize`` message: (what, spec, is the mask)."""
    specs: list[tuple[str, Any, bool]] = [("target", message.get("target"), False)]
    references = message.get("references")
    if isinstance(references, list):
        specs += [(f"references[{i}]", spec, False) for i, spec in enumerate(references)]
    elif "reference" in message:
        specs.append(("reference", message["reference"], False))
    if message.get("mask") is not None:
        specs.append(("mask", message["mask"], True))
    return specs


def expected_payloads(message: dict[str, Any]) -> dict[str, tuple[int, str]]:
    """Payload name -> (bytes its image needs, description), for the images of a
    ``colorize`` message whose layouts are valid (what :func:`read_payloads` keeps)."""
    expected: dict[str, tuple[int, str]] = {}
    for what, spec, mask in image_specs(message):
        if not isinstance(spec, dict) or not isinstance(spec.get("payload"), str):
            continue
        try:
            layout = parse_layout(spec, what, mask=mask)
        except RequestError:
            continue  # refused when the request is prepared
        described = f"{what}: a {layout.describe()} image"
        expected.setdefault(spec["payload"], (layout.nbytes, described))
    return expected


def request_image(
    spec: Any, payloads: dict[str, bytes], what: str, *, mask: bool = False
) -> tuple[Layout, np.ndarray]:
    """An IMAGE object of a request and its samples, from a payload or a file."""
    layout = parse_layout(spec, what, mask=mask)
    if "payload" in spec and "file" in spec:
        raise RequestError(f"{what}: give either payload or file, not both")
    if "payload" in spec:
        name = spec["payload"]
        if not isinstance(name, str) or name not in payloads:
            raise RequestError(f"{what}: payload {name!r} was not declared in payloads")
        data = payloads[name]
    elif "file" in spec:
        data = read_file(spec["file"], layout.nbytes, what)
    else:
        raise RequestError(f"{what}: needs a payload name or a file")
    return layout, decode_pixels(layout, data, what)
