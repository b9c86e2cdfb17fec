"""The GIMP 3 plug-in in real GIMP: installed with ``c2e plugins install gimp`` into a fresh
profile, then driven in batch mode (gimp-console, python-fu-eval) through the PDB.

GIMP runs through ``scripts/gimp-run``: natively where the system has GIMP 3 (Debian 13), else
in the Debian 13 chroot that ``scripts/gimp-setup`` builds, where the plug-in reaches the
worker's Python on the host through a bridge (see docs/gimp-plugin.md). One GIMP session runs
every case of ``tests/gimp/run_cases.py``; the tests check what it recorded and the pixels it
wrote. Without GIMP these tests skip, except on CI (``CI=true``), where they fail.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import tifffile
from PIL import Image
from skimage.color import rgb2lab

from c2e_core.files.images import decode_png16, encode_png16
from tests.conftest import client_files, load_client, vendored_files

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[1]
GIMP_RUN = REPO / "scripts" / "gimp-run"
CASES_SCRIPT = REPO / "tests" / "gimp" / "run_cases.py"
ARGUMENTS = {"size": 32, "device": "cpu"}
SAMPLE_TYPES = {"u8": "<u1", "u16": "<u2", "f16": "<f2", "f32": "<f4"}
CHANNEL_COUNTS = {"RGBA": 4, "RGB": 3, "A": 1}
#: The results of successful runs that the tests compare with the worker's own answer.
COLORIZED = ("rgb8", "rgb8-cool", "rgb8-clean", "rgb8-calm", "u16", "float", "float-linear",
             "selection", "gray-converted", "reference-selection", "blend")

c2e_client = load_client()


# -- images -------------------------------------------------------------------------------------
def texture(height: int, width: int, seed: int) -> np.ndarray:
    """A faded, structured sRGB float image [H, W, 3] (something worth colorizing)."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width].astype(np.float64)
    light = 0.5 + 0.3 * np.sin(x / 7) * np.cos(y / 5) + 0.15 * (x / width - 0.5)
    tint = np.array([1.02, 1.0, 0.96])
    rgb = light[..., None] * tint + rng.uniform(-0.02, 0.02, (height, width, 3))
    return np.clip(rgb, 0.03, 0.97)


