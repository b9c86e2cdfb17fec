"""Colorize options: :class:`ColorizeRequest` owns each option's default, limits and message.

It is built from keyword arguments (``ColorizeRequest(size=512)``), from the CLI's arguments
(:meth:`ColorizeRequest.from_cli_args`) or from a worker ``colorize`` message
(:meth:`ColorizeRequest.from_message`); the CLI, the worker and
:class:`~c2e_core.inference.pipeline.Colorizer` check options only through it. Standard library
only, so a bad option is reported without importing torch. The options table of
``docs/worker-protocol.md`` and the plugins' client
(``c2e_plugins/client/c2e_client/options.py``) are tested against it.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, fields
from types import MappingProxyType
from typing import Any, ClassVar, Union

from c2e_core.errors import DeviceError, OptionError

NATIVE = "native"
DEFAULT_SIZE = 256
SIZE_MULTIPLE = 16
MIN_SIZE = 16
MAX_SIZE = 4096
MIN_STRENGTH = 0.0
MAX_STRENGTH = 1.0
DEFAULT_STRENGTH = 1.0
#: How far the predicted colours move towards their bilateral cleanup (0: not at all); the
#: authors' pipeline (``compat="official"``) has no cleanup, so there the default is 0.
DEFAULT_CLEAN = 1.0
#: Whether the cleanup gives the colours back the spread (the palette) that its averaging
#: narrows; off, it is calmer and paler (``training/README.md`` has both blind-reviewed).
DEFAULT_KEEP_PALETTE = True
PRECISIONS = ("fp32", "bf16", "fp16", "int8")
COMPAT_MODES = (None, "official")
#: ``c2e`` (the network) or a classical baseline that needs no weights (CLI only).
METHODS = ("c2e", "lookup", "reinhard", "gray")
#: The devices as users write them (``cuda:N`` for the N-th GPU; ``gpu`` means ``cuda``).
DEVICES = ("auto", "cpu", "cuda", "cuda:N", "mps", "directml", "coreml", "openvino")
_DEVICE = re.compile(r"auto|gpu|(cpu|cuda|mps|directml|dml|coreml|openvino)(:\d+)?")
STAGES = ("pre", "post")

#: A processing step: ``"name"`` or ``(name, {option: value})``.
StepSpec = Union[str, tuple[str, Mapping[str, Any]]]  # noqa: UP007 (runtime alias)


def _error(option: str, problem: str) -> OptionError:
    """An :class:`OptionError` ``"<option> <problem>"`` that remembers which option it is about."""
    error = OptionError(f"{option} {problem}")
    error.option = option  # type: ignore[attr-defined]
    return error


def parse_size(size: Any) -> int | str:
    """A working size: ``"native"`` or a multiple of 16 from 16 to 4096 (an int or its digits)."""
    limits = f"a multiple of {SIZE_MULTIPLE} from {MIN_SIZE} to {MAX_SIZE} or {NATIVE!r}"
    if size == NATIVE:
        return NATIVE
    if isinstance(size, bool) or not isinstance(size, (int, str)):
        raise _error("size", f"must be {limits}, not {size!r}")
    try:
        value = int(size)
    except ValueError:
        raise _error("size", f"must be {limits}, not {size!r}") from None
    if not MIN_SIZE <= value <= MAX_SIZE or value % SIZE_MULTIPLE:
        raise _error("size", f"must be {limits}, not {value}")
    return value


def _check_fraction(name: str, value: Any) -> float:
    """``value`` as a float in [0, 1] (``OptionError`` naming the option otherwise)."""
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or not MIN_STRENGTH <= value <= MAX_STRENGTH
    ):
        limits = f"from {MIN_STRENGTH:g} to {MAX_STRENGTH:g}"
        raise _error(name, f"must be a number {limits}, not {value!r}")
    return float(value)


def check_strength(strength: Any) -> float:
    """``strength`` as a float in [0, 1]."""
    return _check_fraction("strength", strength)


def default_clean(compat: str | None) -> float:
    """The cleanup's amount when none is asked for: :data:`DEFAULT_CLEAN`, except in the
    authors' pipeline (``compat="official"``), which has none."""
    return 0.0 if compat == "official" else DEFAULT_CLEAN


def check_clean(clean: Any) -> float:
    """``clean`` (how far colours move towards their bilateral cleanup) as a float in [0, 1]."""
    return _check_fraction("clean", clean)


