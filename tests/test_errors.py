"""One error hierarchy: every user error is a C2EError of a protocol kind; catching them (and
the CLI's light commands) imports no torch."""

from __future__ import annotations

import os
import pkgutil
import subprocess
import sys

import pytest

from c2e_core import errors
from c2e_core.errors import ERROR_KINDS, C2EError


def _subclasses(cls: type) -> list[type]:
    return [cls, *(sub for direct in cls.__subclasses__() for sub in _subclasses(direct))]


def test_every_error_has_a_protocol_kind():
    import c2e_core.cli
    import c2e_core.worker.protocol  # noqa: F401 (their errors join the hierarchy)

    classes = _subclasses(C2EError)
    assert len(classes) >= 19
    for cls in classes:
        assert cls.kind in ERROR_KINDS, cls
    assert errors.Cancelled.kind == "cancelled" and errors.WeightsError.kind == "weights"
    assert errors.QuantizationError.kind == errors.DeviceError.kind == "device"
    assert issubclass(errors.InputError, ValueError)  # what every user error always was
    assert not issubclass(errors.Cancelled, ValueError)


@pytest.mark.parametrize(
    ("module", "name"),
    [
        ("c2e_core.inference.pipeline", "OptionError"),
        ("c2e_core.files.images", "ImageReadError"),
        ("c2e_core.files.images", "ImageWriteError"),
        ("c2e_core.weights.store", "WeightsError"),
        ("c2e_core.weights.official", "CheckpointError"),
        ("c2e_core.weights.official", "NotAnOfficialCheckpoint"),
        ("c2e_core.inference.device", "DeviceError"),
        ("c2e_core.inference.quantization", "QuantizationError"),
        ("c2e_core.plugins", "PluginError"),
        ("c2e_core.hosts.install", "HostPluginError"),
        ("c2e_core.data.folder", "DatasetError"),
        ("c2e_core.inference.progress", "Cancelled"),
        ("c2e_core.weights.build", "StateDictError"),
        ("c2e_core.training.recipe", "RecipeError"),
        ("c2e_core.training.trainer", "TrainingError"),
    ],
)
def test_the_raising_modules_export_the_same_classes(module, name):
    import importlib

    assert getattr(importlib.import_module(module), name) is getattr(errors, name)


def _imported_modules(*args: str, env: dict[str, str] | None = None) -> tuple[set[str], str, int]:
    """The modules ``python -X importtime ARGS`` imports, its stdout and its exit status."""
    result = subprocess.run(
        [sys.executable, "-X", "importtime", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    modules = set()
    other = []
    for line in result.stderr.splitlines():
        if line.startswith("import time:"):
            modules.add(line.rsplit("|", 1)[-1].strip())
        else:
            other.append(line)
    return modules, result.stdout + "\n".join(other), result.returncode


def _torch(modules: set[str]) -> list[str]:
    return sorted(m for m in modules if m == "torch" or m.startswith("torch."))


def test_importing_the_cli_imports_no_torch():
    modules, _, status = _imported_modules("-c", "import c2e_core.cli")
    assert status == 0 and "c2e_core.cli" in modules
    assert not _torch(modules)


def test_importing_the_subpackages_imports_none_of_their_modules():
    """Each subpackage's ``__init__`` only says what it owns (no torch, no numpy, no submodule)."""
    import c2e_core

    packages = [
        f"c2e_core.{info.name}" for info in pkgutil.iter_modules(c2e_core.__path__) if info.ispkg
    ]
    assert {"c2e_core.modeling", "c2e_core.inference", "c2e_core.weights"} <= set(packages)
    modules, output, status = _imported_modules("-c", "; ".join(f"import {p}" for p in packages))
    assert status == 0, output
    ours = {m for m in modules if m.split(".")[0] == "c2e_core"}
    assert ours == {"c2e_core", "c2e_core.hookspecs", *packages}
    assert not _torch(modules) and "numpy" not in modules


@pytest.mark.parametrize(
    "argv",
    [
        ["--help"],
        ["--version"],
        ["weights", "list"],
        ["colorize", "t.png", "-r", "r.png", "-o", "o.png", "--size", "100"],
        ["colorize", "t.png", "-r", "r.png", "-o", "o.png", "--strength", "2"],
        ["colorize", "t.png", "-r", "r.png", "-o", "o.png", "--device", "tpu"],
        ["colorize", "missing.png", "-r", "r.png", "-o", "o.png"],
    ],
)
def test_light_commands_and_option_errors_import_no_torch(tmp_path, argv):
    env = {**os.environ, "C2E_HOME": str(tmp_path), "C2E_DISABLE_PLUGIN_AUTOLOAD": "1"}
    modules, output, status = _imported_modules("-m", "c2e_core", *argv, env=env)
    assert not _torch(modules), argv
    if argv[0] == "colorize":
        assert status == 2 and len(output.strip().splitlines()) == 1, output
        assert "Traceback" not in output
    else:
        assert status == 0, output
