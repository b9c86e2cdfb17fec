"""The long-lived worker the host plugins talk to (protocol version 1, ``docs/worker-protocol.md``).

One JSON header line per message on stdin/stdout, optionally followed by raw binary payloads.
Requests are read on a reader thread (so ``cancel`` arrives while a job runs); jobs run one at a
time on the calling thread; every write to stdout goes through one lock. The worker never dies on
a bad request: it answers an ``error`` message and keeps serving. Nothing at import time.
"""

from __future__ import annotations

import argparse
import io
import json
import logging
import os
import platform
import queue
import sys
import threading
import time
import traceback
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any, BinaryIO

import numpy as np

from c2e_core.errors import C2EError, Cancelled, InputError
from c2e_core.options import STAGES, ColorizeRequest

PROTOCOL_VERSION = 1
#: The longest header line accepted (payloads are not limited).
MAX_HEADER_BYTES = 1 << 20
#: How many loaded models stay in memory, keyed by (weights, device).
MODEL_CACHE_SIZE = 2

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
_INT_MAX = {"u8": 255.0, "u16": 65535.0}

log = logging.getLogger("c2e_core.worker")


class RequestError(InputError):
    """A request cannot be served; ``kind`` is one of :data:`c2e_core.errors.ERROR_KINDS`."""

    def __init__(self, message: str, kind: str = "bad-request"):
        super().__init__(message)
        self.kind = kind


def one_line(text: str, limit: int = 600) -> str:
    """Collapse ``text`` onto one line of at most ``limit`` characters."""
    flat = " ".join(str(text).split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


# -- pixels -------------------------------------------------------------------------------------
def _transfer(x: np.ndarray, function_name: str) -> np.ndarray:
    """Apply ``c2e_core.colour``'s exact sRGB transfer function to a numpy array."""
    import torch

    from c2e_core import colour

    tensor = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))
    return getattr(colour, function_name)(tensor).numpy()


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
        if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
            raise RequestError(f"{what}: {name} must be a positive integer, not {value!r}")
    channels = spec.get("channels", "A" if mask else None)
    allowed = ("A", "GRAY") if mask else tuple(c for c in CHANNEL_LAYOUTS if c != "A")
    if channels not in allowed:
        names = ", ".join(allowed)
        raise RequestError(f"{what}: channels must be one of {names}, not {channels!r}")
    dtype = spec.get("dtype")
    if dtype not in DTYPES:
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


def to_unit(samples: np.ndarray, dtype: str) -> np.ndarray:
    """Samples -> float32 in [0, 1] (floats are clipped; NaN becomes 0)."""
    if dtype in _INT_MAX:
        return samples.astype(np.float32) / np.float32(_INT_MAX[dtype])
    values = np.nan_to_num(samples.astype(np.float32), nan=0.0, posinf=1.0, neginf=0.0)
    return np.clip(values, 0.0, 1.0)


def from_unit(values: np.ndarray, dtype: str, truncate: bool = False) -> np.ndarray:
    """Float in [0, 1] -> samples of ``dtype``, quantised exactly like files are written."""
    from c2e_core.imageio import quantise

    return quantise(values, DTYPES[dtype].newbyteorder("="), truncate)


def image_to_srgb(samples: np.ndarray, layout: Layout) -> np.ndarray:
    """Decoded samples -> float32 ``[H, W, 3]`` sRGB in [0, 1] (alpha dropped)."""
    indices = CHANNEL_LAYOUTS[layout.channels][1]
    assert indices is not None
    rgb = to_unit(samples[:, :, list(indices)], layout.dtype)
    if layout.linear:
        rgb = _transfer(rgb, "linear_to_srgb")
    return np.ascontiguousarray(rgb, dtype=np.float32)


