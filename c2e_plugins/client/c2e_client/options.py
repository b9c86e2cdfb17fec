# Python 3.8 compatible on purpose, so no pyupgrade rewrites:
# ruff: noqa: UP004, UP006, UP031, UP035, UP045
"""The colorize options a plugin's dialog asks for, checked before the worker is asked.

The limits are those of ``c2e_core.options.ColorizeRequest`` (a test checks they are equal).
:class:`ColorizeOptions` holds what every plugin asks (size, device, strength, clean, keep the
palette, weights); a plugin's subclass adds its host's own fields and says how its host writes
"native" and which devices its dialog offers. Standard library only.
"""

from __future__ import annotations

from typing import Any, Dict, List, Optional, Tuple

NATIVE_SIZE = "native"
DEFAULT_SIZE = 256
SIZE_MULTIPLE = 16
MIN_SIZE = 16
MAX_SIZE = 4096
MIN_STRENGTH = 0.0
MAX_STRENGTH = 1.0
DEFAULT_STRENGTH = 1.0
#: The colour cleanup (one colour per flat region, the palette kept), 0..1 like the strength;
#: 0: off. The same default as the engine's (``c2e_core.options.DEFAULT_CLEAN``).
DEFAULT_CLEAN = 1.0
#: Whether the cleanup gives the colours back their spread (their palette); off: calmer and
#: paler. The engine's default (``c2e_core.options.DEFAULT_KEEP_PALETTE``).
DEFAULT_KEEP_PALETTE = True
PRECISIONS = ("fp32", "bf16", "fp16", "int8")
#: The devices the worker understands (``cuda:N`` too); ``gpu``: the worker's first GPU.
DEVICES = ("auto", "cpu", "cuda", "mps")


class ColorizeError(Exception):
    """Something the user can fix, said in one line; the image was not changed."""


def is_working_size(size: Any) -> bool:
    """Whether ``size`` is a working size: ``"native"``, or a multiple of ``SIZE_MULTIPLE`` from
    ``MIN_SIZE`` to ``MAX_SIZE``."""
    if size == NATIVE_SIZE:
        return True
    if isinstance(size, bool) or not isinstance(size, int):
        return False
    return MIN_SIZE <= size <= MAX_SIZE and size % SIZE_MULTIPLE == 0


def is_strength(strength: Any) -> bool:
    """Whether ``strength`` is a number from ``MIN_STRENGTH`` to ``MAX_STRENGTH``."""
    if isinstance(strength, bool) or not isinstance(strength, (int, float)):
        return False
    return MIN_STRENGTH <= strength <= MAX_STRENGTH


def worker_device(choice: str, hello: Dict[str, Any]) -> str:
    """The worker's device for a dialog's choice: ``gpu`` is the worker's first GPU."""
    if choice != "gpu":
        return choice
    devices = [str(d) for d in hello.get("devices") or []]
    for device in devices:
        if device.startswith("cuda") or device == "mps":
            return device
    raise ColorizeError(
        "The c2e worker sees no GPU (devices: %s): choose Auto or CPU, or install a GPU build "
        "of PyTorch in the worker's environment." % (", ".join(devices) or "none")
    )


