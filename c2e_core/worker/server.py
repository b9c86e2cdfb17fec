"""The worker's server loop and ``c2e worker``'s entry point.

Requests are read on a reader thread (so ``cancel`` arrives while a job runs); jobs run one at a
time on the calling thread; every write to stdout goes through one :class:`MessageWriter`. The
worker never dies on a bad request: it answers an ``error`` message and keeps serving.
"""

from __future__ import annotations

import argparse
import io
import logging
import os
import queue
import sys
import threading
import traceback
from typing import Any, BinaryIO

from c2e_core.worker import PROTOCOL_VERSION
from c2e_core.worker.handlers import STOP, Handlers, Job, Jobs
from c2e_core.worker.models import ModelCache
from c2e_core.worker.pixels import expected_payloads
from c2e_core.worker.protocol import (
    MessageWriter,
    RequestError,
    parse_header,
    read_header,
    read_payloads,
    request_id,
)

log = logging.getLogger("c2e_core.worker")


class Worker:
    """Serves protocol version 1 over a pair of binary streams (see :func:`serve`)."""

    def __init__(
        self,
        stdin: BinaryIO,
        stdout: BinaryIO,
        *,
        weights: str | None = None,
        device: str = "auto",
        host: Any = None,
        models: ModelCache | None = None,
        warm_up: bool = True,
    ):
        self.stdin = stdin
        self.warm_up = warm_up  # load the --weights right after hello
        self.jobs = Jobs()
        self.writer = MessageWriter(stdout, on_close=self.jobs.stop)
        self.handlers = Handlers(
            self.writer.send, weights=weights, device=device, host=host, models=models
        )

    def send_error(self, request_id: Any, kind: str, message: str) -> bool:
        return self.writer.send_error(request_id, kind, message)

    # -- reading --------------------------------------------------------------------------------
    def read_loop(self) -> None:
        """Read messages until end of input or ``shutdown`` (runs on the reader thread)."""
        try:
            while not self.writer.closed.is_set():
                try:
                    line = read_header(self.stdin)
                    if line is None:
                        log.info("end of input; exiting")
                        break
                    if not line.strip():
                        continue
                    message = parse_header(line)
                except RequestError as exc:
                    if exc.header is not None:  # parsed, then refused: keep the stream in step
                        self.skip_payloads(exc.header)
                    self.send_error(exc.request_id, "bad-request", str(exc))
                    continue
                identifier = request_id(message)
                try:
                    payloads = read_payloads(self.stdin, message, self.expected(message))
                except RequestError as exc:
                    self.send_error(identifier, "bad-request", str(exc))
                    continue
                try:
                    keep_reading = self.dispatch(message, payloads, identifier)
                except Exception as exc:  # a bug: answer it, the stream is still in step
                    log.error("dispatch failed:\n%s", traceback.format_exc())
                    self.send_error(identifier, "internal", f"{type(exc).__name__}: {exc}")
                    continue
                if not keep_reading:
                    break
        except EOFError as exc:
            log.warning("%s; exiting", exc)
        except Exception:  # the reader must always let the main loop finish
            log.error("reader thread failed:\n%s", traceback.format_exc())
        finally:
            self.jobs.stop()

    def skip_payloads(self, message: dict[str, Any]) -> None:
        """Read and drop the payloads a refused header declares (none if its declaration is
        malformed: then nothing is read, as for a header that does not parse)."""
        try:
            read_payloads(self.stdin, message, {})
        except RequestError:
            pass

    @staticmethod
    def expected(message: dict[str, Any]) -> dict[str, tuple[int, str]]:
        """The payloads worth keeping: those of a ``colorize``'s images, at their sizes."""
        return expected_payloads(message) if message.get("type") == "colorize" else {}

    def dispatch(
        self, message: dict[str, Any], payloads: dict[str, bytes], identifier: Any
    ) -> bool:
        """Handle one message on the reader thread; False to stop reading."""
        kind = message.get("type")
        if kind == "colorize":
            if not isinstance(identifier, str) or not identifier:
                self.send_error(identifier, "bad-request", "colorize needs a non-empty string id")
            elif not self.jobs.submit(Job(message, payloads)):
                self.send_error(identifier, "bad-request", f"id {identifier!r} is already in use")
        elif kind == "cancel":
            self.jobs.cancel(identifier)
        elif kind == "hello":
            try:
                reply = self.handlers.hello()
            except Exception as exc:
                log.error("hello failed:\n%s", traceback.format_exc())
                self.send_error(identifier, "internal", f"hello failed: {exc}")
                return True
            if identifier is not None:
                reply["id"] = identifier
            self.writer.send(reply)
        elif kind == "shutdown":
            log.info("shutdown requested")
            return False
        else:
            self.send_error(
                identifier,
                "bad-request",
                f"unknown message type {kind!r} (expected hello, colorize, cancel or shutdown)",
            )
        return True

    # -- jobs -----------------------------------------------------------------------------------
    def serve_jobs(self) -> int:
        """Run queued jobs one at a time until stopped (runs on the calling thread)."""
        while True:
            job = self.jobs.queue.get()
            if job is STOP:
                break
            try:
                self.handlers.run_job(job)
            finally:
                self.jobs.done(job)
        # answer whatever is still queued (shutdown or end of input arrived first)
        while True:
            try:
                job = self.jobs.queue.get_nowait()
            except queue.Empty:
                break
            if job is not STOP:
                self.send_error(job.id, "cancelled", "the worker is shutting down")
        return 0

    def hello(self) -> dict[str, Any]:
        """The ``hello`` message (see :meth:`Handlers.hello`)."""
        return self.handlers.hello()

    def serve(self) -> int:
        """Greet, start the reader thread and run jobs until shutdown or end of input."""
        try:
            greeting = self.hello()
        except Exception as exc:  # still greet: the host needs the protocol version
            log.error("cannot build hello:\n%s", traceback.format_exc())
            greeting = {"type": "hello", "protocol": PROTOCOL_VERSION, "warnings": [str(exc)]}
        self.writer.send(greeting)
        reader = threading.Thread(target=self.read_loop, name="c2e-worker-reader", daemon=True)
        reader.start()
        if self.warm_up:
            self.handlers.warm_up()
        status = self.serve_jobs()
        self.writer.closed.set()
        return status


