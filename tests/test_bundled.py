"""The default weights shipped in the package, and the Quickstart's example pair."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from c2e_core.weights.build import COLOR2EMBED_CORR, CORR_PRESETS, CorrConfig
from c2e_core.weights.loader import DEFAULT_WEIGHTS_NAME, default_weights_spec, load_model
from c2e_core.weights.store import WeightsError, WeightsStore, read_weights, sha256_file

REPO = Path(__file__).resolve().parents[1]
BUNDLED = REPO / "c2e_core" / "bundled"
EXAMPLES = REPO / "examples"
EXAMPLE_TARGET = EXAMPLES / "chelsea-gray.jpg"
EXAMPLE_REFERENCE = EXAMPLES / "coffee.jpg"
C2E = Path(sys.executable).with_name("c2e")
#: The default weights: ``corr-small`` with the reference matched in its eight orientations.
SHIPPED_CONFIG = dataclasses.replace(CORR_PRESETS["corr-small"], reference_orientations=8)


def manifest_entry(name: str = DEFAULT_WEIGHTS_NAME) -> dict:
    return json.loads((BUNDLED / "manifest.json").read_text())["weights"][name]


def test_bundled_default_weights_are_small_verified_and_documented():
    entry = manifest_entry("default-torch")
    path = BUNDLED / entry["file"]
    assert path.stat().st_size <= 25 * 1024 * 1024
    assert sha256_file(path) == entry["sha256"]
    weights = read_weights(path, expected_sha256=entry["sha256"])
    assert weights.architecture == COLOR2EMBED_CORR  # the project's extension of the paper
    assert CorrConfig.from_dict(weights.config) == SHIPPED_CONFIG
    meta = weights.metadata
    # the reference's eight orientations: a configuration change without training, recorded
    assert meta["config_changed_at_bundling"] == {"reference_orientations": 8}
    # provenance: recipe, data manifest, steps, images seen, hardware and wall time
    assert meta["recipe"]["model"] == {"preset": "corr-small"}
    assert meta["recipe"]["init"]["from"].startswith("weights:")  # stage 2 continues stage 1
    assert meta["recipe"]["reference"]["foreign_p"] > 0  # references that miss content
    # trained on the train split only (training/splits.py): 153 of the 219 photos
    assert len(meta["data_manifest_sha256"]) == 64 and meta["data_files"] == 153
    assert meta["steps"] >= 300
    assert meta["images_seen"] == meta["steps"] * meta["recipe"]["optim"]["batch"]
    assert meta["recipe"]["data"]["size"] == 256  # every stage trains at the working size
    assert meta["hardware"]["device"] == "cpu" and meta["wall_time_s"] > 0
    assert "photos-train" in meta["data_note"] and "splits.py" in meta["data_note"]
    for stage in ("cpu-corr.toml", "cpu-corr-foreign.toml"):
        assert stage in meta["data_note"]


def test_the_default_is_the_torch_models_runtime_weights_with_its_provenance():
    """``default`` is runtime weights (onnxruntime, no torch needed), exported from the torch
    model ``default-torch``, and carries that model's training provenance."""
    from c2e_core.runtime.weights import read_runtime_weights

    entry, torch_entry = manifest_entry(), manifest_entry("default-torch")
    path = BUNDLED / entry["file"]
    assert path.name.endswith(".c2e.onnx") and path.stat().st_size <= 25 * 1024 * 1024
    runtime = read_runtime_weights(path, expected_sha256=entry["sha256"])
    assert runtime.architecture == COLOR2EMBED_CORR
    assert CorrConfig.from_dict(runtime.config) == SHIPPED_CONFIG
    exported = runtime.metadata["exported_from"]
    assert exported == {"weights": "default-torch", "sha256": torch_entry["sha256"]}
    torch_meta = read_weights(BUNDLED / torch_entry["file"]).metadata
    for key in ("recipe", "data_manifest_sha256", "steps", "images_seen", "hardware"):
        assert runtime.metadata[key] == torch_meta[key]
    assert runtime.metadata["export_max_difference"] <= 1e-3


def test_default_weights_are_registered_and_load():
    store = WeightsStore()
    entry = store.get(DEFAULT_WEIGHTS_NAME)
    assert entry.source == "plugin:c2e_core.builtin" and "photos" in entry.description
    assert default_weights_spec(store) == DEFAULT_WEIGHTS_NAME
    loaded = load_model("default-torch")
    assert CorrConfig.from_dict(loaded.config) == SHIPPED_CONFIG


