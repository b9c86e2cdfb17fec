"""The evaluation protocol: metrics, baselines, reference modes, the report and ``c2e eval``."""

from __future__ import annotations

import argparse
import json

import numpy as np
import pytest
from PIL import Image

from c2e_core.options import DEFAULT_CLEAN
from c2e_core.training import evaluation as ev
from c2e_core.training.eval_command import add_eval_arguments, run_eval

PHOTOS = ("astronaut", "coffee", "chelsea", "rocket")


def _lab(rgb: np.ndarray) -> np.ndarray:
    from skimage.color import rgb2lab

    return rgb2lab(np.asarray(rgb, dtype=np.float64))


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    """The four skimage photos as PNG files and as the protocol's 256² ground truths."""
    import skimage.data

    folder = tmp_path_factory.mktemp("photos")
    paths = []
    for name in PHOTOS:
        path = folder / f"{name}.png"
        Image.fromarray(getattr(skimage.data, name)()).save(path)
        paths.append(path)
    return folder, ev.prepare_targets(paths)


def _smooth_image(seed: int, height: int, width: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    small = rng.random((4, 6, 3))
    image = Image.fromarray((small * 255).astype(np.uint8)).resize((width, height), Image.BILINEAR)
    return np.asarray(image)


@pytest.fixture
def small_folder(tmp_path):
    """Three small generated colour images (different sizes and formats) in a nested folder."""
    folder = tmp_path / "data"
    (folder / "sub").mkdir(parents=True)
    Image.fromarray(_smooth_image(1, 60, 90)).save(folder / "a.png")
    Image.fromarray(_smooth_image(2, 80, 64)).save(folder / "sub" / "b.jpg", quality=95)
    Image.fromarray(_smooth_image(3, 64, 64)).save(folder / "c.png")
    return folder


# --------------------------------------------------------------------------- targets, metrics


def test_prepare_targets_resizes_shorter_side_and_centre_crops(tmp_path):
    image = np.zeros((100, 300, 3), dtype=np.uint8)
    image[:, 100:200] = (255, 0, 0)  # the centre third is red, the rest black
    Image.fromarray(image).save(tmp_path / "wide.png")
    (target,) = ev.prepare_targets([tmp_path / "wide.png"], size=64)
    assert target.shape == (64, 64, 3) and target.dtype == np.float32
    assert np.allclose(target[:, 8:56], (1.0, 0.0, 0.0), atol=1e-6)  # 192 wide -> crop 64..128
    assert target.min() >= 0.0 and target.max() <= 1.0


def test_metric_sanity(photos):
    _, truths = photos
    rgb = truths[0]
    assert ev.psnr_rgb(rgb, rgb) == ev.PSNR_CAP == 100.0
    assert ev.psnr_rgb(np.zeros_like(rgb), np.ones_like(rgb)) == pytest.approx(0.0)
    assert ev.ciede2000(rgb, rgb) == 0.0
    assert ev.ciede2000(rgb, ev.gray_target(rgb)) > 5.0
    assert ev.colourfulness(np.repeat(rgb[..., :1], 3, axis=2)) == 0.0
    saturated = np.zeros((32, 32, 3), dtype=np.float32)
    saturated[:16, :, 0] = 1.0
    saturated[16:, :, 2] = 1.0
    assert ev.colourfulness(saturated) > 50.0
    hist = ev.ab_histogram(rgb)
    assert hist.shape == (32, 32) and hist.sum() == pytest.approx(1.0)
    assert ev.histogram_intersection(hist, hist) == pytest.approx(1.0)
    gray_hist = ev.ab_histogram(ev.gray_target(rgb))
    assert 0.0 <= ev.histogram_intersection(hist, gray_hist) < 0.5


# --------------------------------------------------------------------------- baselines


@pytest.mark.parametrize("name", sorted(ev.BASELINES))
def test_baselines_keep_the_target_lightness(photos, name):
    _, truths = photos
    for target, reference in ((truths[0], truths[1]), (ev.gray_target(truths[2]), truths[3])):
        out = ev.BASELINES[name](target, reference)
        assert out.shape == target.shape and out.dtype == np.float32
        assert out.min() >= 0.0 and out.max() <= 1.0
        assert np.abs(_lab(out)[..., 0] - _lab(target)[..., 0]).max() < 1e-3


def test_reinhard_on_a_grey_target_gives_the_reference_mean_ab(photos):
    _, truths = photos
    target, reference = ev.gray_target(truths[0]), truths[2]
    ab = _lab(ev.baseline_reinhard(target, reference))[..., 1:].reshape(-1, 2)
    expected = _lab(reference)[..., 1:].reshape(-1, 2).mean(axis=0)
    # a constant tint, except where it is out of gamut (very dark or bright) and loses chroma
    at_tint = np.abs(ab - expected).max(axis=1) < 0.05
    assert at_tint.mean() > 0.5
    hue = np.arctan2(ab[:, 1], ab[:, 0])
    chroma = np.hypot(ab[:, 0], ab[:, 1])
    assert np.allclose(hue[chroma > 1.0], np.arctan2(expected[1], expected[0]), atol=0.02)
    assert chroma.max() <= np.hypot(*expected) + 0.05


def test_gray_baseline_has_no_chroma(photos):
    _, truths = photos
    out = ev.baseline_gray(truths[0], truths[1])
    assert np.abs(_lab(out)[..., 1:]).max() < 1e-2
    assert ev.colourfulness(out) < 0.1


def test_lookup_beats_gray_and_reinhard_on_self_warped_references(photos):
    _, truths = photos
    references = ev.self_warped_references(truths, seed=0)
    his = {name: [] for name in ev.BASELINES}
    for gt, reference in zip(truths, references, strict=True):
        target, h_gt = ev.gray_target(gt), ev.ab_histogram(gt)
        for name, method in ev.BASELINES.items():
            his[name].append(
                ev.histogram_intersection(ev.ab_histogram(method(target, reference)), h_gt)
            )
    means = {name: float(np.mean(values)) for name, values in his.items()}
    # measured: gray 0.11, Reinhard 0.16, lookup 0.47 (the protocol's table: 0.11, 0.18, 0.52)
    assert means["lookup"] > means["reinhard"] > means["gray"]
    assert means["lookup"] > 0.35


def test_colorize_with_baseline_works_at_full_resolution(photos):
    import skimage.data

    target = skimage.data.chelsea()  # 300 x 451 uint8, not square
    from c2e_core.inference.baselines import colorize_with_baseline
    from c2e_core.inference.pipeline import OptionError

    out = colorize_with_baseline("lookup", target, skimage.data.coffee())
    assert out.shape == (300, 451, 3) and out.dtype == np.float32
    assert np.abs(_lab(out)[..., 0] - _lab(target / 255.0)[..., 0]).max() < 1e-3
    with pytest.raises(OptionError, match="unknown method 'nope'"):
        colorize_with_baseline("nope", target, target)


def test_the_baselines_import_no_training_code():
    import subprocess
    import sys

    code = (
        "import sys, c2e_core.inference.baselines; "
        "print([m for m in sys.modules if m.startswith('c2e_core.training')])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


# --------------------------------------------------------------------------- references


def test_references_are_deterministic_and_cross_pairs_a_derangement(photos):
    _, truths = photos
    first = ev.self_warped_references(truths[:2], seed=3)
    again = ev.self_warped_references(truths[:2], seed=3)
    assert all(np.array_equal(a, b) for a, b in zip(first, again, strict=True))
    assert not np.array_equal(first[0], truths[0])
    pairs = ev.cross_pairs(7, seed=0)
    assert sorted(pairs) == list(range(7)) and all(p != i for i, p in enumerate(pairs))
    assert pairs == ev.cross_pairs(7, seed=0) and pairs != ev.cross_pairs(7, seed=1)
    with pytest.raises(ev.EvalError, match="at least 2 images"):
        ev.cross_pairs(1)


# --------------------------------------------------------------------------- evaluate, report


def _without_timing(results: dict) -> dict:
    plain = {k: v for k, v in results.items() if k not in ("examples", "seconds")}
    return json.loads(json.dumps(plain))


def test_evaluate_with_a_model_writes_a_deterministic_report(small_folder, tmp_path, tiny_weights):
    kwargs = dict(model_spec=str(tiny_weights), mode="both", seed=0, device="cpu", size=64)
    results = ev.evaluate(small_folder, **kwargs)
    assert results["images"] == 3 and results["size"] == 64
    assert results["model"]["clean"] == DEFAULT_CLEAN  # the library's default, as c2e colorize
    assert set(results["modes"]) == {"self-warped", "cross"}
    for block in results["modes"].values():
        assert set(block["means"]) == {"gray", "reinhard", "lookup", "model"}
        for means in block["means"].values():
            assert set(means) == set(ev.METRICS)
            assert all(np.isfinite(v) for v in means.values())
        assert block["ground_truth_colourfulness"] > 10.0
    crosses = {(r["image"], r["reference"]) for r in results["modes"]["cross"]["per_image"]}
    assert all(image != reference for image, reference in crosses)

    paths = ev.write_report(results, tmp_path / "report")
    saved = json.loads(paths["json"].read_text())
    assert saved == _without_timing(results) | {"seconds": results["seconds"]}
    markdown = paths["markdown"].read_text()
    assert "## self-warped references" in markdown and "## cross references" in markdown
    assert "| luminance lookup |" in markdown and "Color2Embed (" in markdown
    assert "Baselines only" not in markdown
    with Image.open(paths["contact_sheet"]) as sheet:
        columns, rows = 2 + 4 + 1, 2 * 3  # target, reference, 4 methods, ground truth
        step = ev.SHEET_TILE + ev.SHEET_PAD
        assert sheet.size == (
            ev.SHEET_PAD + columns * step,
            ev.SHEET_HEADER + ev.SHEET_PAD + rows * step,
        )
        assert sheet.mode == "RGB"

    again = ev.evaluate(small_folder, **kwargs)
    assert _without_timing(again) == _without_timing(results)
    for mode, shown in results["examples"].items():
        for a, b in zip(shown, again["examples"][mode], strict=True):
            assert np.array_equal(a["reference"], b["reference"])
            assert np.array_equal(a["outputs"]["model"], b["outputs"]["model"])


def test_evaluate_with_the_colour_cleanup(small_folder, tiny_weights):
    kwargs = dict(model_spec=str(tiny_weights), mode="self-warped", device="cpu", size=64)
    plain, cleaned = (ev.evaluate(small_folder, **kwargs, clean=c) for c in (0.0, 1.0))
    assert (plain["model"]["clean"], cleaned["model"]["clean"]) == (0.0, 1.0)
    assert cleaned["methods"]["model"].endswith(", clean 1)")
    assert "clean" not in plain["methods"]["model"]
    rows = [r["modes"]["self-warped"]["per_image"] for r in (plain, cleaned)]
    assert any(a["model"] != b["model"] for a, b in zip(*rows, strict=True))
    with pytest.raises(ValueError, match="clean must be"):
        ev.evaluate(small_folder, **kwargs, clean=3)
    with pytest.raises(ValueError, match="clean must be"):  # checked without a model too
        ev.evaluate(small_folder, mode="cross", clean=-1)
    calm = ev.evaluate(small_folder, **kwargs, clean=1.0, keep_palette=False)
    assert calm["model"]["keep_palette"] is False and cleaned["model"]["keep_palette"] is True
    assert calm["methods"]["model"].endswith(", clean 1 without the palette step)")
    calm_rows = calm["modes"]["self-warped"]["per_image"]
    assert any(a["model"] != b["model"] for a, b in zip(rows[1], calm_rows, strict=True))
    assert _eval_args("--data", "d", "--no-keep-palette").keep_palette is False
    assert _eval_args("--data", "d").keep_palette is True


def _eval_args(*argv: str) -> argparse.Namespace:
    return add_eval_arguments(argparse.ArgumentParser()).parse_args(list(argv))


def test_eval_command_baselines_only(small_folder, tmp_path, capsys):
    out = tmp_path / "out"
    args = _eval_args(
        "--data",
        str(small_folder),
        "--mode",
        "cross",
        "--limit",
        "2",
        "--output",
        str(out),
        "--device",
        "cpu",
    )
    assert run_eval(args) == 0
    markdown = (out / "results.md").read_text()
    assert "Baselines only" in markdown and "## cross references" in markdown
    assert "self-warped" not in markdown
    assert json.loads((out / "results.json").read_text())["images"] == 2
    assert "| luminance lookup |" in capsys.readouterr().out


def test_eval_command_user_mistakes_are_one_line_value_errors(tmp_path, small_folder):
    empty = tmp_path / "empty"
    empty.mkdir()
    cases = [
        (_eval_args("--data", str(tmp_path / "missing")), "no such folder"),
        (_eval_args("--data", str(empty), "--output", str(tmp_path / "o")), "no images"),
        (_eval_args("--data", str(small_folder), "--limit", "1", "--mode", "cross",
                    "--output", str(tmp_path / "o")), "at least 2 images"),
    ]  # fmt: skip
    (tmp_path / "file").write_text("x")
    cases.append((_eval_args("--data", str(small_folder), "--output", str(tmp_path / "file")),
                  "not a folder"))  # fmt: skip
    for args, message in cases:
        with pytest.raises(ValueError, match=message) as info:
            run_eval(args)
        assert "\n" not in str(info.value)
    with pytest.raises(SystemExit):
        _eval_args("--data", str(small_folder), "--limit", "0")