def encode_result(
    rgb: np.ndarray,
    target: np.ndarray,
    layout: Layout,
    *,
    keep: np.ndarray | None = None,
    truncate: bool = False,
) -> tuple[Layout, bytes]:
    """sRGB float ``[H, W, 3]`` -> raw bytes in the target's layout, alpha copied untouched.

    ``keep`` (``[H, W]`` bool): pixels that take the target's own samples unchanged.
    """
    channels = RESULT_CHANNELS.get(layout.channels, layout.channels)
    out_layout = Layout(layout.width, layout.height, channels, layout.dtype, layout.linear)
    count, indices, alpha_index = CHANNEL_LAYOUTS[channels]
    assert indices is not None
    values = _transfer(rgb, "srgb_to_linear") if layout.linear else rgb
    native = DTYPES[layout.dtype].newbyteorder("=")
    out = np.empty((layout.height, layout.width, count), dtype=native)
    out[:, :, list(indices)] = from_unit(values, layout.dtype, truncate)
    source_alpha = CHANNEL_LAYOUTS[layout.channels][2]
    if alpha_index is not None and source_alpha is not None:
        out[:, :, alpha_index] = target[:, :, source_alpha]
    if keep is not None and keep.any():
        if layout.channels in RESULT_CHANNELS:  # grey target: replicate its samples
            original = out.copy()
            original[:, :, list(indices)] = target[:, :, :1]
        else:
            original = target
        out[keep] = original[keep]
    return out_layout, out.astype(DTYPES[layout.dtype], copy=False).tobytes()


# -- messages -----------------------------------------------------------------------------------
@dataclass
class Job:
    """A queued ``colorize`` request with its payloads and cancellation flag."""

    message: dict[str, Any]
    payloads: dict[str, bytes]
    cancelled: threading.Event = field(default_factory=threading.Event)

    @property
    def id(self) -> str:
        return self.message["id"]


_STOP = object()


