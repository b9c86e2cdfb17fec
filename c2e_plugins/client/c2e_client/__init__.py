# Python 3.8 compatible on purpose, so no pyupgrade rewrites:
# ruff: noqa: UP004, UP006, UP031, UP035, UP045
"""Client for the c2e worker protocol, version 1 (see ``docs/worker-protocol.md``), and what the
host plugins share: option checks, worker start-up, settings.

Standard library only and Python 3.8 compatible: the Krita and GIMP plugins vendor this package
and run it inside the host application's own Python (its modules import each other relatively,
so it works as a top-level package or inside a plugin's). It starts ``python -m c2e_core
worker`` in the environment where c2e is installed and talks to it over stdin/stdout::

    with WorkerClient("/path/to/venv/bin/python") as client:
        print(client.hello()["devices"])
        result = client.colorize(target, reference, options={"weights": "paper"})

``colorize`` may wait on one thread while a UI thread calls ``cancel``. The parts:
:mod:`.protocol` (messages, :class:`Pixels`, errors), :mod:`.client` (:class:`WorkerClient`),
:mod:`.options`, :mod:`.launch` (environment, Python, sessions), :mod:`.settings` and
:mod:`.engine` (the private environment a plugin sets up when it finds no c2e).
"""

from __future__ import annotations

from .client import (
    COLORIZE_TIMEOUT,
    HELLO_TIMEOUT,
    STDERR_LINES,
    WORKER_ARGS,
    ProgressCallback,
    WorkerClient,
)
from .engine import (
    EngineCancelled,
    EngineError,
    engine_folder,
    find_engine,
    known_python,
    record_python,
    set_up_engine,
)
from .launch import (
    START_TIMEOUT,
    Host,
    LazyWorker,
    WorkerSession,
    check_python,
    start_worker,
    worker_environment,
)
from .options import (
    DEFAULT_CLEAN,
    DEFAULT_KEEP_PALETTE,
    DEFAULT_SIZE,
    DEFAULT_STRENGTH,
    DEVICES,
    MAX_SIZE,
    MAX_STRENGTH,
    MIN_SIZE,
    MIN_STRENGTH,
    NATIVE_SIZE,
    PRECISIONS,
    SIZE_MULTIPLE,
    ColorizeError,
    ColorizeOptions,
    is_strength,
    is_working_size,
    worker_device,
)
from .protocol import (
    CHANNEL_COUNTS,
    DTYPE_SIZES,
    HALF_SELECTED,
    PROTOCOL_VERSION,
    Pixels,
    WorkerCancelled,
    WorkerError,
    WorkerTimeout,
    black_outside,
)
from .settings import SETTINGS_FILE, Settings, load_settings, save_settings, settings_path

__all__ = [
    "CHANNEL_COUNTS", "COLORIZE_TIMEOUT", "ColorizeError", "ColorizeOptions", "DEFAULT_CLEAN",
    "DEFAULT_KEEP_PALETTE", "DEFAULT_SIZE",
    "DEFAULT_STRENGTH", "DEVICES", "DTYPE_SIZES", "EngineCancelled", "EngineError",
    "HELLO_TIMEOUT", "Host", "LazyWorker", "engine_folder", "find_engine", "known_python",
    "record_python", "set_up_engine",
    "MAX_SIZE", "MAX_STRENGTH", "MIN_SIZE", "MIN_STRENGTH", "NATIVE_SIZE", "PRECISIONS",
    "HALF_SELECTED", "PROTOCOL_VERSION", "Pixels", "ProgressCallback", "SETTINGS_FILE",
    "SIZE_MULTIPLE", "black_outside",
    "START_TIMEOUT", "STDERR_LINES", "Settings", "WORKER_ARGS", "WorkerCancelled",
    "WorkerClient", "WorkerError", "WorkerSession", "WorkerTimeout", "check_python",
    "is_strength", "is_working_size", "load_settings", "save_settings", "settings_path",
    "start_worker", "worker_device", "worker_environment",
]
