"""Framing of the worker protocol: a JSON header line per message, then its raw payloads.

Reading (:func:`read_header`, :func:`parse_header`, :func:`read_payloads`) and writing
(:class:`MessageWriter`) of messages, with nothing of what the messages mean. Standard library
only.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Mapping, Sequence
from typing import Any, BinaryIO

from c2e_core.errors import InputError

#: The longest header line accepted (payloads are limited by their images' layouts).
MAX_HEADER_BYTES = 1 << 20
#: The deepest nesting of JSON arrays and objects accepted in a header.
MAX_DEPTH = 32
#: The most bytes read from a stream at once.
READ_CHUNK = 1 << 24

log = logging.getLogger("c2e_core.worker")


class RequestError(InputError):
    """A request cannot be served; ``kind`` is one of :data:`c2e_core.errors.ERROR_KINDS`."""

    def __init__(self, message: str, kind: str = "bad-request"):
        super().__init__(message)
        self.kind = kind
        #: The id of the message it answers, when known.
        self.request_id: Any = None
        #: A header that parsed as a JSON object but was refused (its payloads still follow).
        self.header: dict[str, Any] | None = None


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


def _check_tree(message: Any) -> None:
    """Refuse nesting deeper than :data:`MAX_DEPTH` and strings that are not valid Unicode
    (a lone surrogate such as ``"\\ud800"``), walking without recursion."""
    stack = [(message, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, str):
            if not _is_unicode(value):
                raise RequestError("the header holds a lone surrogate (a \\ud800-\\udfff escape)")
            continue
        if isinstance(value, dict):
            children: Any = [*value.keys(), *value.values()]
        elif isinstance(value, list):
            children = value
        else:
            continue
        if depth > MAX_DEPTH:
            raise RequestError(f"the header nests arrays and objects deeper than {MAX_DEPTH}")
        stack.extend((child, depth + 1) for child in children)


def _is_unicode(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def parse_header(line: bytes) -> dict[str, Any]:
    """A header line as a JSON object; :class:`RequestError` when it is not one, nests deeper
    than :data:`MAX_DEPTH` or holds a lone surrogate (its ``id`` then in ``exc.request_id``, the
    refused object in ``exc.header``: its payloads are still to be skipped)."""
    try:
        message = json.loads(line.decode("utf-8"))
    except RecursionError:
        raise RequestError(
            f"the header nests arrays and objects deeper than {MAX_DEPTH}"
        ) from None
    except (UnicodeDecodeError, ValueError) as exc:
        raise RequestError(f"malformed JSON header line: {exc}") from None
    if not isinstance(message, dict):
        raise RequestError(f"a message must be a JSON object, not {type(message).__name__}")
    try:
        _check_tree(message)
    except RequestError as exc:
        exc.request_id = request_id(message)
        exc.header = message
        raise
    return message


def request_id(message: dict[str, Any]) -> Any:
    """The message's ``id`` if it is a string or a number, else None (a lone surrogate in a
    string id is replaced by U+FFFD, so it can be echoed)."""
    value = message.get("id")
    if isinstance(value, bool) or not isinstance(value, (str, int, float, type(None))):
        return None
    if isinstance(value, str) and not _is_unicode(value):
        return "".join("\ufffd" if "\ud800" <= c <= "\udfff" else c for c in value)
    return value


def skip_exact(stream: BinaryIO, count: int) -> None:
    """Read and drop ``count`` bytes of ``stream`` in bounded chunks; :class:`EOFError` if it
    ends first."""
    remaining = count
    while remaining:
        chunk = stream.read(min(remaining, READ_CHUNK))
        if not chunk:
            raise EOFError(f"end of input with {remaining} payload bytes missing")
        remaining -= len(chunk)


def read_payloads(
    stream: BinaryIO, message: dict[str, Any], expected: Mapping[str, tuple[int, str]] | None = None
) -> dict[str, bytes]:
    """Read the payloads ``message`` declares, by name.

    ``expected`` maps a payload name to the byte count its image needs and a description of
    the image; only payloads named there with that count are kept, all others are read and
    dropped in bounded chunks (``None``: keep every payload). :class:`RequestError` when the
    declaration is malformed (nothing is read then), a name repeats or a count is wrong (every
    declared byte has been consumed then)."""
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
    seen: set[str] = set()
    twice = [e["name"] for e in declared if e["name"] in seen or seen.add(e["name"])]
    problem = f"payload {twice[0]!r} declared twice" if twice else None
    payloads: dict[str, bytes] = {}
    for entry in declared:
        name, count = entry["name"], entry["bytes"]
        need = None if expected is None else expected.get(name)
        if need is not None and need[0] != count and problem is None:
            problem = f"{need[1]} needs {need[0]} bytes, got {count}"
        if problem is None and (expected is None or need is not None):
            payloads[name] = read_exact(stream, count)
        else:
            skip_exact(stream, count)
    if problem is not None:
        raise RequestError(f"{problem} (its payload bytes were skipped)")
    return payloads


def encode_message(message: dict[str, Any], payloads: Sequence[tuple[str, bytes]] = ()) -> bytes:
    """The header line of ``message``, declaring ``payloads`` when there are some."""
    if payloads:
        message = dict(message)
        message["payloads"] = [{"name": name, "bytes": len(data)} for name, data in payloads]
    text = json.dumps(message, ensure_ascii=False, separators=(",", ":"))
    # a lone surrogate that got through becomes its JSON escape: never a failed write
    return text.encode("utf-8", "backslashreplace") + b"\n"


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