def check_keep_palette(keep_palette: Any) -> bool:
    """``keep_palette`` as a bool (``None``: :data:`DEFAULT_KEEP_PALETTE`)."""
    if keep_palette is None:
        return DEFAULT_KEEP_PALETTE
    if not isinstance(keep_palette, bool):
        raise _error("keep_palette", f"must be true or false, not {keep_palette!r}")
    return keep_palette


def check_device(device: Any) -> str:
    """A device name as written (``auto``, ``cpu``, ``cuda``, ``cuda:N``, ``mps``); whether it
    exists on this machine is :func:`c2e_core.inference.device.select_device`'s question."""
    if not isinstance(device, str) or not device.strip():
        raise _error("device", f"must be a string such as {', '.join(DEVICES)}, not {device!r}")
    if not _DEVICE.fullmatch(device.strip().lower()):
        names = f"{', '.join(DEVICES[:-1])} or {DEVICES[-1]}"
        raise DeviceError(f"unknown device {device!r}; use {names}")
    return device


@dataclass(frozen=True)
class Step:
    """A resolved processing step (:func:`c2e_core.inference.pipeline.resolve_steps`): a registered
    function and the options it is called with."""

    name: str
    stage: str
    function: Any
    options: dict[str, Any]

    def __call__(self, *args: Any) -> Any:
        try:
            return self.function(*args, **self.options)
        except (TypeError, ValueError) as exc:
            raise OptionError(f"{self.stage}-processing step {self.name!r}: {exc}") from None


def check_steps(steps: Any, stage: str) -> tuple[StepSpec | Step, ...]:
    """Processing steps in their canonical form: names, or ``(name, read-only options)``;
    steps already resolved for ``stage`` are kept as they are."""
    if steps is None:
        return ()
    if isinstance(steps, (str, bytes)) or not isinstance(steps, Sequence):
        raise _error(stage, "must be a list of steps")
    checked: list[StepSpec | Step] = []
    for step in steps:
        if isinstance(step, str) or (isinstance(step, Step) and step.stage == stage):
            checked.append(step)
        elif (
            isinstance(step, Sequence)
            and len(step) == 2
            and isinstance(step[0], str)
            and isinstance(step[1], Mapping)
        ):
            checked.append((step[0], MappingProxyType(dict(step[1]))))
        else:
            raise _error(stage, f"steps are names or (name, {{options}}), not {step!r}")
    return tuple(checked)


def check_reference_weights(weights: Any, count: int | None = None) -> tuple[float, ...]:
    """One finite, non-negative weight per reference (``count`` of them), not all 0."""
    if isinstance(weights, (str, bytes)) or not isinstance(weights, Sequence):
        raise _error("reference_weights", f"must be a list of numbers, not {weights!r}")
    try:
        values = tuple(float(w) for w in weights if not isinstance(w, (bool, str, bytes)))
    except (TypeError, ValueError, OverflowError):  # OverflowError: an int beyond any float
        values = ()
    if (
        len(values) != len(weights)
        or not all(math.isfinite(w) and w >= 0 for w in values)
        or sum(values) <= 0
    ):
        raise _error("reference_weights", f"must be finite, non-negative and not all 0: {weights}")
    if count is not None and len(values) != count:
        given = f"{len(values)} for {count} reference{'s' if count != 1 else ''}"
        raise _error("reference_weights", f"must be given once per reference, not {given}")
    return values


def _check_choice(option: str, value: Any, choices: Sequence[Any]) -> Any:
    if value not in choices:
        names = ", ".join("null" if c is None else repr(c) for c in choices)
        raise _error(option, f"must be one of {names}, not {value!r}")
    return value


