"""Shared fixtures: tiny models and weights files (plumbing, not quality)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from c2e_core.weights.build import build_color2embed

REPO = Path(__file__).resolve().parents[1]
CLIENT_DIR = REPO / "c2e_plugins" / "client" / "c2e_client"
TINY_CONFIG = {
    "unet_widths": [8, 16, 16, 32, 32],
    "backbone_widths": [8, 8, 16, 16, 16],
    "encoder_hidden": 16,
    "encoder_mlp_hidden": 16,
    "embed_dim": 32,
}
#: Half an 8-bit output level: what a batched and a one-by-one call must agree to. They take
#: different CPU kernels (float32 sums in another order, ~1e-4 apart on some machines), which no
#: saved image can show; a real mix-up (wrong embedding, wrong crop) moves values by far more.
HALF_8BIT_LEVEL = 0.5 / 255


def assert_same_image(actual, expected) -> None:
    """``actual`` equals ``expected`` (floats in [0, 1]) to half an 8-bit level."""
    np.testing.assert_allclose(
        np.asarray(actual), np.asarray(expected), atol=HALF_8BIT_LEVEL, rtol=0
    )


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path_factory, monkeypatch):
    """Never touch the user's real weights folder; no installed plugins unless a test asks."""
    monkeypatch.setenv("C2E_HOME", str(tmp_path_factory.mktemp("c2e_home")))
    monkeypatch.setenv("C2E_DISABLE_PLUGIN_AUTOLOAD", "1")
    from c2e_core.plugins import reset_plugin_host

    reset_plugin_host()
    yield
    reset_plugin_host()


def tiny_model(seed: int = 0):
    torch.manual_seed(seed)
    model = build_color2embed(TINY_CONFIG)
    with torch.no_grad():  # He init keeps the reference's signal alive through the tiny net
        for module in model.modules():
            if isinstance(module, torch.nn.Conv2d):
                torch.nn.init.kaiming_normal_(module.weight, nonlinearity="relu")
                torch.nn.init.zeros_(module.bias)
        model.unet.outc[2].weight.mul_(0.5)
    return model


@pytest.fixture(scope="session")
def official_checkpoint(tmp_path_factory) -> Path:
    """An authors'-format checkpoint with the parity fixture's weights (~200 MB, written once
    for the session; the tests only read it)."""
    from tests.official_format import write_official_checkpoint

    return write_official_checkpoint(tmp_path_factory.mktemp("official") / "color2embed.pt")


@pytest.fixture(scope="session")
def tiny_weights(tmp_path_factory):
    from c2e_core.weights.store import save_weights

    path = tmp_path_factory.mktemp("weights") / "tiny.c2e.pt"
    save_weights(
        path,
        architecture="color2embed",
        config=TINY_CONFIG,
        state_dict=tiny_model().state_dict(),
        metadata={"description": "test tiny"},
    )
    return path


def load_client():
    """The stdlib-only client package, imported from its folder like the GIMP plug-in does."""
    if "c2e_client" not in sys.modules:
        spec = importlib.util.spec_from_file_location(
            "c2e_client", CLIENT_DIR / "__init__.py", submodule_search_locations=[str(CLIENT_DIR)]
        )
        module = importlib.util.module_from_spec(spec)
        sys.modules["c2e_client"] = module
        spec.loader.exec_module(module)
    return sys.modules["c2e_client"]


def client_files() -> dict[str, bytes]:
    """The client package's files by name: what each plugin vendors."""
    return {p.name: p.read_bytes() for p in sorted(CLIENT_DIR.glob("*.py"))}


def vendored_files(folder: Path) -> dict[str, bytes]:
    """The client files vendored into an installed plugin's ``folder``."""
    return {p.name: p.read_bytes() for p in sorted((folder / "c2e_client").glob("*.py"))}


def count_calls(monkeypatch, counts: dict, key: str, function, *places) -> None:
    """Replace ``function`` by a wrapper counting its calls in ``counts[key]``, in each of
    ``places`` (``(module, attribute name)``)."""
    counts.setdefault(key, 0)

    def counting(*args, **kwargs):
        counts[key] += 1
        return function(*args, **kwargs)

    for module, name in places:
        monkeypatch.setattr(module, name, counting)


@pytest.fixture(scope="session")
def engine_wheelhouse(tmp_path_factory) -> Path:
    """A folder of wheels from which pip installs the light runtime with no index: this
    checkout's wheel and its dependencies' (fetched once from the package registry). Tests
    point pip at it with ``PIP_NO_INDEX=1 PIP_FIND_LINKS=<folder>``, as a user without
    network would."""
    import subprocess

    folder = tmp_path_factory.mktemp("wheelhouse")
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check"]
    built = subprocess.run([*pip, "wheel", "--no-deps", "--no-build-isolation", "-w",
                            str(folder), str(REPO)], capture_output=True, text=True,
                           timeout=600)  # fmt: skip
    assert built.returncode == 0, built.stderr[-3000:]
    (wheel,) = folder.glob("c2e_studio-*.whl")
    # this Python's wheels, and Debian 13's Python 3.13's (the Krita 5.2 and GIMP 3 chroot)
    for version in sorted({f"{sys.version_info[0]}.{sys.version_info[1]}", "3.13"}):
        fetched = subprocess.run([*pip, "download", "--only-binary", ":all:", "--python-version",
                                  version, "-d", str(folder), str(wheel)], capture_output=True,
                                 text=True, timeout=600)  # fmt: skip
        assert fetched.returncode == 0, fetched.stderr[-3000:]
    names = {p.name.split("-")[0].lower() for p in folder.glob("*.whl")}
    assert {"numpy", "onnxruntime", "pillow", "pluggy"} <= names and "torch" not in names
    return folder
