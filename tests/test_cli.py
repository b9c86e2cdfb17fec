"""The real ``c2e`` command on real files."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from tests.official_format import FIXTURE_DIR

pytestmark = pytest.mark.integration

C2E = Path(sys.executable).parent / "c2e"


def c2e(*args, home: Path, check: bool = True) -> subprocess.CompletedProcess:
    assert C2E.exists(), f"the c2e console script is not installed next to {sys.executable}"
    env = {**os.environ, "C2E_HOME": str(home), "C2E_DISABLE_PLUGIN_AUTOLOAD": "1"}
    result = subprocess.run([str(C2E), *map(str, args)], env=env, capture_output=True,
                            text=True, timeout=300)
    if check:
        assert result.returncode == 0, result.stderr
    return result


@pytest.fixture(scope="module")
def fixture():
    return torch.load(FIXTURE_DIR / "fixture.pt", weights_only=True)


@pytest.fixture(scope="module")
def images(tmp_path_factory, fixture):
    folder = tmp_path_factory.mktemp("images")
    Image.fromarray(fixture["target_rgb_uint8"].numpy()).save(folder / "astronaut.png")
    Image.fromarray(fixture["reference_rgb_uint8"].numpy()).save(folder / "coffee.png")
    gray = np.asarray(Image.fromarray(fixture["target_rgb_uint8"].numpy()).convert("L"))
    Image.fromarray(gray[::4, ::4]).save(folder / "gray.jpg")
    Image.fromarray(gray[::3, ::5]).save(folder / "gray2.png")
    return folder


def assert_one_line_error(result: subprocess.CompletedProcess, fragment: str) -> None:
    assert result.returncode == 2, result
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    assert fragment in lines[0], lines[0]


def test_compat_official_with_the_authors_checkpoint_reproduces_their_image(
    tmp_path, images, official_checkpoint, fixture
):
    out = tmp_path / "out.png"
    c2e("colorize", images / "astronaut.png", "--reference", images / "coffee.png", "-o", out,
        "--weights", official_checkpoint, "--compat", "official", "--device", "cpu", home=tmp_path)
    got = np.asarray(Image.open(out)).astype(int)
    expected = fixture["rgb_out_uint8"].numpy().astype(int)
    diff = np.abs(got - expected)
    assert diff.max() <= 1 and (diff == 0).mean() >= 0.999


def test_weights_lifecycle(tmp_path, images, official_checkpoint):
    home = tmp_path / "home"
    listed = c2e("weights", "list", home=home).stdout
    assert listed.startswith("default\t") and "paper" not in listed  # only the bundled weights
    c2e("weights", "import", official_checkpoint, "--name", "paper", home=home)
    listed = c2e("weights", "list", home=home).stdout
    assert "paper" in listed and "color2embed" in listed
    stored = home / "weights" / "paper.c2e.pt"
    # Only what inference needs: 48.1 M fp32 parameters, no optimizer, aliases or conv5_3/5_4.
    assert stored.stat().st_size < 4 * 48.2e6 + 1e6 < official_checkpoint.stat().st_size
    assert "ok" in c2e("weights", "verify", home=home).stdout
    out = tmp_path / "named.png"
    c2e("colorize", images / "gray.jpg", "-r", images / "coffee.png", "-o", out,
        "--weights", "paper", home=home)
    rgb = np.asarray(Image.open(out))
    assert rgb.shape == (128, 128, 3) and np.ptp(rgb.astype(int), axis=2).max() > 0
    assert_one_line_error(
        c2e("weights", "import", official_checkpoint, "--name", "paper", home=home, check=False),
        "paper",
    )
    # Corrupt the stored file: verify fails, loading refuses with a clear message.
    data = bytearray(stored.read_bytes())
    data[len(data) // 2] ^= 0xFF
    stored.write_bytes(bytes(data))
    assert "FAILED" in c2e("weights", "verify", home=home, check=False).stdout
    result = c2e("colorize", images / "gray.jpg", "-r", images / "coffee.png",
                 "-o", tmp_path / "x.png", "--weights", "paper", home=home, check=False)
    assert_one_line_error(result, "corrupted")
    assert not (tmp_path / "x.png").exists()
    c2e("weights", "remove", "paper", home=home)
    listed = c2e("weights", "list", home=home).stdout
    assert "paper" not in listed and listed.startswith("default\t")


def test_missing_default_weights_explain_how_to_get_them(tmp_path, images, monkeypatch):
    monkeypatch.setenv("C2E_DEFAULT_WEIGHTS", "paper")  # chosen, but never imported
    out = tmp_path / "out.png"
    result = c2e("colorize", images / "gray.jpg", "-r", images / "coffee.png", "-o", out,
                 home=tmp_path, check=False)
    assert_one_line_error(result, "c2e weights import")
    assert not out.exists()


def test_several_targets_with_progress_and_blended_references(tmp_path, images, tiny_weights):
    out_dir = tmp_path / "out"
    result = c2e("colorize", images / "gray.jpg", images / "gray2.png",
                 "-r", images / "coffee.png", "-r", images / "astronaut.png",
                 "--ref-weight", "2", "--ref-weight", "1", "--output-dir", out_dir,
                 "--weights", tiny_weights, "--size", "64", home=tmp_path)
    assert "2/2" in result.stderr
    assert Image.open(out_dir / "gray.png").size == (128, 128)
    assert Image.open(out_dir / "gray2.png").size == (103, 171)


def test_native_size_and_16_bit_output(tmp_path, tiny_weights, images):
    rng = np.random.default_rng(0)
    target = tmp_path / "deep.png"
    from c2e_core.files.images import read_image, write_image

    write_image(target, rng.random((40, 56, 3)).astype(np.float32), bit_depth=16)
    out = tmp_path / "deep-out.png"
    c2e("colorize", target, "-r", images / "coffee.png", "-o", out, "--weights", tiny_weights,
        "--size", "native", home=tmp_path)
    result = read_image(out)
    assert result.bit_depth == 16 and result.rgb.shape == (40, 56, 3)
    calm = tmp_path / "deep-calm.png"
    c2e("colorize", target, "-r", images / "coffee.png", "-o", calm, "--weights", tiny_weights,
        "--size", "native", "--no-keep-palette", home=tmp_path)
    assert np.abs(read_image(calm).rgb - result.rgb).max() > 0  # the plain cleanup


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["colorize", "missing.png", "-r", "REF", "-o", "OUT"], "missing.png: no such file"),
        (["colorize", "TARGET", "-r", "REF", "-o", "OUT", "--size", "100"], "multiple of 16"),
        (["colorize", "TARGET", "-r", "REF", "-o", "OUT", "--clean", "2"], "--clean must be"),
        (["colorize", "TARGET", "-r", "REF", "-o", "OUT", "--device", "cuda"], "CUDA"),
        (["colorize", "TARGET", "-r", "REF", "-o", "OUT", "--device", "tpu"], "device"),
        (["colorize", "TARGET", "-r", "REF", "-o", "OUT", "--weights", "nope"], "nope"),
        (["colorize", "TARGET", "-r", "REF", "-o", "out.gif"], "unsupported output"),
        (["colorize", "TARGET", "-r", "REF"], "required"),
        (["colorize", "TARGET", "-r", "REF", "-o", "OUT", "--post", "nope"], "nope"),
        (["colorize", "BROKEN", "-r", "REF", "-o", "OUT"], "broken.png"),
        (["colorize", "TARGET", "-r", "REF", "-o", "TARGET"], "refusing to overwrite"),
        (["weights", "import", "BROKEN"], "broken.png"),
        (["weights", "remove", "nope"], "nope"),
        (["frobnicate"], "invalid choice"),
    ],
)
def test_user_errors_are_one_line_with_exit_2(tmp_path, images, tiny_weights, args, fragment):
    if torch.cuda.is_available() and "cuda" in args:
        pytest.skip("this machine has CUDA")  # never on CI (no GPU there)
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"\x89PNG\r\n\x1a\n not really")
    mapping = {"TARGET": str(images / "gray.jpg"), "REF": str(images / "coffee.png"),
               "OUT": str(tmp_path / "out.png"), "BROKEN": str(broken)}
    args = [mapping.get(a, a) for a in args]
    if "--weights" not in args and args[0] == "colorize":
        args += ["--weights", str(tiny_weights)]
    before = sorted(p.name for p in tmp_path.iterdir())
    result = c2e(*args, home=tmp_path / "home", check=False)
    assert_one_line_error(result, fragment)
    assert sorted(p.name for p in tmp_path.iterdir() if p.name != "home") == before


def test_existing_output_is_never_overwritten(tmp_path, images, tiny_weights):
    out = tmp_path / "precious.png"
    out.write_bytes(b"user data")
    result = c2e("colorize", images / "gray.jpg", "-r", images / "coffee.png", "-o", out,
                 "--weights", tiny_weights, home=tmp_path, check=False)
    assert_one_line_error(result, "--overwrite")
    assert out.read_bytes() == b"user data"


def test_info(tmp_path):
    out = c2e("info", home=tmp_path).stdout
    for fragment in ("torch", "devices for torch weights: cpu", "color2embed", "saturation",
                     "c2e_core.builtin", "devices for runtime weights (.c2e.onnx): cpu"):
        assert fragment in out


@pytest.mark.parametrize("unbuffered", [False, True])
def test_a_reader_that_stops_early_gets_no_traceback(tmp_path, unbuffered):
    """`c2e info | head -1`: the reader of stdout is gone; c2e stops quietly, whether its
    output is still buffered at the end (the usual case) or written at once."""
    env = {**os.environ, "C2E_HOME": str(tmp_path), "C2E_DISABLE_PLUGIN_AUTOLOAD": "1"}
    env.pop("PYTHONUNBUFFERED", None)
    if unbuffered:
        env["PYTHONUNBUFFERED"] = "1"
    for args in (["info"], ["--version"]):
        read_end, write_end = os.pipe()
        os.close(read_end)  # every write fails: deterministic
        try:
            result = subprocess.run([str(C2E), *args], env=env, stdout=write_end,
                                    stderr=subprocess.PIPE, timeout=300)  # fmt: skip
        finally:
            os.close(write_end)
        assert result.stderr == b"" and result.returncode == 128 + 13, (args, result.stderr)


def test_cli_errors_found_by_review(tmp_path, images, tiny_weights):
    """Mistakes that used to escape as tracebacks or leave things behind."""
    target, ref = images / "gray.jpg", images / "coffee.png"
    not_a_dir = tmp_path / "file.png"
    not_a_dir.write_bytes(b"x")
    result = c2e("colorize", target, "-r", ref, "--output-dir", not_a_dir, "--weights",
                 tiny_weights, home=tmp_path, check=False)
    assert_one_line_error(result, "not a folder")
    result = c2e("colorize", target, "-r", ref, "--output-dir", tmp_path / "new", "--weights",
                 "nosuch", home=tmp_path, check=False)
    assert_one_line_error(result, "nosuch")
    assert not (tmp_path / "new").exists()
    result = c2e("colorize", target, "-r", ref, "-o", tmp_path / "o.png", "--weights",
                 tiny_weights, "--post", "saturation:bogus=1", home=tmp_path, check=False)
    assert_one_line_error(result, "bogus")
    result = c2e("colorize", target, "-r", ref, "-r", target, "--ref-weight", "nan",
                 "--ref-weight", "1", "-o", tmp_path / "o.png", "--weights", tiny_weights,
                 home=tmp_path, check=False)
    assert_one_line_error(result, "finite")
    result = c2e("colorize", target, "-r", ref, "-o", ref, "--overwrite", "--weights",
                 tiny_weights, home=tmp_path, check=False)
    assert_one_line_error(result, "refusing to overwrite an input")
    result = c2e("colorize", tmp_path, "-r", ref, "-o", tmp_path / "o.png", "--weights",
                 tiny_weights, home=tmp_path, check=False)
    assert_one_line_error(result, "is a folder")
    assert not (tmp_path / "o.png").exists()


def test_a_bad_target_in_a_batch_stops_before_anything_is_written(tmp_path, images, tiny_weights):
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"not an image")
    out_dir = tmp_path / "out"
    result = c2e("colorize", images / "gray.jpg", broken, "-r", images / "coffee.png",
                 "--output-dir", out_dir, "--weights", tiny_weights, home=tmp_path, check=False)
    assert_one_line_error(result, "broken.png")
    assert not out_dir.exists() or not any(out_dir.iterdir())


def test_importing_weights_of_an_unknown_architecture_is_a_clear_error(tmp_path):
    from c2e_core.weights.store import save_weights

    path = tmp_path / "alien.c2e.pt"
    save_weights(path, architecture="alien", config={}, state_dict={"w": torch.zeros(1)})
    result = c2e("weights", "import", path, home=tmp_path, check=False)
    assert_one_line_error(result, "alien")


def test_palette_and_exif_targets_end_to_end(tmp_path, images, tiny_weights):
    palette = Image.fromarray(np.tile(np.arange(0, 250, 5, dtype=np.uint8), (40, 1)))
    palette = palette.convert("P")
    palette.info["transparency"] = 0
    palette.save(tmp_path / "palette.png", transparency=0)
    photo = Image.fromarray(np.tile(np.linspace(0, 255, 60, dtype=np.uint8), (30, 1)))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° clockwise when shown
    photo.convert("RGB").save(tmp_path / "exif.jpg", exif=exif)
    c2e("colorize", tmp_path / "palette.png", tmp_path / "exif.jpg", "-r", images / "coffee.png",
        "--output-dir", tmp_path / "out", "--weights", tiny_weights, "--size", "32",
        home=tmp_path)
    pal = Image.open(tmp_path / "out" / "palette.png")
    assert pal.mode == "RGBA" and pal.size == (50, 40)
    assert np.asarray(pal)[..., 3].min() == 0  # the transparent palette entry stays transparent
    assert Image.open(tmp_path / "out" / "exif.png").size == (30, 60)  # upright


def test_baseline_methods_need_no_weights(tmp_path, images):
    out = tmp_path / "lookup.png"
    c2e("colorize", images / "gray.jpg", "-r", images / "coffee.png", "-o", out,
        "--method", "lookup", home=tmp_path)
    rgb = np.asarray(Image.open(out)).astype(int)
    assert rgb.shape == (128, 128, 3) and np.ptp(rgb, axis=2).max() > 10  # it has colour
    result = c2e("colorize", images / "gray.jpg", "-r", images / "coffee.png", "-r",
                 images / "astronaut.png", "-o", tmp_path / "x.png", "--method", "reinhard",
                 home=tmp_path, check=False)
    assert_one_line_error(result, "exactly one --reference")


def test_eval_command_writes_a_report(tmp_path, images, tiny_weights):
    data = tmp_path / "photos"
    data.mkdir()
    for name in ("astronaut.png", "coffee.png"):
        (data / name).write_bytes((images / name).read_bytes())
    out = tmp_path / "report"
    c2e("eval", "--data", data, "--weights", tiny_weights, "--output", out, "--limit", "2",
        home=tmp_path)
    assert (out / "results.json").is_file() and (out / "contact_sheet.png").is_file()
    assert "lookup" in (out / "results.md").read_text().lower()
    result = c2e("eval", "--data", tmp_path / "nowhere", home=tmp_path, check=False)
    assert_one_line_error(result, "nowhere")
