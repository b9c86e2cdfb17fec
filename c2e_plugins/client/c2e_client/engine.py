# Python 3.8 compatible on purpose, so no pyupgrade rewrites:
# ruff: noqa: UP004, UP006, UP031, UP035, UP045
"""The engine: a private Python environment holding c2e's light runtime, set up from a host.

A plugin that finds no worker Python (none recorded, or the recorded one gone) offers to make
one: :func:`set_up_engine` finds a Python >= 3.10 with ``venv`` (:func:`find_python`), creates a
virtual environment in :func:`engine_folder` (the user's data folder), pip-installs
``c2e-studio`` (pip's own settings apply: ``PIP_INDEX_URL``, ``PIP_FIND_LINKS``,
``PIP_NO_INDEX``...), starts its worker once to check it, and only then writes ``engine.json``:
:func:`find_engine` never uses a folder without it. A failed or cancelled set-up removes the
folder, so nothing half-made is left. Standard library only.
"""

from __future__ import annotations

import json
import os
import queue
import shutil
import subprocess
import sys
import threading
import time
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple

from .client import WORKER_ARGS, WorkerClient
from .launch import worker_environment
from .options import ColorizeError
from .settings import Settings, save_settings

#: The engine's folder instead of the user data folder's ``c2e-studio/engine``.
ENGINE_DIR_ENV = "C2E_ENGINE_DIR"
#: The Python to build the engine with instead of the first suitable one on PATH.
PYTHON_ENV = "C2E_ENGINE_PYTHON"
#: What pip installs instead of ``c2e-studio`` (a version pin, a wheel's path).
PACKAGE_ENV = "C2E_ENGINE_PACKAGE"
PACKAGE = "c2e-studio"
MIN_PYTHON = (3, 10)
MARKER = "engine.json"
#: Interpreter names tried on PATH, newest first.
PYTHON_NAMES = ("python3.14", "python3.13", "python3.12", "python3.11", "python3.10", "python3",
                "python")
#: Seconds for pip (a slow connection downloads about 80 MB) and for checking a Python.
PIP_TIMEOUT = 1800.0
PROBE_TIMEOUT = 30.0
#: The last lines of a failed command kept for the message's details.
TAIL_LINES = 30

#: ``progress(fraction or None, text)``; ``cancelled() -> bool``.
Progress = Callable[[Optional[float], str], None]


class EngineError(ColorizeError):
    """Setting the engine up failed: the first line says what to do, the rest is pip's output."""


class EngineCancelled(EngineError):
    """The user cancelled the set-up (nothing was left behind)."""


def engine_folder(environ: Optional[Mapping[str, str]] = None, system: str = sys.platform) -> str:
    """Where the engine lives: ``$C2E_ENGINE_DIR``, else ``c2e-studio/engine`` in the user's
    data folder (``%LOCALAPPDATA%``, ``~/Library/Application Support``, ``$XDG_DATA_HOME``)."""
    env = os.environ if environ is None else environ
    if env.get(ENGINE_DIR_ENV):
        return os.path.abspath(os.path.expanduser(env[ENGINE_DIR_ENV]))
    home = os.path.expanduser("~")
    if system.startswith("win"):
        base = env.get("LOCALAPPDATA") or os.path.join(home, "AppData", "Local")
    elif system == "darwin":
        base = os.path.join(home, "Library", "Application Support")
    else:
        base = env.get("XDG_DATA_HOME") or os.path.join(home, ".local", "share")
    return os.path.join(base, "c2e-studio", "engine")


def engine_python_path(folder: str, system: str = sys.platform) -> str:
    """The interpreter of a virtual environment in ``folder``."""
    if system.startswith("win"):
        return os.path.join(folder, "Scripts", "python.exe")
    return os.path.join(folder, "bin", "python")


