# Python 3.8 compatible on purpose, so no pyupgrade rewrites:
# ruff: noqa: UP004, UP006, UP031, UP035, UP045
"""What the worker protocol's messages hold: its version, image layouts (:class:`Pixels`) and
errors (:class:`WorkerError`). Standard library only."""

from __future__ import annotations

import json
from typing import Any, Dict, Optional, Sequence, Tuple

PROTOCOL_VERSION = 1
CHANNEL_COUNTS = {"RGBA": 4, "BGRA": 4, "RGB": 3, "BGR": 3, "GRAY": 1, "GRAYA": 2, "A": 1}
DTYPE_SIZES = {"u8": 1, "u16": 2, "f16": 2, "f32": 4}
#: The longest header line the worker reads (its ``MAX_HEADER_BYTES``): a longer one is
#: refused before it is sent, as the worker could not tell whose request it was.
MAX_HEADER_BYTES = 1 << 20


def encode_message(
    message: Dict[str, Any], payloads: Sequence[Tuple[str, bytes]] = ()
) -> bytes:
    """The header line of ``message``, declaring ``payloads`` when there are some."""
    if payloads:
        message = dict(message)
        message["payloads"] = [{"name": n, "bytes": len(d)} for n, d in payloads]
    return json.dumps(message, separators=(",", ":")).encode("utf-8") + b"\n"


class WorkerError(Exception):
    """The worker could not be started, died, or answered a request with an error.

    ``kind``: the protocol's error kind (``bad-request``, ``weights``, ``device``,
    ``cancelled``, ``internal``), ``worker`` when the process itself failed or ``timeout`` when
    it did not answer in time.
    """

    def __init__(self, message: str, kind: str = "worker", stderr: str = ""):
        super().__init__(message)
        self.kind = kind
        self.stderr = stderr


class WorkerCancelled(WorkerError):
    """The request was cancelled."""

    def __init__(self, message: str = "cancelled"):
        super().__init__(message, "cancelled")


class WorkerTimeout(WorkerError):
    """The worker did not answer within the call's deadline (it was stopped or is stuck)."""

    def __init__(self, message: str, kind: str = "timeout", stderr: str = ""):
        super().__init__(message, kind, stderr)


class Pixels(object):
    """Raw pixels: ``width`` x ``height`` samples of ``channels`` in ``dtype``, little-endian.

    ``channels``: RGBA, BGRA, RGB, BGR, GRAY, GRAYA (or A for a mask); ``dtype``: u8, u16, f16
    or f32; ``linear``: values are linear-light rather than sRGB-encoded. ``info``: the extra
    fields the worker sent with a result (``device``, ``seconds``, ``model_loads``...).
    """

    __slots__ = ("width", "height", "channels", "dtype", "linear", "data", "info")

    def __init__(
        self,
        width: int,
        height: int,
        channels: str,
        dtype: str,
        data: bytes,
        linear: bool = False,
        info: Optional[Dict[str, Any]] = None,
    ):
        self.width = int(width)
        self.height = int(height)
        self.channels = channels
        self.dtype = dtype
        self.data = data
        self.linear = bool(linear)
        self.info = dict(info or {})

    @property
    def expected_size(self) -> int:
        """The byte count this layout needs."""
        count = CHANNEL_COUNTS.get(self.channels, 0)
        return self.width * self.height * count * DTYPE_SIZES.get(self.dtype, 0)

    def check(self, what: str = "image") -> None:
        """Raise ``ValueError`` unless the layout is known and ``data`` has the right size."""
        if self.channels not in CHANNEL_COUNTS:
            raise ValueError("%s: unknown channels %r" % (what, self.channels))
        if self.dtype not in DTYPE_SIZES:
            raise ValueError("%s: unknown dtype %r" % (what, self.dtype))
        if len(self.data) != self.expected_size:
            raise ValueError(
                "%s: %dx%d %s %s needs %d bytes, got %d"
                % (
                    what,
                    self.width,
                    self.height,
                    self.channels,
                    self.dtype,
                    self.expected_size,
                    len(self.data),
                )
            )

    def header(self, payload: str) -> Dict[str, Any]:
        """The protocol's IMAGE object for this image, sent as payload ``payload``."""
        return {
            "width": self.width,
            "height": self.height,
            "channels": self.channels,
            "dtype": self.dtype,
            "linear": self.linear,
            "payload": payload,
        }

    def __repr__(self) -> str:
        return "Pixels(%dx%d %s %s%s, %d bytes)" % (
            self.width,
            self.height,
            self.channels,
            self.dtype,
            " linear" if self.linear else "",
            len(self.data),
        )


#: A selection byte -> 255 where the pixel is at least half selected, else 0.
HALF_SELECTED = bytes(255 if value >= 128 else 0 for value in range(256))


def black_outside(pixels: Pixels, keep: bytes) -> Pixels:
    """``pixels`` with their colour samples zeroed where ``keep`` (one byte a pixel: 0 drops
    it) is 0, alpha untouched: black, which the models read as holding no colour (as the
    corners of a rotated reference). All in C: a byte mask built by strided copies, and-ed
    with the samples as one integer."""
    if len(keep) != pixels.width * pixels.height:
        raise ValueError("the mask must have one byte per pixel")
    pixel_bytes = len(pixels.data) // max(1, len(keep))
    colour = (CHANNEL_COUNTS[pixels.channels] - ("A" in pixels.channels)) * DTYPE_SIZES[
        pixels.dtype]
    pattern = bytearray(len(pixels.data))
    for offset in range(pixel_bytes):
        pattern[offset::pixel_bytes] = keep if offset < colour else b"\xff" * len(keep)
    kept = int.from_bytes(pixels.data, "little") & int.from_bytes(pattern, "little")
    return Pixels(pixels.width, pixels.height, pixels.channels, pixels.dtype,
                  kept.to_bytes(len(pixels.data), "little"), linear=pixels.linear)