def test_environment_variable_switches_the_default(tmp_path, monkeypatch, tiny_weights):
    from c2e_core.weights.store import read_weights as read

    monkeypatch.setenv("C2E_DEFAULT_WEIGHTS", "paper")
    with pytest.raises(WeightsError, match="C2E_DEFAULT_WEIGHTS=paper.*c2e weights import"):
        default_weights_spec(WeightsStore())
    WeightsStore().add("paper", read(tiny_weights), imported_from=str(tiny_weights))
    assert default_weights_spec(WeightsStore()) == "paper"


def run_c2e(*args, home: Path, **env) -> subprocess.CompletedProcess:
    full_env = {**os.environ, "C2E_HOME": str(home), "C2E_DISABLE_PLUGIN_AUTOLOAD": "1", **env}
    return subprocess.run([str(C2E), *map(str, args)], env=full_env, capture_output=True,
                          text=True, timeout=300)


def lab(path: Path) -> np.ndarray:
    from skimage.color import rgb2lab

    return rgb2lab(np.asarray(Image.open(path).convert("RGB")))


@pytest.mark.integration
def test_quickstart_pair_colorizes_with_the_default_weights(tmp_path):
    """The Quickstart's command, without --weights: a colour PNG whose lightness is the gray
    target's and whose colours come from the reference."""
    listing = run_c2e("weights", "list", home=tmp_path)
    assert listing.returncode == 0
    assert "default\t" in listing.stdout and "photos-train" in listing.stdout
    out = tmp_path / "colorized.png"
    result = run_c2e("colorize", EXAMPLE_TARGET, "-r", EXAMPLE_REFERENCE, "-o", out,
                     home=tmp_path)
    assert result.returncode == 0, result.stderr
    target, output, reference = lab(EXAMPLE_TARGET), lab(out), lab(EXAMPLE_REFERENCE)
    assert output.shape == target.shape
    assert np.abs(output[..., 0] - target[..., 0]).mean() < 1.0
    chroma = np.hypot(output[..., 1], output[..., 2])
    assert np.abs(target[..., 1:]).max() < 2.0 and chroma.mean() > 5.0
    # the output's mean hue direction is the reference's
    out_ab = output[..., 1:].reshape(-1, 2).mean(0)
    ref_ab = reference[..., 1:].reshape(-1, 2).mean(0)
    cosine = out_ab @ ref_ab / (np.linalg.norm(out_ab) * np.linalg.norm(ref_ab))
    assert cosine > 0.8


def _flat_region_colour_changes(path: Path) -> float:
    """Mean ab change between neighbouring pixels where the lightness is flat (blotches)."""
    image = lab(path)
    dl = np.abs(np.diff(image[..., 0], axis=1))
    dab = np.hypot(*np.moveaxis(np.diff(image[..., 1:], axis=1), -1, 0))
    return float(dab[dl < 0.5].mean())


@pytest.mark.integration
def test_clean_makes_flat_regions_more_even_with_the_default_weights(tmp_path):
    """``--clean 1`` on the Quickstart pair: colours change less between neighbouring pixels
    of equal lightness, the lightness is still the target's, the hue still the reference's."""
    outputs = {}
    for clean in ("0", "1"):
        outputs[clean] = tmp_path / f"clean{clean}.png"
        result = run_c2e("colorize", EXAMPLE_TARGET, "-r", EXAMPLE_REFERENCE, "-o",
                         outputs[clean], "--clean", clean, home=tmp_path)
        assert result.returncode == 0, result.stderr
    before, after = (_flat_region_colour_changes(outputs[c]) for c in ("0", "1"))
    assert after < 0.8 * before
    target, cleaned = lab(EXAMPLE_TARGET), lab(outputs["1"])
    assert np.abs(cleaned[..., 0] - target[..., 0]).mean() < 1.0
    assert np.hypot(cleaned[..., 1], cleaned[..., 2]).mean() > 5.0


