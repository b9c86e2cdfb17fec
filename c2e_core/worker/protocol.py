"""Framing of the worker protocol: a JSON header line per message, then its raw payloads.

Reading (:func:`read_header`, :func:`parse_header`, :func:`read_payloads`) and writing
(:class:`MessageWriter`) of messages, with nothing of what the messages mean. Standard library
only.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Sequence
from typing import Any, BinaryIO

from c2e_core.errors import InputError

#: The longest header line accepted (payloads are not limited).
MAX_HEADER_BYTES = 1 << 20
#: The most bytes read from a stream at once.
READ_CHUNK = 1 << 24

log = logging.getLogger("c2e_core.worker")


class RequestError(InputError):
    """A request cannot be served; ``kind`` is one of :data:`c2e_core.errors.ERROR_KINDS`."""

    def __init__(self, message: str, kind: str = "bad-request"):
        super().__init__(message)
        self.kind = kind


def one_line(text: str, limit: int = 600) -> str:
    """Collapse ``text`` onto one line of at most ``limit`` characters."""
    flat = " ".join(str(text).split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def read_exact(stream: BinaryIO, count: int) -> bytes:
    """Exactly ``count`` bytes of ``stream``; :class:`EOFError` if it ends first."""
    chunks, remaining = [], count
    while remaining:
        chunk = stream.read(min(remaining, READ_CHUNK))
        if not chunk:
            raise EOFError(f"end of input with {remaining} payload bytes missing")
        chunks.append(chunk)
        remaining -= len(chunk)
    return b"".join(chunks)


def read_header(stream: BinaryIO) -> bytes | None:
    """The next header line; None at end of input. Over-long lines are skipped and refused."""
    line = stream.readline(MAX_HEADER_BYTES)
    if not line:
        return None
    if line.endswith(b"\n") or len(line) < MAX_HEADER_BYTES:
        return line
    while True:  # skip the rest of an over-long line
        rest = stream.readline(MAX_HEADER_BYTES)
        if not rest or rest.endswith(b"\n"):
            break
    raise RequestError(f"header line longer than {MAX_HEADER_BYTES} bytes")


def parse_header(line: bytes) -> dict[str, Any]:
    """A header line as a JSON object; :class:`RequestError` when it is not one."""
    try:
        message = json.loads(line.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise RequestError(f"malformed JSON header line: {exc}") from None
    if not isinstance(message, dict):
        raise RequestError(f"a message must be a JSON object, not {type(message).__name__}")
    return message


def request_id(message: dict[str, Any]) -> Any:
    """The message's ``id`` if it is a string or a number, else None."""
    value = message.get("id")
    if isinstance(value, bool) or not isinstance(value, (str, int, float, type(None))):
        return None
    return value


def read_payloads(stream: BinaryIO, message: dict[str, Any]) -> dict[str, bytes]:
    """Read the payloads ``message`` declares, by name; :class:`RequestError` when the
    declaration is malformed (nothing is read then) or a name repeats."""
    declared = message.get("payloads", [])
    if not isinstance(declared, list) or not all(
        isinstance(p, dict)
        and isinstance(p.get("name"), str)
        and isinstance(p.get("bytes"), int)
        and not isinstance(p.get("bytes"), bool)
        and p["bytes"] >= 0
        for p in declared
    ):
        raise RequestError(
            'payloads must be a list of {"name": str, "bytes": int >= 0}; the bytes that '
            "followed (if any) were read as the next messages"
        )
    payloads: dict[str, bytes] = {}
    for entry in declared:
        data = read_exact(stream, entry["bytes"])
        if entry["name"] in payloads:
            raise RequestError(f"payload {entry['name']!r} declared twice")
        payloads[entry["name"]] = data
    return payloads


def encode_message(message: dict[str, Any], payloads: Sequence[tuple[str, bytes]] = ()) -> bytes:
    """The header line of ``message``, declaring ``payloads`` when there are some."""
    if payloads:
        message = dict(message)
        message["payloads"] = [{"name": name, "bytes": len(data)} for name, data in payloads]
    return json.dumps(message, ensure_ascii=False, separators=(",", ":")).encode("utf-8") + b"\n"


class MessageWriter:
    """Writes whole messages to a binary stream, one at a time (thread-safe).

    ``on_close`` runs once when the stream turns out to be closed (the host went away).
    """

    def __init__(self, stream: BinaryIO, on_close: Callable[[], None] | None = None):
        self.stream = stream
        self.on_close = on_close
        self.closed = threading.Event()
        self._lock = threading.Lock()

    def send(self, message: dict[str, Any], payloads: Sequence[tuple[str, bytes]] = ()) -> bool:
        """Write one message and its payloads atomically; False if the host is gone."""
        data = encode_message(message, payloads)
        with self._lock:
            if self.closed.is_set():
                return False
            try:
                self.stream.write(data)
                for _, payload in payloads:
                    self.stream.write(payload)
                self.stream.flush()
            except (BrokenPipeError, ValueError, OSError):
                log.warning("the host closed the worker's stdout; stopping")
                self.closed.set()
                if self.on_close is not None:
                    self.on_close()
                return False
        return True

    def send_error(self, request_id: Any, kind: str, message: str) -> bool:
        """An ``error`` message of ``kind``, its text on one line."""
        return self.send(
            {"type": "error", "id": request_id, "kind": kind, "message": one_line(message)}
        )
