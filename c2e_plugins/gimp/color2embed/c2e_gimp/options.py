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
    """The working size, device, strength, clean up, weights and what to do with a grayscale
    image.

    ``size``: the network's working size, a multiple of 16, or 0 for the layer's own size;
    ``device``: ``auto``, ``cpu``, ``cuda``, ``cuda:N`` or ``mps``; ``strength``: 0..1;
    ``clean``: 0..1 (the colours evened out inside flat areas); ``keep_palette``: whether the
    evened-out colours keep the palette's spread; ``weights``: a weights name or
    file, ``""`` for the worker's default; ``gray_to_rgb``: convert a grayscale image to RGB (in
    the same undo step) instead of refusing it.
    """

    FIELDS = c2e_client.ColorizeOptions.FIELDS + (("gray_to_rgb", False),)
    NATIVE = NATIVE_SIZE