def palette_image(colours: list[tuple[int, int, int]], seed: int) -> np.ndarray:
    """A reference: horizontal bands of ``colours`` with a little noise, uint8 [48, 64, 3]."""
    rng = np.random.default_rng(seed)
    image = np.zeros((48, 64, 3), np.int32)
    for index, colour in enumerate(colours):
        image[index * 48 // len(colours):(index + 1) * 48 // len(colours)] = colour
    return np.clip(image + rng.integers(-12, 12, image.shape), 0, 255).astype(np.uint8)


def make_images(folder: Path) -> dict[str, Path]:
    paths = {name: folder / name for name in (
        "rgb8.png", "warm.png", "cool.png", "u16.png", "float.tif", "rgba.png", "gray.png",
        "big.png")}
    base = texture(64, 96, 1)
    Image.fromarray(np.rint(base * 255).astype(np.uint8), "RGB").save(paths["rgb8.png"])
    Image.fromarray(palette_image([(220, 70, 30), (240, 170, 40), (150, 40, 20)], 2)).save(
        paths["warm.png"])
    Image.fromarray(palette_image([(30, 90, 220), (40, 170, 150), (20, 40, 120)], 3)).save(
        paths["cool.png"])
    paths["u16.png"].write_bytes(encode_png16(np.rint(texture(48, 80, 4) * 65535)
                                              .astype(np.uint16)))
    tifffile.imwrite(paths["float.tif"], texture(40, 72, 5).astype(np.float32),
                     photometric="rgb")
    alpha = np.full((64, 96, 1), 255, np.uint8)
    alpha[:, :20] = 0  # a transparent strip and a soft edge
    alpha[:, 20:40] = np.linspace(0, 255, 20, dtype=np.uint8)[None, :, None]
    rgba = np.concatenate([np.rint(texture(64, 96, 6) * 255).astype(np.uint8), alpha], axis=-1)
    Image.fromarray(rgba, "RGBA").save(paths["rgba.png"])
    Image.fromarray(np.rint(base.mean(axis=-1) * 255).astype(np.uint8), "L").save(
        paths["gray.png"])
    gray_big = np.rint(texture(800, 1200, 7).mean(axis=-1) * 255).astype(np.uint8)
    Image.fromarray(gray_big, "L").convert("RGB").save(paths["big.png"])  # a gray photo, RGB
    return {name.split(".")[0]: path for name, path in paths.items()}


def cases(images: dict[str, Path], out: Path) -> list[dict]:
    warm, cool = str(images["warm"]), str(images["cool"])
    rgb8, rgba = str(images["rgb8"]), str(images["rgba"])
    ellipse = [20, 10, 56, 40, 8]  # x, y, width, height, feather radius
    return [
        {"name": "rgb8", "target": rgb8, "reference": warm, "overlay": True,
         "arguments": ARGUMENTS, "export": str(out / "rgb8-export.png")},
        {"name": "rgb8-cool", "target": rgb8, "reference": cool,
         "arguments": dict(ARGUMENTS, clean=0.0)},
        {"name": "rgb8-clean", "target": rgb8, "reference": warm,
         "arguments": dict(ARGUMENTS, clean=0.0)},  # the cleanup turned off (on by default)
        {"name": "rgb8-calm", "target": rgb8, "reference": warm,
         "arguments": {**ARGUMENTS, "keep-palette": False}},  # the cleanup without the palette
        {"name": "u16", "target": str(images["u16"]), "reference": warm,
         "arguments": ARGUMENTS, "export": str(out / "u16-export.png")},
        {"name": "float", "target": str(images["float"]), "reference": warm,
         "arguments": dict(ARGUMENTS, strength=0.8), "export": str(out / "float-export.tif")},
        {"name": "float-linear", "target": str(images["float"]), "reference": warm,
         "precision": "FLOAT_LINEAR", "arguments": ARGUMENTS},
        {"name": "selection", "target": rgba, "reference": warm, "ellipse": ellipse,
         "offset": [6, 4], "arguments": ARGUMENTS},
        {"name": "gray-refused", "target": str(images["gray"]), "reference": warm,
         "arguments": ARGUMENTS},
        {"name": "gray-converted", "target": str(images["gray"]), "reference": warm,
         "arguments": dict(ARGUMENTS, **{"gray-to-rgb": True})},
        {"name": "colour-only", "target": rgb8, "reference": warm, "composite": True,
         "arguments": dict(ARGUMENTS, **{"colour-only": True})},
        {"name": "reference-file", "target": rgb8, "reference": None,
         "arguments": dict(ARGUMENTS, **{"reference-file": warm})},
        {"name": "missing-reference-file", "target": rgb8, "reference": None,
         "arguments": dict(ARGUMENTS, **{"reference-file": str(out / "no-such.png")})},
        {"name": "blend", "target": rgb8, "reference": warm,
         "arguments": dict(ARGUMENTS, **{"blend-file": cool, "blend-share": 0.3})},
        {"name": "reference-selection", "target": rgb8, "reference": warm,
         "reference_selection": [[0, 0, 40, 20], [8, 4, 10, 6]], "arguments": ARGUMENTS},
        {"name": "no-python", "target": rgb8, "reference": warm, "arguments": ARGUMENTS,
         "settings": {"python": "/nonexistent/c2e-env/bin/python"}},
        {"name": "no-c2e", "target": rgb8, "reference": warm, "arguments": ARGUMENTS,
         "settings": {"python": "/usr/bin/python3"}},
        {"name": "bad-size", "target": rgb8, "reference": warm,
         "arguments": dict(ARGUMENTS, size=40)},
        {"name": "no-reference", "target": rgb8, "reference": None, "arguments": ARGUMENTS},
        {"name": "two-layers", "target": rgb8, "reference": warm, "overlay": True,
         "all_layers": True, "arguments": ARGUMENTS},
        {"name": "echo-u8", "target": rgb8, "reference": warm, "client": "echo"},
        {"name": "echo-u16", "target": str(images["u16"]), "reference": warm, "client": "echo"},
        {"name": "echo-float", "target": str(images["float"]), "reference": warm,
         "client": "echo"},
        {"name": "echo-half-linear", "target": rgb8, "reference": warm, "client": "echo",
         "precision": "HALF_LINEAR"},
        {"name": "echo-selection", "target": rgba, "reference": warm, "client": "echo",
         "ellipse": ellipse, "offset": [-5, 3]},
        {"name": "echo-layer-mask", "target": rgba, "reference": warm, "client": "echo",
         "layer_mask": True},
        {"name": "echo-group", "target": rgb8, "reference": warm, "client": "echo",
         "in_group": True},
        {"name": "failing-client", "target": rgb8, "reference": warm, "client": "fail"},
        # the dialog's live preview path, with the real worker: a large layer read at preview
        # size by GEGL, inside a feathered selection; and at 16 bits with working size 512
        {"name": "preview", "target": str(images["big"]), "reference": warm, "client": "preview",
         "ellipse": [100, 50, 900, 700, 30], "options": {"size": 256}},
        # the progress window's Cancel (interactive runs), through its code path
        {"name": "cancel", "target": str(images["big"]), "reference": warm, "client": "cancel",
         "options": {"size": 1024}},
        {"name": "preview-u16", "target": str(images["big"]), "reference": cool,
         "client": "preview", "precision": "U16_NON_LINEAR", "options": {"size": 512}},
        # last: once made, the engine serves every later run that finds no c2e
        {"name": "engine", "target": rgb8, "reference": warm,
         "arguments": dict(ARGUMENTS, **{"set-up-engine": True}),
         "settings": {"python": "", "weights": ""}},
    ]


# -- GIMP ---------------------------------------------------------------------------------------
def gimp_location() -> str:
    """``native``, ``chroot DIR`` or ``missing`` (see scripts/gimp-run)."""
    where = subprocess.run(["sh", str(GIMP_RUN), "--where"], capture_output=True, text=True)
    return where.stdout.strip() or "missing"


@pytest.fixture(scope="module")
def gimp() -> str:
    """Where GIMP 3 is; skip without it (fail on CI)."""
    where = gimp_location()
    problem = None
    if where == "missing":
        problem = "GIMP 3 is not installed: run scripts/gimp-setup (as root)"
    elif where.startswith("chroot") and os.geteuid() != 0:
        problem = "GIMP 3 is in a chroot (scripts/gimp-setup): running it needs root"
    if problem is not None:
        if os.environ.get("CI") == "true":
            pytest.fail(problem)
        pytest.skip(problem)
    return where


def gimp_environment(root: Path, **extra: str) -> dict[str, str]:
    """A fresh HOME and GIMP profile; c2e's data folder and plugins kept out of the user's."""
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(root / "home"),
           "GIMP3_DIRECTORY": str(root / "profile"), "C2E_HOME": str(root / "c2e-home"),
           "C2E_DISABLE_PLUGIN_AUTOLOAD": "1"}
    for name in ("C2E_GIMP_CHROOT",):
        if name in os.environ:
            env[name] = os.environ[name]
    env.update(extra)
    (root / "home").mkdir(exist_ok=True)
    return env