def find_engine(folder: Optional[str] = None) -> Optional[str]:
    """The Python of a finished engine in ``folder`` (default: :func:`engine_folder`), or None."""
    folder = folder or engine_folder()
    try:
        with open(os.path.join(folder, MARKER), encoding="utf-8") as handle:
            python = json.load(handle).get("python")
    except (OSError, ValueError, AttributeError):
        return None
    return python if isinstance(python, str) and os.path.isfile(python) else None


def known_python(settings: Settings) -> Optional[str]:
    """The worker's Python without asking anyone: the one recorded in ``settings`` if it
    exists, else a finished engine's (then recorded there); None when there is neither."""
    if settings.python and os.path.isfile(settings.python):
        return settings.python
    engine = find_engine()
    if engine is not None:
        record_python(settings, engine)
    return engine


def record_python(settings: Settings, python: str) -> None:
    """Make ``python`` the worker's Python in ``settings`` and save them (a failed save only
    costs remembering it: this run uses it all the same)."""
    settings.python = python
    try:
        save_settings(settings)
    except OSError:
        pass


def python_version(python: str) -> Optional[Tuple[int, int]]:
    """``(major, minor)`` of ``python`` if it runs and has ``venv`` and ``ensurepip``, else None."""
    probe = "import sys, venv, ensurepip; print('%d.%d' % sys.version_info[:2])"
    try:
        done = subprocess.run([python, "-c", probe], capture_output=True, text=True,
                              timeout=PROBE_TIMEOUT, env=worker_environment(),
                              stdin=subprocess.DEVNULL)
    except (OSError, subprocess.SubprocessError):
        return None
    try:
        major, minor = done.stdout.strip().split(".")
        return (int(major), int(minor)) if done.returncode == 0 else None
    except ValueError:
        return None


def find_python(environ: Optional[Mapping[str, str]] = None) -> str:
    """A Python >= 3.10 with ``venv``: ``$C2E_ENGINE_PYTHON``, else the first on PATH."""
    env = os.environ if environ is None else environ
    wanted = "%d.%d" % MIN_PYTHON
    chosen = env.get(PYTHON_ENV)
    if chosen:
        version = python_version(chosen)
        if version is None or version < MIN_PYTHON:
            raise EngineError("%s=%s is not a Python %s or newer with venv; fix or unset it."
                              % (PYTHON_ENV, chosen, wanted))
        return chosen
    seen: List[str] = []
    for name in PYTHON_NAMES:
        found = shutil.which(name, path=env.get("PATH"))
        if found is None or os.path.realpath(found) in seen:
            continue
        seen.append(os.path.realpath(found))
        version = python_version(found)
        if version is not None and version >= MIN_PYTHON:
            return found
    raise EngineError(
        "No Python %s or newer with venv was found on PATH (tried %s). Install Python from "
        "python.org (on Debian or Ubuntu: sudo apt install python3-venv), then try again."
        % (wanted, ", ".join(seen) or "none found"))


def _run(command: Sequence[str], what: str, on_line: Callable[[str], None],
         cancelled: Callable[[], bool], timeout: float) -> None:
    """Run ``command``, each output line to ``on_line`` on the calling thread;
    :class:`EngineError` with the output's tail if it fails, :class:`EngineCancelled` (the
    process killed) if ``cancelled()``."""
    try:
        process = subprocess.Popen(list(command), stdout=subprocess.PIPE,
                                   stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                   env=worker_environment(), text=True, errors="replace")
    except OSError as exc:
        raise EngineError("Could not %s: %s." % (what, exc)) from None
    lines: queue.Queue = queue.Queue()
    tail: List[str] = []

    def read() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            lines.put(line.rstrip())

    def drain() -> None:
        while True:
            try:
                line = lines.get_nowait()
            except queue.Empty:
                return
            tail.append(line)
            del tail[:-TAIL_LINES]
            if line:
                on_line(line)

    reader = threading.Thread(target=read, name="c2e-engine-output", daemon=True)
    reader.start()
    deadline = time.monotonic() + timeout
    while process.poll() is None:
        drain()
        if cancelled() or time.monotonic() > deadline:
            process.kill()
            process.wait()
            reader.join(5.0)
            if cancelled():
                raise EngineCancelled("The set-up was cancelled; nothing was kept.")
            raise EngineError("Could not %s within %d s." % (what, timeout))
        time.sleep(0.1)
    reader.join(5.0)
    drain()
    if process.returncode != 0:
        last = next((line for line in reversed(tail) if line.strip()), "no output")
        raise EngineError("Could not %s (exit status %d): %s\n%s"
                          % (what, process.returncode, last, "\n".join(tail)))


