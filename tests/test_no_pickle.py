"""No pickled code runs: a checkpoint with a ``__reduce__`` payload, through every entry point."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from c2e_core.cli import main
from c2e_core.errors import C2EError
from c2e_core.training.trainer import CHECKPOINT_FORMAT
from c2e_core.weights.store import FORMAT_NAME, WeightsStore
from tests.conftest import REPO, TINY_CONFIG, load_client


class Payload:
    """Unpickling this calls ``open(marker, "w")``: the marker file proves code ran."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


def crafted(path: Path, marker: Path, fmt: str) -> Path:
    """A plausible checkpoint of format ``fmt`` whose pickle carries the payload."""
    torch.save({"format": fmt, "format_version": 1, "architecture": "color2embed",
                "config": dict(TINY_CONFIG), "state_dict": {"w": torch.zeros(1)},
                "metadata": {"x": Payload(marker)}, "step": 0}, path)  # fmt: skip
    return path


@pytest.fixture
def evil(tmp_path: Path) -> tuple[Path, Path, Path]:
    """``(weights-like file, trainer-like file, marker)``; checks the payload does fire."""
    marker = tmp_path / "PWNED"
    weights = crafted(tmp_path / "evil.c2e.pt", marker, FORMAT_NAME)
    checkpoint = crafted(tmp_path / "ckpt-000000001.pt", marker, CHECKPOINT_FORMAT)
    torch.load(weights, weights_only=False)  # an unsafe load would run it...
    assert marker.exists()
    marker.unlink()  # ...so its absence below means that nothing ran
    return weights, checkpoint, marker


@pytest.fixture
def images(tmp_path: Path) -> tuple[Path, Path]:
    rng = np.random.default_rng(0)
    target, reference = tmp_path / "gray.png", tmp_path / "ref.png"
    Image.fromarray(rng.integers(0, 255, (16, 16), dtype=np.uint8)).save(target)
    Image.fromarray(rng.integers(0, 255, (16, 16, 3), dtype=np.uint8)).save(reference)
    return target, reference


def one_line_cli_error(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    """Run the CLI in-process; it must exit 2 with a one-line error on stderr."""
    capsys.readouterr()
    assert main([str(a) for a in argv]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("c2e"), err
    return err[0]


def test_cli_colorize_refuses_the_payload(evil, images, tmp_path, capsys):
    weights, _, marker = evil
    target, reference = images
    out = tmp_path / "out.png"
    message = one_line_cli_error(
        ["colorize", target, "-r", reference, "-o", out, "--weights", weights], capsys
    )
    assert "evil.c2e.pt" in message
    assert not marker.exists() and not out.exists()


def test_python_api_refuses_the_payload(evil):
    from c2e_core import Colorizer

    weights, _, marker = evil
    with pytest.raises(C2EError) as info:
        Colorizer.from_weights(weights)
    assert info.value.kind == "weights" and len(str(info.value).splitlines()) == 1
    assert not marker.exists()


def test_weights_import_refuses_the_payload(evil, capsys):
    weights, _, marker = evil
    message = one_line_cli_error(["weights", "import", weights, "--name", "evil"], capsys)
    assert "evil.c2e.pt" in message
    assert not marker.exists()
    assert "evil" not in WeightsStore().names()
    assert not (WeightsStore().root / "evil.c2e.pt").exists()  # nothing written


def test_train_resume_refuses_the_payload(evil, tmp_path, capsys):
    _, checkpoint, marker = evil
    photos = tmp_path / "photos"
    photos.mkdir()
    for i in range(2):
        Image.fromarray(np.full((40, 40, 3), 60 * i, np.uint8)).save(photos / f"{i}.png")
    model = "\n".join(f"{k} = {json.dumps(v)}" for k, v in TINY_CONFIG.items())
    recipe = tmp_path / "r.toml"
    recipe.write_text(
        f"[model]\n{model}\n[data]\nfolder = 'photos'\nsize = 32\nworkers = 0\n"
        "[optim]\nbatch = 2\nsteps = 2\n[loss]\nperceptual = 'none'\n[run]\noutput = 'run'\n"
        "device = 'cpu'\n"
    )
    message = one_line_cli_error(
        ["train", "--config", recipe, "--resume", checkpoint, "--no-progress"], capsys
    )
    assert "ckpt-000000001.pt" in message and "tensors and plain values" in message
    assert not marker.exists()


@pytest.mark.integration
def test_worker_refuses_the_payload(evil, tmp_path):
    c2e_client = load_client()
    weights, _, marker = evil
    path = os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])
    env = dict(os.environ, C2E_HOME=str(tmp_path / "home"), C2E_DISABLE_PLUGIN_AUTOLOAD="1",
               PYTHONPATH=path)  # fmt: skip
    worker = c2e_client.WorkerClient(sys.executable, args=("-m", "c2e_core", "worker"), env=env,
                                     cwd=str(REPO))  # fmt: skip
    worker.start(timeout=60)
    try:
        rgb = np.random.default_rng(0).integers(0, 255, (8, 8, 3), dtype=np.uint8)
        pixels = c2e_client.Pixels(8, 8, "RGB", "u8", rgb.tobytes())
        with pytest.raises(c2e_client.WorkerError) as info:
            worker.colorize(pixels, pixels, options={"size": 32, "device": "cpu",
                                                     "weights": str(weights)})  # fmt: skip
        assert info.value.kind == "weights" and len(str(info.value).splitlines()) == 1
    finally:
        assert worker.close() == 0, worker.stderr_tail()
    assert not marker.exists()
