# Python 3.8 compatible on purpose, so no pyupgrade rewrites:
# ruff: noqa: UP004, UP006, UP031, UP035, UP045
"""The worker client: starts ``python -m c2e_core worker`` and speaks protocol version 1 to it
over stdin/stdout (``docs/worker-protocol.md``). Standard library only."""

from __future__ import annotations

import collections
import itertools
import json
import os
import queue
import subprocess
import sys
import threading
import time
from typing import Any, Callable, Deque, Dict, List, Optional, Sequence, Tuple

from .protocol import PROTOCOL_VERSION, Pixels, WorkerCancelled, WorkerError, encode_message

#: Lines of the worker's stderr kept for error messages.
STDERR_LINES = 200
#: The worker's command line after the interpreter.
WORKER_ARGS = ("-m", "c2e_core", "worker")

ProgressCallback = Callable[[int, int, str], Optional[bool]]


def missing_c2e_hint(stderr: str) -> str:
    """An actionable hint for a worker that failed to start."""
    if "No module named" in stderr and ("c2e_core" in stderr or "torch" in stderr):
        return (
            " The configured Python does not have c2e installed: point the plugin at the "
            "Python interpreter of the environment where c2e is installed (for example "
            "/path/to/venv/bin/python or venv\\Scripts\\python.exe)."
        )
    return ""



_DEAD = "__worker_dead__"


class _Request(object):
    """A pending request: its inbox and whether the caller asked to cancel it."""

    def __init__(self, request_id: str):
        self.id = request_id
        self.inbox: queue.Queue = queue.Queue()
        self.cancel_requested = False