@pytest.mark.integration
def test_worker_uses_the_default_weights(tmp_path):
    from tests.conftest import load_client

    client_module = load_client()
    env = {**os.environ, "C2E_HOME": str(tmp_path), "C2E_DISABLE_PLUGIN_AUTOLOAD": "1"}
    worker = client_module.WorkerClient(sys.executable, args=("-m", "c2e_core", "worker"),
                                        env=env, cwd=str(REPO))
    hello = worker.start(timeout=60)
    try:
        assert hello["default_weights"] == DEFAULT_WEIGHTS_NAME
        target = np.asarray(Image.open(EXAMPLE_TARGET).convert("RGB").resize((64, 48)))
        reference = np.asarray(Image.open(EXAMPLE_REFERENCE).convert("RGB").resize((60, 40)))
        pixels = client_module.Pixels
        result = worker.colorize(
            pixels(64, 48, "RGB", "u8", target.tobytes()),
            pixels(60, 40, "RGB", "u8", reference.tobytes()),
            options={"size": 64},
        )
        colour = np.frombuffer(result.data, np.uint8).reshape(48, 64, 3).astype(int)
        assert np.abs(colour - colour.mean(axis=2, keepdims=True)).max() > 3  # not gray
    finally:
        assert worker.close() == 0


def test_bundle_script_writes_file_and_manifest(tmp_path, tiny_weights):
    sys.path.insert(0, str(REPO / "training"))
    try:
        from bundle_weights import bundle
    finally:
        sys.path.remove(str(REPO / "training"))
    from c2e_core.runtime.weights import read_runtime_weights

    sha = bundle(tiny_weights, "default", "tiny.c2e.pt", "tiny test", "no data", tmp_path)
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert manifest["weights"]["default"] == {
        "file": "tiny.c2e.onnx", "sha256": sha, "description": "tiny test"
    }
    torch_entry = manifest["weights"]["default-torch"]
    assert torch_entry["file"] == "tiny.c2e.pt"
    torch_weights = read_weights(tmp_path / "tiny.c2e.pt", expected_sha256=torch_entry["sha256"])
    assert torch_weights.metadata["data_note"] == "no data"
    runtime = read_runtime_weights(tmp_path / "tiny.c2e.onnx", expected_sha256=sha)
    assert runtime.metadata["data_note"] == "no data"
    assert runtime.metadata["exported_from"]["sha256"] == torch_entry["sha256"]


def test_bundle_script_sets_a_field_without_weights_and_records_it(tmp_path, capsys):
    from c2e_core.runtime.weights import read_runtime_weights
    from c2e_core.weights.build import build_model, init_for_training
    from c2e_core.weights.store import save_weights

    sys.path.insert(0, str(REPO / "training"))
    try:
        from bundle_weights import main
    finally:
        sys.path.remove(str(REPO / "training"))
    tiny = {"unet_widths": [8, 8, 16, 16, 16], "embed_dim": 16, "encoder_hidden": 16,
            "encoder_mlp_hidden": 16}  # fmt: skip
    model = init_for_training(build_model(COLOR2EMBED_CORR, tiny))
    source = tmp_path / "trained.c2e.pt"
    save_weights(source, architecture=COLOR2EMBED_CORR, config=tiny,
                 state_dict=model.state_dict(), metadata={"steps": 3})  # fmt: skip
    common = [str(source), "--file", "t.c2e.pt", "--description", "d", "--data-note", "n",
              "--folder", str(tmp_path / "out")]  # fmt: skip
    (tmp_path / "out").mkdir()
    assert main([*common, "--set", "reference_orientations=8"]) == 0
    saved = read_weights(tmp_path / "out" / "t.c2e.pt")
    assert saved.config["reference_orientations"] == 8 and saved.metadata["steps"] == 3
    assert saved.metadata["config_changed_at_bundling"] == {"reference_orientations": 8}
    runtime = read_runtime_weights(tmp_path / "out" / "t.c2e.onnx")
    assert runtime.config["reference_orientations"] == 8
    capsys.readouterr()
    written = sha256_file(tmp_path / "out" / "t.c2e.pt")
    for bad in ("reference_orientations=3", "no_such_field=1", "reference_orientations",
                "embed_dim=32", "temperature=0.05"):  # the last two: fields that shape weights
        assert main([*common, "--set", bad]) == 2
        err = capsys.readouterr().err
        assert err.startswith("error: ") and err.count("\n") == 1
        assert sha256_file(tmp_path / "out" / "t.c2e.pt") == written  # nothing written
