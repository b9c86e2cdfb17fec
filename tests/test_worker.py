"""The worker protocol end to end: the real worker process driven through the real client."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from skimage.color import rgb2lab

from c2e_core.options import ColorizeRequest
from c2e_core.weights.store import save_weights
from tests.conftest import TINY_CONFIG, load_client, tiny_model

REPO = Path(__file__).resolve().parents[1]
OPTIONS = {"size": 32, "device": "cpu"}

pytestmark = pytest.mark.integration


c2e_client = load_client()
Pixels = c2e_client.Pixels
WorkerClient = c2e_client.WorkerClient
WorkerError = c2e_client.WorkerError


# -- fixtures -----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def worker_env(tmp_path_factory) -> tuple[dict[str, str], Path]:
    home = tmp_path_factory.mktemp("worker_home")
    weights = home / "tiny.c2e.pt"
    save_weights(weights, architecture="color2embed", config=TINY_CONFIG,
                 state_dict=tiny_model().state_dict())
    env = dict(os.environ, C2E_HOME=str(home), C2E_DISABLE_PLUGIN_AUTOLOAD="1",
               PYTHONPATH=os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]))
    return env, weights


def worker_args(*extra: str) -> tuple[str, ...]:
    return ("-m", "c2e_core", "worker", *extra)


@pytest.fixture(scope="module")
def client(worker_env):
    env, weights = worker_env
    worker = WorkerClient(sys.executable, args=worker_args("--weights", str(weights)), env=env,
                          cwd=str(REPO))
    worker.start(timeout=60)
    yield worker
    status = worker.close()
    assert status == 0, worker.stderr_tail()


# -- helpers ------------------------------------------------------------------------------------
def gradient(height: int, width: int, seed: int = 0) -> np.ndarray:
    """A smooth colourful sRGB float image ``[H, W, 3]`` in [0, 1]."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    rgb = np.stack([x / width, y / height, 0.5 + 0.4 * np.sin(x / 3 + y / 5)], axis=-1)
    rgb += rng.uniform(-0.05, 0.05, rgb.shape)
    return np.clip(rgb, 0.02, 0.98).astype(np.float32)


def srgb_to_linear(x: np.ndarray) -> np.ndarray:
    return np.where(x <= 0.04045, x / 12.92, ((x + 0.055) / 1.055) ** 2.4)


def linear_to_srgb(x: np.ndarray) -> np.ndarray:
    high = 1.055 * np.maximum(x, 0.0031308) ** (1 / 2.4) - 0.055
    return np.where(x <= 0.0031308, x * 12.92, high)


def pixels(array: np.ndarray, channels: str, dtype: str, linear: bool = False) -> Pixels:
    height, width = array.shape[:2]
    data = array.astype(array.dtype.newbyteorder("<")).tobytes()
    return Pixels(width, height, channels, dtype, data, linear=linear)


def as_array(result: Pixels) -> np.ndarray:
    dtype = {"u8": "<u1", "u16": "<u2", "f16": "<f2", "f32": "<f4"}[result.dtype]
    count = {"RGBA": 4, "BGRA": 4, "RGB": 3, "BGR": 3}[result.channels]
    return np.frombuffer(result.data, dtype=dtype).reshape(result.height, result.width, count)


def rgba_u8(height: int = 40, width: int = 56, seed: int = 0) -> np.ndarray:
    rgb = np.rint(gradient(height, width, seed) * 255).astype(np.uint8)
    alpha = np.random.default_rng(seed + 7).integers(0, 256, (height, width, 1), dtype=np.uint8)
    return np.concatenate([rgb, alpha], axis=-1)


def reference() -> Pixels:
    rng = np.random.default_rng(3)
    ref = np.zeros((24, 24, 3), np.uint8)
    ref[:12] = (220, 40, 30)
    ref[12:] = (20, 90, 230)
    ref = np.clip(ref.astype(int) + rng.integers(-10, 10, ref.shape), 0, 255).astype(np.uint8)
    return pixels(ref, "RGB", "u8")


def lightness(rgb: np.ndarray) -> np.ndarray:
    return rgb2lab(np.clip(rgb, 0, 1).astype(np.float64))[..., 0]


