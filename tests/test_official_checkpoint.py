"""The authors' checkpoint format: safe, strict import and forward-pass parity."""

from __future__ import annotations

import pickle

import pytest
import torch

from c2e_core.weights.build import build_color2embed
from c2e_core.weights.official import CheckpointError, convert_official_checkpoint
from tests.conftest import count_calls
from tests.official_format import FIXTURE_DIR, write_official_checkpoint


@pytest.fixture(scope="module")
def parity_model(official_checkpoint):
    converted = convert_official_checkpoint(official_checkpoint)
    model = build_color2embed(converted.config)
    model.load_state_dict(converted.state_dict)
    return model.eval()


@pytest.fixture(scope="module")
def fixture():
    return torch.load(FIXTURE_DIR / "fixture.pt", weights_only=True)


def test_plain_weights_only_load_refuses_the_namespace(official_checkpoint):
    with pytest.raises(pickle.UnpicklingError):
        torch.load(official_checkpoint, weights_only=True)


def test_conversion_keeps_only_what_inference_needs(official_checkpoint):
    converted = convert_official_checkpoint(official_checkpoint)
    assert set(converted.state_dict) == set(build_color2embed().state_dict())
    assert not any("classifier" in k or "vgg_feature" in k for k in converted.state_dict)
    assert converted.metadata["training_args"]["iter"] == 45000
    assert len(converted.metadata["source_sha256"]) == 64


def test_module_prefix_is_accepted(tmp_path, official_checkpoint):
    prefixed = write_official_checkpoint(tmp_path / "ddp.pt", module_prefix=True)
    a = convert_official_checkpoint(prefixed).state_dict
    b = convert_official_checkpoint(official_checkpoint).state_dict
    assert all(torch.equal(a[k], b[k]) for k in b)


@pytest.mark.slow
def test_full_size_checkpoint_with_classifier_and_args(tmp_path):
    path = write_official_checkpoint(tmp_path / "full.pt", small_classifier=False)
    assert path.stat().st_size > 600e6  # the ~124 M-parameter classifier is really in the file
    converted = convert_official_checkpoint(path)
    assert sum(t.numel() for t in converted.state_dict.values()) < 50e6


@pytest.mark.parametrize(
    ("tamper", "message"),
    [
        ({("colorUNet", "up2.SDFT.weight"): None}, "up2.SDFT.weight"),
        ({("colorUNet", "outc.2.weight"): torch.zeros(3, 64, 3, 3)}, "outc.2.weight"),
        ({("colorEncoder", "feature2vector.9.bias"): None}, "feature2vector.9.bias"),
        ({("colorUNet", "extra.weight"): torch.zeros(1)}, "extra.weight"),
    ],
)
def test_strict_errors_name_the_key(tmp_path, tamper, message):
    path = write_official_checkpoint(tmp_path / "bad.pt", tamper=tamper)
    with pytest.raises(CheckpointError, match=message.replace(".", r"\.")):
        convert_official_checkpoint(path)


def test_pickled_code_never_runs(tmp_path):
    class Evil:
        def __reduce__(self):
            return (exec, ("raise SystemExit('pwned')",))

    path = tmp_path / "evil.pt"
    torch.save({"colorEncoder": {}, "colorUNet": {}, "args": Evil()}, path)
    with pytest.raises(CheckpointError, match="unsafe"):
        convert_official_checkpoint(path)


def test_not_a_checkpoint(tmp_path):
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="junk.pt"):
        convert_official_checkpoint(junk)
    other = tmp_path / "other.pt"
    torch.save({"state_dict": {}}, other)
    with pytest.raises(CheckpointError, match="colorEncoder"):
        convert_official_checkpoint(other)


def test_parity_encoder_and_unet(parity_model, fixture):
    with torch.no_grad():
        z = parity_model.embed(fixture["ref_in"])
        ab = parity_model.predict_ab(fixture["L_in"], fixture["color_vector"])
    assert (z - fixture["color_vector"]).abs().max().item() <= 1e-5
    assert (ab - fixture["ab_out"]).abs().max().item() <= 1e-5


def test_an_authors_checkpoint_is_built_and_loaded_once(official_checkpoint, monkeypatch):
    """Loading it by path builds the ``paper`` model once and loads its state strictly once."""
    import c2e_core.weights.build
    import c2e_core.weights.loader
    import c2e_core.weights.official
    from c2e_core.weights.loader import load_model

    counts: dict[str, int] = {}
    build = c2e_core.weights.build.build_color2embed
    count_calls(
        monkeypatch, counts, "build", build, (c2e_core.weights.official, "build_color2embed")
    )
    count_calls(monkeypatch, counts, "build", lambda *a, **k: build(),
                (c2e_core.weights.loader, "build_model"))
    count_calls(monkeypatch, counts, "load", c2e_core.weights.build.load_state_strictly,
                (c2e_core.weights.official, "load_state_strictly"),
                (c2e_core.weights.loader, "load_state_strictly"))
    loaded = load_model(official_checkpoint)
    assert counts == {"build": 1, "load": 1}
    assert loaded.architecture == "color2embed" and loaded.path == official_checkpoint
    assert not loaded.model.training
