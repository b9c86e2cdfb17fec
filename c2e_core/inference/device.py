"""Choosing the torch device: ``auto`` is CUDA, then Apple MPS, then CPU."""

from __future__ import annotations

import torch

from c2e_core.errors import DeviceError
from c2e_core.options import check_device

#: Devices that only onnxruntime has (:mod:`c2e_core.runtime.networks`).
RUNTIME_ONLY = ("directml", "dml", "coreml", "openvino")


def available_devices() -> list[str]:
    devices = ["cpu"]
    if torch.cuda.is_available():
        devices += [f"cuda:{i}" for i in range(torch.cuda.device_count())]
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        devices.append("mps")
    return devices


def select_device(name: str | torch.device = "auto") -> torch.device:
    """Resolve ``auto``/``cpu``/``cuda``/``cuda:N``/``mps``; a clear error when absent."""
    if isinstance(name, torch.device):
        name = str(name)
    name = check_device(name).strip().lower()
    if name.partition(":")[0] in RUNTIME_ONLY:
        raise DeviceError(
            f"{name} is an onnxruntime execution provider: it runs runtime weights (.c2e.onnx, "
            "`c2e export onnx`), not torch weights"
        )
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        mps = getattr(torch.backends, "mps", None)
        if mps is not None and mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        device = torch.device("cuda" if name == "gpu" else name)
    except RuntimeError as exc:  # an index beyond any integer: "cuda:99999999999999999999"
        raise DeviceError(f"unknown device {name!r} ({exc})") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise DeviceError(
                "CUDA was requested but no CUDA GPU is usable here "
                f"(torch {torch.__version__}, built for CUDA {torch.version.cuda or 'none'}); "
                "use --device cpu or auto"
            )
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise DeviceError(f"{name}: only {torch.cuda.device_count()} CUDA device(s) present")
    elif device.type == "mps":
        mps = getattr(torch.backends, "mps", None)
        if mps is None or not mps.is_available():
            raise DeviceError("MPS was requested but is not available on this machine")
    return device
