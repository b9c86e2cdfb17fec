"""The worker's parts alone: framing, pixel codec, model cache, request handling, server loop."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

from c2e_core.errors import OptionError
from c2e_core.worker import protocol
from c2e_core.worker.handlers import Handlers, Job, Jobs
from c2e_core.worker.models import ModelCache
from c2e_core.worker.pixels import (
    Layout,
    decode_pixels,
    encode_result,
    expected_payloads,
    image_to_srgb,
    parse_layout,
    request_image,
    target_alpha,
    to_unit,
)
from c2e_core.worker.protocol import MessageWriter, RequestError
from c2e_core.worker.server import Worker
from tests.conftest import count_calls

REPO = Path(__file__).resolve().parents[1]


# -- the package ---------------------------------------------------------------------------------
def test_importing_the_worker_imports_neither_torch_nor_numpy():
    code = "import sys, c2e_core.worker; print('torch' in sys.modules, 'numpy' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=str(REPO), check=True, env={"PYTHONPATH": str(REPO)})
    assert out.stdout.split() == ["False", "False"]


# -- protocol ------------------------------------------------------------------------------------
def test_headers_and_payloads_round_trip():
    data = protocol.encode_message({"type": "x", "id": "é"}, [("a", b"12"), ("b", b"")])
    stream = io.BytesIO(data + b"12" + b"next\n")
    message = protocol.parse_header(protocol.read_header(stream))
    assert message == {"type": "x", "id": "é", "payloads": [{"name": "a", "bytes": 2},
                                                              {"name": "b", "bytes": 0}]}
    assert protocol.read_payloads(stream, message) == {"a": b"12", "b": b""}
    assert protocol.read_header(stream) == b"next\n"
    assert protocol.read_header(stream) is None


@pytest.mark.parametrize("line, message", [
    (b"{nope\n", "malformed JSON"), (b"[1]\n", "JSON object"), (b"\xff\n", "malformed JSON"),
])
def test_bad_headers(line, message):
    with pytest.raises(RequestError, match=message):
        protocol.parse_header(line)


def test_over_long_header_is_skipped(monkeypatch):
    monkeypatch.setattr(protocol, "MAX_HEADER_BYTES", 8)
    stream = io.BytesIO(b"x" * 30 + b"\n{}\n")
    with pytest.raises(RequestError, match="longer than 8 bytes"):
        protocol.read_header(stream)
    assert protocol.read_header(stream) == b"{}\n"


def test_bad_payload_declarations():
    for declared in ("x", [{"name": 1, "bytes": 2}], [{"name": "a", "bytes": True}],
                     [{"name": "a", "bytes": -1}]):
        with pytest.raises(RequestError, match="payloads must be a list"):
            protocol.read_payloads(io.BytesIO(), {"payloads": declared})
    twice = {"payloads": [{"name": "a", "bytes": 1}, {"name": "a", "bytes": 1}]}
    with pytest.raises(RequestError, match="declared twice"):
        protocol.read_payloads(io.BytesIO(b"12"), twice)
    with pytest.raises(EOFError, match="3 payload bytes missing"):
        protocol.read_payloads(io.BytesIO(b""), {"payloads": [{"name": "a", "bytes": 3}]})


def test_request_ids_and_one_line():
    assert protocol.request_id({"id": "a"}) == "a" and protocol.request_id({"id": 3}) == 3
    assert protocol.request_id({"id": True}) is None and protocol.request_id({"id": []}) is None
    assert protocol.one_line("a\n  b") == "a b" and len(protocol.one_line("x" * 700)) == 600


def test_writer_stops_once_the_host_is_gone():
    class Closed(io.BytesIO):
        def write(self, data):
            raise BrokenPipeError

    stopped = []
    writer = MessageWriter(Closed(), on_close=lambda: stopped.append(1))
    assert not writer.send({"type": "x"}) and not writer.send({"type": "y"})
    assert stopped == [1] and writer.closed.is_set()
    out = io.BytesIO()
    assert MessageWriter(out).send_error("i", "weights", "a\nb")
    assert json.loads(out.getvalue()) == {"type": "error", "id": "i", "kind": "weights",
                                          "message": "a b"}


def test_deep_nesting_and_lone_surrogates_are_refused():
    for line in (b"[" * 1000 + b"]" * 1000, b"[" * 100000 + b"]" * 100000,
                 b'{"type": "hello", "a": ' + b"[" * 40 + b"]" * 40 + b"}"):
        with pytest.raises(RequestError, match="deeper than 32"):
            protocol.parse_header(line + b"\n")
    with pytest.raises(RequestError, match="lone surrogate") as info:
        protocol.parse_header(b'{"type": "hello", "id": "a\\ud800"}\n')
    assert info.value.request_id == "a\ufffd"
    assert protocol.request_id({"id": "\udfff"}) == "\ufffd"
    # the writer never fails on one: it is written as its JSON escape
    out = io.BytesIO()
    assert MessageWriter(out).send_error("\ud800", "bad-request", "x \udc00")
    assert json.loads(out.getvalue())["id"] == "\ud800"


class Zeros:
    """A stream of ``size`` zero bytes then ``tail``, made up as read (never held whole)."""

    def __init__(self, size: int, tail: bytes = b""):
        self.left, self.tail, self.largest = size, io.BytesIO(tail), 0

    def read(self, count: int) -> bytes:
        self.largest = max(self.largest, count)
        if self.left:
            count = min(count, self.left)
            self.left -= count
            return bytes(count)
        return self.tail.read(count)

    def readline(self, limit: int = -1) -> bytes:
        assert not self.left
        return self.tail.readline(limit)


def test_duplicate_payload_names_consume_every_payload_byte():
    hidden = b'{"type": "hello", "id": "hidden"}\n'
    message = {"payloads": [{"name": "a", "bytes": 2}, {"name": "a", "bytes": len(hidden)},
                            {"name": "b", "bytes": 1}]}
    stream = io.BytesIO(b"12" + hidden + b"3" + b'{"type": "hello"}\n')
    with pytest.raises(RequestError, match="'a' declared twice.*skipped"):
        protocol.read_payloads(stream, message, {"a": (2, "target")})
    assert protocol.read_header(stream) == b'{"type": "hello"}\n'


def test_payload_lengths_are_checked_before_reading():
    gib = 1 << 30
    message = {"payloads": [{"name": "t", "bytes": gib}, {"name": "r", "bytes": 3}]}
    stream = Zeros(gib + 3, b"next\n")
    with pytest.raises(RequestError, match="target: 8x8 needs 256 bytes, got 1073741824"):
        protocol.read_payloads(stream, message, {"t": (256, "target: 8x8"), "r": (3, "ref")})
    assert stream.largest <= protocol.READ_CHUNK and protocol.read_header(stream) == b"next\n"
    # payloads no image names are dropped, the others kept
    stream = io.BytesIO(b"abcxyz")
    message = {"payloads": [{"name": "r", "bytes": 3}, {"name": "extra", "bytes": 3}]}
    assert protocol.read_payloads(stream, message, {"r": (3, "ref")}) == {"r": b"abc"}
    assert stream.read() == b""


# -- pixels --------------------------------------------------------------------------------------
def test_layouts_are_checked():
    layout = parse_layout({"width": 2, "height": 1, "channels": "BGRA", "dtype": "u16"}, "t")
    assert layout == Layout(2, 1, "BGRA", "u16") and layout.nbytes == 16
    assert parse_layout({"width": 1, "height": 1, "dtype": "u8"}, "m", mask=True).channels == "A"
    for spec, message in [
        ([], "image object"), ({"width": 0, "height": 1}, "width must be a positive"),
        ({"width": 1, "height": 1, "channels": "CMYK"}, "channels must be one of"),
        ({"width": 1, "height": 1, "channels": "RGB", "dtype": "u32"}, "dtype must be one of"),
        ({"width": 1, "height": 1, "channels": "RGB", "dtype": "u8", "linear": 1}, "linear"),
    ]:
        with pytest.raises(RequestError, match=message):
            parse_layout(spec, "t")
    with pytest.raises(RequestError, match="needs 16 bytes, got 3"):
        decode_pixels(layout, b"123", "t")


def test_codec_round_trips_bgra_and_keeps_alpha():
    bgra = np.array([[[10, 20, 30, 40], [200, 100, 0, 255]]], np.uint8)
    layout = Layout(2, 1, "BGRA", "u8")
    samples = decode_pixels(layout, bgra.tobytes(), "t")
    rgb = image_to_srgb(samples, layout)
    np.testing.assert_allclose(rgb[0, 0], np.array([30, 20, 10]) / 255, atol=1e-7)
    out_layout, data = encode_result(rgb, layout, alpha=target_alpha(samples, layout))
    assert out_layout == layout and data == bgra.tobytes()
    assert to_unit(np.array([np.nan, 2.0], np.float32)).tolist() == [0.0, 1.0]


def test_grey_targets_become_rgb_and_keep_masked_out_pixels():
    layout = Layout(2, 1, "GRAYA", "u8")
    samples = decode_pixels(layout, bytes([50, 7, 60, 8]), "t")
    rgb = np.full((1, 2, 3), 0.5, np.float32)
    keep = np.array([[True, False]])
    out_layout, data = encode_result(
        rgb, layout, alpha=target_alpha(samples, layout), original=samples, keep=keep
    )
    assert out_layout.channels == "RGBA"
    assert list(data) == [50, 50, 50, 7, 128, 128, 128, 8]


def test_request_images_from_payloads_and_files(tmp_path):
    spec = {"width": 1, "height": 1, "channels": "RGB", "dtype": "u8"}
    assert request_image({**spec, "payload": "p"}, {"p": b"abc"}, "t")[1].tobytes() == b"abc"
    (tmp_path / "raw").write_bytes(b"xyz")
    assert request_image({**spec, "file": str(tmp_path / "raw")}, {}, "t")[1].tobytes() == b"xyz"
    for extra, message in [({"payload": "q"}, "was not declared"), ({}, "needs a payload"),
                           ({"payload": "p", "file": "f"}, "either payload or file"),
                           ({"file": str(tmp_path / "none")}, "cannot read")]:
        with pytest.raises(RequestError, match=message):
            request_image({**spec, **extra}, {"p": b"abc"}, "t")


def test_file_inputs_are_regular_files_of_the_right_size(tmp_path):
    spec = {"width": 1, "height": 1, "channels": "RGB", "dtype": "u8"}
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)  # opening it for reading would block without O_NONBLOCK
    (tmp_path / "long").write_bytes(b"abcd")
    for path, message in [(fifo, "not a regular file"), (tmp_path, "not a regular file"),
                          ("/dev/zero", "not a regular file"), ("a\0b", "without NUL"),
                          (tmp_path / "long", "needs 3 bytes, .* has 4")]:
        with pytest.raises(RequestError, match=message):
            request_image({**spec, "file": str(path)}, {}, "t")


def test_layout_mistakes_are_bad_requests():
    spec = {"width": 1, "height": 1, "channels": "RGB", "dtype": "u8"}
    for extra, message in [({"dtype": ["u8"]}, "dtype must be one of"),
                           ({"channels": ["RGB"]}, "channels must be one of"),
                           ({"width": 2**40}, "width must be a positive integer up to")]:
        with pytest.raises(RequestError, match=message):
            parse_layout({**spec, **extra}, "t")
    assert expected_payloads({"target": {**spec, "payload": "t"},
                              "references": [{**spec, "dtype": "u16", "payload": "r"}],
                              "mask": {**spec, "width": 0, "payload": "m"}}) == {
        "t": (3, "target: a 1x1 RGB u8 image"), "r": (6, "references[0]: a 1x1 RGB u16 image")}


# -- model cache ---------------------------------------------------------------------------------
class FakeColorizer:
    def __init__(self, weights, device):
        self.model, self.device, self.info = object(), device, {"weights": str(weights.path)}


class FakeWeights:
    def __init__(self, path):
        self.path = path


def test_cache_loads_once_per_file_and_device_and_evicts(tmp_path, monkeypatch):
    import c2e_core.worker.models as models

    monkeypatch.setattr(models, "variant_of", lambda base, compat, precision, host: (
        base, compat, precision))
    cache = ModelCache(size=2, loader=lambda w, d, h: FakeColorizer(w, d))
    files = []
    for name in "abc":
        (tmp_path / name).write_bytes(name.encode())
        files.append(FakeWeights(tmp_path / name))
    loads = []
    first = cache.get(files[0], "cpu", on_load=lambda: loads.append("a"))
    assert cache.get(files[0], "cpu") is first and cache.loads == 1 and loads == ["a"]
    assert cache.get(files[0], "cpu", compat="official") == (first, "official", "fp32")
    cache.get(files[0], "cuda")
    cache.get(files[1], "cpu")
    assert cache.loads == 3 and len(cache) == 2
    (tmp_path / "b").write_bytes(b"bb")  # re-imported: a new file, a new model
    cache.get(files[1], "cpu")
    assert cache.loads == 4


# -- request handling ----------------------------------------------------------------------------
def test_jobs_refuse_reused_ids_and_cancel():
    jobs = Jobs()
    job = Job({"id": "a"}, {})
    assert jobs.submit(job) and not jobs.submit(Job({"id": "a"}, {}))
    assert jobs.cancel("a") and job.cancelled.is_set() and not jobs.cancel("b")
    jobs.done(job)
    assert jobs.submit(Job({"id": "a"}, {}))


def image(name: str, width: int = 4, height: int = 4) -> dict:
    return {"width": width, "height": height, "channels": "RGB", "dtype": "u8", "payload": name}


def test_colorize_resolves_weights_device_and_steps_once(tiny_weights, monkeypatch):
    """One request: one resolve_weights, one select_device, one model load; the pipeline gets
    the resolved objects."""
    import c2e_core.inference.device
    import c2e_core.weights.loader
    import c2e_core.weights.store

    calls: dict[str, int] = {}
    count_calls(monkeypatch, calls, "resolve", c2e_core.weights.store.resolve_weights,
                (c2e_core.weights.store, "resolve_weights"),
                (c2e_core.weights.loader, "resolve_weights"))
    count_calls(monkeypatch, calls, "device", c2e_core.inference.device.select_device,
                (c2e_core.inference.device, "select_device"))
    sent = []
    handlers = Handlers(lambda message, payloads=(): sent.append((message, payloads)) or True,
                        weights=str(tiny_weights))
    message = {"type": "colorize", "id": "j", "target": image("t"), "reference": image("r"),
               "options": {"size": 32, "device": "cpu", "post": ["saturation"]}}
    job = Job(message, {"t": bytes(48), "r": bytes(range(48))})
    prepared = handlers.prepare(job)
    assert calls == {"resolve": 1, "device": 1}
    assert str(prepared.device) == "cpu" and prepared.weights.path == Path(tiny_weights)
    assert [s.name for s in prepared.post] == ["saturation"]
    calls.update(resolve=0, device=0)
    header, data = handlers.colorize(job)
    assert calls["resolve"] == 1 and handlers.model_loads == 1  # Colorizer's own device check
    assert header["type"] == "result" and len(data) == 48 and header["device"] == "cpu"
    assert [m["type"] for m, _ in sent] == ["progress"] * len(sent)


def test_bad_requests_are_one_line_errors_of_their_kind(tiny_weights, tmp_path):
    notes = tmp_path / "notes.txt"
    notes.write_text("hello\n")
    file_image = {k: v for k, v in image("t").items() if k != "payload"}
    sent = []
    handlers = Handlers(lambda message, payloads=(): sent.append(message) or True,
                        weights=str(tiny_weights))
    payloads = {"t": bytes(48), "r": bytes(48)}
    for message, kind, text in [
        ({"target": image("t")}, "bad-request", "needs a reference"),
        ({"target": image("t"), "references": []}, "bad-request", "non-empty list"),
        ({"target": image("t"), "reference": image("r"), "mask": image("t")}, "bad-request",
         "channels must be one of"),
        ({"target": image("t"), "reference": image("r"), "options": {"size": 7}},
         "bad-request", "options.size"),
        ({"target": image("t"), "reference": image("r"), "options": {"weights": "ghost"}},
         "weights", "no weights named 'ghost'"),
        ({"target": image("t"), "reference": image("r"), "options": {"device": "tpu"}},
         "device", "unknown device"),
        ({"target": {**image("t"), "dtype": ["u8"]}, "reference": image("r")},
         "bad-request", "dtype must be one of"),
        ({"target": image("t"), "reference": image("r"), "options": {"size": 2**40}},
         "bad-request", "options.size"),
        ({"target": image("t", width=2**40), "reference": image("r")}, "bad-request",
         "width must be a positive integer"),
        ({"target": {**file_image, "file": "a\0b"}, "reference": image("r")},
         "bad-request", "without NUL"),
        ({"target": image("t"), "reference": image("r"), "options": {"weights": "w" * 5000}},
         "weights", "File name too long"),
        ({"target": image("t"), "reference": image("r"), "options": {"weights": str(notes)}},
         "weights", "notes.txt"),
    ]:
        sent.clear()
        handlers.run_job(Job({"type": "colorize", "id": "x", **message}, payloads))
        assert sent[-1]["kind"] == kind and text in sent[-1]["message"], sent[-1]
        assert "\n" not in sent[-1]["message"]
    assert handlers.model_loads == 0


def test_an_option_error_names_the_protocol_option():
    with pytest.raises(OptionError, match="options.strength"):
        Handlers(lambda *a: True).prepare(Job({"id": "x", "options": {"strength": 2}}, {}))


# -- server loop ---------------------------------------------------------------------------------
class Pipe:
    """A blocking byte stream fed by the test (the worker's stdin)."""

    def __init__(self):
        self.buffer, self.lock = bytearray(), threading.Condition()
        self.closed = False

    def feed(self, data: bytes = b"", close: bool = False):
        with self.lock:
            self.buffer += data
            self.closed = self.closed or close
            self.lock.notify_all()

    def _wait(self, ready):
        with self.lock:
            self.lock.wait_for(lambda: ready() or self.closed)

    def readline(self, limit: int = -1) -> bytes:
        self._wait(lambda: b"\n" in self.buffer)
        with self.lock:
            end = self.buffer.find(b"\n") + 1 or len(self.buffer)
            line = bytes(self.buffer[:end])
            del self.buffer[:end]
            return line

    def read(self, count: int) -> bytes:
        self._wait(lambda: len(self.buffer) >= count)
        with self.lock:
            data = bytes(self.buffer[:count])
            del self.buffer[:count]
            return data


def test_server_dispatches_and_answers_what_is_left_at_shutdown(monkeypatch):
    stdin, stdout = Pipe(), io.BytesIO()
    worker = Worker(stdin, stdout)
    monkeypatch.setattr(worker.handlers, "hello", lambda: {"type": "hello", "protocol": 1})
    ran, read_all = [], threading.Event()
    dispatch = worker.dispatch

    def dispatching(message, payloads, identifier):
        if message.get("type") == "shutdown":
            read_all.set()
        return dispatch(message, payloads, identifier)

    monkeypatch.setattr(worker, "dispatch", dispatching)
    monkeypatch.setattr(worker.handlers, "run_job",
                        lambda job: read_all.wait(10) and ran.append(job.id))
    lines = [{"type": "hello", "id": 5}, {"type": "colorize"}, {"type": "colorize", "id": "a"},
             {"type": "colorize", "id": "a"}, {"type": "cancel", "id": "zz"},
             {"type": "what"}, {"type": "shutdown"}]
    stdin.feed(b"\n".join(json.dumps(m).encode() for m in lines) + b"\n")
    assert worker.serve() == 0
    replies = [json.loads(line) for line in stdout.getvalue().splitlines()]
    assert [r["type"] for r in replies] == ["hello", "hello", "error", "error", "error"]
    assert replies[1]["id"] == 5
    assert "non-empty string id" in replies[2]["message"]
    assert "already in use" in replies[3]["message"] and ran == ["a"]
    assert "unknown message type 'what'" in replies[4]["message"]


def test_server_survives_bad_framing_and_still_says_hello(monkeypatch):
    """Deep nesting, lone surrogates, repeated payload names, over-long payloads: one error
    each, no payload byte read as a message, and a hello after them is answered."""
    hidden = b'{"type": "hello", "id": "hidden"}\n'
    target = {"width": 8, "height": 8, "channels": "RGB", "dtype": "u8", "payload": "t"}
    colorize = {"type": "colorize", "id": "c", "target": target, "reference": target}
    twice = {**colorize, "payloads": [{"name": "t", "bytes": 192}, {"name": "t",
                                                                     "bytes": len(hidden)}]}
    long = {**colorize, "payloads": [{"name": "t", "bytes": 200 + len(hidden)}]}
    data = b"".join([
        b"[" * 1000 + b"]" * 1000 + b"\n",
        b'{"type": "hello", "id": "\\ud800"}\n',
        b'{"type": "colorize", "id": "\\udc00x"}\n',
        json.dumps(twice).encode() + b"\n" + bytes(192) + hidden,
        json.dumps(long).encode() + b"\n" + bytes(200) + hidden,
        b'{"type": "hello", "id": "after"}\n',
    ])
    stdout = io.BytesIO()
    worker = Worker(io.BytesIO(data), stdout)
    monkeypatch.setattr(worker.handlers, "hello", lambda: {"type": "hello", "protocol": 1})
    assert worker.serve() == 0
    replies = [json.loads(line) for line in stdout.getvalue().splitlines()]
    assert [(r["type"], r.get("id"), r.get("kind")) for r in replies] == [
        ("hello", None, None), ("error", None, "bad-request"), ("error", "\ufffd", "bad-request"),
        ("error", "\ufffdx", "bad-request"), ("error", "c", "bad-request"),
        ("error", "c", "bad-request"), ("hello", "after", None)]
    assert "deeper than 32" in replies[1]["message"]
    assert "declared twice" in replies[4]["message"]
    assert f"8x8 RGB u8 image needs 192 bytes, got {200 + len(hidden)}" in replies[5]["message"]


def test_a_refused_header_that_parses_still_has_its_payloads_dropped(monkeypatch):
    """A lone surrogate (what os.fsdecode makes of an undecodable file name) or nesting over
    32 in a header that declares payloads: refused, and its payload bytes read and dropped, so
    the next message is read in step (none of the payload bytes as one)."""
    hidden = b'{"type": "hello", "id": "hidden"}\n'
    nested: list = []
    for _ in range(40):
        nested = [nested]
    escaped = {"type": "colorize", "id": "s", "options": {"weights": "/tmp/\udcff.c2e.pt"},
               "payloads": [{"name": "t", "bytes": 3 + len(hidden)}]}
    deep = {"type": "hello", "id": "d", "x": nested,
            "payloads": [{"name": "a", "bytes": len(hidden)}, {"name": "b", "bytes": 0}]}
    data = b"".join([json.dumps(escaped).encode(), b"\n", b"abc", hidden,
                     json.dumps(deep).encode(), b"\n", hidden,
                     b'{"type": "hello", "id": "after"}\n'])
    stdout = io.BytesIO()
    worker = Worker(io.BytesIO(data), stdout)
    monkeypatch.setattr(worker.handlers, "hello", lambda: {"type": "hello", "protocol": 1})
    assert worker.serve() == 0
    replies = [json.loads(line) for line in stdout.getvalue().splitlines()]
    assert [(r["type"], r.get("id"), r.get("kind")) for r in replies] == [
        ("hello", None, None), ("error", "s", "bad-request"), ("error", "d", "bad-request"),
        ("hello", "after", None)]
    assert "lone surrogate" in replies[1]["message"] and "deeper than" in replies[2]["message"]


def test_a_failing_dispatch_is_answered_and_reading_goes_on(monkeypatch):
    data = b'{"type": "cancel", "id": "a"}\n{"type": "hello", "id": "b"}\n'
    stdout = io.BytesIO()
    worker = Worker(io.BytesIO(data), stdout)
    monkeypatch.setattr(worker.handlers, "hello", lambda: {"type": "hello", "protocol": 1})
    monkeypatch.setattr(worker.jobs, "cancel", lambda request_id: 1 / 0)
    assert worker.serve() == 0
    replies = [json.loads(line) for line in stdout.getvalue().splitlines()]
    assert [(r["type"], r.get("id"), r.get("kind")) for r in replies] == [
        ("hello", None, None), ("error", "a", "internal"), ("hello", "b", None)]
