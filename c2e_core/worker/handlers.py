"""The worker's requests: ``hello``, ``colorize`` (queued as a :class:`Job`) and ``cancel``.

:class:`Handlers` answers them through a ``send`` function (``MessageWriter.send``); a
``colorize`` request's options, weights, device and steps are resolved once, here, and the
resolved objects passed down to the model cache and the pipeline. torch is imported when a
request needs it, never at import.
"""

from __future__ import annotations

import logging
import os
import platform
import queue
import sys
import threading
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from c2e_core.errors import C2EError, Cancelled
from c2e_core.options import STAGES, ColorizeRequest
from c2e_core.worker import PROTOCOL_VERSION
from c2e_core.worker.models import ModelCache
from c2e_core.worker.pixels import (
    encode_result,
    image_to_srgb,
    request_image,
    target_alpha,
    to_unit,
)
from c2e_core.worker.protocol import RequestError, one_line


def _version(distribution: str) -> str | None:
    """An installed distribution's version, without importing it (None: not installed)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(distribution)
    except PackageNotFoundError:
        return None

log = logging.getLogger("c2e_core.worker")

#: ``send(message, payloads)``: write one message; False if the host is gone.
Send = Callable[..., bool]
#: Put in the job queue to stop the job loop.
STOP = object()


@dataclass
class Job:
    """A queued ``colorize`` request with its payloads and cancellation flag."""

    message: dict[str, Any]
    payloads: dict[str, bytes]
    cancelled: threading.Event = field(default_factory=threading.Event)

    @property
    def id(self) -> str:
        return self.message["id"]


class Jobs:
    """The queued and running jobs by id: ``cancel`` finds them here (thread-safe)."""

    def __init__(self) -> None:
        self.queue: queue.Queue[Any] = queue.Queue()
        self._pending: dict[str, Job] = {}
        self._lock = threading.Lock()

    def submit(self, job: Job) -> bool:
        """Queue ``job``; False when its id is already in use."""
        with self._lock:
            if job.id in self._pending:
                return False
            self._pending[job.id] = job
        self.queue.put(job)
        return True

    def cancel(self, request_id: Any) -> bool:
        """Flag the job ``request_id`` as cancelled; False when there is none."""
        with self._lock:
            job = self._pending.get(request_id) if isinstance(request_id, str) else None
        if job is not None:
            job.cancelled.set()
        return job is not None

    def done(self, job: Job) -> None:
        with self._lock:
            self._pending.pop(job.id, None)

    def stop(self) -> None:
        """Cancel every job and end the job loop."""
        with self._lock:
            for job in self._pending.values():
                job.cancelled.set()
        self.queue.put(STOP)


@dataclass(frozen=True)
class Prepared:
    """A ``colorize`` request decoded and resolved: what the model and pipeline get."""

    request: ColorizeRequest
    layout: Any
    target: Any
    references: list[Any]
    mask: Any
    weights: Any  # ResolvedWeights
    weights_spec: str
    device: str  # checked for the weights' backend (inference.device.check_device_for)
    pre: Sequence[Any]
    post: Sequence[Any]


def weights_step(spec: str, step: Callable[[], Any]) -> Any:
    """Run ``step`` (finding or loading the weights ``spec``); an OS or decoding error there
    (a name too long for a path, a file that is not a checkpoint) is a ``weights`` error."""
    try:
        return step()
    except (C2EError, MemoryError):
        raise
    except Exception as exc:
        if type(exc).__name__ == "OutOfMemoryError":  # torch.cuda.OutOfMemoryError
            raise
        shown = spec if len(spec) <= 120 else spec[:119] + "…"
        if isinstance(exc, OSError) and exc.strerror:
            detail = exc.strerror
        else:
            detail = f"not a readable weights file ({type(exc).__name__}: {exc})"
        raise RequestError(f"weights {shown!r} cannot be used: {detail}", kind="weights") from None


class Handlers:
    """Answers ``hello`` and ``colorize`` with the worker's defaults (``--weights``,
    ``--device``), plugin host and model cache."""

    def __init__(
        self,
        send: Send,
        *,
        weights: str | None = None,
        device: str = "auto",
        host: Any = None,
        models: ModelCache | None = None,
    ):
        self.send = send
        self.weights = weights
        self.device = device
        self._host = host
        self.models = models if models is not None else ModelCache()

    @property
    def host(self) -> Any:
        if self._host is None:
            from c2e_core.plugins import get_plugin_host

            self._host = get_plugin_host()
        return self._host

    @property
    def model_loads(self) -> int:
        return self.models.loads

    def send_error(self, request_id: Any, kind: str, message: str) -> bool:
        return self.send(
            {"type": "error", "id": request_id, "kind": kind, "message": one_line(message)}
        )

    def default_weights(self) -> str | None:
        """``--weights`` if given, else the installed default weights, else None."""
        if self.weights is not None:
            return self.weights
        from c2e_core.weights.store import WeightsError, WeightsStore, default_weights_spec

        try:
            return default_weights_spec(WeightsStore(host=self.host))
        except WeightsError:
            return None

    def warm_up(self) -> None:
        """Load the weights named by ``--weights`` on the default device before a request asks
        for them (the server runs this on the job thread right after ``hello``: a request that
        comes sooner waits for it instead of loading a second copy). Without ``--weights``
        nothing is loaded ahead: the host may name other weights in every request (the plugins
        do), and a guess would cost memory and a load. A failure is left for the first request
        to report."""
        from c2e_core.inference.device import check_device_for
        from c2e_core.runtime.weights import is_runtime_weights
        from c2e_core.weights.store import resolve_weights

        spec = self.weights
        if spec is None:
            return
        try:
            weights = resolve_weights(spec, host=self.host)
            device = check_device_for(self.device, is_runtime_weights(weights.path))
            self.models.get(weights, device, host=self.host)
        except Exception as exc:  # the first request reports it, with its kind
            log.info("not loading %s ahead: %s", spec, one_line(str(exc)))

    def _default_is_torch(self) -> bool:
        """Whether the default weights are torch weights (not runtime weights)."""
        from c2e_core.runtime.weights import is_runtime_weights
        from c2e_core.weights.store import WeightsError, resolve_weights

        spec = self.default_weights()
        try:
            return spec is not None and not is_runtime_weights(
                resolve_weights(spec, host=self.host).path)
        except WeightsError:
            return False

    # -- hello ----------------------------------------------------------------------------------
    def hello(self) -> dict[str, Any]:
        """The ``hello`` message: versions, devices, weights, processors, plugins."""
        import c2e_core
        from c2e_core.inference.device import DeviceError, available_devices, select_device
        from c2e_core.runtime.networks import available_providers, runtime_version
        from c2e_core.weights.store import torch_installed

        warnings: list[str] = []
        default_device = self.device
        if self._default_is_torch():
            try:
                default_device = str(select_device(self.device))
            except DeviceError as exc:
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
            from c2e_core.weights.store import WeightsStore

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
            "torch_version": _version("torch") if torch_installed() else None,
            "onnxruntime_version": runtime_version(),
            "runtime_devices": available_providers(),
            "python": platform.python_version(),
            "executable": sys.executable,
            "pid": os.getpid(),
            "devices": available_devices(),
            "default_device": default_device,
            "weights": weights,
            "default_weights": self.default_weights(),
            "processors": processors,
            "plugins": plugins,
            "options": list(ColorizeRequest.PROTOCOL_OPTIONS),
            "model_loads": self.model_loads,
            "warnings": warnings,
        }

    # -- colorize -------------------------------------------------------------------------------
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

    def send_progress(self, job: Job, done: int, total: int, message: str) -> bool:
        """Report progress; True if the job was cancelled."""
        self.send(
            {"type": "progress", "id": job.id, "done": done, "total": total, "message": message}
        )
        return job.cancelled.is_set()

    def prepare(self, job: Job) -> Prepared:
        """Decode the images and resolve options, weights, device and steps, once; every
        mistake fails here, before any model loads."""
        from c2e_core.inference.device import check_device_for
        from c2e_core.inference.pipeline import resolve_steps
        from c2e_core.runtime.weights import is_runtime_weights
        from c2e_core.weights.store import WeightsStore, default_weights_spec, resolve_weights

        message, payloads = job.message, job.payloads
        request = ColorizeRequest.from_message(message, weights=self.weights, device=self.device)
        layout, target = request_image(message.get("target"), payloads, "target")
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
            ref_layout, ref = request_image(spec, payloads, what)
            references.append(image_to_srgb(ref, ref_layout))
        mask = None
        if message.get("mask") is not None:
            mask_layout, mask_samples = request_image(message["mask"], payloads, "mask", mask=True)
            if (mask_layout.width, mask_layout.height) != (layout.width, layout.height):
                raise RequestError(
                    f"mask is {mask_layout.width}x{mask_layout.height}, "
                    f"the target is {layout.width}x{layout.height}"
                )
            mask = to_unit(mask_samples[:, :, 0])
        spec = request.weights
        if spec is None:
            spec = default_weights_spec(WeightsStore(host=self.host))
        steps = {s: resolve_steps(getattr(request, s), s, self.host) for s in STAGES}
        weights = weights_step(spec, lambda: resolve_weights(spec, host=self.host))
        runtime = is_runtime_weights(weights.path)
        return Prepared(
            request=request,
            layout=layout,
            target=target,
            references=references,
            mask=mask,
            weights=weights,
            weights_spec=spec,
            device=check_device_for(request.device, runtime),
            pre=steps["pre"],
            post=steps["post"],
        )

    def colorize(self, job: Job) -> tuple[dict[str, Any], bytes]:
        """Decode, colorize and encode one request; the ``result`` header and its bytes."""
        job_input = self.prepare(job)
        request, layout = job_input.request, job_input.layout
        colorizer = weights_step(job_input.weights_spec, lambda: self.models.get(
            job_input.weights,
            job_input.device,
            compat=request.compat,
            precision=request.precision,
            host=self.host,
            on_load=lambda: self.send_progress(
                job, 0, 0, f"loading weights {job_input.weights_spec} on {job_input.device}"
            ),
        ))
        if job.cancelled.is_set():
            raise Cancelled("cancelled")
        mask = job_input.mask
        keep = (mask <= 0.0) if mask is not None else None
        # of the target's samples only what the result needs stays (a huge layer's payload
        # would otherwise be held beside its float copy and the result)
        alpha = target_alpha(job_input.target, layout)
        original = job_input.target if keep is not None else None
        rgb = image_to_srgb(job_input.target, layout)
        target_spec = job.message.get("target")
        if isinstance(target_spec, dict) and isinstance(target_spec.get("payload"), str):
            job.payloads.pop(target_spec["payload"], None)
        job_input = replace(job_input, target=None)
        colorized = colorizer.colorize(
            rgb,
            reference=job_input.references,
            reference_weights=request.reference_weights,
            size=request.size,
            mask=mask,
            strength=request.strength,
            clean=request.clean,
            keep_palette=request.keep_palette,
            pre=job_input.pre,
            post=job_input.post,
            progress=lambda done, total, text: self.send_progress(job, done, total, text),
        )
        del rgb
        out_layout, data = encode_result(
            colorized.rgb,
            layout,
            alpha=alpha,
            original=original,
            keep=keep,
            truncate=bool(colorized.truncate),
        )
        header: dict[str, Any] = {"type": "result", "id": job.id, **out_layout.header()}
        header.update(
            weights=colorizer.info.get("weights", job_input.weights_spec),
            device=str(colorizer.device),
            model_loads=self.model_loads,
        )
        return header, data
