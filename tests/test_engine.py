"""The engine the plugins set up themselves (``c2e_client.engine``): a private venv with the
light runtime, made from a local wheel folder with no index, and its failure paths."""

from __future__ import annotations

import json
import os
import sys

import pytest

from tests.conftest import load_client

pytestmark = pytest.mark.integration


@pytest.fixture()
def engine():
    return load_client().engine


@pytest.fixture()
def offline_pip(monkeypatch, engine_wheelhouse):
    """pip sees only the wheel folder, as a user without network would."""
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("PIP_FIND_LINKS", str(engine_wheelhouse))
    return engine_wheelhouse


def test_the_engine_folder_is_the_users_data_folder(engine):
    home = os.path.expanduser("~")
    assert engine.engine_folder({}, "linux") == os.path.join(home, ".local/share/c2e-studio/engine")
    assert engine.engine_folder({"XDG_DATA_HOME": "/d"}, "linux") == "/d/c2e-studio/engine"
    assert engine.engine_folder({}, "darwin") == os.path.join(
        home, "Library", "Application Support", "c2e-studio", "engine")
    assert engine.engine_folder({"LOCALAPPDATA": "C:/L"}, "win32").startswith("C:/L")
    assert engine.engine_folder({"C2E_ENGINE_DIR": "/x/e"}, "linux") == "/x/e"
    assert engine.engine_python_path("/e", "win32").endswith(os.path.join("Scripts", "python.exe"))


def test_no_suitable_python_says_what_to_do(engine, monkeypatch, tmp_path):
    empty = tmp_path / "bin"
    empty.mkdir()
    with pytest.raises(engine.EngineError, match="No Python 3.10 or newer with venv was found"):
        engine.find_python({"PATH": str(empty)})
    with pytest.raises(engine.EngineError, match="C2E_ENGINE_PYTHON=/bin/false is not"):
        engine.find_python({"C2E_ENGINE_PYTHON": "/bin/false"})
    monkeypatch.setenv("PATH", str(empty))
    with pytest.raises(engine.EngineError, match="python.org"):
        engine.set_up_engine(folder=str(tmp_path / "engine"))
    assert not (tmp_path / "engine").exists()


def test_set_up_from_a_local_wheel_folder_then_colorize(engine, offline_pip, tmp_path):
    folder = tmp_path / "engine"
    seen: list[tuple[float | None, str]] = []
    python = engine.set_up_engine(progress=lambda f, text: seen.append((f, text)),
                                  folder=str(folder), python=sys.executable)
    assert python == engine.engine_python_path(str(folder)) and os.path.isfile(python)
    record = json.loads((folder / "engine.json").read_text())
    assert record["python"] == python and record["package"] == "c2e-studio"
    fractions = [f for f, _ in seen if f is not None]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0
    assert any(text.startswith("Collecting numpy") or "numpy" in text for _, text in seen)
    assert engine.find_engine(str(folder)) == python
    # the engine is the light runtime: no torch, and it colorizes
    client = load_client().WorkerClient(python, env={**os.environ, "C2E_HOME": str(tmp_path)})
    try:
        hello = client.start(timeout=120)
        assert hello["torch_version"] is None and hello["onnxruntime_version"]
        pixels = load_client().Pixels
        gray = pixels(16, 16, "RGB", "u8", bytes([90]) * 16 * 16 * 3)
        reference = pixels(8, 8, "RGB", "u8", bytes([200, 40, 30]) * 64)
        result = client.colorize(gray, reference, options={"size": 32, "device": "cpu"})
        assert (result.width, result.height) == (16, 16) and len(set(result.data)) > 1
    finally:
        client.close()
    # asked again: the finished engine is reused, not rebuilt
    assert engine.set_up_engine(folder=str(folder)) == python


def test_pip_failing_leaves_nothing(engine, monkeypatch, tmp_path):
    empty = tmp_path / "no-wheels"
    empty.mkdir()
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("PIP_FIND_LINKS", str(empty))
    folder = tmp_path / "engine"
    with pytest.raises(engine.EngineError) as failed:
        engine.set_up_engine(folder=str(folder), python=sys.executable)
    first = str(failed.value).splitlines()[0]
    assert first.startswith("Could not install c2e-studio with pip (exit status 1)")
    assert "No matching distribution" in str(failed.value)  # pip's words under it
    assert not folder.exists() and engine.find_engine(str(folder)) is None


def test_cancel_leaves_nothing(engine, offline_pip, tmp_path):
    folder = tmp_path / "engine"
    texts: list[str] = []
    with pytest.raises(engine.EngineCancelled):
        engine.set_up_engine(progress=lambda f, text: texts.append(text),
                             cancelled=lambda: any(t.startswith("Installing") for t in texts),
                             folder=str(folder), python=sys.executable)
    assert not folder.exists()


def test_a_half_made_folder_is_never_used(engine, offline_pip, tmp_path):
    folder = tmp_path / "engine"
    (folder / "bin").mkdir(parents=True)
    (folder / "bin" / "python").write_text("")
    assert engine.find_engine(str(folder)) is None  # no engine.json: not an engine


def test_known_python_prefers_the_recorded_one_then_a_finished_engine(engine, monkeypatch,
                                                                      tmp_path):
    client = load_client()
    path = tmp_path / "settings.json"
    recorded = client.Settings(python=sys.executable, path=str(path))
    assert engine.known_python(recorded) == sys.executable and not path.exists()
    folder = tmp_path / "engine"
    monkeypatch.setenv("C2E_ENGINE_DIR", str(folder))
    gone = client.Settings(python=str(tmp_path / "gone" / "python"), path=str(path))
    assert engine.known_python(gone) is None  # no engine yet: the caller offers one
    python = folder / "bin" / "python"
    python.parent.mkdir(parents=True)
    python.write_text("")
    (folder / "engine.json").write_text(json.dumps({"python": str(python)}))
    assert engine.known_python(gone) == str(python)
    assert json.loads(path.read_text())["python"] == str(python)  # recorded for next time
