# Python 3.8 compatible on purpose, so no pyupgrade rewrites:
# ruff: noqa: UP004, UP006, UP031, UP035, UP045
"""Live preview for the host dialogs: small copies of the pixels, 8-bit RGBA for display, and a
runner that computes only the newest preview on a background thread.

Standard library only. The hosts read the target (the selection's area or the whole layer)
once, :func:`shrink` it to preview size, and hand :class:`PreviewRunner` a request whenever
the reference, strength or working size changes; the runner coalesces them (a new request
replaces a waiting one and cancels the running one, so no queue of stale jobs builds up) and
the dialog takes the newest result with :meth:`PreviewRunner.take` from its UI-thread timer.
"""

from __future__ import annotations

import itertools
import struct
import threading
import time
from typing import Any, Callable, Dict, Optional, Tuple

from .protocol import CHANNEL_COUNTS, DTYPE_SIZES, Pixels, WorkerCancelled

#: The longest side of the preview picture a dialog shows, in pixels.
PREVIEW_SIDE = 360
#: References are sent to the preview at most this long side: the worker shrinks them to the
#: working size anyway, and a preview should not move a 40-megapixel reference every time.
PREVIEW_REFERENCE_SIDE = 1024


def preview_side(full_side: int, working_size: Any) -> int:
    """The longest side the preview's target gets: the working size the network will see (so
    the preview shows what the run will give), at least :data:`PREVIEW_SIDE`, never more than
    the image itself. ``working_size`` is a number or the host's "native" marker (then the
    preview works at 1024 at most)."""
    wanted = working_size if isinstance(working_size, int) and working_size > 0 else 1024
    return max(1, min(int(full_side), max(PREVIEW_SIDE, int(wanted))))


