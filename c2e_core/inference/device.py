"""Choosing the device. Torch models: ``auto`` is CUDA, then Apple MPS, then CPU. Runtime
weights: onnxruntime's execution providers (:mod:`c2e_core.runtime.networks`). torch is
imported only to answer for torch models."""

from __future__ import annotations

from typing import Any

from c2e_core.errors import DeviceError
from c2e_core.options import check_device
from c2e_core.weights.store import torch_installed

#: Devices that only onnxruntime has (:mod:`c2e_core.runtime.networks`).
RUNTIME_ONLY = ("directml", "dml", "coreml", "openvino")


def available_devices() -> list[str]:
    """The devices torch models can use here (``cpu`` only where torch is not installed)."""
    if not torch_installed():
        return ["cpu"]
    import torch

    devices = ["cpu"]
    if torch.cuda.is_available():
        devices += [f"cuda:{i}" for i in range(torch.cuda.device_count())]
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        devices.append("mps")
    return devices


def check_device_for(name: str, runtime: bool) -> str:
    """A device name checked for runtime weights (``runtime``) or a torch model; returned as
    the name the model is then loaded with (:class:`DeviceError` when absent)."""
    if runtime:
        from c2e_core.runtime.networks import providers_for

        name = check_device(name).strip().lower()
        providers_for(name)
        return name
    return str(select_device(name))


def select_device(name: Any = "auto") -> Any:
    """Resolve ``auto``/``cpu``/``cuda``/``cuda:N``/``mps`` to a ``torch.device``; a clear
    error when absent."""
    import torch

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