class ColorizeOptions(object):
    """What a plugin's dialog asks, checked when made and by :meth:`check`.

    ``size``: a multiple of 16 from 16 to 4096, or :attr:`NATIVE` for the image's own size;
    ``device``: one of :attr:`DEVICES` (or ``cuda:N`` when :attr:`INDEXED_DEVICES`);
    ``strength``: 0..1, how much of the predicted colour replaces the original;
    ``clean``: 0..1, how far the predicted colours move towards one colour per flat region
    (the worker's cleanup: fewer blotches of foreign colour); ``keep_palette``: the cleanup
    gives the colours back their spread (off: calmer, paler colours);
    ``weights``: a weights name or file for the worker, ``""`` for the worker's default;
    ``colour_only``: the new layer in the host's "Color" blend mode over the original (it gives
    only hue and saturation, so later edits of the original's lightness still show), instead of
    a full-colour layer; ``blend_share``: the share (0..1) of a second reference blended in,
    when there is one (:meth:`reference_weights`); ``preview``: the dialog's live preview on.
    Subclasses add fields to :attr:`FIELDS` and
    check them in :meth:`check_host`.
    """

    #: (name, default) of every option, in order.
    FIELDS: Tuple[Tuple[str, Any], ...] = (
        ("size", DEFAULT_SIZE),
        ("device", "auto"),
        ("strength", DEFAULT_STRENGTH),
        ("clean", DEFAULT_CLEAN),
        ("keep_palette", DEFAULT_KEEP_PALETTE),
        ("weights", ""),
        ("colour_only", False),
        ("blend_share", 0.5),
        ("preview", True),
    )
    #: How the host writes "the image's own size" (``"native"`` for the worker).
    NATIVE: Any = NATIVE_SIZE
    #: The devices the host's dialog offers.
    DEVICES: Tuple[str, ...] = DEVICES
    #: Whether ``cuda:N`` is accepted too.
    INDEXED_DEVICES = True

    def __init__(self, **values: Any):
        names = [name for name, _ in self.FIELDS]
        unknown = sorted(set(values) - set(names))
        if unknown:
            raise TypeError("unknown option %s (known: %s)" % (unknown[0], ", ".join(names)))
        for name, default in self.FIELDS:
            setattr(self, name, values.get(name, default))
        self.check()

    def check(self) -> None:
        """Raise :class:`ColorizeError` naming the first bad value."""
        size = self.size
        native = size == self.NATIVE and type(size) is type(self.NATIVE)
        if not native and (isinstance(size, str) or not is_working_size(size)):
            raise ColorizeError(
                "working size must be a multiple of %d from %d to %d, or %r for the image's "
                "own size, not %r" % (SIZE_MULTIPLE, MIN_SIZE, MAX_SIZE, self.NATIVE, size)
            )
        device = self.device
        indexed = (
            self.INDEXED_DEVICES
            and isinstance(device, str)
            and device.startswith("cuda:")
            and device[5:].isdigit()
        )
        if not indexed and device not in self.DEVICES:
            names = ", ".join(self.DEVICES) + (" or cuda:N" if self.INDEXED_DEVICES else "")
            raise ColorizeError("device must be one of %s, not %r" % (names, device))
        if not is_strength(self.strength):
            raise ColorizeError("strength must be a number from 0 to 1, not %r" % (self.strength,))
        if not is_strength(self.clean):  # the same 0..1 range
            raise ColorizeError("clean must be a number from 0 to 1, not %r" % (self.clean,))
        if not isinstance(self.keep_palette, bool):
            raise ColorizeError(
                "keep_palette must be true or false, not %r" % (self.keep_palette,)
            )
        if not isinstance(self.weights, str):
            raise ColorizeError("weights must be a name or a file path")
        if not isinstance(self.colour_only, bool):
            raise ColorizeError("colour_only must be true or false, not %r" % (self.colour_only,))
        if not is_strength(self.blend_share):  # the same 0..1 range
            raise ColorizeError("blend_share must be from 0 to 1, not %r" % (self.blend_share,))
        if not isinstance(self.preview, bool):
            raise ColorizeError("preview must be true or false, not %r" % (self.preview,))
        self.check_host()

    def check_host(self) -> None:
        """Check the host's own fields (none here)."""

    def worker_options(self, hello: Optional[Dict[str, Any]] = None) -> Dict[str, Any]:
        """The ``options`` of the worker's ``colorize`` request (``hello``: the worker's, to
        choose its GPU for ``gpu`` and to refuse what an older worker would silently ignore:
        a clean-up, or a clean-up without the palette step)."""
        understood = (hello.get("options") or ()) if hello else None
        version = (hello or {}).get("c2e_version") or "unknown"
        if understood is not None and self.clean and "clean" not in understood:
            raise ColorizeError(
                "The c2e engine (version %s) cannot clean up colours: update c2e in it "
                "(pip install -U c2e-studio), or set Clean up to 0." % (version,)
            )
        if understood is not None and self.clean and not self.keep_palette and (
            "keep_palette" not in understood
        ):
            raise ColorizeError(
                "The c2e engine (version %s) cannot clean up without keeping the palette: "
                "update c2e in it (pip install -U c2e-studio), or tick Keep the palette again."
                % (version,)
            )
        options: Dict[str, Any] = {
            "size": NATIVE_SIZE if self.size == self.NATIVE else self.size,
            "device": worker_device(self.device, hello or {}),
            "strength": float(self.strength),
            "clean": float(self.clean),
            "keep_palette": bool(self.keep_palette),  # a worker ignores options it lacks
        }
        if self.weights:
            options["weights"] = self.weights
        return options

    def reference_weights(self) -> List[float]:
        """The worker's ``reference_weights`` for a reference and a second one blended in."""
        return [1.0 - float(self.blend_share), float(self.blend_share)]

    def as_dict(self) -> Dict[str, Any]:
        return dict((name, getattr(self, name)) for name, _ in self.FIELDS)

    def __repr__(self) -> str:
        values = ", ".join("%s=%r" % item for item in self.as_dict().items())
        return "%s(%s)" % (type(self).__name__, values)