@pytest.fixture(scope="module")
def session(gimp, tmp_path_factory, tiny_weights, engine_wheelhouse) -> dict:
    """Install the plug-in into a fresh profile and run every case in one GIMP session (pip,
    for the case that sets the engine up, sees only a local wheel folder: no network)."""
    root = tmp_path_factory.mktemp("gimp")
    out = root / "out"
    out.mkdir()
    images = make_images(root)
    env = gimp_environment(root, PIP_NO_INDEX="1", PIP_FIND_LINKS=str(engine_wheelhouse))
    install = subprocess.run(
        [sys.executable, "-m", "c2e_core", "plugins", "install", "gimp",
         "--gimp-dir", str(root / "profile"), "--weights", str(tiny_weights)],
        capture_output=True, text=True, env=dict(os.environ, **env), cwd=REPO)
    assert install.returncode == 0, install.stderr
    plugin_dir = root / "profile" / "plug-ins" / "color2embed"
    settings = json.loads((plugin_dir / "settings.json").read_text(encoding="utf-8"))
    job = {"plugin_dir": str(plugin_dir), "out": str(out), "results": str(root / "results.json"),
           "cases": cases(images, out)}
    (root / "job.json").write_text(json.dumps(job), encoding="utf-8")
    script = root / CASES_SCRIPT.name  # inside the bound folder, so a chrooted GIMP sees it
    shutil.copy(CASES_SCRIPT, script)
    started = time.monotonic()
    run = subprocess.run(
        ["sh", str(GIMP_RUN), "--bind", str(root), "--worker-python", settings["python"], "--",
         "gimp-console-3.0", "-i", "--batch-interpreter=python-fu-eval",
         "-b", f"exec(open({str(script)!r}).read())", "--quit"],
        capture_output=True, text=True, timeout=900, cwd=REPO,
        env=dict(env, C2E_GIMP_TEST_JOB=str(root / "job.json")))
    seconds = time.monotonic() - started
    log = f"gimp-console exited {run.returncode} after {seconds:.0f}s\n{run.stdout}\n{run.stderr}"
    (root / "gimp.log").write_text(log, encoding="utf-8")  # per-case times, GIMP's messages
    assert run.returncode == 0 and (root / "results.json").is_file(), log
    results = {r["name"]: r for r in json.loads((root / "results.json").read_text())}
    crashed = {name: r["crash"] for name, r in results.items() if "crash" in r}
    assert not crashed, f"{crashed}\n{log}"
    return {"results": results, "out": out, "plugin_dir": plugin_dir, "settings": settings,
            "install": install, "weights": tiny_weights, "where": gimp, "log": log,
            "home": env["HOME"], "images": images}