def serve(
    stdin: BinaryIO,
    stdout: BinaryIO,
    *,
    weights: str | None = None,
    device: str = "auto",
    host: Any = None,
    warm_up: bool = True,
) -> int:
    """Serve the worker protocol on binary ``stdin``/``stdout``; returns the exit status (0).
    ``warm_up``: load the ``weights`` (when given) right after ``hello``, so that the first
    request is quicker; ``c2e worker --lazy`` turns it off."""
    return Worker(stdin, stdout, weights=weights, device=device, host=host,
                  warm_up=warm_up).serve()  # fmt: skip


def _protocol_stdout() -> BinaryIO:
    """A private binary handle on the real stdout; fd 1 and ``sys.stdout`` then go to stderr."""
    sys.stdout.flush()
    try:
        fd = os.dup(sys.stdout.fileno())
        os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
        stream: BinaryIO = os.fdopen(fd, "wb")
    except (OSError, AttributeError, ValueError, io.UnsupportedOperation):
        stream = sys.stdout.buffer
    sys.stdout = sys.stderr
    return stream


def run(args: argparse.Namespace) -> int:
    """``c2e worker``: serve ``sys.stdin``/``sys.stdout`` (stray prints go to stderr)."""
    stdout = _protocol_stdout()
    if not logging.getLogger().handlers:
        logging.basicConfig(stream=sys.stderr, level=logging.INFO, format="c2e-worker: %(message)s")
    log.info("worker %d ready (protocol %d)", os.getpid(), PROTOCOL_VERSION)
    return serve(
        sys.stdin.buffer,
        stdout,
        weights=getattr(args, "weights", None),
        device=getattr(args, "device", "auto") or "auto",
        warm_up=not getattr(args, "lazy", False),
    )