@dataclass(frozen=True)
class ColorizeRequest:
    """Every colorize option, checked and normalised when made (:class:`OptionError`, or
    :class:`DeviceError` for a device name that names no device).

    ``size``: the network's working size, a multiple of 16 from 16 to 4096 or ``"native"``;
    ``strength``: 0 keeps the original colours, 1 the prediction; ``clean``: 0 keeps the
    predicted colours as they are, 1 replaces them by their bilateral cleanup (one colour per
    flat region, :mod:`c2e_core.inference.cleanup`); ``None``: :data:`DEFAULT_CLEAN`, or 0
    with ``compat="official"``; ``keep_palette``: the cleanup maps the colours back onto the
    prediction's spread (``None``: :data:`DEFAULT_KEEP_PALETTE`); ``precision``: ``fp32``,
    ``bf16``/``fp16`` (GPU autocast) or ``int8`` (CPU); ``device``: ``auto``, ``cpu``, ``cuda``,
    ``cuda:N``, ``mps``; ``compat``: ``None`` or ``"official"`` (the authors' pipeline);
    ``weights``: a weights name or file, ``None`` for the default; ``method``: ``c2e`` or a
    baseline (CLI); ``pre``/``post``: processing steps; ``reference_weights``: one per reference.
    """

    size: int | str = DEFAULT_SIZE
    strength: float = DEFAULT_STRENGTH
    clean: float | None = None
    keep_palette: bool | None = None
    precision: str = "fp32"
    device: str = "auto"
    compat: str | None = None
    weights: str | None = None
    method: str = "c2e"
    pre: tuple[StepSpec, ...] = ()
    post: tuple[StepSpec, ...] = ()
    reference_weights: tuple[float, ...] | None = None

    #: The options a worker ``colorize`` request carries (``docs/worker-protocol.md``).
    PROTOCOL_OPTIONS: ClassVar[tuple[str, ...]] = (
        "weights", "device", "size", "strength", "clean", "keep_palette", "precision", "compat",
        "pre", "post",
    )  # fmt: skip

    def __post_init__(self) -> None:
        weights = self.weights
        if weights is not None and not isinstance(weights, str):
            raise _error("weights", "must be a name or a path")
        set_ = object.__setattr__
        set_(self, "size", parse_size(self.size))
        set_(self, "strength", check_strength(self.strength))
        set_(self, "precision", _check_choice("precision", self.precision, PRECISIONS))
        set_(self, "device", check_device(self.device))
        set_(self, "compat", _check_choice("compat", self.compat, COMPAT_MODES))
        set_(self, "clean", check_clean(default_clean(self.compat) if self.clean is None
                                        else self.clean))  # fmt: skip
        set_(self, "keep_palette", check_keep_palette(self.keep_palette))
        set_(self, "method", _check_choice("method", self.method, METHODS))
        for stage in STAGES:
            set_(self, stage, check_steps(getattr(self, stage), stage))
        if self.reference_weights is not None:
            set_(self, "reference_weights", check_reference_weights(self.reference_weights))

    @classmethod
    def from_cli_args(cls, args: Any) -> ColorizeRequest:
        """From ``c2e colorize``'s parsed arguments; messages name the flags (``--size``)."""
        flags = {f.name: f"--{f.name}" for f in fields(cls)} | {"reference_weights": "--ref-weight"}
        values = {name: getattr(args, name) for name in cls.PROTOCOL_OPTIONS}
        values.update(method=args.method, reference_weights=args.ref_weight)
        return cls._build(values, flags.__getitem__, len(args.reference))

    @classmethod
    def from_message(cls, message: Mapping[str, Any], **defaults: Any) -> ColorizeRequest:
        """From a worker ``colorize`` message: its ``options`` and ``reference_weights``.

        ``defaults``: values for options the message leaves out (the worker's ``--weights`` and
        ``--device``); an empty ``weights`` or ``device`` means the default too.
        """
        options = message.get("options") or {}
        if not isinstance(options, Mapping):
            raise OptionError("options must be an object")
        values = dict(defaults)
        for name in cls.PROTOCOL_OPTIONS:
            if name in options and (options[name] or name not in ("weights", "device")):
                values[name] = options[name]
        references = message.get("references")
        if isinstance(references, list) and message.get("reference_weights") is not None:
            values["reference_weights"] = message["reference_weights"]
            count: int | None = len(references)
        else:
            count = None

        def label(name: str) -> str:
            return f"options.{name}" if name in cls.PROTOCOL_OPTIONS else name

        return cls._build(values, label, count)

    @classmethod
    def _build(
        cls, values: dict[str, Any], label: Callable[[str], str], references: int | None
    ) -> ColorizeRequest:
        """``cls(**values)`` with each message's option name as ``label`` writes it."""
        try:
            request = cls(**values)
            if request.reference_weights is not None:
                check_reference_weights(request.reference_weights, references)
        except OptionError as exc:
            option = getattr(exc, "option", None)
            if option is None:
                raise
            raise OptionError(label(option) + str(exc)[len(option) :]) from None
        return request
