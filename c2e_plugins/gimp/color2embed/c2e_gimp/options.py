"""What the procedure's arguments ask for: the shared options with GIMP's own (no GIMP needed)."""

from __future__ import annotations

import c2e_client
from c2e_client import ColorizeError, Host

__all__ = ["DEVICES", "GIMP", "NATIVE_SIZE", "ColorizeError", "ColorizeOptions"]

#: Devices the procedure offers by name (``cuda:N`` too).
DEVICES = c2e_client.DEVICES
#: ``size`` value meaning the layer's own size (the worker's ``"native"``: GIMP's integer
#: arguments cannot hold a string).
NATIVE_SIZE = 0
#: How the plug-in's messages name GIMP.
GIMP = Host("gimp", "GIMP")


class ColorizeOptions(c2e_client.ColorizeOptions):
    """The working size, device, strength, weights and what to do with a grayscale image.

    ``size``: the network's working size, a multiple of 16, or 0 for the layer's own size;
    ``device``: ``auto``, ``cpu``, ``cuda``, ``cuda:N`` or ``mps``; ``strength``: 0..1;
    ``weights``: a weights name or file, ``""`` for the worker's default; ``gray_to_rgb``:
    convert a grayscale image to RGB (in the same undo step) instead of refusing it;
    ``blend_share``: the share (0..1) of a second reference blended in, when there is one.
    """

    FIELDS = c2e_client.ColorizeOptions.FIELDS + (("gray_to_rgb", False), ("blend_share", 0.5))
    NATIVE = NATIVE_SIZE

    def check_host(self) -> None:
        if not c2e_client.is_strength(self.blend_share):  # the same 0..1 range
            raise ColorizeError(f"blend-share must be from 0 to 1, not {self.blend_share!r}")