def set_up_engine(progress: Optional[Progress] = None,
                  cancelled: Optional[Callable[[], bool]] = None,
                  folder: Optional[str] = None, python: Optional[str] = None,
                  package: Optional[str] = None) -> str:
    """Make the engine and return its Python (an existing one is returned as it is).

    Steps: find a Python, ``python -m venv FOLDER``, ``pip install c2e-studio`` (its lines as
    progress), one worker start, ``engine.json``. Raises :class:`EngineError` saying what to do
    (pip's output under it) or :class:`EngineCancelled`; either way the folder is removed.
    """
    report = progress or (lambda fraction, text: None)
    stop = cancelled or (lambda: False)
    folder = os.path.abspath(folder or engine_folder())
    ready = find_engine(folder)
    if ready is not None:
        return ready
    report(None, "Looking for Python %d.%d or newer…" % MIN_PYTHON)
    base = python or find_python()
    package = package or os.environ.get(PACKAGE_ENV) or PACKAGE
    if os.path.lexists(folder):  # an earlier attempt that never finished
        shutil.rmtree(folder, ignore_errors=True)
    try:
        report(0.02, "Creating the engine's Python environment in %s…" % folder)
        _run([base, "-m", "venv", folder], "create a Python environment with %s" % base,
             lambda line: None, stop, PROBE_TIMEOUT * 10)
        engine = engine_python_path(folder)
        reached = [0.05]  # pip names each package it collects, then installs them all

        def pip_line(line: str) -> None:
            if line.startswith("Collecting ") or line.startswith("Processing "):
                reached[0] = min(0.8, reached[0] + 0.05)
            elif line.startswith("Installing collected packages"):
                reached[0] = 0.85
            report(reached[0], line if len(line) < 120 else line[:117] + "…")

        report(0.05, "Installing %s (about 80 MB to download)…" % package)
        _run([engine, "-m", "pip", "install", "--disable-pip-version-check", "--no-input",
              "--progress-bar", "off", package], "install %s with pip" % package, pip_line,
             stop, PIP_TIMEOUT)
        report(0.9, "Starting the engine once to check it…")
        hello = _check(engine)
        if stop():
            raise EngineCancelled("The set-up was cancelled; nothing was kept.")
        record: Dict[str, Any] = {"python": engine, "built_with": base, "package": package,
                                  "c2e_version": hello.get("c2e_version"),
                                  "created": time.strftime("%Y-%m-%dT%H:%M:%S")}
        marker = os.path.join(folder, MARKER)
        with open(marker + ".tmp", "w", encoding="utf-8") as handle:
            json.dump(record, handle, indent=1)
        os.replace(marker + ".tmp", marker)
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    report(1.0, "The engine is ready.")
    return engine


def _check(engine: str) -> Dict[str, Any]:
    """The engine's worker ``hello`` (:class:`EngineError` with its output if it cannot start)."""
    client = WorkerClient(engine, args=WORKER_ARGS, env=worker_environment(),
                          cwd=os.path.expanduser("~"), start_timeout=120.0)
    try:
        return dict(client.start())
    except Exception as exc:  # the worker's own words are in the message
        raise EngineError("The engine was installed but its worker does not start: %s" % exc
                          ) from None
    finally:
        client.close(timeout=5.0)
