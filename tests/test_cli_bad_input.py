"""Bad input through the real ``c2e`` command: one line on stderr, exit 2, nothing written.

Plus a property-based run (hypothesis) over the CLI's image and weights entry points: random
bytes and truncated real files fail only with c2e's own one-line errors.
"""

from __future__ import annotations

import os
import resource
import struct
import subprocess
import sys
import tempfile
import zipfile
import zlib
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from c2e_core.errors import C2EError
from c2e_core.files.images import MAX_PIXELS_ENV, _png_chunk, read_image
from c2e_core.weights.loader import read_weights_any
from c2e_core.weights.store import save_weights
from tests.conftest import TINY_CONFIG, tiny_model

pytestmark = pytest.mark.integration

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
EXAMPLE_BYTES = [p.read_bytes() for p in sorted(EXAMPLES.glob("*.jpg"))]


def run_c2e(*args, home: Path, env: dict | None = None, limit_memory: int | None = None):
    """``python -m c2e_core ARGS``; ``limit_memory``: an address-space limit in bytes."""
    full_env = {k: v for k, v in os.environ.items() if k != MAX_PIXELS_ENV}
    full_env.update({"C2E_HOME": str(home), "C2E_DISABLE_PLUGIN_AUTOLOAD": "1", **(env or {})})

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (limit_memory, limit_memory))

    return subprocess.run(
        [sys.executable, "-m", "c2e_core", *map(str, args)], env=full_env, capture_output=True,
        text=True, timeout=300, preexec_fn=limit if limit_memory else None,
    )  # fmt: skip


def assert_one_line_error(result: subprocess.CompletedProcess, *fragments: str) -> str:
    assert result.returncode == 2, result
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]


def listing(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if "home" not in p.parts)