class Worker:
    """Serves protocol version 1 over a pair of binary streams (see :func:`serve`)."""

    def __init__(
        self,
        stdin: BinaryIO,
        stdout: BinaryIO,
        *,
        weights: str | None = None,
        device: str = "auto",
        host: Any = None,
    ):
        self.stdin = stdin
        self.stdout = stdout
        self.weights = weights
        self.device = device
        self._host = host
        self._write_lock = threading.Lock()
        self._jobs_lock = threading.Lock()
        self._jobs: queue.Queue[Any] = queue.Queue()
        self._pending: dict[str, Job] = {}
        self._models: OrderedDict[tuple[str, str], dict[Any, Any]] = OrderedDict()
        self.model_loads = 0
        self._closed = threading.Event()

    # -- plumbing -------------------------------------------------------------------------------
    @property
    def host(self) -> Any:
        if self._host is None:
            from c2e_core.plugins import get_plugin_host

            self._host = get_plugin_host()
        return self._host

    def send(self, message: dict[str, Any], payloads: list[tuple[str, bytes]] = ()) -> bool:
        """Write one message (and its payloads) atomically; False if the host is gone."""
        if payloads:
            message = dict(message)
            message["payloads"] = [{"name": name, "bytes": len(data)} for name, data in payloads]
        line = json.dumps(message, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        with self._write_lock:
            if self._closed.is_set():
                return False
            try:
                self.stdout.write(line + b"\n")
                for _, data in payloads:
                    self.stdout.write(data)
                self.stdout.flush()
            except (BrokenPipeError, ValueError, OSError):
                log.warning("the host closed the worker's stdout; stopping")
                self._closed.set()
                self._stop_all()
                return False
        return True

    def send_error(self, request_id: Any, kind: str, message: str) -> None:
        self.send({"type": "error", "id": request_id, "kind": kind, "message": one_line(message)})

    def _stop_all(self) -> None:
        with self._jobs_lock:
            for job in self._pending.values():
                job.cancelled.set()
        self._jobs.put(_STOP)

    # -- reading --------------------------------------------------------------------------------
    def _read_exact(self, count: int) -> bytes:
        chunks, remaining = [], count
        while remaining:
            chunk = self.stdin.read(min(remaining, 1 << 24))
            if not chunk:
                raise EOFError(f"end of input with {remaining} payload bytes missing")
            chunks.append(chunk)
            remaining -= len(chunk)
        return b"".join(chunks)

    def _read_header(self) -> bytes | None:
        """The next header line; None at end of input. Over-long lines are skipped and refused."""
        line = self.stdin.readline(MAX_HEADER_BYTES)
        if not line:
            return None
        if line.endswith(b"\n") or len(line) < MAX_HEADER_BYTES:
            return line
        while True:  # skip the rest of an over-long line
            rest = self.stdin.readline(MAX_HEADER_BYTES)
            if not rest or rest.endswith(b"\n"):
                break
        raise RequestError(f"header line longer than {MAX_HEADER_BYTES} bytes")

    def _read_payloads(self, message: dict[str, Any]) -> dict[str, bytes]:
        declared = message.get("payloads", [])
        if not isinstance(declared, list) or not all(
            isinstance(p, dict)
            and isinstance(p.get("name"), str)
            and isinstance(p.get("bytes"), int)
            and not isinstance(p.get("bytes"), bool)
            and p["bytes"] >= 0
            for p in declared
        ):
            raise RequestError(
                'payloads must be a list of {"name": str, "bytes": int >= 0}; the bytes that '
                "followed (if any) were read as the next messages"
            )
        payloads: dict[str, bytes] = {}
        for entry in declared:
            data = self._read_exact(entry["bytes"])
            if entry["name"] in payloads:
                raise RequestError(f"payload {entry['name']!r} declared twice")
            payloads[entry["name"]] = data
        return payloads

    def read_loop(self) -> None:
        """Read messages until end of input or ``shutdown`` (runs on the reader thread)."""
        try:
            while not self._closed.is_set():
                try:
                    line = self._read_header()
                except RequestError as exc:
                    self.send_error(None, "bad-request", str(exc))
                    continue
                if line is None:
                    log.info("end of input; exiting")
                    break
                if not line.strip():
                    continue
                try:
                    message = json.loads(line.decode("utf-8"))
                except (UnicodeDecodeError, ValueError) as exc:
                    self.send_error(None, "bad-request", f"malformed JSON header line: {exc}")
                    continue
                if not isinstance(message, dict):
                    kind = type(message).__name__
                    self.send_error(
                        None, "bad-request", f"a message must be a JSON object, not {kind}"
                    )
                    continue
                request_id = message.get("id")
                if not isinstance(request_id, (str, int, float, type(None))) or isinstance(
                    request_id, bool
                ):
                    request_id = None
                try:
                    payloads = self._read_payloads(message)
                except RequestError as exc:
                    self.send_error(request_id, "bad-request", str(exc))
                    continue
                if not self.dispatch(message, payloads, request_id):
                    break
        except EOFError as exc:
            log.warning("%s; exiting", exc)
        except Exception:  # the reader must always let the main loop finish
            log.error("reader thread failed:\n%s", traceback.format_exc())
        finally:
            self._stop_all()

    def dispatch(
        self, message: dict[str, Any], payloads: dict[str, bytes], request_id: Any
    ) -> bool:
        """Handle one message on the reader thread; False to stop reading."""
        kind = message.get("type")
        if kind == "colorize":
            if not isinstance(request_id, str) or not request_id:
                self.send_error(request_id, "bad-request", "colorize needs a non-empty string id")
                return True
            job = Job(message, payloads)
            with self._jobs_lock:
                if request_id in self._pending:
                    duplicate = True
                else:
                    duplicate = False
                    self._pending[request_id] = job
            if duplicate:
                self.send_error(request_id, "bad-request", f"id {request_id!r} is already in use")
            else:
                self._jobs.put(job)
        elif kind == "cancel":
            with self._jobs_lock:
                job = self._pending.get(request_id) if isinstance(request_id, str) else None
            if job is not None:
                job.cancelled.set()
        elif kind == "hello":
            try:
                reply = self.hello()
            except Exception as exc:
                log.error("hello failed:\n%s", traceback.format_exc())
                self.send_error(request_id, "internal", f"hello failed: {exc}")
                return True
            if request_id is not None:
                reply["id"] = request_id
            self.send(reply)
        elif kind == "shutdown":
            log.info("shutdown requested")
            return False
        else:
            self.send_error(
                request_id,
                "bad-request",
                f"unknown message type {kind!r} (expected hello, colorize, cancel or shutdown)",
            )
        return True

    def default_weights(self) -> str | None:
        """``--weights`` if given, else the installed default weights, else None."""
        if self.weights is not None:
            return self.weights
        from c2e_core.loader import default_weights_spec
        from c2e_core.weights import WeightsError, WeightsStore

        try:
            return default_weights_spec(WeightsStore(host=self.host))
        except WeightsError:
            return None

    # -- hello ----------------------------------------------------------------------------------
    def hello(self) -> dict[str, Any]:
        """The ``hello`` message: versions, devices, weights, processors, plugins."""
        import torch

        import c2e_core
        from c2e_core.device import DeviceError, available_devices, select_device

        warnings: list[str] = []
        try:
            default_device = str(select_device(self.device))
        except DeviceError as exc:
            default_device = self.device
            warnings.append(str(exc))
        weights: list[dict[str, Any]] = []
        processors: list[dict[str, Any]] = []
        plugins: list[str] = []
        try:
            host = self.host
            plugins = host.plugin_names()
            processors = [
                {"name": p.name, "stage": p.stage, "description": p.description, "plugin": p.plugin}
                for p in host.processors().values()
            ]
            warnings += [f"plugin {n!r} failed to load: {e}" for n, e in host.failed.items()]
        except Exception as exc:
            warnings.append(f"plugins unavailable: {one_line(str(exc))}")
        try:
            from c2e_core.weights import WeightsStore

            weights = [
                {"name": e.name, "architecture": e.architecture, "source": e.source}
                for e in WeightsStore(host=self._host).list()
            ]
        except Exception as exc:
            warnings.append(f"weights store unavailable: {one_line(str(exc))}")
        return {
            "type": "hello",
            "protocol": PROTOCOL_VERSION,
            "c2e_version": c2e_core.__version__,
            "torch_version": torch.__version__,
            "python": platform.python_version(),
            "executable": sys.executable,
            "pid": os.getpid(),
            "devices": available_devices(),
            "default_device": default_device,
            "weights": weights,
            "default_weights": self.default_weights(),
            "processors": processors,
            "plugins": plugins,
            "model_loads": self.model_loads,
            "warnings": warnings,
        }

    # -- jobs -----------------------------------------------------------------------------------
    def serve_jobs(self) -> int:
        """Run queued jobs one at a time until stopped (runs on the calling thread)."""
        while True:
            job = self._jobs.get()
            if job is _STOP:
                break
            try:
                self.run_job(job)
            finally:
                with self._jobs_lock:
                    self._pending.pop(job.id, None)
        # answer whatever is still queued (shutdown or end of input arrived first)
        while True:
            try:
                job = self._jobs.get_nowait()
            except queue.Empty:
                break
            if job is not _STOP:
                self.send_error(job.id, "cancelled", "the worker is shutting down")
        return 0

    def run_job(self, job: Job) -> None:
        """Serve one ``colorize`` request, answering ``result`` or ``error`` (of the raised
        :class:`~c2e_core.errors.C2EError`'s kind)."""
        started = time.perf_counter()
        try:
            if job.cancelled.is_set():
                raise Cancelled("cancelled before it started")
            header, data = self.colorize(job)
            if job.cancelled.is_set():
                raise Cancelled("cancelled")
            header["seconds"] = round(time.perf_counter() - started, 3)
            self.send(header, [("result", data)])
        except Cancelled:
            self.send_error(job.id, Cancelled.kind, "cancelled")
        except C2EError as exc:
            if exc.kind == "internal":
                log.error("colorize %s failed:\n%s", job.id, traceback.format_exc())
            self.send_error(job.id, exc.kind, str(exc))
        except MemoryError:
            self.send_error(job.id, "device", "out of memory; try a smaller size")
        except Exception as exc:
            if type(exc).__name__ == "OutOfMemoryError":  # torch.cuda.OutOfMemoryError
                self.send_error(
                    job.id, "device", "out of GPU memory; try a smaller size or device cpu"
                )
                return
            log.error("colorize %s failed:\n%s", job.id, traceback.format_exc())
            self.send_error(job.id, "internal", f"{type(exc).__name__}: {exc}")

    def _image(self, spec: Any, payloads: dict[str, bytes], what: str, *, mask: bool = False):
        layout = parse_layout(spec, what, mask=mask)
        if "payload" in spec and "file" in spec:
            raise RequestError(f"{what}: give either payload or file, not both")
        if "payload" in spec:
            name = spec["payload"]
            if not isinstance(name, str) or name not in payloads:
                raise RequestError(f"{what}: payload {name!r} was not declared in payloads")
            data = payloads[name]
        elif "file" in spec:
            path = spec["file"]
            if not isinstance(path, str) or not path:
                raise RequestError(f"{what}: file must be a path string")
            try:
                with open(path, "rb") as handle:
                    data = handle.read(layout.nbytes + 1)
            except OSError as exc:
                raise RequestError(f"{what}: cannot read {path}: {exc.strerror or exc}") from None
        else:
            raise RequestError(f"{what}: needs a payload name or a file")
        return layout, decode_pixels(layout, data, what)

    def colorizer(self, spec: str, request: ColorizeRequest, job: Job) -> Any:
        """A cached :class:`Colorizer` for the request's weights, device, compat and precision;
        loads the model when needed (one model per (weights, device))."""
        from c2e_core.device import select_device
        from c2e_core.pipeline import Colorizer
        from c2e_core.weights import resolve_weights

        resolved = select_device(request.device)
        path = resolve_weights(spec, host=self.host).path
        stat = path.stat()  # a re-imported name is a new file: a new model
        key = (str(path), stat.st_mtime_ns, stat.st_size, str(resolved))
        entry = self._models.get(key)
        if entry is None:
            self.send_progress(job, 0, 0, f"loading weights {spec} on {resolved}")
            colorizer = Colorizer.from_weights(spec, device=resolved, host=self.host)
            self.model_loads += 1
            entry = {(None, "fp32"): colorizer}
            self._models[key] = entry
            while len(self._models) > MODEL_CACHE_SIZE:
                self._models.popitem(last=False)
                if resolved.type == "cuda":
                    import torch

                    torch.cuda.empty_cache()
        variant = (request.compat, request.precision)
        if variant not in entry:
            base = entry[(None, "fp32")]
            entry[variant] = Colorizer(
                base.model,
                device=base.device,
                compat=request.compat,
                precision=request.precision,
                host=self.host,
                info=base.info,
            )
        self._models.move_to_end(key)
        return entry[variant]

    def send_progress(self, job: Job, done: int, total: int, message: str) -> bool:
        """Report progress; True if the job was cancelled."""
        self.send(
            {"type": "progress", "id": job.id, "done": done, "total": total, "message": message}
        )
        return job.cancelled.is_set()

    def colorize(self, job: Job) -> tuple[dict[str, Any], bytes]:
        """Decode, colorize and encode one request; the ``result`` header and its bytes."""
        from c2e_core.loader import default_weights_spec
        from c2e_core.pipeline import resolve_steps

        message, payloads = job.message, job.payloads
        request = ColorizeRequest.from_message(message, weights=self.weights, device=self.device)
        layout, target = self._image(message.get("target"), payloads, "target")
        # references
        if "references" in message:
            specs = message["references"]
            if not isinstance(specs, list) or not specs:
                raise RequestError("references must be a non-empty list of images")
        elif "reference" in message:
            specs = [message["reference"]]
        else:
            raise RequestError("colorize needs a reference (or references)")
        references = []
        for index, spec in enumerate(specs):
            what = "reference" if len(specs) == 1 else f"references[{index}]"
            ref_layout, ref = self._image(spec, payloads, what)
            references.append(image_to_srgb(ref, ref_layout))
        # mask
        mask = None
        if message.get("mask") is not None:
            mask_layout, mask_samples = self._image(message["mask"], payloads, "mask", mask=True)
            if (mask_layout.width, mask_layout.height) != (layout.width, layout.height):
                raise RequestError(
                    f"mask is {mask_layout.width}x{mask_layout.height}, "
                    f"the target is {layout.width}x{layout.height}"
                )
            mask = to_unit(mask_samples[:, :, 0], mask_layout.dtype)
        # options
        spec = request.weights
        if spec is None:
            from c2e_core.weights import WeightsStore

            spec = default_weights_spec(WeightsStore(host=self.host))
        for stage in STAGES:  # unknown steps and step options fail before any model loads
            resolve_steps(getattr(request, stage), stage, self.host)
        # run
        colorizer = self.colorizer(spec, request, job)
        if job.cancelled.is_set():
            raise Cancelled("cancelled")
        colorized = colorizer.colorize(
            image_to_srgb(target, layout),
            reference=references,
            reference_weights=request.reference_weights,
            size=request.size,
            mask=mask,
            strength=request.strength,
            pre=request.pre,
            post=request.post,
            progress=lambda done, total, text: self.send_progress(job, done, total, text),
        )
        keep = (mask <= 0.0) if mask is not None else None
        out_layout, data = encode_result(
            colorized.rgb, target, layout, keep=keep, truncate=bool(colorized.truncate)
        )
        header: dict[str, Any] = {"type": "result", "id": job.id, **out_layout.header()}
        header.update(
            weights=colorizer.info.get("weights", spec),
            device=str(colorizer.device),
            model_loads=self.model_loads,
        )
        return header, data

    # -- main -----------------------------------------------------------------------------------
    def serve(self) -> int:
        """Greet, start the reader thread and run jobs until shutdown or end of input."""
        try:
            greeting = self.hello()
        except Exception as exc:  # still greet: the host needs the protocol version
            log.error("cannot build hello:\n%s", traceback.format_exc())
            greeting = {"type": "hello", "protocol": PROTOCOL_VERSION, "warnings": [str(exc)]}
        self.send(greeting)
        reader = threading.Thread(target=self.read_loop, name="c2e-worker-reader", daemon=True)
        reader.start()
        status = self.serve_jobs()
        self._closed.set()
        return status


def serve(
    stdin: BinaryIO,
    stdout: BinaryIO,
    *,
    weights: str | None = None,
    device: str = "auto",
    host: Any = None,
) -> int:
    """Serve the worker protocol on binary ``stdin``/``stdout``; returns the exit status (0)."""
    return Worker(stdin, stdout, weights=weights, device=device, host=host).serve()


def _protocol_stdout() -> BinaryIO:
    """A private binary handle on the real stdout; fd 1 and ``sys.stdout`` then go to stderr."""
    sys.stdout.flush()
    try:
        fd = os.dup(sys.stdout.fileno())
        os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
        stream: BinaryIO = os.fdopen(fd, "wb")
    except (OSError, AttributeError, ValueError, io.UnsupportedOperation):
        stream = sys.stdout.buffer
    sys.stdout = sys.stderr
    return stream


def run(args: argparse.Namespace) -> int:
    """``c2e worker``: serve ``sys.stdin``/``sys.stdout`` (stray prints go to stderr)."""
    stdout = _protocol_stdout()
    if not logging.getLogger().handlers:
        logging.basicConfig(stream=sys.stderr, level=logging.INFO, format="c2e-worker: %(message)s")
    log.info("worker %d ready (protocol %d)", os.getpid(), PROTOCOL_VERSION)
    return serve(
        sys.stdin.buffer,
        stdout,
        weights=getattr(args, "weights", None),
        device=getattr(args, "device", "auto") or "auto",
    )

