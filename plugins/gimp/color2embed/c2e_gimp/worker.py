"""How the plug-in finds and starts the c2e worker: ``settings.json`` next to ``color2embed.py``.

``c2e plugins install gimp`` writes ``python`` (the interpreter of the environment where c2e is
installed, never the ``python3`` GIMP happens to find) and, when asked, ``weights`` (a name or
an absolute file path). Standard library only (and the vendored client).
"""

from __future__ import annotations

import json
import os
from typing import Any, Mapping

from c2e_client import WorkerClient, WorkerError

from .options import ColorizeError

SETTINGS_FILE = "settings.json"
#: Seconds to wait for the worker's greeting (importing PyTorch the first time can be slow).
START_TIMEOUT = 300.0
#: Variables of GIMP's own Python that would break another interpreter.
PYTHON_VARIABLES = (
    "PYTHONHOME",
    "PYTHONPATH",
    "PYTHONSTARTUP",
    "PYTHONEXECUTABLE",
    "PYTHONUSERBASE",
    "__PYVENV_LAUNCHER__",
)
SETUP_HINT = (
    "In a terminal, activate the environment where c2e is installed and run "
    "'c2e plugins install gimp', then restart GIMP."
)


class Settings:
    """``python``: the worker's interpreter; ``weights``: a weights name or file, or ``""``."""

    __slots__ = ("python", "weights", "path")

    def __init__(self, python: str = "", weights: str = "", path: str = ""):
        self.python = python
        self.weights = weights
        self.path = path


def plugin_folder() -> str:
    """The installed plug-in's folder (the one holding ``color2embed.py``)."""
    return os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def load_settings(path: str | None = None) -> Settings:
    """The recorded settings; empty ones when the file is missing or unreadable."""
    path = path or os.path.join(plugin_folder(), SETTINGS_FILE)
    try:
        with open(path, encoding="utf-8") as handle:
            data = json.load(handle)
    except (OSError, ValueError):
        data = {}
    if not isinstance(data, dict):
        data = {}
    python, weights = data.get("python"), data.get("weights")
    return Settings(
        python if isinstance(python, str) else "",
        weights if isinstance(weights, str) else "",
        path,
    )


def check_python(settings: Settings) -> None:
    """Raise :class:`ColorizeError` saying what to do unless the worker's Python exists."""
    if not settings.python:
        raise ColorizeError(
            "Color2Embed does not know which Python runs c2e (no 'python' in "
            f"{settings.path}). {SETUP_HINT}"
        )
    if not os.path.isfile(settings.python):
        raise ColorizeError(
            f"The c2e worker's Python '{settings.python}' (recorded in {settings.path}) "
            f"does not exist. {SETUP_HINT}"
        )


def worker_environment(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """GIMP's environment without the variables that point at GIMP's own Python."""
    env = dict(os.environ if environ is None else environ)
    for name in PYTHON_VARIABLES:
        env.pop(name, None)
    return env


def start_worker(settings: Settings) -> WorkerClient:
    """A started worker client for ``settings``.

    Raises :class:`ColorizeError` when the Python is missing, and the client's ``WorkerError``
    (with the worker's last output and a hint) when the worker does not start.
    """
    check_python(settings)
    client = WorkerClient(
        settings.python,
        args=["-m", "c2e_core", "worker"],
        env=worker_environment(),
        cwd=os.path.expanduser("~"),
    )
    try:
        client.start(timeout=START_TIMEOUT)
    except WorkerError as exc:
        raise WorkerError(
            f"{exc}\nThe worker's Python is recorded in {settings.path}. {SETUP_HINT}",
            exc.kind,
            exc.stderr,
        ) from None
    return client


class LazyWorker:
    """A client whose worker starts on the first ``colorize``, so a mistake the plug-in finds
    by itself (a grayscale image, no reference) costs no worker start."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self.client: WorkerClient | None = None

    def colorize(self, *args: Any, **kwargs: Any) -> Any:
        """``WorkerClient.colorize``, starting the worker first if needed."""
        if self.client is None:
            on_progress = kwargs.get("on_progress")
            if on_progress is not None:
                on_progress(0, 0, "Starting the c2e worker")
            self.client = start_worker(self.settings)
        return self.client.colorize(*args, **kwargs)

    def close(self) -> None:
        """Stop the worker if it was started."""
        client, self.client = self.client, None
        if client is not None:
            client.close()