@pytest.fixture(scope="module")
def direct(session):
    """The worker itself, asked the same question the plug-in asked (run here, not in GIMP)."""
    client = c2e_client.WorkerClient(sys.executable, env=dict(
        os.environ, C2E_DISABLE_PLUGIN_AUTOLOAD="1"), cwd=str(REPO))
    client.start(timeout=120)
    answers = {}
    for name in COLORIZED:
        result = session["results"][name]
        answers[name] = ask_worker(client, session, result)
    client.close()
    return answers


def ask_worker(client, session, result: dict) -> np.ndarray:
    out = session["out"]
    _, channels, dtype, linear = result["layout"]
    _, _, width, height = result["region"]
    target = c2e_client.Pixels(width, height, channels, dtype,
                               (out / f"{result['name']}.target.bin").read_bytes(), linear=linear)
    ref_width, ref_height = result["reference_size"]
    reference = c2e_client.Pixels(ref_width, ref_height, "RGB", "u8",
                                  (out / f"{result['name']}.reference.bin").read_bytes())
    mask = None
    if result.get("selection_size"):
        data = np.ascontiguousarray(dump(session, result["name"], "mask")).tobytes()
        mask = c2e_client.Pixels(width, height, "A", "f32", data)
    arguments = result["arguments"]
    options = {"size": arguments["size"], "device": arguments["device"],
               "strength": arguments.get("strength", 1.0),
               "clean": arguments.get("clean", c2e_client.DEFAULT_CLEAN),
               "keep_palette": arguments.get("keep-palette", c2e_client.DEFAULT_KEEP_PALETTE),
               "weights": str(session["weights"])}
    weights = None
    if arguments.get("blend-file"):  # the second reference: the file's pixels, as read here
        second = np.asarray(Image.open(arguments["blend-file"]).convert("RGB"))
        reference = [reference, c2e_client.Pixels(second.shape[1], second.shape[0], "RGB", "u8",
                                                  second.tobytes())]  # fmt: skip
        share = arguments["blend-share"]
        weights = [1.0 - share, share]
    answer = client.colorize(target, reference, options=options, mask=mask,
                             reference_weights=weights)
    return as_array(answer.data, width, height, answer.channels, answer.dtype)


# -- helpers --------------------------------------------------------------------------------------
def as_array(data: bytes, width: int, height: int, channels: str, dtype: str) -> np.ndarray:
    return np.frombuffer(data, SAMPLE_TYPES[dtype]).reshape(
        height, width, CHANNEL_COUNTS[channels])


def dump(session, name: str, kind: str) -> np.ndarray:
    """A pixel dump of case ``name``: ``target``/``result`` in the layer's own layout,
    ``target-float``/``result-float`` as sRGB float RGBA; ``mask``: the part of the image's
    selection under the new layer, cut here from the whole selection (float)."""
    result = session["results"][name]
    _, channels, dtype, _ = result["layout"]
    if kind == "mask":
        width, height = result["selection_size"]
        selection = as_array((session["out"] / f"{name}.selection.bin").read_bytes(),
                             width, height, "A", "f32")
        layer = result["layer"]
        return selection[layer["y"]:layer["y"] + layer["height"],
                         layer["x"]:layer["x"] + layer["width"]]
    if kind.endswith("-float"):
        channels, dtype = "RGBA", "f32"
    if kind.startswith("result"):
        width, height = result["layer"]["width"], result["layer"]["height"]
    else:
        _, _, width, height = result["region"]
    data = (session["out"] / f"{name}.{kind}.bin").read_bytes()
    return as_array(data, width, height, channels, dtype)


def lightness(rgba: np.ndarray) -> np.ndarray:
    return rgb2lab(np.clip(rgba[..., :3], 0, 1).astype(np.float64))[..., 0]