# -- hello --------------------------------------------------------------------------------------
def test_hello(client, worker_env):
    _, weights = worker_env
    hello = client.hello_info
    assert hello["type"] == "hello" and hello["protocol"] == 1
    for key in ("c2e_version", "torch_version", "python", "devices", "default_device", "weights",
                "default_weights", "processors", "plugins"):
        assert key in hello, key
    assert "cpu" in hello["devices"]
    assert hello["default_weights"] == str(weights)
    names = {p["name"] for p in hello["processors"]}
    assert {"saturation", "auto-contrast"} <= names
    assert "c2e_core.builtin" in hello["plugins"]
    assert hello["options"] == list(ColorizeRequest.PROTOCOL_OPTIONS)
    assert "clean" in hello["options"]
    again = client.hello()
    assert again["protocol"] == 1 and again["devices"] == hello["devices"]


# -- colorize -----------------------------------------------------------------------------------
def test_colorize_rgba_u8(client):
    target = rgba_u8()
    result = client.colorize(pixels(target, "RGBA", "u8"), reference(), options=OPTIONS)
    assert (result.width, result.height, result.channels, result.dtype, result.linear) == (
        56, 40, "RGBA", "u8", False)
    out = as_array(result)
    assert np.array_equal(out[..., 3], target[..., 3])  # alpha byte-identical
    l_in = lightness(target[..., :3] / 255.0)
    l_out = lightness(out[..., :3] / 255.0)
    assert np.abs(l_out - l_in).max() < 1.0  # L kept, up to 8-bit rounding
    chroma_in = np.hypot(*np.moveaxis(rgb2lab(target[..., :3] / 255.0)[..., 1:], -1, 0))
    chroma_out = np.hypot(*np.moveaxis(rgb2lab(out[..., :3] / 255.0)[..., 1:], -1, 0))
    assert np.abs(chroma_out - chroma_in).mean() > 1.0  # the colours did change
    assert result.info["model_loads"] >= 1 and result.info["device"] == "cpu"


def test_colorize_bgra_u16_linear(client):
    srgb = gradient(36, 44, seed=1)
    linear = srgb_to_linear(srgb)
    alpha = np.random.default_rng(5).integers(0, 65536, (36, 44, 1))
    bgra = np.concatenate([np.rint(linear[..., ::-1] * 65535), alpha], axis=-1).astype(np.uint16)
    result = client.colorize(pixels(bgra, "BGRA", "u16", linear=True), reference(),
                             options=OPTIONS)
    assert (result.channels, result.dtype, result.linear) == ("BGRA", "u16", True)
    out = as_array(result)
    assert np.array_equal(out[..., 3], bgra[..., 3])
    out_srgb = linear_to_srgb(out[..., 2::-1] / 65535.0)
    in_srgb = linear_to_srgb(bgra[..., 2::-1] / 65535.0)
    assert np.abs(lightness(out_srgb) - lightness(in_srgb)).max() < 0.3


def test_colorize_f32_rgb_and_gray(client):
    rgb = gradient(32, 32, seed=2)
    result = client.colorize(pixels(rgb, "RGB", "f32"), reference(), options=OPTIONS)
    assert (result.channels, result.dtype) == ("RGB", "f32")
    out = as_array(result)
    assert out.dtype == np.dtype("<f4") and np.isfinite(out).all()
    assert np.abs(lightness(out) - lightness(rgb)).max() < 0.05
    gray = np.mean(rgb, axis=-1, keepdims=True).astype(np.float32)
    gray_alpha = np.concatenate([gray, np.full_like(gray, 0.25)], axis=-1)
    result = client.colorize(pixels(gray_alpha, "GRAYA", "f32"), reference(), options=OPTIONS)
    assert result.channels == "RGBA"  # a grey layout gains colour
    out = as_array(result)
    assert np.all(out[..., 3] == np.float32(0.25))