def _png(width: int, height: int, body: bytes = b"") -> bytes:
    """An 8-bit gray PNG declaring ``width`` x ``height`` whatever ``body`` holds."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", ihdr)
            + _png_chunk(b"IDAT", zlib.compress(body)) + _png_chunk(b"IEND", b""))  # fmt: skip


@pytest.fixture
def files(tmp_path, tiny_weights):
    """The bad inputs of issue 14, and a good reference."""
    Image.new("RGB", (32, 32), (120, 90, 60)).save(tmp_path / "ref.png")
    (tmp_path / "bomb.png").write_bytes(_png(50000, 50000, b"\x00" * 50001))
    (tmp_path / "trunc.ppm").write_bytes(b"P6\n12")
    (tmp_path / "notes.txt").write_text("not weights\n")
    with zipfile.ZipFile(tiny_weights) as zin, zipfile.ZipFile(tmp_path / "pkl.c2e.pt", "w") as z:
        for item in zin.infolist():
            data = zin.read(item)
            z.writestr(item, b"\x80\x02garbage" * 5 if item.filename.endswith("data.pkl") else data)
    config = {**TINY_CONFIG, "embed_dim": -5}
    save_weights(tmp_path / "neg.c2e.pt", architecture="color2embed", config=config,
                 state_dict=tiny_model().state_dict())  # fmt: skip
    return tmp_path


@pytest.mark.parametrize(
    ("args", "fragments"),
    [
        (["colorize", "bomb.png", "-r", "ref.png", "-o", "out.png"], ["bomb.png", "2500000000"]),
        (["colorize", "ref.png", "-r", "bomb.png", "-o", "out.png"], ["bomb.png", "--max-pixels"]),
        (["colorize", "trunc.ppm", "-r", "ref.png", "-o", "out.png"], ["trunc.ppm"]),
        (["weights", "import", "notes.txt"], ["notes.txt", "not a readable PyTorch"]),
        (["weights", "import", "pkl.c2e.pt"], ["pkl.c2e.pt", "damaged"]),
        (["weights", "import", "neg.c2e.pt"], ["neg.c2e.pt", "embed_dim must be a positive"]),
        (["colorize", "ref.png", "-r", "ref.png", "-o", "out.png", "--weights", "neg.c2e.pt"],
         ["embed_dim"]),
        (["colorize", "ref.png", "-r", "ref.png", "-o", "out.png", "--weights", "notes.txt"],
         ["notes.txt"]),
    ],
)
def test_bad_input_is_one_line_exit_2_nothing_written(files, tiny_weights, args, fragments):
    if args[0] == "colorize" and "--weights" not in args:
        args = [*args, "--weights", tiny_weights]
    before = listing(files)
    result = run_c2e(*[files / a if (files / a).exists() else a for a in args], home=files / "home")
    assert_one_line_error(result, *fragments)
    assert listing(files) == before


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="RLIMIT_AS is Linux's")
def test_running_out_of_memory_is_one_line(tmp_path):
    Image.new("L", (12000, 12000), 128).save(tmp_path / "big.png")  # 1.7 GB as float RGB
    Image.new("RGB", (32, 32), (120, 90, 60)).save(tmp_path / "ref.png")
    result = run_c2e("colorize", tmp_path / "big.png", "-r", tmp_path / "ref.png", "-o",
                     tmp_path / "out.png", "--method", "gray", home=tmp_path / "home",
                     limit_memory=2_000_000_000)  # fmt: skip
    assert_one_line_error(result, "out of memory", "--size")
    assert not (tmp_path / "out.png").exists()


def test_the_pixel_limit_is_raised_by_option_or_environment(tmp_path):
    Image.new("L", (200, 200), 100).save(tmp_path / "scan.png")
    Image.new("RGB", (32, 32), (120, 90, 60)).save(tmp_path / "ref.png")
    args = ["colorize", tmp_path / "scan.png", "-r", tmp_path / "ref.png", "-o",
            tmp_path / "out.png", "--method", "gray"]  # fmt: skip
    home = tmp_path / "home"
    refused = run_c2e(*args, home=home, env={MAX_PIXELS_ENV: "1000"})
    assert_one_line_error(refused, "40000 pixels", "limit of 1000", "--max-pixels 40000",
                          f"{MAX_PIXELS_ENV}=40000")  # fmt: skip
    assert not (tmp_path / "out.png").exists()
    lowered = run_c2e(*args, "--max-pixels", "39999", home=home)
    assert_one_line_error(lowered, "limit of 39999")
    assert run_c2e(*args, "--max-pixels", "40000", home=home, env={MAX_PIXELS_ENV: "1000"}
                   ).returncode == 0  # fmt: skip
    assert read_image(tmp_path / "out.png").width == 200
    (tmp_path / "out.png").unlink()
    assert run_c2e(*args, home=home, env={MAX_PIXELS_ENV: "40000"}).returncode == 0
    assert (tmp_path / "out.png").exists()
    (tmp_path / "out.png").unlink()
    assert_one_line_error(run_c2e(*args, home=home, env={MAX_PIXELS_ENV: "lots"}), MAX_PIXELS_ENV)
    assert_one_line_error(run_c2e(*args, "--max-pixels", "-3", home=home), "--max-pixels")
    assert not (tmp_path / "out.png").exists()


def test_a_float32_rgb_tiff_that_read_image_reads_is_colorized(tmp_path, tiny_weights):
    import tifffile

    rng = np.random.default_rng(0)
    tifffile.imwrite(tmp_path / "scan.tif", rng.random((40, 48, 3), dtype=np.float32),
                     photometric="rgb")  # fmt: skip
    assert read_image(tmp_path / "scan.tif").bit_depth == 32
    Image.new("RGB", (32, 32), (120, 90, 60)).save(tmp_path / "ref.png")
    result = run_c2e("colorize", tmp_path / "scan.tif", "-r", tmp_path / "ref.png", "-o",
                     tmp_path / "out.tif", "--weights", tiny_weights, home=tmp_path / "home")
    assert result.returncode == 0, result.stderr
    out = read_image(tmp_path / "out.tif")
    assert (out.width, out.height, out.bit_depth) == (48, 40, 32)


# -- property-based: random bytes and truncated real files -----------------------------------
FUZZ = settings(max_examples=100, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture])  # fmt: skip


def _truncated_example(data: st.DataObject) -> bytes:
    source = data.draw(st.sampled_from(EXAMPLE_BYTES))
    return source[: data.draw(st.integers(0, len(source) - 1))]


def _bad_image_bytes() -> st.SearchStrategy:
    random = st.binary(max_size=2048)
    headed = st.tuples(st.sampled_from([b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff", b"II*\x00",
                                        b"MM\x00*", b"P6\n", b"GIF89a", b"RIFF", b"BM"]),
                       st.binary(max_size=512)).map(b"".join)  # fmt: skip
    return st.one_of(random, headed)


def _assert_c2e_error(read, data: bytes, suffix: str) -> None:
    """``read(path)`` of ``data`` either succeeds or raises a one-line :class:`C2EError`."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"fuzz{suffix}"
        path.write_bytes(data)
        try:
            read(path)
        except C2EError as exc:
            assert str(exc) and len(str(exc).splitlines()) == 1, repr(exc)