def chroma_ab(rgba: np.ndarray) -> np.ndarray:
    return rgb2lab(np.clip(rgba[..., :3], 0, 1).astype(np.float64))[..., 1:]


def assert_unchanged(result: dict) -> None:
    """The failed run left the image exactly as it was."""
    assert "layer" not in result
    assert result["after"] == result["before"]
    assert result["stray_images"] == 0


# -- install --------------------------------------------------------------------------------------
def test_install_into_fresh_profile(session):
    plugin_dir = session["plugin_dir"]
    main = plugin_dir / "color2embed.py"
    assert main.is_file() and os.access(main, os.X_OK)
    assert main.read_text(encoding="utf-8").startswith("#!/usr/bin/env python3\n")
    assert vendored_files(plugin_dir) == client_files()
    assert session["settings"] == {"python": os.path.abspath(sys.executable),
                                   "weights": str(Path(session["weights"]).resolve())}
    assert "Colors > Colorize from Reference Image" in session["install"].stdout


# -- successful runs ------------------------------------------------------------------------------
def test_new_layer_above_the_source_in_one_step(session):
    result = session["results"]["rgb8"]
    assert result["status"] == "success", result["message"]
    before, after = result["before"]["layers"], result["after"]["layers"]
    assert len(after) == len(before) + 1
    overlay, source = before
    layer = result["layer"]
    assert [item["id"] for item in after] == [overlay["id"], layer["id"], source["id"]]
    assert layer["parent"] == source["parent"]
    assert layer["name"] == source["name"] + " (colorized)"
    assert (layer["x"], layer["y"], layer["width"], layer["height"]) == (0, 0, 96, 64)
    assert after[2] == dict(source, position=2)  # moved down one place, otherwise the same
    assert result["after"]["source_sha"] == result["before"]["source_sha"]
    assert result["stray_images"] == 0  # the reference's temporary duplicate was deleted


def test_colour_only_is_a_color_mode_layer_over_the_original(session):
    """The option's layer is in LCH Color mode and holds the same colours as the full-colour
    layer; when the original below is edited afterwards (here inverted), the image shows the
    edited lightness with the new layer's colours."""
    result = session["results"]["colour-only"]
    assert result["status"] == "success", result["message"]
    assert result["layer"]["mode"] == "GIMP_LAYER_MODE_LCH_COLOR"
    assert session["results"]["rgb8"]["layer"]["mode"] == "GIMP_LAYER_MODE_NORMAL"
    assert np.array_equal(dump(session, "colour-only", "result"), dump(session, "rgb8", "result"))
    shown = dump(session, "colour-only", "composite-float")
    edited = lightness(dump(session, "colour-only", "edited-float"))
    assert np.abs(lightness(dump(session, "colour-only", "target-float")) - edited).mean() > 10
    gap = np.abs(lightness(shown) - edited)
    # (GIMP's LCH is babl's D50 CIE LCh; the flattened image is 8-bit; out-of-gamut clipping)
    assert np.median(gap) < 1.0 and gap.mean() < 2.0
    colour = chroma_ab(dump(session, "colour-only", "result-float"))
    hue = np.arctan2(colour[..., 1], colour[..., 0])
    shown_ab = chroma_ab(shown)
    chroma = np.hypot(shown_ab[..., 0], shown_ab[..., 1])
    assert chroma.mean() > 5  # the new colours show, with the layer's hue
    turn = np.angle(np.exp(1j * (np.arctan2(shown_ab[..., 1], shown_ab[..., 0]) - hue)))
    assert np.median(np.abs(turn)[chroma > 5]) < 0.3


def test_a_reference_file_gives_what_the_open_image_gives(session):
    """``reference-file``: the same PNG as the open reference of case rgb8, loaded by GIMP for
    the run (and deleted: no stray image); GIMP itself refuses a file that does not exist."""
    from_file = session["results"]["reference-file"]
    assert from_file["status"] == "success", from_file["message"]
    assert from_file["stray_images"] == 0
    same = dump(session, "rgb8", "result")
    assert np.array_equal(dump(session, "reference-file", "result"), same)
    missing = session["results"]["missing-reference-file"]
    assert missing["status"] == "calling-error" and "'reference-file'" in missing["message"]
    assert missing["after"] == missing["before"]


