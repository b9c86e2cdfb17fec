"""Runtime weights' networks in onnxruntime sessions, and the device -> execution provider map.

Device names: ``auto`` (the first present of CUDA, DirectML, CoreML, OpenVINO, then the CPU),
``cpu``, ``cuda``/``cuda:N``, ``directml``/``directml:N`` (Windows), ``coreml`` (macOS),
``openvino``. A provider that this onnxruntime lacks is a :class:`DeviceError` saying which
package brings it.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from c2e_core.errors import DeviceError
from c2e_core.runtime.weights import RuntimeWeights

#: Device name -> (onnxruntime execution provider, the package that brings it).
PROVIDERS: dict[str, tuple[str, str]] = {
    "cuda": ("CUDAExecutionProvider", "onnxruntime-gpu"),
    "directml": ("DmlExecutionProvider", "onnxruntime-directml"),
    "coreml": ("CoreMLExecutionProvider", "onnxruntime (macOS wheels)"),
    "openvino": ("OpenVINOExecutionProvider", "onnxruntime-openvino"),
    "cpu": ("CPUExecutionProvider", "onnxruntime"),
}
#: A reference code: the tensors a model's ``embed`` returns, as float32 arrays.
Code = tuple[np.ndarray, ...]
#: ``auto``'s order of preference.
AUTO_ORDER = ("cuda", "directml", "coreml", "openvino", "cpu")
_ALIASES = {"gpu": "cuda", "dml": "directml"}


def _onnxruntime():
    try:
        import onnxruntime
    except ImportError:
        raise DeviceError(
            "onnxruntime is not installed; `pip install onnxruntime` (or use the torch backend)"
        ) from None
    return onnxruntime


def runtime_version() -> str | None:
    """onnxruntime's version, or None where it is not installed."""
    try:
        import onnxruntime
    except ImportError:
        return None
    return onnxruntime.__version__


def available_providers() -> list[str]:
    """The device names whose execution provider this onnxruntime has (``cpu`` always)."""
    present = set(_onnxruntime().get_available_providers())
    return [name for name in AUTO_ORDER if PROVIDERS[name][0] in present]


def providers_for(device: str) -> list[Any]:
    """onnxruntime's ``providers`` argument for a device name (the CPU always last, as the
    fallback for operators a provider lacks)."""
    text = str(device).strip().lower()
    name, _, index = text.partition(":")
    name = _ALIASES.get(name, name)
    present = available_providers()
    if name == "auto":
        name = present[0]
    if name not in PROVIDERS:
        known = ", ".join(["auto", *AUTO_ORDER])
        raise DeviceError(f"unknown device {device!r} for the onnx backend; use {known}")
    if name not in present:
        provider, package = PROVIDERS[name]
        raise DeviceError(
            f"{name} was requested but this onnxruntime has no {provider} (it has: "
            f"{', '.join(present)}); install {package} in place of onnxruntime, or use "
            "--device cpu or auto"
        )
    if index and not index.isdigit():
        raise DeviceError(f"unknown device {device!r}")
    chosen: list[Any] = [PROVIDERS[name][0]]
    if index:
        chosen = [(PROVIDERS[name][0], {"device_id": int(index)})]
    return chosen if name == "cpu" else [*chosen, PROVIDERS["cpu"][0]]


class OnnxNetworks:
    """A model's ``embed`` and ``predict_ab`` graphs in onnxruntime sessions (numpy in, out).

    ``threads``: intra-op threads (default: onnxruntime's, one per core)."""

    def __init__(self, weights: RuntimeWeights, device: str = "auto", threads: int | None = None):
        self.device_name = str(device).strip().lower()
        self.threads = threads
        ort = _onnxruntime()
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.log_severity_level = 3  # warnings about provider fallbacks are not the user's
        # no busy-waiting threads after a run: they would take the cores from the rest of the
        # pipeline (measured: the end-to-end time 20 % longer with spinning)
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        if threads is None and os.environ.get("OMP_NUM_THREADS", "").isdigit():
            threads = int(os.environ["OMP_NUM_THREADS"])
        if threads:
            options.intra_op_num_threads = int(threads)
        self.weights = weights
        self.ab_scale = weights.ab_scale
        self.size_multiple = weights.size_multiple
        self.blend = weights.blend
        self.precision = "fp32"
        self.providers = providers_for(device)
        try:
            self._sessions = {
                name: ort.InferenceSession(graph, options, providers=self.providers)
                for name, graph in weights.graphs.items()
            }
        except Exception as exc:  # onnxruntime raises its own Fail/InvalidGraph types
            where = weights.path or "runtime weights"
            raise DeviceError(f"{where}: onnxruntime cannot load the networks ({exc})") from None
        # the exporter drops code tensors the network does not read (a correspondence model's
        # token orientations when it keeps one orientation)
        self._predict_inputs = {i.name for i in self._sessions["predict_ab"].get_inputs()}

    def on(self, device: str) -> OnnxNetworks:
        """These networks on another device (itself when it is the same)."""
        same = str(device).strip().lower() == self.device_name
        return self if same else OnnxNetworks(self.weights, device, self.threads)

    @property
    def provider(self) -> str:
        """The execution provider the sessions run on first."""
        return self._sessions["embed"].get_providers()[0]

    def embed(self, rgb: np.ndarray) -> Code:
        """Reference code of one reference ``[1, 3, h, w]`` sRGB in [0, 1]."""
        feed = {"rgb": np.ascontiguousarray(rgb, dtype=np.float32)}
        return tuple(self._sessions["embed"].run(list(self.weights.code_names), feed))

    def predict_ab(self, l_norm: np.ndarray, code: Sequence[np.ndarray]) -> np.ndarray:
        """The network's ab output ``[B, 2, h, w]`` for normalised L ``[B, 1, h, w]``."""
        feed = {"l_norm": np.ascontiguousarray(l_norm, dtype=np.float32)}
        for name, value in zip(self.weights.code_names, code, strict=True):
            if name in self._predict_inputs:
                feed[name] = np.ascontiguousarray(value, dtype=np.float32)
        return self._sessions["predict_ab"].run(["ab"], feed)[0]


def blend_codes(codes: Sequence[Code], weights: Sequence[float], blend: str) -> Code:
    """Several references' codes as one. ``mean``: the weighted mean of each tensor.
    ``tokens`` (``z, keys, values, bias[, orientation]`` of a correspondence model): the
    tokens side by side (stably sorted by orientation), each token's attention bias raised by
    the log of its reference's share, and the weighted mean of ``z`` (as
    :func:`c2e_core.modeling.correspondence.blend_reference_codes`)."""
    total = float(sum(weights))
    shares = [w / total for w in weights]

    def mean(index: int) -> np.ndarray:
        return sum(c[index] * np.float32(s) for c, s in zip(codes, shares, strict=True))

    if blend == "mean":
        return tuple(mean(i) for i in range(len(codes[0])))
    biases = [c[3] + np.float32(math.log(max(s, 1e-12))) for c, s in zip(codes, shares,
                                                                         strict=True)]  # fmt: skip
    side_by_side = [np.concatenate([c[i] for c in codes], 1) for i in range(1, len(codes[0]))]
    side_by_side[2] = np.concatenate(biases, 1)
    if len(side_by_side) > 3:  # the tokens' orientations: keep the tokens in their order
        order = np.argsort(side_by_side[3], axis=1, kind="stable")
        side_by_side = [np.take_along_axis(t, order.reshape(*order.shape, *[1] * (t.ndim - 2)),
                                           axis=1) for t in side_by_side]  # fmt: skip
    return (mean(0), *side_by_side)