@FUZZ
@given(data=st.data())
def test_read_image_fails_only_with_c2e_errors(data):
    blob = data.draw(st.one_of(_bad_image_bytes(), st.none()))
    _assert_c2e_error(read_image, _truncated_example(data) if blob is None else blob, ".jpg")


@pytest.fixture(scope="module")
def weights_bytes(tmp_path_factory):
    path = tmp_path_factory.mktemp("w") / "tiny.c2e.pt"
    save_weights(path, architecture="color2embed", config=TINY_CONFIG,
                 state_dict=tiny_model().state_dict())  # fmt: skip
    return path.read_bytes()


@FUZZ
@given(data=st.data())
def test_the_weights_reader_fails_only_with_c2e_errors(weights_bytes, data):
    choice = data.draw(st.sampled_from(["random", "truncated", "flipped"]))
    if choice == "random":
        blob = data.draw(st.one_of(st.binary(max_size=2048),
                                   st.binary(max_size=512).map(lambda b: b"PK\x03\x04" + b)))
    elif choice == "truncated":
        blob = weights_bytes[: data.draw(st.integers(0, len(weights_bytes) - 1))]
    else:  # one byte changed somewhere: the zip's CRCs or the pickle notice
        at = data.draw(st.integers(0, len(weights_bytes) - 1))
        blob = weights_bytes[:at] + bytes([weights_bytes[at] ^ 0xFF]) + weights_bytes[at + 1 :]
    _assert_c2e_error(read_weights_any, blob, ".c2e.pt")


def test_random_and_truncated_files_through_the_real_cli(tmp_path, weights_bytes, tiny_weights):
    """A handful through the command itself: exit 0, or exit 2 with one line and no output."""
    rng = np.random.default_rng(14)
    Image.new("RGB", (32, 32), (120, 90, 60)).save(tmp_path / "ref.png")
    cases = []
    for index, source in enumerate(EXAMPLE_BYTES * 2):
        cut = int(rng.integers(0, len(source)))
        cases.append(("image", f"t{index}.jpg", source[:cut]))
    cases.append(("image", "noise.png", rng.bytes(3000)))
    cases.append(("image", "corrupt.tif", b"II*\x00" + rng.bytes(60)))  # Pillow + tifffile chatter
    cases.append(("weights", "noise.c2e.pt", b"PK\x03\x04" + rng.bytes(3000)))
    cases.append(("weights", "cut.c2e.pt", weights_bytes[: len(weights_bytes) // 2]))
    assert len(cases) <= 10
    for kind, name, blob in cases:
        (tmp_path / name).write_bytes(blob)
        out = tmp_path / "out.png"
        if kind == "image":
            args = ["colorize", tmp_path / name, "-r", tmp_path / "ref.png", "-o", out,
                    "--weights", tiny_weights]  # fmt: skip
        else:
            args = ["weights", "import", tmp_path / name, "--name", "fuzz"]
        result = run_c2e(*args, home=tmp_path / "home")
        assert "Traceback" not in result.stderr, result.stderr
        assert len(result.stderr.strip().splitlines()) <= 1, result.stderr
        if result.returncode != 0:
            assert_one_line_error(result, name)
            assert not out.exists()
            assert not (tmp_path / "home" / "weights" / "fuzz.c2e.pt").exists()
        out.unlink(missing_ok=True)


def test_the_pixel_limit_holds_on_every_reading_path(tmp_path):
    """Pillow, the 16-bit PNG decoder and tifffile all refuse an image over the limit."""
    import tifffile

    from c2e_core.errors import ImageReadError
    from c2e_core.files.images import encode_png16, pixel_limit

    Image.new("RGB", (20, 10)).save(tmp_path / "eight.png")
    (tmp_path / "sixteen.png").write_bytes(encode_png16(np.zeros((10, 20, 3), np.uint16)))
    tifffile.imwrite(tmp_path / "float.tif", np.zeros((10, 20, 3), np.float32), photometric="rgb")
    for name in ("eight.png", "sixteen.png", "float.tif"):
        with pixel_limit(199), pytest.raises(ImageReadError, match="200 pixels.*limit of 199"):
            read_image(tmp_path / name)
        with pixel_limit(200):
            assert read_image(tmp_path / name).width == 20
