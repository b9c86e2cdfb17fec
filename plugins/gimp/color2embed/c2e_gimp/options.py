"""What the procedure's arguments ask for, checked (standard library only, no GIMP)."""

from __future__ import annotations

from typing import Any

from c2e_client import DEFAULT_SIZE, MAX_SIZE, MIN_SIZE, SIZE_MULTIPLE, is_strength, is_working_size
from c2e_client import NATIVE_SIZE as WORKER_NATIVE_SIZE

#: Devices the worker understands (``cuda:N`` too).
DEVICES = ("auto", "cpu", "cuda", "mps")
#: ``size`` value meaning the layer's own size (the worker's ``"native"``: GIMP's integer
#: arguments cannot hold a string).
NATIVE_SIZE = 0


class ColorizeError(Exception):
    """Something the user can fix, said in one line; the image was not changed."""


class ColorizeOptions:
    """The working size, device, strength, weights and what to do with a grayscale image.

    ``size``: the network's working size, a multiple of 16, or 0 for the layer's own size;
    ``device``: ``auto``, ``cpu``, ``cuda``, ``cuda:N`` or ``mps``; ``strength``: 0..1, how much
    of the predicted colour replaces the original; ``weights``: a weights name or file for the
    worker, ``""`` for its default; ``gray_to_rgb``: convert a grayscale image to RGB (in the
    same undo step) instead of refusing it.
    """

    __slots__ = ("size", "device", "strength", "weights", "gray_to_rgb")

    def __init__(
        self,
        size: int = DEFAULT_SIZE,
        device: str = "auto",
        strength: float = 1.0,
        weights: str = "",
        gray_to_rgb: bool = False,
    ):
        self.size = size
        self.device = device
        self.strength = strength
        self.weights = weights
        self.gray_to_rgb = gray_to_rgb

    def check(self) -> None:
        """Raise :class:`ColorizeError` naming the first bad value."""
        size = self.size
        if isinstance(size, bool) or not isinstance(size, int):
            raise ColorizeError(f"size must be a whole number, not {size!r}")
        if size != NATIVE_SIZE and not is_working_size(size):
            raise ColorizeError(
                f"size must be a multiple of {SIZE_MULTIPLE} from {MIN_SIZE} to {MAX_SIZE}, or "
                f"{NATIVE_SIZE} for the layer's own size, not {size}"
            )
        device = self.device
        if not isinstance(device, str) or not (
            device in DEVICES or (device.startswith("cuda:") and device[5:].isdigit())
        ):
            raise ColorizeError(
                f"device must be one of {', '.join(DEVICES)} or cuda:N, not {device!r}"
            )
        if not is_strength(self.strength):
            raise ColorizeError(f"strength must be a number from 0 to 1, not {self.strength!r}")
        if not isinstance(self.weights, str):
            raise ColorizeError("weights must be a name or a file path")

    def worker_options(self) -> dict[str, Any]:
        """The ``options`` of the worker's ``colorize`` request."""
        return {
            "size": WORKER_NATIVE_SIZE if self.size == NATIVE_SIZE else self.size,
            "device": self.device,
            "strength": float(self.strength),
            "weights": self.weights or None,
        }

    def __repr__(self) -> str:
        values = ", ".join(f"{name}={getattr(self, name)!r}" for name in self.__slots__)
        return f"ColorizeOptions({values})"