def test_a_second_reference_blends_in_by_its_share(session):
    """``blend-file`` at ``blend-share`` 0.3: the worker's answer for both references at 70:30
    (test_colour_is_the_workers_answer_for_the_reference), between the two alone."""
    result = session["results"]["blend"]
    assert result["status"] == "success", result["message"]
    assert result["stray_images"] == 0
    warm, blend, cool = (chroma_ab(dump(session, name, "result-float"))
                         for name in ("rgb8", "blend", "rgb8-cool"))  # fmt: skip
    assert 0.05 < np.abs(blend - warm).mean() < np.abs(cool - warm).mean()


def test_the_references_selection_limits_its_colours(session):
    """A selection in the reference (a rectangle less a hole): what is sent is the reference cut
    to the selection's box, black in the hole; the result is the worker's answer for it."""
    result = session["results"]["reference-selection"]
    assert result["status"] == "success", result["message"]
    (x, y, width, height), (hx, hy, hw, hh) = result["case_selection"]
    warm = np.asarray(Image.open(session["images"]["warm"]).convert("RGB"))
    expected = warm[y:y + height, x:x + width].copy()
    expected[hy - y:hy - y + hh, hx - x:hx - x + hw] = 0
    assert result["reference_size"] == [width, height]
    sent = np.frombuffer((session["out"] / "reference-selection.reference.bin").read_bytes(),
                         np.uint8).reshape(height, width, 3)  # fmt: skip
    assert np.array_equal(sent, expected)
    whole = dump(session, "rgb8", "result").astype(int)
    assert np.abs(dump(session, "reference-selection", "result").astype(int) - whole).max() > 2


def test_lightness_is_kept(session):
    for name in ("rgb8", "u16", "float", "float-linear", "gray-converted"):
        source = lightness(dump(session, name, "target-float"))
        result = lightness(dump(session, name, "result-float"))
        assert np.abs(result - source).max() < 1.0, name


def test_colour_is_the_workers_answer_for_the_reference(session, direct):
    for name in COLORIZED:
        result = session["results"][name]
        assert result["status"] == "success", (name, result["message"])
        got = dump(session, name, "result").astype(np.float64)
        want = direct[name].astype(np.float64)
        scale = {"u8": 255, "u16": 65535}.get(result["layout"][2], 1)
        assert np.abs(got - want).max() / scale <= 1.5 / 255, name


def test_colour_follows_the_reference(session):
    warm = chroma_ab(dump(session, "rgb8", "result-float"))  # the defaults: cleanup on
    source = chroma_ab(dump(session, "rgb8", "target-float"))
    assert np.abs(warm - source).mean() > 1.0  # the colour changed ...
    # ... and depends on the reference (without the cleanup: the tiny random model's colours
    # barely depend on it, and evened out they differ less)
    uncleaned = chroma_ab(dump(session, "rgb8-clean", "result-float"))
    cool = chroma_ab(dump(session, "rgb8-cool", "result-float"))
    assert np.abs(uncleaned - cool).mean() > 1.0
    assert np.abs(uncleaned - warm).max() > 0.5  # clean 0 reached the worker (1 by default)
    calm = chroma_ab(dump(session, "rgb8-calm", "result-float"))
    assert np.abs(calm - warm).max() > 0.5  # so did keep-palette off


def test_export_holds_the_result(session):
    exported = np.asarray(Image.open(session["out"] / "rgb8-export.png").convert("RGB"))
    assert np.array_equal(exported, dump(session, "rgb8", "result")[..., :3])


def test_16_bit_stays_16_bit(session):
    result = session["results"]["u16"]
    assert result["layout"][1:3] == ["RGB", "u16"]
    assert result["layer_precision"].startswith("GIMP_PRECISION_U16")
    samples = dump(session, "u16", "result")
    assert np.mean(samples % 257 != 0) > 0.5  # not 8-bit values scaled up
    exported, _, _ = decode_png16((session["out"] / "u16-export.png").read_bytes())
    assert exported.dtype == np.uint16 and np.array_equal(exported[..., :3], samples)


def test_float_stays_float(session):
    result = session["results"]["float"]
    assert result["layout"][1:] == ["RGB", "f32", False]
    assert session["results"]["float-linear"]["layout"] == ["RGB float", "RGB", "f32", True]
    assert "FLOAT" in result["layer_precision"]
    samples = dump(session, "float", "result")
    steps = samples * 255
    assert np.mean(np.abs(steps - np.rint(steps)) > 0.01) > 0.5  # not 8-bit steps
    with tifffile.TiffFile(session["out"] / "float-export.tif") as tiff:  # a page per layer
        pages = {page.tags["PageName"].value: page.asarray() for page in tiff.pages}
    exported = pages[result["layer"]["name"]]
    assert exported.dtype == np.float32 and np.allclose(exported[..., :3], samples, atol=1e-6)