class WorkerClient(object):
    """Starts the c2e worker and speaks the protocol to it (thread-safe)."""

    def __init__(
        self,
        python_executable: str,
        *,
        args: Sequence[str] = WORKER_ARGS,
        env: Optional[Dict[str, str]] = None,
        cwd: Optional[str] = None,
    ):
        self.python_executable = python_executable
        self.args = list(args)
        self.env = env
        self.cwd = cwd
        self.process: Optional[subprocess.Popen] = None
        self.hello_info: Optional[Dict[str, Any]] = None
        self._write_lock = threading.Lock()
        self._state_lock = threading.Lock()
        self._requests: Dict[str, _Request] = {}
        self._hello_inbox: queue.Queue = queue.Queue()
        self._stderr: Deque[str] = collections.deque(maxlen=STDERR_LINES)
        self._threads: List[threading.Thread] = []
        self._dead_reason: Optional[str] = None
        self._counter = itertools.count(1)

    # -- life cycle -----------------------------------------------------------------------------
    def start(self, timeout: float = 120.0) -> Dict[str, Any]:
        """Spawn the worker and wait for its ``hello``; returns it. Raises :class:`WorkerError`."""
        if self.process is not None:
            raise WorkerError("the worker is already started")
        command = [self.python_executable] + self.args
        flags = getattr(subprocess, "CREATE_NO_WINDOW", 0) if sys.platform == "win32" else 0
        env = dict(os.environ if self.env is None else self.env)
        env.setdefault("PYTHONIOENCODING", "utf-8")
        try:
            self.process = subprocess.Popen(
                command,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                env=env,
                cwd=self.cwd,
                creationflags=flags,
            )
        except (OSError, ValueError) as exc:
            self.process = None
            raise WorkerError(
                "cannot start the c2e worker with %r: %s. Set the plugin's Python path to the "
                "interpreter of the environment where c2e is installed."
                % (self.python_executable, getattr(exc, "strerror", None) or exc)
            ) from None
        for target, name in ((self._read_stdout, "stdout"), (self._read_stderr, "stderr")):
            thread = threading.Thread(target=target, name="c2e-client-" + name)
            thread.daemon = True
            thread.start()
            self._threads.append(thread)
        deadline = time.monotonic() + timeout
        while True:
            try:
                message = self._hello_inbox.get(timeout=0.1)
            except queue.Empty:
                if time.monotonic() > deadline:
                    self._kill()
                    raise self._failure(
                        "the c2e worker did not answer within %gs" % timeout
                    ) from None
                continue
            if message.get("type") == _DEAD:
                self._wait_exit(2.0)
                raise self._failure("the c2e worker exited before it was ready")
            break
        if message.get("protocol") != PROTOCOL_VERSION:
            self.close()
            raise WorkerError(
                "the c2e worker speaks protocol %r, this plugin speaks %d: update c2e or the plugin"
                % (message.get("protocol"), PROTOCOL_VERSION)
            )
        self.hello_info = message
        return message

    def close(self, timeout: float = 5.0) -> Optional[int]:
        """Ask the worker to shut down; terminate, then kill it after ``timeout``. Exit status."""
        process = self.process
        if process is None:
            return None
        if process.poll() is None:
            try:
                self._send({"type": "shutdown"})
            except WorkerError:
                pass
            try:
                with self._write_lock:
                    process.stdin.close()
            except OSError:
                pass
            if not self._wait_exit(timeout):
                process.terminate()
                if not self._wait_exit(timeout):
                    self._kill()
        for thread in self._threads:
            thread.join(1.0)
        for stream in (process.stdout, process.stderr, process.stdin):
            try:
                stream.close()
            except (OSError, ValueError):
                pass
        return process.returncode

    def __enter__(self) -> WorkerClient:
        if self.process is None:
            self.start()
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()

    @property
    def alive(self) -> bool:
        """Whether the worker process is running."""
        return self.process is not None and self.process.poll() is None

    @property
    def pid(self) -> Optional[int]:
        return self.process.pid if self.process is not None else None

    def stderr_tail(self, lines: int = 20) -> str:
        """The last ``lines`` lines the worker wrote to stderr."""
        with self._state_lock:
            kept = list(self._stderr)
        return "\n".join(kept[-lines:])

    # -- requests -------------------------------------------------------------------------------
    def hello(self, timeout: float = 30.0) -> Dict[str, Any]:
        """Ask the worker for a fresh ``hello`` (weights and devices may have changed)."""
        request = self._register("hello-%d" % next(self._counter))
        try:
            self._send({"type": "hello", "id": request.id})
            message = self._next(request, timeout)
        finally:
            self._unregister(request)
        if message.get("type") == "error":
            raise WorkerError(message.get("message", "error"), message.get("kind", "internal"))
        self.hello_info = message
        return message

    def colorize(
        self,
        target: Pixels,
        reference: Any,
        *,
        options: Optional[Dict[str, Any]] = None,
        mask: Optional[Pixels] = None,
        on_progress: Optional[ProgressCallback] = None,
        request_id: Optional[str] = None,
        reference_weights: Optional[Sequence[float]] = None,
        timeout: Optional[float] = None,
    ) -> Pixels:
        """Colorize ``target`` after ``reference`` (one :class:`Pixels` or a list of them).

        The result has the target's layout (grey layouts become RGB/RGBA). ``on_progress(done,
        total, message)`` runs on this thread; returning True cancels. Raises
        :class:`WorkerCancelled` when cancelled, :class:`WorkerError` on any other failure.
        """
        references = list(reference) if isinstance(reference, (list, tuple)) else [reference]
        target.check("target")
        payloads: List[Tuple[str, bytes]] = [("target", target.data)]
        message: Dict[str, Any] = {
            "type": "colorize",
            "target": target.header("target"),
            "options": dict(options or {}),
        }
        images = []
        for index, image in enumerate(references):
            name = "reference" if len(references) == 1 else "reference%d" % index
            image.check(name)
            images.append(image.header(name))
            payloads.append((name, image.data))
        if len(references) == 1 and reference_weights is None:
            message["reference"] = images[0]
        else:
            message["references"] = images
            if reference_weights is not None:
                message["reference_weights"] = [float(w) for w in reference_weights]
        if mask is not None:
            mask.check("mask")
            message["mask"] = mask.header("mask")
            payloads.append(("mask", mask.data))
        request = self._register(request_id or "job-%d" % next(self._counter))
        message["id"] = request.id
        finished = False
        try:
            self._send(message, payloads)
            while True:
                reply = self._next(request, timeout)
                kind = reply.get("type")
                if kind == "progress":
                    if on_progress is not None and not request.cancel_requested:
                        if on_progress(
                            int(reply.get("done", 0)),
                            int(reply.get("total", 0)),
                            str(reply.get("message", "")),
                        ):
                            self.cancel(request.id)
                    continue
                if kind == "error":
                    finished = True
                    if reply.get("kind") == "cancelled":
                        raise WorkerCancelled(reply.get("message") or "cancelled")
                    raise WorkerError(reply.get("message", "error"), reply.get("kind", "internal"))
                if kind == "result":
                    finished = True
                    if request.cancel_requested:  # finished before the cancel arrived
                        raise WorkerCancelled()
                    return self._result(reply)
        finally:
            if not finished and self.alive:  # the caller gave up (an exception, a timeout)
                self.cancel(request.id)
            self._unregister(request)

    def cancel(self, request_id: str) -> None:
        """Ask the worker to stop ``request_id`` at its next step (safe from any thread)."""
        with self._state_lock:
            request = self._requests.get(request_id)
            if request is not None:
                request.cancel_requested = True
        try:
            self._send({"type": "cancel", "id": request_id})
        except WorkerError:
            pass

    # -- internals ------------------------------------------------------------------------------
    def _result(self, reply: Dict[str, Any]) -> Pixels:
        data = reply.get("_payloads", {}).get("result")
        if data is None:
            raise WorkerError("the worker's result carried no pixels", "internal")
        known = ("type", "id", "width", "height", "channels", "dtype", "linear", "payloads")
        info = dict((k, v) for k, v in reply.items() if k not in known and k != "_payloads")
        pixels = Pixels(
            reply["width"],
            reply["height"],
            reply["channels"],
            reply["dtype"],
            data,
            linear=reply.get("linear", False),
            info=info,
        )
        try:
            pixels.check("result")
        except ValueError as exc:
            raise WorkerError(str(exc), "internal") from None
        return pixels

    def _register(self, request_id: str) -> _Request:
        with self._state_lock:
            if self._dead_reason is not None:
                raise self._failure(self._dead_reason)
            if request_id in self._requests:
                raise WorkerError("request id %r is already in use" % request_id, "bad-request")
            request = _Request(request_id)
            self._requests[request_id] = request
            return request

    def _unregister(self, request: _Request) -> None:
        with self._state_lock:
            self._requests.pop(request.id, None)

    def _next(self, request: _Request, timeout: Optional[float]) -> Dict[str, Any]:
        try:
            message = request.inbox.get(timeout=timeout)
        except queue.Empty:
            self.cancel(request.id)
            raise WorkerError("no answer from the c2e worker within %gs" % timeout) from None
        if message.get("type") == _DEAD:
            self._wait_exit(2.0)
            raise self._failure(message.get("reason") or "the c2e worker stopped")
        return message

    def _send(self, message: Dict[str, Any], payloads: Sequence[Tuple[str, bytes]] = ()) -> None:
        line = encode_message(message, payloads)
        process = self.process
        if process is None:
            raise WorkerError("the c2e worker is not started")
        with self._write_lock:
            try:
                process.stdin.write(line)
                for _, data in payloads:
                    process.stdin.write(data)
                process.stdin.flush()
            except (OSError, ValueError):
                raise self._failure("the c2e worker is not running") from None

    def _read_exact(self, stream: Any, count: int) -> bytes:
        chunks = []
        remaining = count
        while remaining:
            chunk = stream.read(min(remaining, 1 << 24))
            if not chunk:
                raise EOFError("end of the worker's output inside a payload")
            chunks.append(chunk)
            remaining -= len(chunk)
        return b"".join(chunks)

    def _read_stdout(self) -> None:
        """Reader thread: route each message to the request waiting for it."""
        process = self.process
        assert process is not None
        stream = process.stdout
        reason = "the c2e worker stopped"
        try:
            while True:
                line = stream.readline()
                if not line:
                    break
                try:
                    message = json.loads(line.decode("utf-8"))
                except ValueError:
                    self._note_stderr("[client] unreadable line from worker: %r" % line[:200])
                    continue
                if not isinstance(message, dict):
                    continue
                declared = message.get("payloads") or []
                message["_payloads"] = dict(
                    (p["name"], self._read_exact(stream, int(p["bytes"]))) for p in declared
                )
                self._route(message)
        except (OSError, ValueError, EOFError, KeyError, TypeError) as exc:
            reason = "lost the connection to the c2e worker (%s)" % exc
        finally:
            with self._state_lock:
                self._dead_reason = reason
                requests = list(self._requests.values())
            dead = {"type": _DEAD, "reason": reason}
            for request in requests:
                request.inbox.put(dead)
            self._hello_inbox.put(dead)

    def _route(self, message: Dict[str, Any]) -> None:
        request_id = message.get("id")
        with self._state_lock:
            request = self._requests.get(request_id) if isinstance(request_id, str) else None
        if request is not None:
            request.inbox.put(message)
        elif message.get("type") == "hello":
            self._hello_inbox.put(message)
        elif message.get("type") == "error":
            self._note_stderr("[client] worker error: %s" % message.get("message"))

    def _read_stderr(self) -> None:
        """Drain the worker's stderr into a bounded buffer, so the worker never blocks on it."""
        process = self.process
        assert process is not None
        try:
            for raw in iter(process.stderr.readline, b""):
                self._note_stderr(raw.decode("utf-8", "replace").rstrip("\r\n"))
        except (OSError, ValueError):
            pass

    def _note_stderr(self, line: str) -> None:
        with self._state_lock:
            self._stderr.append(line)

    def _wait_exit(self, timeout: float) -> bool:
        process = self.process
        if process is None:
            return True
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            return False
        for thread in self._threads[1:]:  # let the stderr reader catch the last lines
            thread.join(1.0)
        return True

    def _kill(self) -> None:
        process = self.process
        if process is not None and process.poll() is None:
            process.kill()
            self._wait_exit(5.0)

    def _failure(self, what: str) -> WorkerError:
        """A :class:`WorkerError` with the exit status and the tail of the worker's stderr."""
        process = self.process
        status = process.poll() if process is not None else None
        tail = self.stderr_tail(15)
        text = what
        if status is not None:
            text += " (exit status %d)" % status
        if tail.strip():
            text += ". Its last output:\n" + tail
        return WorkerError(text + missing_c2e_hint(tail), "worker", tail)
