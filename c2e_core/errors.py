"""c2e's errors: one hierarchy whose ``kind`` is the worker protocol's error kind.

A :class:`C2EError` is something the user can fix, or a cancellation: the CLI prints its first
line and exits with status 2 (130 for :class:`Cancelled`), the worker answers an ``error`` of
``kind`` :attr:`C2EError.kind`. Anything else that escapes is a bug (``internal``). The classes
live here, standard library only, so that catching them imports nothing heavy; the modules that
raise them re-export them (``from c2e_core.weights.store import WeightsError`` keeps working).
"""

from __future__ import annotations

#: The protocol's error kinds, ``docs/worker-protocol.md``.
ERROR_KINDS = ("bad-request", "weights", "device", "cancelled", "internal")


class C2EError(Exception):
    """Base of c2e's own errors; ``kind`` is one of :data:`ERROR_KINDS`."""

    kind: str = "internal"


class Cancelled(C2EError):
    """A job stopped because a progress observer asked it to."""

    kind = "cancelled"


class InputError(C2EError, ValueError):
    """Bad input from the user: an option, a file, weights, a device. A ``ValueError`` too."""

    kind = "bad-request"


class OptionError(InputError):
    """An invalid option or input combination given to the :class:`Colorizer` (see
    :mod:`c2e_core.options`)."""


class ImageReadError(InputError):
    """An image file is missing, unreadable, corrupt or of an unsupported kind."""


class ImageWriteError(InputError):
    """An image cannot be written (unknown format, bad data, or an I/O failure)."""


class DatasetError(InputError):
    """A dataset cannot be built or used: missing folder, no images, nothing readable."""


class HostPluginError(InputError):
    """A host plugin problem the user can fix (unknown host, missing folder, existing output)."""


class WeightsError(InputError):
    """A weights file or a named weights entry is missing, invalid or corrupted."""

    kind = "weights"


class CheckpointError(InputError):
    """The file is not a usable checkpoint in the authors' format."""

    kind = "weights"


class NotAnOfficialCheckpoint(CheckpointError):
    """The file is not in the authors' format at all (as opposed to a damaged one)."""


class DeviceError(InputError):
    """The requested device does not exist on this machine."""

    kind = "device"


class QuantizationError(InputError):
    """int8 is not available for this model or machine."""

    kind = "device"


class PluginError(InputError):
    """A plugin registered something invalid (a clash of names, an unknown stage): a bug of
    the installation, not of the request."""

    kind = "internal"


class StateDictError(WeightsError):
    """A state dict does not fit the model: names the first offending key."""


class RecipeError(InputError):
    """A training recipe is missing, not TOML, or holds a bad value."""


class TrainingError(InputError):
    """Training cannot start or go on: missing data or weights, a bad checkpoint, a bad setting."""
