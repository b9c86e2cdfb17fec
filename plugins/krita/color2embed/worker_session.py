"""One long-lived c2e worker for the plugin, so the model loads once per Krita session."""

from __future__ import annotations

import os
import threading
from typing import Mapping

from .c2e_client import WorkerClient
from .colorize import ColorizeError

#: Seconds to wait for a starting worker (importing PyTorch the first time can be slow).
START_TIMEOUT = 300.0
#: Variables of Krita's own Python that would break another interpreter.
PYTHON_VARIABLES = ("PYTHONHOME", "PYTHONPATH", "PYTHONSTARTUP", "PYTHONEXECUTABLE",
                    "__PYVENV_LAUNCHER__")
#: Search paths an AppImage points into its own bundle.
APPIMAGE_PATH_VARIABLES = ("LD_LIBRARY_PATH", "QT_PLUGIN_PATH", "XDG_DATA_DIRS")
SETUP_HINT = (
    "In a terminal, activate the environment where c2e is installed and run "
    "'c2e plugins install krita', then restart Krita; or set 'Worker Python' in the "
    "Colorize from Reference dialog to that environment's python "
    "(…/bin/python, or …\\Scripts\\python.exe on Windows)."
)


def worker_environment(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """Krita's environment without what points at Krita's own Python or AppImage bundle."""
    env = dict(os.environ if environ is None else environ)
    for name in PYTHON_VARIABLES:
        env.pop(name, None)
    bundle = env.get("APPDIR")
    if bundle:
        for name in APPIMAGE_PATH_VARIABLES:
            kept = [p for p in env.get(name, "").split(os.pathsep)
                    if p and not os.path.abspath(p).startswith(os.path.abspath(bundle))]
            if kept:
                env[name] = os.pathsep.join(kept)
            else:
                env.pop(name, None)
    return env


def check_python(python: str) -> None:
    """Raise :class:`ColorizeError` with what to do unless ``python`` is an existing file."""
    if not python:
        raise ColorizeError("Color2Embed does not know which Python runs c2e. " + SETUP_HINT)
    if not os.path.isfile(python):
        raise ColorizeError(f"The worker Python '{python}' does not exist. {SETUP_HINT}")


class WorkerSession:
    """Starts the worker on first use and keeps it; restarts it if it died or ``python`` changed.

    Thread-safe: :meth:`client` may run on a background thread while the UI thread waits.
    """

    def __init__(self, args: list | None = None):
        self.args = list(args or ["-m", "c2e_core", "worker"])
        self._client: WorkerClient | None = None
        self._lock = threading.Lock()

    def client(self, python: str) -> WorkerClient:
        """A started worker for ``python`` (raises ``ColorizeError`` or ``WorkerError``)."""
        check_python(python)
        with self._lock:
            current = self._client
            if current is not None and current.alive and current.python_executable == python:
                return current
            self._client = None
            if current is not None:
                current.close(timeout=2.0)
            client = WorkerClient(python, args=self.args, env=worker_environment(),
                                  cwd=os.path.expanduser("~"))
            client.start(timeout=START_TIMEOUT)
            self._client = client
            return client

    @property
    def running(self) -> bool:
        client = self._client
        return client is not None and client.alive

    @property
    def pid(self) -> int | None:
        """The worker's process id while it runs."""
        client = self._client
        return client.pid if client is not None and client.alive else None

    def close(self, timeout: float = 3.0) -> None:
        """Shut the worker down (Krita is closing); terminate it after ``timeout`` seconds."""
        with self._lock:
            client, self._client = self._client, None
        if client is not None:
            client.close(timeout=timeout)