def test_soft_mask_keeps_pixels_outside(client):
    target = rgba_u8(seed=4)
    height, width = target.shape[:2]
    mask = np.zeros((height, width), np.float32)
    mask[:, width // 2 :] = 1.0
    mask[:, width // 2 - 8 : width // 2] = np.linspace(0, 1, 8, dtype=np.float32)  # feathered
    options = dict(OPTIONS)
    full = as_array(client.colorize(pixels(target, "RGBA", "u8"), reference(), options=options))
    result = client.colorize(pixels(target, "RGBA", "u8"), reference(), options=options,
                             mask=pixels(mask, "A", "f32"))
    out = as_array(result)
    outside = mask == 0
    assert np.abs(out[outside].astype(int) - target[outside].astype(int)).max() <= 1
    inside = mask == 1
    assert np.abs(out[inside].astype(int) - full[inside].astype(int)).max() <= 1
    assert np.array_equal(out[..., 3], target[..., 3])
    mask_u8 = pixels(np.rint(mask * 255).astype(np.uint8), "A", "u8")
    again = as_array(client.colorize(pixels(target, "RGBA", "u8"), reference(), options=options,
                                     mask=mask_u8))
    assert np.abs(again.astype(int) - out.astype(int)).max() <= 3  # mask quantised to u8


def test_a_header_longer_than_the_worker_reads_is_refused_before_sending(client):
    """A request the worker could not attribute (header over its 1 MiB limit) fails at once in
    the client, instead of waiting out the deadline; the worker keeps serving."""
    pid = client.pid
    options = dict(OPTIONS, weights="w" * (1 << 20))
    with pytest.raises(WorkerError, match="more than the worker reads"):
        client.colorize(pixels(rgba_u8(), "RGBA", "u8"), reference(), options=options)
    assert client.hello()["type"] == "hello" and client.pid == pid


def test_model_is_reused(client):
    target = pixels(rgba_u8(16, 16), "RGBA", "u8")
    first = client.colorize(target, reference(), options=OPTIONS)
    second = client.colorize(target, reference(), options={**OPTIONS, "size": 48})
    assert first.info["model_loads"] == second.info["model_loads"] == 1
    assert client.hello()["model_loads"] == 1


@pytest.mark.parametrize("lazy", [False, True])
def test_the_worker_loads_its_weights_right_after_hello(worker_env, lazy):
    """With ``--weights`` the model loads before any request (``--lazy``: at the first one),
    and the first request finds it loaded."""
    env, weights = worker_env
    extra = ("--lazy",) if lazy else ()
    worker = WorkerClient(sys.executable, args=worker_args("--weights", str(weights), *extra),
                          env=env, cwd=str(REPO))  # fmt: skip
    try:
        assert worker.start(timeout=60)["model_loads"] == 0  # hello comes first
        loads = worker.hello()["model_loads"]
        for _ in range(300):  # bounded: the load takes about a second
            if loads or lazy:
                break
            time.sleep(0.1)
            loads = worker.hello()["model_loads"]
        assert loads == (0 if lazy else 1)
        result = worker.colorize(pixels(rgba_u8(16, 16), "RGBA", "u8"), reference(),
                                 options=OPTIONS)
        assert result.info["model_loads"] == 1
    finally:
        worker.close(timeout=10)


def test_options_made_from_the_hello_of_a_worker_that_starts_at_the_first_run(worker_env):
    """A host that starts its worker lazily (GIMP) passes ``options`` as a function of the
    worker's hello (``ColorizeOptions.worker_options``): called once the worker runs, and what
    it raises is raised before anything is sent."""
    env, weights = worker_env
    worker = WorkerClient(sys.executable, args=worker_args("--weights", str(weights)), env=env,
                          cwd=str(REPO))  # fmt: skip
    seen = []

    def options_for(hello):
        seen.append(hello)
        return {**OPTIONS, "strength": 0.0}

    def refuse(hello):
        raise ValueError("this worker is too old")

    target = rgba_u8(24, 24, seed=7)
    try:
        assert worker.process is None
        out = as_array(worker.colorize(pixels(target, "RGBA", "u8"), reference(),
                                       options=options_for))  # fmt: skip
        assert [hello["type"] for hello in seen] == ["hello"] and "clean" in seen[0]["options"]
        assert np.abs(out.astype(int) - target.astype(int)).max() <= 1  # strength 0 was sent
        with pytest.raises(ValueError, match="too old"):
            worker.colorize(pixels(target, "RGBA", "u8"), reference(), options=refuse)
        again = worker.colorize(pixels(target, "RGBA", "u8"), reference(), options=OPTIONS)
        assert again.width == 24 and worker.alive
    finally:
        worker.close(timeout=10)


def test_options_strength_post_and_references(client):
    target = rgba_u8(24, 24, seed=6)
    t = pixels(target, "RGBA", "u8")
    zero = as_array(client.colorize(t, reference(), options={**OPTIONS, "strength": 0.0}))
    assert np.abs(zero.astype(int) - target.astype(int)).max() <= 1
    plain = as_array(client.colorize(t, reference(), options={**OPTIONS, "clean": 0.0}))
    cleaned = as_array(client.colorize(t, reference(), options={**OPTIONS, "clean": 1.0}))
    assert cleaned.shape == plain.shape and np.abs(cleaned.astype(int) - plain).max() > 0
    default = as_array(client.colorize(t, reference(), options=OPTIONS))  # clean 1 by default
    assert np.array_equal(default, cleaned)
    calm = as_array(client.colorize(t, reference(), options={**OPTIONS, "keep_palette": False}))
    assert calm.shape == plain.shape and not np.array_equal(calm, cleaned)
    gray_ref = pixels(np.full((8, 8), 0.5, np.float32), "GRAY", "f32")
    result = client.colorize(t, [reference(), gray_ref], reference_weights=[3, 1],
                             options={**OPTIONS, "post": [["saturation", {"factor": 0.5}]],
                                      "pre": ["auto-contrast"], "size": "native"})
    assert result.width == 24
    with pytest.raises(WorkerError) as info:
        client.colorize(t, reference(), options={**OPTIONS, "post": ["nope"]})
    assert info.value.kind == "bad-request" and "nope" in str(info.value)
    with pytest.raises(WorkerError) as info:
        client.colorize(t, reference(), options={**OPTIONS, "post": [["saturation", {"x": 1}]]})
    assert info.value.kind == "bad-request"


def test_cancel_then_serve_next(client):
    target = pixels(rgba_u8(64, 64), "RGBA", "u8")
    seen = []

    def on_progress(done, total, message):
        seen.append((done, total, message))
        return True

    with pytest.raises(c2e_client.WorkerCancelled) as info:
        client.colorize(target, reference(), options=OPTIONS, on_progress=on_progress)
    assert info.value.kind == "cancelled"
    assert len(seen) == 1
    result = client.colorize(target, reference(), options=OPTIONS)
    assert result.width == 64


def test_bad_requests_keep_the_worker_alive(client):
    target = pixels(rgba_u8(8, 8), "RGBA", "u8")
    ok = lambda: client.colorize(target, reference(), options=OPTIONS)  # noqa: E731
    # unknown weights
    with pytest.raises(WorkerError) as info:
        client.colorize(target, reference(), options={**OPTIONS, "weights": "no-such-weights"})
    assert info.value.kind == "weights" and "no-such-weights" in str(info.value)
    # width/height not matching the bytes: client-side check first, then the worker's
    wrong = Pixels(9, 8, "RGBA", "u8", target.data)
    with pytest.raises(ValueError):
        client.colorize(wrong, reference(), options=OPTIONS)

    class Unchecked(Pixels):
        def check(self, what: str = "image") -> None:  # bypass the client's own check
            pass

    wrong = Unchecked(9, 8, "RGBA", "u8", target.data)
    with pytest.raises(WorkerError) as info:
        client.colorize(wrong, reference(), options=OPTIONS)
    assert info.value.kind == "bad-request" and "bytes" in str(info.value)
    # bad options
    for options in ({"size": 17}, {"strength": 2}, {"clean": -1}, {"keep_palette": 0},
                    {"compat": "x"}, {"device": "tpu"}, {"precision": "fp8"}, {"size": 8192}):
        with pytest.raises(WorkerError) as info:
            client.colorize(target, reference(), options={**OPTIONS, **options})
        assert info.value.kind in ("bad-request", "device"), options
    assert ok().width == 8
    assert client.alive


def _raw_roundtrip(client, raw: bytes, expect_id=None) -> dict:
    """Write raw bytes to the worker and wait for the error it answers."""
    notes_before = len(client._stderr)
    with client._write_lock:
        client.process.stdin.write(raw)
        client.process.stdin.flush()
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        notes = list(client._stderr)[notes_before:]
        errors = [n for n in notes if n.startswith("[client] worker error:")]
        if errors:
            return {"message": errors[0]}
        time.sleep(0.02)
    raise AssertionError("no error answer")


def test_protocol_errors_on_the_wire(client):
    """Malformed JSON, payload size mismatch, unknown type: errors, and the worker stays up."""
    note = _raw_roundtrip(client, b"{this is not json\n")
    assert "malformed JSON" in note["message"]
    note = _raw_roundtrip(client, json.dumps({"type": "frobnicate"}).encode() + b"\n")
    assert "unknown message type" in note["message"]
    note = _raw_roundtrip(client, b"[1, 2]\n")
    assert "JSON object" in note["message"]
    # declared 10 bytes but the image needs 8*8*4: the 10 bytes are consumed, an error follows
    header = {"type": "colorize", "id": "raw-1",
              "target": {"width": 8, "height": 8, "channels": "RGBA", "dtype": "u8",
                         "payload": "target"},
              "reference": {"width": 1, "height": 1, "channels": "RGB", "dtype": "u8",
                            "payload": "reference"},
              "payloads": [{"name": "target", "bytes": 10}, {"name": "reference", "bytes": 3}]}
    note = _raw_roundtrip(client, json.dumps(header).encode() + b"\n" + bytes(13))
    assert "needs 256 bytes, got 10" in note["message"]
    target = pixels(rgba_u8(8, 8), "RGBA", "u8")
    assert client.colorize(target, reference(), options=OPTIONS).width == 8


def _answer(client, request_id: str, raw: bytes = b"", message=None, payloads=()) -> dict:
    """Send ``message`` with ``payloads`` (or write ``raw`` bytes) as the request
    ``request_id``; the worker's final answer to it (progress skipped)."""
    request = client._register(request_id)
    try:
        if message is not None:
            client._send(message, payloads)
        else:
            with client._write_lock:
                client.process.stdin.write(raw)
                client.process.stdin.flush()
        while True:
            answer = client._next(request, 120)
            if answer["type"] != "progress":
                return answer
    finally:
        client._unregister(request)


def _header(message: dict) -> bytes:
    return json.dumps(message).encode() + b"\n"


def _peak_rss_kib(pid: int) -> int:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(next(line for line in status.splitlines() if line.startswith("VmHWM")).split()[1])


SMALL = {"width": 8, "height": 8, "channels": "RGB", "dtype": "u8"}


def _colorize(request_id: str, **fields) -> dict:
    return {"type": "colorize", "id": request_id, "target": {**SMALL, "payload": "t"},
            "reference": {**SMALL, "payload": "r"}, "options": OPTIONS, **fields}


def test_malformed_framing_never_kills_the_worker(client):
    """Deep nesting, lone surrogates, repeated payload names, payloads far larger than their
    image: each one error, the bytes never read as messages, the worker still says hello."""
    note = _raw_roundtrip(client, b"[" * 1000 + b"]" * 1000 + b"\n")
    assert "deeper than 32" in note["message"]
    assert client.hello()["type"] == "hello"
    deep = b'{"type": "hello", "id": "deep", "x": ' + b"[" * 40 + b"]" * 40 + b"}\n"
    assert "deeper than 32" in _answer(client, "deep", deep)["message"]
    assert client.hello()["type"] == "hello"
    for request_id, raw in [
        ("\ufffd", b'{"type": "hello", "id": "\\ud800"}\n'),
        ("\ufffd\ufffd", _header(_colorize("@")).replace(b'"@"', b'"\\udfff\\ud800"')),
    ]:
        answer = _answer(client, request_id, raw)
        assert answer["kind"] == "bad-request" and "lone surrogate" in answer["message"]
        assert client.hello()["type"] == "hello"
    hidden = _header({"type": "hello", "id": "hidden"})
    twice = _colorize("dup", payloads=[{"name": "t", "bytes": 192},
                                       {"name": "t", "bytes": len(hidden)}])
    answer = _answer(client, "dup", _header(twice) + bytes(192) + hidden)
    assert answer["kind"] == "bad-request" and "declared twice" in answer["message"]
    assert client.hello()["type"] == "hello" and client._hello_inbox.empty()
    huge = 128 << 20
    peak = _peak_rss_kib(client.pid)
    big = _colorize("big", payloads=[{"name": "t", "bytes": huge}, {"name": "r", "bytes": 192}])
    answer = _answer(client, "big", message=big, payloads=[("t", bytes(huge)), ("r", bytes(192))])
    assert answer["kind"] == "bad-request"
    assert f"needs 192 bytes, got {huge}" in answer["message"]
    assert _peak_rss_kib(client.pid) - peak < 64 << 10  # not buffered: far below 128 MiB
    assert client.hello()["type"] == "hello"
    result = client.colorize(pixels(rgba_u8(8, 8), "RGBA", "u8"), reference(), options=OPTIONS)
    assert result.width == 8


def test_user_mistakes_get_their_kind(client, tmp_path):
    """Files that would block, wrong types, huge sizes, bad weights: never ``internal``."""
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    notes = tmp_path / "notes.txt"
    notes.write_text("hello\n")
    data = [("t", bytes(192)), ("r", bytes(192))]
    as_file = lambda path: {**SMALL, "file": str(path)}  # noqa: E731
    for message, kind, text in [
        (_colorize("fifo", target=as_file(fifo)), "bad-request", "not a regular file"),
        (_colorize("dir", target=as_file(tmp_path)), "bad-request", "not a regular file"),
        (_colorize("dev", target=as_file("/dev/zero")), "bad-request", "not a regular file"),
        (_colorize("nul", target=as_file("a\0b")), "bad-request", "without NUL"),
        (_colorize("dtype", target={**SMALL, "dtype": ["u8"], "payload": "t"}), "bad-request",
         "dtype must be one of"),
        (_colorize("size", options={**OPTIONS, "size": 2**40}), "bad-request", "options.size"),
        (_colorize("wide", target={**SMALL, "width": 2**40, "payload": "t"}), "bad-request",
         "width must be a positive integer"),
        (_colorize("long", options={**OPTIONS, "weights": "w" * 5000}), "weights",
         "File name too long"),
        (_colorize("text", options={**OPTIONS, "weights": str(notes)}), "weights", "notes.txt"),
    ]:
        answer = _answer(client, message["id"], message=message, payloads=data)
        assert answer["type"] == "error" and answer["kind"] == kind, answer
        assert text in answer["message"] and "\n" not in answer["message"]
        assert client.hello()["type"] == "hello"
    assert client.alive


def test_files_and_raw_cancel(worker_env, tmp_path):
    """Images given as files; a cancel sent with the request stops it; shutdown exits 0."""
    env, weights = worker_env
    target = rgba_u8(16, 16)
    (tmp_path / "t.raw").write_bytes(target.tobytes())
    (tmp_path / "r.raw").write_bytes(reference().data)
    image = {"width": 16, "height": 16, "channels": "RGBA", "dtype": "u8",
             "file": str(tmp_path / "t.raw")}
    ref = {"width": 24, "height": 24, "channels": "RGB", "dtype": "u8",
           "file": str(tmp_path / "r.raw")}
    request = {"type": "colorize", "target": image, "reference": ref,
               "options": {**OPTIONS, "weights": str(weights)}}
    lines = [
        {**request, "id": "a"},
        {**request, "id": "b"},
        {"type": "cancel", "id": "b"},
        {**request, "id": "c", "options": {"size": 32}},
    ]
    env = {**env, "C2E_DEFAULT_WEIGHTS": "missing"}  # request c finds no default weights
    proc = subprocess.Popen([sys.executable, *worker_args()], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env,
                            cwd=str(REPO))
    try:
        proc.stdin.write(b"".join(json.dumps(m).encode() + b"\n" for m in lines))
        proc.stdin.flush()
        messages: list[dict] = []
        while len([m for m in messages if m["type"] in ("result", "error")]) < 3:
            message = json.loads(proc.stdout.readline())
            for payload in message.get("payloads", []):
                message[payload["name"]] = proc.stdout.read(payload["bytes"])
            messages.append(message)
        proc.stdin.write(b'{"type": "shutdown"}\n')
        proc.stdin.flush()
        assert proc.wait(timeout=20) == 0
    finally:
        proc.kill()
        proc.wait()
    assert messages[0]["type"] == "hello" and messages[0]["default_weights"] is None
    final = {m["id"]: m for m in messages[1:] if m["type"] in ("result", "error")}
    assert final["a"]["type"] == "result" and len(final["a"]["result"]) == 16 * 16 * 4
    assert final["b"]["type"] == "error" and final["b"]["kind"] == "cancelled"
    assert final["c"]["kind"] == "weights"
    assert "C2E_DEFAULT_WEIGHTS=missing" in final["c"]["message"]
    assert "c2e weights import" in final["c"]["message"]
    assert (tmp_path / "t.raw").is_file()  # never deleted by the worker


def test_missing_interpreter():
    client = WorkerClient("/nonexistent/bin/python3")
    with pytest.raises(WorkerError) as info:
        client.start(timeout=5)
    assert "/nonexistent/bin/python3" in str(info.value)
    assert "Python" in str(info.value)


def test_early_exit_reports_stderr():
    script = "import sys; sys.stderr.write('boom: no c2e here\\n'); sys.exit(3)"
    client = WorkerClient(sys.executable, args=("-c", script))
    with pytest.raises(WorkerError) as info:
        client.start(timeout=20)
    text = str(info.value)
    assert "exit status 3" in text and "boom: no c2e here" in text


def test_missing_module_hint():
    client = WorkerClient(sys.executable, args=("-m", "c2e_core_definitely_missing", "worker"),
                          env=dict(os.environ, PYTHONPATH=""), cwd="/")
    with pytest.raises(WorkerError) as info:
        client.start(timeout=20)
    assert "No module named" in str(info.value)
    assert "environment where c2e is installed" in str(info.value)


def test_stray_output_goes_to_stderr(worker_env):
    """A print (or a write to file descriptor 1) inside the worker never reaches the stream."""
    env, _ = worker_env
    code = (
        "import argparse, os, sys\n"
        "import c2e_core.worker.server as w\n"
        "original = w.Worker.hello\n"
        "def hello(self):\n"
        "    print('STRAY print'); os.write(1, b'STRAY fd1\\n'); return original(self)\n"
        "w.Worker.hello = hello\n"
        "sys.exit(w.run(argparse.Namespace(weights=None, device='auto')))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], input=b'{"type":"shutdown"}\n',
                          capture_output=True, env=env, cwd=str(REPO), timeout=60)
    assert proc.returncode == 0
    lines = proc.stdout.splitlines()
    assert len(lines) == 1 and json.loads(lines[0])["type"] == "hello"
    assert b"STRAY print" in proc.stderr and b"STRAY fd1" in proc.stderr


# -- a worker that dies or stops answering ------------------------------------------------------
def _stop(pid: int, bound: float = 20.0) -> None:
    """SIGSTOP ``pid`` and wait until every thread of it has stopped.

    ``kill`` returns before the stop takes effect; a thread still running for a moment (a loaded
    2-core CI machine) could answer the next request, so the tests wait for the kernel's state."""
    os.kill(pid, signal.SIGSTOP)
    deadline = time.monotonic() + bound
    while time.monotonic() < deadline:
        try:
            states = [Path(task, "stat").read_text().rsplit(")", 1)[1].split()[0]
                      for task in Path("/proc", str(pid), "task").iterdir()]
        except OSError:  # no /proc (not Linux) or a thread ended meanwhile
            if not Path("/proc", str(pid)).exists():
                return
            continue
        if states and all(state in "Tt" for state in states):
            return
        time.sleep(0.005)
    raise AssertionError(f"worker {pid} did not stop within {bound:g}s")


def _guarded(call, bound: float = 60.0):
    """Run ``call`` on a thread and return what it returned or raised; a hang fails the test."""
    outcome: list = []

    def run():
        try:
            outcome.append(call())
        except BaseException as exc:  # handed to the test
            outcome.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(bound)
    assert not thread.is_alive(), "the client hung"
    return outcome[0]


@pytest.fixture
def own_client(worker_env):
    """A client of its own (these tests kill and stop its workers), quick to give up."""
    env, weights = worker_env
    worker = WorkerClient(sys.executable, args=worker_args("--weights", str(weights)), env=env,
                          cwd=str(REPO), hello_timeout=300.0, colorize_timeout=5.0)
    yield worker
    if worker.pid is not None:
        for sig in (signal.SIGCONT, signal.SIGKILL):
            try:
                os.kill(worker.pid, sig)
            except OSError:
                pass
    worker.close(timeout=2.0)


def test_sigkill_mid_call_is_reported_once_then_a_fresh_worker(own_client):
    target = pixels(rgba_u8(32, 32), "RGBA", "u8")
    first = own_client.colorize(target, reference(), options=OPTIONS)  # starts lazily
    killed = own_client.pid
    _stop(killed)  # so the request below is still pending when it dies
    pending: list = []
    waiter = threading.Thread(target=lambda: pending.append(_guarded(
        lambda: own_client.colorize(target, reference(), options=OPTIONS))), daemon=True)
    waiter.start()
    for _ in range(1000):  # bounded: until the request is registered
        if own_client._requests:
            break
        time.sleep(0.005)
    os.kill(killed, signal.SIGKILL)
    waiter.join(90)
    assert pending, "the client hung"
    error = pending[0]
    assert type(error) is WorkerError and error.kind == "worker"
    assert "exit status -9" in str(error)
    again = _guarded(lambda: own_client.colorize(target, reference(), options=OPTIONS))
    assert isinstance(again, Pixels) and again.data == first.data  # same model, same answer
    assert own_client.pid != killed and own_client.alive


def test_sigstop_times_out_within_the_deadline(own_client):
    own_client.start(timeout=60)
    stopped = own_client.pid
    _stop(stopped)
    error = _guarded(lambda: own_client.hello(timeout=1.0))  # per call, under the client's 300s
    assert isinstance(error, c2e_client.WorkerTimeout) and error.kind == "timeout"
    assert "did not answer within 1s" in str(error)
    assert "next request starts a new one" in str(error)
    target = pixels(rgba_u8(16, 16), "RGBA", "u8")
    assert own_client.hello()["protocol"] == 1 and own_client.pid != stopped  # a fresh worker
    stopped = own_client.pid
    _stop(stopped)
    error = _guarded(lambda: own_client.colorize(target, reference(), options=OPTIONS))
    assert isinstance(error, c2e_client.WorkerTimeout)  # the client's colorize_timeout, 5s
    assert "did not answer within 5s" in str(error)
    assert own_client.colorize(target, reference(), options=OPTIONS).width == 16


def test_a_dead_worker_never_deadlocks_the_client(own_client):
    own_client.start(timeout=60)
    os.kill(own_client.pid, signal.SIGKILL)
    own_client._threads[0].join(30)  # the reader has recorded the death
    assert own_client._dead_reason is not None
    # the path that used to deadlock: registering on a dead worker reads its stderr
    error = _guarded(lambda: own_client._register("after-death"))
    assert isinstance(error, WorkerError) and "exit status -9" in str(error)
    assert _guarded(own_client.hello)["protocol"] == 1  # the next call: a fresh worker


def test_a_stopped_worker_cannot_block_sending_a_large_layer(own_client):
    own_client.start(timeout=60)
    _stop(own_client.pid)
    layer = pixels(rgba_u8(512, 512), "RGBA", "u8")  # 1 MiB: more than a pipe holds
    error = _guarded(lambda: own_client.colorize(layer, reference(), options=OPTIONS))
    assert isinstance(error, c2e_client.WorkerTimeout)
    assert "did not read the request within 5s" in str(error)
    assert own_client.hello()["protocol"] == 1  # and the next call has a fresh worker


def test_cancel_returns_while_a_stopped_worker_blocks_the_request(own_client):
    own_client.start(timeout=60)
    own_client.colorize_timeout = 120.0  # the send would wait this long
    stopped = own_client.pid
    _stop(stopped)
    layer = pixels(rgba_u8(512, 512), "RGBA", "u8")
    outcome: list = []
    waiter = threading.Thread(target=lambda: outcome.append(_guarded(lambda: own_client.colorize(
        layer, reference(), options=OPTIONS, request_id="big"))), daemon=True)
    waiter.start()
    for _ in range(1000):  # bounded: until the request is registered
        if own_client._requests:
            break
        time.sleep(0.005)
    assert _guarded(lambda: own_client.cancel("big"), bound=20.0) is None  # did not wait 120s
    os.kill(stopped, signal.SIGKILL)
    waiter.join(60)
    assert outcome and isinstance(outcome[0], WorkerError)  # the dead worker, reported


def test_the_plugins_session_keeps_its_client_across_a_worker_death(worker_env, monkeypatch):
    env, weights = worker_env
    for name in ("C2E_HOME", "C2E_DISABLE_PLUGIN_AUTOLOAD"):
        monkeypatch.setenv(name, env[name])
    session = c2e_client.WorkerSession(c2e_client.Host("x", "X"),
                                       args=worker_args("--weights", str(weights)))
    lazy = c2e_client.LazyWorker(session, sys.executable)
    try:
        target = pixels(rgba_u8(16, 16), "RGBA", "u8")
        assert lazy.colorize(target, reference(), options=OPTIONS).width == 16
        client, first = session.started, session.pid
        os.kill(first, signal.SIGKILL)
        client.process.wait(30)
        assert not session.running
        assert lazy.colorize(target, reference(), options=OPTIONS).width == 16
        assert session.started is client and session.running and session.pid != first
    finally:
        lazy.close()
