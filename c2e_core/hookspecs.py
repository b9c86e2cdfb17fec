"""The ``c2e_*`` hook specifications that plugins implement.

Plugins are discovered through the ``c2e`` entry-point group or registered directly on the
plugin manager (see :mod:`c2e_core.plugins`). Collector hooks receive a ``register`` callback, so
the host keeps control of validation and naming and a plugin stays a few lines long::

    from c2e_core import hookimpl

    @hookimpl
    def c2e_register_processors(register):
        register("warm", "post", make_warmer, "Shift ab towards orange")
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

import pluggy

PROJECT_NAME = "c2e"

hookspec = pluggy.HookspecMarker(PROJECT_NAME)
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)


@hookspec
def c2e_register_architectures(register: Callable[..., None]) -> None:
    """Register model architectures.

    Call ``register(name, builder, description="", *, config_class=None, presets=None)`` where
    ``builder(config: dict) -> nn.Module`` returns a module with the
    :class:`c2e_core.modeling.Color2Embed` interface (``embed(ref_rgb) -> embedding`` and
    ``predict_ab(l_norm, embedding) -> [B,2,H,W]``; the input and output scaling is the
    module's ``normalize_lightness`` and ``ab_from_output`` where it has them, else the paper's,
    :class:`c2e_core.modeling.color2embed.LabScaling`). ``config_class`` (with ``to_dict`` and
    ``from_dict``), whose instances the builder also accepts, and ``presets``
    (``{name: config_class instance}``) add the architecture's named configurations to the
    registry that training recipes and the tests use.
    """


@hookspec
def c2e_register_weights(register: Callable[..., None]) -> None:
    """Register named weights files shipped by a package.

    Call ``register(name, path, sha256, description="")``. The file is verified on load.
    """


@hookspec(firstresult=True)
def c2e_resolve_weights(spec: str) -> Any:
    """Resolve a weights spec (a name, a path or a URL-like string) to a local file path.

    Return a :class:`pathlib.Path` to claim it, or ``None`` to let other plugins (and finally the
    built-in resolver: named weights in the user data directory, then plain paths) try.
    """


@hookspec
def c2e_register_processors(register: Callable[..., None]) -> None:
    """Register pre- and post-processing steps.

    Call ``register(name, stage, function, description="")`` with ``stage`` ``"pre"`` or
    ``"post"``. Steps work on float32 numpy arrays (the pipeline runs without torch). A ``pre``
    step receives ``(rgb, role, **options)`` where ``rgb`` is ``[B,3,H,W]`` in [0, 1] and
    ``role`` is ``"target"`` or ``"reference"``, and returns an array of the same shape. A
    ``post`` step receives ``(lab, target_lab, **options)``, both ``[B,3,H,W]`` Lab arrays at the
    target's full resolution, and returns the new ``lab``; for bounded memory
    on huge scans it is called once per strip of full-width rows (about 1 Mpx each; the whole
    image when it is smaller), so it must work on any rows it is given (per pixel, or with
    statistics it does not need from the other rows), and several strips may be in its hands
    at once, on different threads.
    """


@hookspec
def c2e_progress(job: str, done: int, total: int, message: str) -> bool | None:
    """Observe progress of a slow job (``"colorize"``, ``"import"``, …).

    Return ``True`` to ask for cancellation; the job then stops with
    :class:`c2e_core.errors.Cancelled` at its next step.
    """


@hookspec
def c2e_register_commands(subparsers: argparse._SubParsersAction) -> None:
    """Add ``c2e`` sub-commands.

    Add a parser with ``subparsers.add_parser(name, help=...)`` and
    ``parser.set_defaults(handler=function)``; ``function(args) -> int`` returns the exit status.
    """