def test_soft_selection_and_alpha(session):
    result = session["results"]["selection"]
    assert result["status"] == "success", result["message"]
    x, y, width, height = result["region"]  # in the source layer's coordinates
    layer = result["layer"]
    source_x, source_y = result["before"]["layers"][0]["x"], result["before"]["layers"][0]["y"]
    assert (source_x, source_y) == (6, 4)
    assert (layer["x"], layer["y"]) == (source_x + x, source_y + y)
    assert (layer["width"], layer["height"]) == (width, height) != (96, 64)  # the bounding box
    mask = dump(session, "selection", "mask")[..., 0]
    source, colorized = dump(session, "selection", "target"), dump(session, "selection", "result")
    assert np.array_equal(colorized[..., 3], source[..., 3])  # alpha kept
    outside = mask == 0
    assert outside.any() and np.array_equal(colorized[outside], source[outside])
    inside = (mask == 1) & (source[..., 3] == 255)
    assert inside.any() and np.abs(colorized[inside].astype(int) - source[inside]).max() > 2
    assert ((mask > 0) & (mask < 1)).any()  # the feathered edge was sent as a soft mask
    assert result["after"]["selection_sha"] == result["before"]["selection_sha"]


def test_grayscale_image_converted_on_request(session):
    result = session["results"]["gray-converted"]
    assert result["before"]["base_type"] == "gray" and result["after"]["base_type"] == "rgb"
    assert len(result["after"]["layers"]) == 2


# -- failures -------------------------------------------------------------------------------------
def test_grayscale_image_refused_with_a_message(session):
    result = session["results"]["gray-refused"]
    assert result["status"] == "execution-error"
    assert "grayscale" in result["message"] and "Image > Mode > RGB" in result["message"]
    assert_unchanged(result)


def test_missing_worker_python(session):
    result = session["results"]["no-python"]
    assert result["status"] == "execution-error"
    message = result["message"]
    assert "/nonexistent/c2e-env/bin/python" in message and "does not exist" in message
    assert "c2e plugins install gimp" in message
    assert_unchanged(result)


def test_sets_its_engine_up_when_it_finds_no_c2e(session):
    """No c2e Python recorded and ``set-up-engine`` (interactive runs ask): the plug-in makes its
    engine in the user data folder (a venv, pip from the local wheel folder), checks it, and
    colorizes with it and the bundled default weights."""
    result = session["results"]["engine"]
    assert result["status"] == "success", result["message"]
    assert result["layer"]["name"] == "Background (colorized)"
    engine = Path(session["home"]) / ".local" / "share" / "c2e-studio" / "engine"
    record = json.loads((engine / "engine.json").read_text())
    assert record["python"] == str(engine / "bin" / "python") and record["package"] == "c2e-studio"
    colour = chroma_ab(dump(session, "engine", "result-float"))
    source = chroma_ab(dump(session, "engine", "target-float"))
    assert np.abs(colour - source).mean() > 1.0  # the colour changed


def test_python_without_c2e(session):
    result = session["results"]["no-c2e"]
    assert result["status"] == "execution-error"
    assert "does not have c2e installed" in result["message"]
    assert "c2e plugins install gimp" in result["message"]
    assert_unchanged(result)


def test_bad_arguments(session):
    results = session["results"]
    for name, message in (("bad-size", "multiple of 16"), ("no-reference", "or an image file"),

                          ("two-layers", "exactly one layer")):
        assert results[name]["status"] == "execution-error", name
        assert message in results[name]["message"], name
        assert_unchanged(results[name])


def test_failing_worker_leaves_the_image_unchanged(session):
    result = session["results"]["failing-client"]
    assert "failed on purpose" in result["message"]
    assert_unchanged(result)


@pytest.mark.parametrize("name", ["echo-u8", "echo-u16", "echo-float", "echo-half-linear",
                                  "echo-selection", "echo-layer-mask"])
def test_pixels_round_trip_exactly(session, name):
    """With a worker that answers its input, the new layer equals the source bit for bit."""
    result = session["results"][name]
    assert result["status"] == "success", result["message"]
    target = (session["out"] / f"{name}.target.bin").read_bytes()
    assert (session["out"] / f"{name}.result.bin").read_bytes() == target
    assert result["after"]["source_sha"] == result["before"]["source_sha"]