def shrink(pixels: Pixels, max_side: int) -> Pixels:
    """``pixels`` at most ``max_side`` on their longer side (same layout), by taking the
    centre pixel of each ``step`` x ``step`` block: strided byte copies, fast in pure Python
    for any depth. Returned unchanged when already small enough."""
    step = -(-max(pixels.width, pixels.height) // max(1, int(max_side)))
    if step <= 1:
        return pixels
    return _decimate(pixels, step)


def shrink_mask(mask: Optional[bytes], width: int, height: int, max_side: int
                ) -> Optional[bytes]:  # fmt: skip
    """A one-byte-per-pixel mask of ``width`` x ``height`` shrunk as :func:`shrink` shrinks the
    pixels it belongs to (None stays None)."""
    if mask is None:
        return None
    return shrink(Pixels(width, height, "A", "u8", mask), max_side).data


class PreviewTarget(object):
    """A source read once for previews: its pixels at full size and its selection (one byte a
    pixel, or None), shrunk on demand for a working size; the latest size's copy is kept."""

    def __init__(self, target: Pixels, mask: Optional[bytes]):
        self.target = target
        self.mask = mask
        self._shrunk: Dict[int, Tuple[Pixels, Optional[Pixels]]] = {}

    def for_working_size(self, working_size: Any) -> Tuple[Pixels, Optional[Pixels]]:
        """The target and its mask (an ``A`` image, or None) at :func:`preview_side`."""
        target = self.target
        side = preview_side(max(target.width, target.height), working_size)
        if side not in self._shrunk:
            small = shrink(target, side)
            mask = shrink_mask(self.mask, target.width, target.height, side)
            self._shrunk = {side: (small, None if mask is None else Pixels(
                small.width, small.height, "A", "u8", mask))}  # fmt: skip
        return self._shrunk[side]


def _decimate(pixels: Pixels, step: int) -> Pixels:
    width, height = -(-pixels.width // step), -(-pixels.height // step)
    pixel = CHANNEL_COUNTS[pixels.channels] * DTYPE_SIZES[pixels.dtype]
    row_bytes = pixels.width * pixel
    first = min(step // 2, pixels.width - 1) * pixel  # the block's centre column
    data = memoryview(pixels.data)
    out = bytearray(width * height * pixel)
    line = bytearray(width * pixel)
    for y in range(height):
        source_y = min(y * step + step // 2, pixels.height - 1)
        row = data[source_y * row_bytes:(source_y + 1) * row_bytes]
        for lane in range(pixel):
            picked = row[first + lane::pixel * step][:width]
            if len(picked) < width:  # the last block is narrower than its centre offset
                picked = bytes(picked) + bytes(row[-pixel + lane:][:1]) * (width - len(picked))
            line[lane::pixel] = picked
        out[y * width * pixel:(y + 1) * width * pixel] = line
    return Pixels(width, height, pixels.channels, pixels.dtype, bytes(out),
                  linear=pixels.linear)  # fmt: skip


def _srgb_table(size: int = 4096) -> bytes:
    """8-bit sRGB codes of linear values ``i / (size - 1)``."""
    table = bytearray(size)
    for i in range(size):
        v = i / (size - 1)
        encoded = 12.92 * v if v <= 0.0031308 else 1.055 * v ** (1 / 2.4) - 0.055
        table[i] = int(encoded * 255 + 0.5)
    return bytes(table)


_SRGB_TABLE: list = []
#: Preview request ids, unique in the process (several dialogs share one worker).
_request_numbers = itertools.count(1)


def to_rgba8(pixels: Pixels) -> bytes:
    """The pixels as 8-bit sRGB RGBA bytes (R, G, B, A; opaque where there is no alpha), for
    showing in a dialog: 16-bit samples keep their high byte, floats are clipped to [0, 1]
    (and sRGB-encoded when linear)."""
    channels, dtype = pixels.channels, pixels.dtype
    count = pixels.width * pixels.height
    lanes = CHANNEL_COUNTS[channels]
    if dtype == "u8":
        samples: Any = pixels.data
    elif dtype == "u16":
        samples = pixels.data[1::2]  # little-endian: every second byte is the high one
    else:
        samples = _float_codes(pixels, count * lanes)
    order = {"RGBA": (0, 1, 2, 3), "BGRA": (2, 1, 0, 3), "RGB": (0, 1, 2, None),
             "BGR": (2, 1, 0, None), "GRAY": (0, 0, 0, None), "GRAYA": (0, 0, 0, 1)}[channels]
    out = bytearray(count * 4)
    for lane, source in enumerate(order):
        out[lane::4] = b"\xff" * count if source is None else samples[source::lanes]
    return bytes(out)


def _float_codes(pixels: Pixels, total: int) -> bytes:
    """Float samples as 8-bit codes (linear colour sRGB-encoded, alpha as is)."""
    values = struct.unpack("<%d%s" % (total, "e" if pixels.dtype == "f16" else "f"), pixels.data)
    lanes = CHANNEL_COUNTS[pixels.channels]
    alpha_lane = lanes - 1 if "A" in pixels.channels else -1
    if pixels.linear and not _SRGB_TABLE:
        _SRGB_TABLE.append(_srgb_table())
    table = _SRGB_TABLE[0] if pixels.linear else None
    codes = bytearray(total)
    for i, value in enumerate(values):
        value = 0.0 if not value > 0.0 else (1.0 if value > 1.0 else value)  # NaN -> 0
        if table is not None and i % lanes != alpha_lane:
            codes[i] = table[int(value * 4095 + 0.5)]
        else:
            codes[i] = int(value * 255 + 0.5)
    return bytes(codes)


#: What :meth:`PreviewRunner.take` returns: (generation, result, error, seconds).
PreviewOutcome = Tuple[int, Any, Optional[BaseException], float]


class PreviewRunner(object):
    """Computes previews one at a time on a background thread, the newest request only.

    ``compute(params, request_id)`` does the work (it may raise); ``cancel(request_id)``, if
    given, asks a running computation to stop when a newer request arrives. A result is kept
    only if no newer request came while it was computed, so what :meth:`take` returns always
    belongs to the latest request.
    """

    def __init__(self, compute: Callable[[Any, str], Any],
                 cancel: Optional[Callable[[str], Any]] = None, name: str = "c2e-preview"):
        self._compute = compute
        self._cancel = cancel
        self._name = name
        self._condition = threading.Condition()
        self._generation = 0
        self._pending: Optional[Tuple[int, Any]] = None
        self._running: Optional[str] = None
        self._cancelled: Optional[str] = None  # the running request already asked to stop
        self._outcome: Optional[PreviewOutcome] = None
        self._thread: Optional[threading.Thread] = None
        self._closed = False
        self.computed = 0  # computations started (stale ones included), for tests

    @property
    def generation(self) -> int:
        """The number of the latest request."""
        return self._generation

    @property
    def busy(self) -> bool:
        """True while a request waits or computes."""
        with self._condition:
            return self._pending is not None or self._running is not None

    def request(self, params: Any) -> int:
        """Ask for a preview of ``params``; returns its generation number. A waiting request is
        replaced, a running one cancelled."""
        with self._condition:
            if self._closed:
                raise RuntimeError("the preview runner is closed")
            self._generation += 1
            self._pending = (self._generation, params)
            self._outcome = None
            stale = self._running if self._running != self._cancelled else None
            self._cancelled = self._running
            if self._thread is None:
                self._thread = threading.Thread(target=self._loop, name=self._name)
                self._thread.daemon = True
                self._thread.start()
            self._condition.notify()
            generation = self._generation
        if stale is not None and self._cancel is not None:
            try:
                self._cancel(stale)
            except Exception:
                pass  # the stale result is dropped anyway
        return generation

    def discard(self) -> None:
        """Forget what was asked: a waiting request is dropped, a running one cancelled, and
        nothing computed so far is shown (the dialog has a message to show instead)."""
        with self._condition:
            self._generation += 1
            self._pending = None
            self._outcome = None
            stale = self._running if self._running != self._cancelled else None
            self._cancelled = self._running
        if stale is not None and self._cancel is not None:
            try:
                self._cancel(stale)
            except Exception:
                pass

    def take(self) -> Optional[PreviewOutcome]:
        """The finished preview of the latest request, once (None while there is none)."""
        with self._condition:
            outcome, self._outcome = self._outcome, None
            return outcome

    def close(self) -> None:
        """Stop after the running computation (cancelled); later results are dropped."""
        with self._condition:
            self._closed = True
            self._pending = None
            stale = self._running
            self._condition.notify()
        if stale is not None and self._cancel is not None:
            try:
                self._cancel(stale)
            except Exception:
                pass

    def _loop(self) -> None:
        while True:
            with self._condition:
                while self._pending is None and not self._closed:
                    self._condition.wait()
                if self._closed:
                    return
                generation, params = self._pending
                self._pending = None
                request_id = "preview-%d" % next(_request_numbers)
                self._running = request_id
                self.computed += 1
            started = time.perf_counter()
            result, error = None, None
            try:
                result = self._compute(params, request_id)
            except Exception as exc:  # shown by the dialog
                error = exc
            seconds = time.perf_counter() - started
            with self._condition:
                self._running = None
                if generation == self._generation and not self._closed:
                    self._outcome = (generation, result, error, seconds)


class WorkerPreviews(object):
    """Previews computed by a :class:`~c2e_client.launch.WorkerSession`'s worker, newest
    first (a :class:`PreviewRunner`). The host reads and shrinks the pixels on its UI thread
    and calls :meth:`request`; the background thread only talks to the worker (starting it if
    needed), so the host's API is never used off its UI thread."""

    def __init__(self, session: Any, name: str = "c2e-preview"):
        self.session = session
        self._client: Any = None
        self._cancelled: set = set()  # request ids asked to stop (maybe not sent yet)
        self.runner = PreviewRunner(self._compute, self._cancel, name=name)

    def request(self, python: str, target: Pixels, references: Any,
                weights: Optional[Any], options: Any, mask: Optional[Pixels] = None) -> int:
        """Queue a preview of ``target`` after ``references`` (blended by ``weights``) with the
        dialog's ``options`` (a ``ColorizeOptions``); returns its generation."""
        return self.runner.request((python, target, references, weights, options, mask))

    def take(self) -> Optional[PreviewOutcome]:
        """The newest finished preview: (generation, result Pixels, error, seconds), or None."""
        return self.runner.take()

    def close(self) -> None:
        """End the previews (a running one is cancelled); the worker stays for the run."""
        self.runner.close()

    def _compute(self, params: Tuple, request_id: str) -> Pixels:
        python, target, references, weights, options, mask = params
        client = self.session.client(python)
        self._client = client
        if request_id in self._cancelled:  # asked to stop while the worker started
            raise WorkerCancelled()
        # a cancel that came before the worker knew the request is caught at its first
        # progress message (the client cancels when on_progress answers True)
        return client.colorize(target, references, reference_weights=weights,
                               options=options.worker_options(client.hello_info), mask=mask,
                               request_id=request_id,
                               on_progress=lambda *_: request_id in self._cancelled)  # fmt: skip

    def _cancel(self, request_id: str) -> None:
        self._cancelled.add(request_id)
        client = self._client
        if client is not None:
            client.cancel(request_id)


class PreviewStatus(object):
    """The line under a dialog's preview, the same in both hosts: the time from the latest
    change (:meth:`changed`) to its picture, or why there is none (:meth:`finished`)."""

    def __init__(self) -> None:
        self.shown = 0  # previews shown
        self.latency: Optional[float] = None  # seconds from the last change to its picture
        self._changed_at = time.perf_counter()

    def changed(self) -> None:
        self._changed_at = time.perf_counter()

    def finished(self, outcome: PreviewOutcome) -> Tuple[Any, str]:
        """The picture to show (None for none) and the line under it."""
        _, result, error, _ = outcome
        if error is not None:
            return None, "No preview: " + first_line(error)
        self.shown += 1
        self.latency = time.perf_counter() - self._changed_at
        return result, "Preview in %.2f s" % self.latency


def first_line(error: Any) -> str:
    """An error's message, its first line only (a worker's may carry its output after)."""
    return str(error).partition("\n")[0]
