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

from .protocol import (
    MAX_HEADER_BYTES,
    PROTOCOL_VERSION,
    Pixels,
    WorkerCancelled,
    WorkerError,
    WorkerTimeout,
    encode_message,
)

#: Lines of the worker's stderr kept for error messages.
STDERR_LINES = 200
#: The worker's command line after the interpreter.
WORKER_ARGS = ("-m", "c2e_core", "worker")
#: Default deadlines, in seconds: how long a call waits for the worker's next answer. A
#: ``hello`` is answered at once by a healthy worker; a ``colorize`` may load weights and run a
#: large image on the CPU between two progress messages, so its deadline is generous.
HELLO_TIMEOUT = 30.0
COLORIZE_TIMEOUT = 900.0
#: Seconds ``cancel`` waits for another thread's write before leaving the cancel to it.
CANCEL_WAIT = 1.0

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
    """Starts the c2e worker and speaks the protocol to it (thread-safe).

    Every call has a deadline (``timeout``: per call, else the client's ``hello_timeout`` or
    ``colorize_timeout``): the longest wait for the worker's next answer, progress included, so
    a long job that reports progress is never cut short. A worker that misses it is stopped and
    the call raises :class:`WorkerTimeout`. A worker that dies is reported once, to the calls
    waiting on it; the next call starts a fresh worker (as does the first call, if
    :meth:`start` was not called). ``start_hint`` is appended to start failures.
    """

    def __init__(
        self,
        python_executable: str,
        *,
        args: Sequence[str] = WORKER_ARGS,
        env: Optional[Dict[str, str]] = None,
        cwd: Optional[str] = None,
        hello_timeout: float = HELLO_TIMEOUT,
        colorize_timeout: float = COLORIZE_TIMEOUT,
        start_timeout: float = 120.0,
        start_hint: str = "",
    ):
        self.python_executable = python_executable
        self.args = list(args)
        self.env = env
        self.cwd = cwd
        self.hello_timeout = hello_timeout
        self.colorize_timeout = colorize_timeout
        self.start_timeout = start_timeout
        self.start_hint = start_hint
        self.process: Optional[subprocess.Popen] = None
        self.hello_info: Optional[Dict[str, Any]] = None
        self._write_lock = threading.Lock()
        self._start_lock = threading.Lock()
        self._state_lock = threading.RLock()
        self._requests: Dict[str, _Request] = {}
        self._hello_inbox: queue.Queue = queue.Queue()
        self._stderr: Deque[str] = collections.deque(maxlen=STDERR_LINES)
        self._threads: List[threading.Thread] = []
        self._dead_reason: Optional[str] = None
        self._counter = itertools.count(1)

    # -- life cycle -----------------------------------------------------------------------------
    def start(self, timeout: Optional[float] = None) -> Dict[str, Any]:
        """Spawn the worker and wait for its ``hello``; returns it. Raises :class:`WorkerError`."""
        if self.process is not None:
            raise WorkerError("the worker is already started")
        try:
            return self._spawn(self.start_timeout if timeout is None else timeout)
        except WorkerError as exc:
            if not self.start_hint or isinstance(exc, WorkerTimeout):
                raise
            raise WorkerError("%s\n%s" % (exc, self.start_hint), exc.kind, exc.stderr) from None

    def ensure_started(self) -> bool:
        """Start the worker unless it runs; a dead one is replaced. True if one was started."""
        with self._start_lock:
            if self.process is not None:
                if self.alive and self._dead_reason is None:
                    return False
                self.close(timeout=2.0)
            self.process = None
            self.start()
            return True

    def _spawn(self, timeout: float) -> Dict[str, Any]:
        with self._state_lock:
            self._dead_reason = None
            self._hello_inbox = queue.Queue()
            self._stderr = collections.deque(maxlen=STDERR_LINES)
        self._threads = []
        self.hello_info = None
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
        readers = ((self._read_stdout, (self.process, self._hello_inbox), "stdout"),
                   (self._read_stderr, (self.process, self._stderr), "stderr"))
        for target, args, name in readers:
            thread = threading.Thread(target=target, args=args, name="c2e-client-" + name)
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
                        "the c2e worker did not answer within %gs" % timeout, WorkerTimeout
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
                self._send_within(timeout, {"type": "shutdown"})
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
    def hello(self, timeout: Optional[float] = None) -> Dict[str, Any]:
        """Ask the worker for a fresh ``hello`` (weights and devices may have changed).

        ``timeout``: seconds to wait (default: the client's ``hello_timeout``)."""
        self.ensure_started()
        request = self._register("hello-%d" % next(self._counter))
        try:
            timeout = self.hello_timeout if timeout is None else timeout
            self._send_within(timeout, {"type": "hello", "id": request.id})
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
        options: Dict[str, Any] | Callable[[Dict[str, Any]], Dict[str, Any]] | None = None,
        mask: Optional[Pixels] = None,
        on_progress: Optional[ProgressCallback] = None,
        request_id: Optional[str] = None,
        reference_weights: Optional[Sequence[float]] = None,
        timeout: Optional[float] = None,
    ) -> Pixels:
        """Colorize ``target`` after ``reference`` (one :class:`Pixels` or a list of them).

        The result has the target's layout (grey layouts become RGB/RGBA). ``on_progress(done,
        total, message)`` runs on this thread; returning True cancels. ``timeout``: the longest
        wait for the worker's next message (default: the client's ``colorize_timeout``). Starts
        the worker if needed (reported to ``on_progress``). ``options`` may be a function of the
        worker's ``hello`` giving them (``ColorizeOptions.worker_options``), called once the
        worker runs, for a host that starts it lazily. Raises :class:`WorkerCancelled` when
        cancelled, :class:`WorkerTimeout` when the worker stopped answering,
        :class:`WorkerError` on any other failure.
        """
        if timeout is None:
            timeout = self.colorize_timeout
        references = list(reference) if isinstance(reference, (list, tuple)) else [reference]
        target.check("target")
        payloads: List[Tuple[str, bytes]] = [("target", target.data)]
        message: Dict[str, Any] = {
            "type": "colorize",
            "target": target.header("target"),
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
        if not self.alive and on_progress is not None:
            on_progress(0, 0, "Starting the c2e worker")
        self.ensure_started()
        if callable(options):
            options = options(dict(self.hello_info or {}))
        message["options"] = dict(options or {})
        request = self._register(request_id or "job-%d" % next(self._counter))
        message["id"] = request.id
        finished = False
        try:
            self._send_within(timeout, message, payloads)
            if request.cancel_requested:  # asked while the request was being written
                self.cancel(request.id)
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
        """Ask the worker to stop ``request_id`` at its next step (safe from any thread, quick:
        while a request is still being written, its ``colorize`` sends the cancel after it)."""
        with self._state_lock:
            request = self._requests.get(request_id)
            if request is not None:
                request.cancel_requested = True
        try:
            self._send({"type": "cancel", "id": request_id}, lock_wait=CANCEL_WAIT)
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
            dead = self._dead_reason
            taken = request_id in self._requests
            if dead is None and not taken:
                request = _Request(request_id)
                self._requests[request_id] = request
                return request
        # raised outside the lock: _failure reads the stderr buffer under it
        if dead is not None:
            self._wait_exit(2.0)  # for its exit status
            raise self._failure(dead)
        raise WorkerError("request id %r is already in use" % request_id, "bad-request")

    def _unregister(self, request: _Request) -> None:
        with self._state_lock:
            self._requests.pop(request.id, None)

    def _next(self, request: _Request, timeout: float) -> Dict[str, Any]:
        try:
            message = request.inbox.get(timeout=timeout)
        except queue.Empty:
            raise self._timed_out("answer", timeout) from None
        if message.get("type") == _DEAD:
            self._wait_exit(2.0)
            raise self._failure(message.get("reason") or "the c2e worker stopped")
        return message

    def _timed_out(self, what: str, timeout: float) -> WorkerError:
        """End a worker that missed a deadline (the next call starts a fresh one); the error."""
        self._kill()
        return self._failure(
            "the c2e worker did not %s within %gs (stopped or stuck); it was ended, the next "
            "request starts a new one" % (what, timeout), WorkerTimeout
        )

    def _send_within(self, timeout: float, message: Dict[str, Any],
                     payloads: Sequence[Tuple[str, bytes]] = ()) -> None:
        """:meth:`_send` with a deadline: a worker that stops reading cannot block the caller."""
        failed: List[WorkerError] = []

        def write() -> None:
            try:
                self._send(message, payloads)
            except WorkerError as exc:
                failed.append(exc)

        thread = threading.Thread(target=write, name="c2e-client-send")
        thread.daemon = True
        thread.start()
        thread.join(timeout)
        if thread.is_alive():
            raise self._timed_out("read the request", timeout)
        if failed:
            raise failed[0]

    def _send(self, message: Dict[str, Any], payloads: Sequence[Tuple[str, bytes]] = (),
              lock_wait: float = -1) -> None:
        """Write one message and its payloads (``lock_wait``: seconds to wait for another
        thread's write, -1 for as long as it takes)."""
        line = encode_message(message, payloads)
        if len(line) > MAX_HEADER_BYTES:
            raise WorkerError(
                f"the request's header is {len(line)} bytes, more than the worker reads "
                f"({MAX_HEADER_BYTES}); an option value is far too long"
            )
        process = self.process
        if process is None:
            raise WorkerError("the c2e worker is not started")
        if not self._write_lock.acquire(timeout=lock_wait):
            raise WorkerError("another request is still being written to the c2e worker")
        try:
            process.stdin.write(line)
            for _, data in payloads:
                process.stdin.write(data)
            process.stdin.flush()
            return
        except (OSError, ValueError):
            pass
        finally:
            self._write_lock.release()
        self._wait_exit(2.0)  # for its exit status, outside the write lock
        raise self._failure("the c2e worker is not running")

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

    def _read_stdout(self, process: subprocess.Popen, hello_inbox: queue.Queue) -> None:
        """Reader thread: route each message to the request waiting for it."""
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
                self._route(message, hello_inbox)
        except (OSError, ValueError, EOFError, KeyError, TypeError) as exc:
            reason = "lost the connection to the c2e worker (%s)" % exc
        finally:
            with self._state_lock:
                current = self.process is process
                if current:
                    self._dead_reason = reason
                requests = list(self._requests.values()) if current else []
            dead = {"type": _DEAD, "reason": reason}
            for request in requests:
                request.inbox.put(dead)
            hello_inbox.put(dead)

    def _route(self, message: Dict[str, Any], hello_inbox: queue.Queue) -> None:
        request_id = message.get("id")
        with self._state_lock:
            request = self._requests.get(request_id) if isinstance(request_id, str) else None
        if request is not None:
            request.inbox.put(message)
        elif message.get("type") == "hello":
            hello_inbox.put(message)
        elif message.get("type") == "error":
            self._note_stderr("[client] worker error: %s" % message.get("message"))

    def _read_stderr(self, process: subprocess.Popen, kept: Deque[str]) -> None:
        """Drain the worker's stderr into a bounded buffer, so the worker never blocks on it."""
        try:
            for raw in iter(process.stderr.readline, b""):
                line = raw.decode("utf-8", "replace").rstrip("\r\n")
                with self._state_lock:
                    kept.append(line)
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

    def _failure(self, what: str, error: Any = WorkerError) -> WorkerError:
        """A :class:`WorkerError` (or ``error``) with the exit status and the worker's stderr."""
        process = self.process
        status = process.poll() if process is not None else None
        tail = self.stderr_tail(15)
        text = what
        if status is not None:
            text += " (exit status %d)" % status
        if tail.strip():
            text += ". Its last output:\n" + tail
        return error(text + missing_c2e_hint(tail), stderr=tail)
