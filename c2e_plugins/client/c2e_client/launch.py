# Python 3.8 compatible on purpose, so no pyupgrade rewrites:
# ruff: noqa: UP004, UP006, UP031, UP035, UP045
"""Starting the worker from inside a host application: its environment, its Python, set-up hints.

:func:`worker_environment` cleans the host's environment (its own Python's variables, an
AppImage's bundle paths); :func:`start_worker` checks the configured interpreter and starts the
worker, failures explained with what to do; :class:`WorkerSession` keeps one worker for a host
session and :class:`LazyWorker` starts it only when a job needs it. Standard library only.
"""

from __future__ import annotations

import os
import threading
from typing import Any, Dict, List, Mapping, Optional, Sequence

from .client import WORKER_ARGS, WorkerClient
from .options import ColorizeError
from .protocol import WorkerError

#: Seconds to wait for a starting worker (importing PyTorch the first time can be slow).
START_TIMEOUT = 300.0
#: Variables of the host's own Python that would break another interpreter.
PYTHON_VARIABLES = (
    "PYTHONHOME",
    "PYTHONPATH",
    "PYTHONSTARTUP",
    "PYTHONEXECUTABLE",
    "PYTHONUSERBASE",
    "__PYVENV_LAUNCHER__",
)
#: Search paths an AppImage points into its own bundle (``$APPDIR``).
APPIMAGE_PATH_VARIABLES = ("LD_LIBRARY_PATH", "QT_PLUGIN_PATH", "XDG_DATA_DIRS")


class Host(object):
    """A host application as its plugin's messages name it: ``name`` (``c2e plugins install
    NAME``), ``title`` and ``also``, another way to set the worker's Python up (or ``""``)."""

    def __init__(self, name: str, title: str, also: str = ""):
        self.name = name
        self.title = title
        self.also = also

    @property
    def setup_hint(self) -> str:
        """What to do when the worker's Python is unknown or wrong."""
        hint = (
            "In a terminal, activate the environment where c2e is installed and run "
            "'c2e plugins install %s', then restart %s" % (self.name, self.title)
        )
        return hint + ("; " + self.also if self.also else "") + "."


def worker_environment(environ: Optional[Mapping[str, str]] = None) -> Dict[str, str]:
    """The host's environment without what points at its own Python or AppImage bundle."""
    env = dict(os.environ if environ is None else environ)
    for name in PYTHON_VARIABLES:
        env.pop(name, None)
    bundle = env.get("APPDIR")
    if bundle:
        root = os.path.abspath(bundle)
        for name in APPIMAGE_PATH_VARIABLES:
            kept = [p for p in env.get(name, "").split(os.pathsep)
                    if p and not os.path.abspath(p).startswith(root)]
            if kept:
                env[name] = os.pathsep.join(kept)
            else:
                env.pop(name, None)
    return env


def check_python(python: str, host: Host, recorded_in: str = "") -> None:
    """Raise :class:`ColorizeError` saying what to do unless ``python`` is an existing file
    (``recorded_in``: the settings file it came from, if any)."""
    if not python:
        where = " (no 'python' in %s)" % recorded_in if recorded_in else ""
        raise ColorizeError(
            "Color2Embed does not know which Python runs c2e%s. %s" % (where, host.setup_hint)
        )
    if not os.path.isfile(python):
        where = " (recorded in %s)" % recorded_in if recorded_in else ""
        raise ColorizeError(
            "The c2e worker's Python '%s'%s does not exist. %s" % (python, where, host.setup_hint)
        )


def _client(python: str, host: Host, args: Sequence[str], recorded_in: str) -> WorkerClient:
    """An unstarted client for ``python`` whose start failures say what to do."""
    where = "The worker's Python is recorded in %s. " % recorded_in if recorded_in else ""
    return WorkerClient(python, args=args, env=worker_environment(), cwd=os.path.expanduser("~"),
                        start_timeout=START_TIMEOUT, start_hint=where + host.setup_hint)


def start_worker(python: str, host: Host, args: Sequence[str] = WORKER_ARGS,
                 recorded_in: str = "") -> WorkerClient:
    """A started worker client for ``python``.

    Raises :class:`ColorizeError` when the Python is missing, and :class:`WorkerError` (with
    the worker's last output and what to do) when the worker does not start.
    """
    check_python(python, host, recorded_in)
    client = _client(python, host, args, recorded_in)
    client.start()
    return client


class WorkerSession(object):
    """Keeps one worker client for a host session, a new one if ``python`` changed.

    The client itself starts its worker on first use and a fresh one after a death (see
    :class:`WorkerClient`). Thread-safe: :meth:`client` may run on a background thread while
    the UI thread waits.
    """

    def __init__(self, host: Host, args: Optional[Sequence[str]] = None, recorded_in: str = ""):
        self.host = host
        self.args: List[str] = list(args or WORKER_ARGS)
        self.recorded_in = recorded_in
        self._client: Optional[WorkerClient] = None
        self._lock = threading.Lock()

    def client(self, python: str, start: bool = True) -> WorkerClient:
        """The worker client for ``python``, its worker running unless ``start`` is False
        (raises ``ColorizeError`` or ``WorkerError``)."""
        check_python(python, self.host, self.recorded_in)
        with self._lock:
            current = self._client
            if current is None or current.python_executable != python:
                if current is not None:
                    current.close(timeout=2.0)
                current = self._client = _client(python, self.host, self.args, self.recorded_in)
            if start:
                try:
                    current.ensure_started()
                except WorkerError:
                    self._client = None
                    raise
            return current

    @property
    def started(self) -> Optional[WorkerClient]:
        """The worker client if one was made, else None."""
        return self._client

    @property
    def running(self) -> bool:
        client = self._client
        return client is not None and client.alive

    @property
    def pid(self) -> Optional[int]:
        """The worker's process id while it runs."""
        client = self._client
        return client.pid if client is not None and client.alive else None

    def close(self, timeout: float = 3.0) -> None:
        """Shut the worker down (the host is closing); terminate it after ``timeout`` seconds."""
        with self._lock:
            client, self._client = self._client, None
        if client is not None:
            client.close(timeout=timeout)


class LazyWorker(object):
    """A client whose worker starts on the first ``colorize``, so a mistake the plugin finds by
    itself (a grayscale image, no reference) costs no worker start."""

    def __init__(self, session: WorkerSession, python: str):
        self.session = session
        self.python = python

    @property
    def client(self) -> Optional[WorkerClient]:
        return self.session.started

    def colorize(self, *args: Any, **kwargs: Any) -> Any:
        """``WorkerClient.colorize``, which starts the worker first if needed."""
        return self.session.client(self.python, start=False).colorize(*args, **kwargs)

    def close(self) -> None:
        """Stop the worker if it was started."""
        self.session.close()