def test_inside_a_layer_group(session):
    result = session["results"]["echo-group"]
    group, source = result["before"]["layers"]
    layer = result["layer"]
    assert source["parent"] == group["id"] and layer["parent"] == group["id"]
    assert [item["id"] for item in result["after"]["layers"]] == [
        group["id"], layer["id"], source["id"]]


def test_the_new_layer_hides_what_the_source_hides(session):
    result = session["results"]["echo-layer-mask"]
    assert result["layer"]["mask"]
    assert result["layer_mask_sha"] == result["source_mask_sha"]


def test_one_worker_serves_every_run(session):
    """The plug-in is a persistent extension: the worker it started for the first run, with
    its model loaded, is the one every later run in the GIMP session uses."""
    results = session["results"]
    pids = [tuple(results[name]["worker_pids"]) for name in COLORIZED]
    assert len(pids[0]) == 1 and all(p == pids[0] for p in pids), pids


def test_no_stray_images(session):
    """GIMP names images a plug-in leaves behind (the reference's duplicate, say)."""
    assert "stray image" not in session["log"]


@pytest.mark.parametrize("name", ["preview", "preview-u16"])
def test_the_dialogs_preview_path_with_the_real_worker(session, name):
    """What the dialog's live preview does, in real GIMP: the layer read (inside the
    selection's bounds) and shrunk to preview size, the real worker colorizing it, a strength change
    (the reference's embedding kept), a burst of changes coalesced; the image untouched."""
    result = session["results"][name]
    assert result["status"] == "success", result
    assert result["after"] == result["before"] and result["stray_images"] == 0
    assert "layer" not in result
    width, height, channels, dtype = result["preview_before"]
    _, _, region_width, region_height = result["region"]  # what the run would colorize
    side = 360 if name == "preview" else 512  # the dialog's size, or the working size if larger
    if name == "preview":  # the feathered ellipse's box, a little larger than 900 x 700
        assert 900 < region_width < 1000 and 700 < region_height < 800
    else:
        assert (region_width, region_height) == (1200, 800)
    step = -(-max(region_width, region_height) // side)  # every step-th pixel
    assert (width, height) == (-(-region_width // step), -(-region_height // step))
    assert (channels, dtype) == ("RGB", "u8" if name == "preview" else "u16")
    numpy_type = SAMPLE_TYPES[dtype]
    full = np.frombuffer((session["out"] / f"{name}.preview-1.0.bin").read_bytes(), numpy_type)
    half = np.frombuffer((session["out"] / f"{name}.preview-0.5.bin").read_bytes(), numpy_type)
    before = np.frombuffer((session["out"] / f"{name}.preview-before.bin").read_bytes(),
                           numpy_type)  # fmt: skip
    scale = 255.0 if dtype == "u8" else 65535.0
    full, half, before = (a.reshape(height, width, 3) / scale for a in (full, half, before))
    gray_before = np.ptp(before, axis=-1).mean()
    assert gray_before < 0.01  # the layer is gray
    chroma = lambda rgb: np.hypot(*np.moveaxis(chroma_ab(rgb), -1, 0)).mean()  # noqa: E731
    assert chroma(full) > 3.0 and chroma(half) < chroma(full)
    # the lightness is the layer's, at preview size
    assert np.abs(lightness(full) - lightness(before)).mean() < 1.5
    if name == "preview":  # the feathered ellipse: the corners, outside it, stay gray
        assert np.ptp(full[:8, :8], axis=-1).max() < 0.01
    first, second = result["preview_steps"]
    assert first["size"] == second["size"] == [width, height, channels, dtype]
    assert first["generation"][0] == first["generation"][1]
    burst = result["burst"]
    assert burst["error"] is None and burst["generation"][0] == burst["generation"][1]
    # ten requests 20 ms apart, each replacing the waiting one and cancelling the running one:
    # fewer jobs than requests (how many depends on the machine's speed), the last one shown
    assert 1 <= burst["computed"] < burst["requests"], burst


def test_cancel_stops_the_workers_job_and_leaves_the_image_unchanged(session):
    """Cancel in an interactive run's progress window, through its code path with the real
    worker in real GIMP: the job stops, the image is as it was, and the same worker (the
    persistent extension was not closed) serves the next run."""
    result = session["results"]["cancel"]
    assert result["status"] == "success", result
    assert result["cancel_outcome"].startswith("cancelled"), result
    assert result["cancel_progress"], result  # it was running when cancelled
    assert result["unchanged_after_cancel"] and result["layers_after_cancel"] == ["Background"]
    assert result["next_run_layer"] == "Background (colorized)" and result["same_worker"]
