"""The GIMP plug-in without GIMP: install, uninstall, package, and its pure-Python parts.

The plug-in's modules that need no GIMP (``options``, ``layouts``, ``worker``) are imported
from an installed copy, with its vendored client, as GIMP's Python would import them.
``tests/test_gimp_real.py`` runs the whole plug-in in real GIMP.
"""

from __future__ import annotations

import importlib
import json
import os
import stat
import subprocess
import sys
import types
import zipfile
from pathlib import Path

import pytest

from c2e_core.hosts.install import HOSTS, GimpPlugin, HostPluginError, get_host
from tests.conftest import client_files, vendored_files

REPO = Path(__file__).resolve().parents[1]
SOURCE = REPO / "c2e_plugins" / "gimp" / "color2embed"


def c2e(*args: str, cwd: Path = REPO) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "c2e_core", *args], capture_output=True,
                          text=True, cwd=str(cwd), timeout=120)


@pytest.fixture
def profile(tmp_path) -> Path:
    """The plug-in installed into a scratch GIMP profile; returns the profile."""
    folder = tmp_path / "GIMP" / "3.0"
    GimpPlugin().install(folder)
    return folder


@pytest.fixture
def plugin(profile, monkeypatch):
    """The installed plug-in's GIMP-free modules: ``options``, ``layouts``, and its client."""
    folder = profile / "plug-ins" / "color2embed"
    monkeypatch.syspath_prepend(str(folder))
    for name in list(sys.modules):
        if name in ("c2e_client", "c2e_gimp") or name.startswith(("c2e_client.", "c2e_gimp.")):
            monkeypatch.delitem(sys.modules, name)
    modules = types.SimpleNamespace(folder=folder)
    for name in ("options", "layouts"):
        setattr(modules, name, importlib.import_module(f"c2e_gimp.{name}"))
    modules.client = importlib.import_module("c2e_client")
    return modules


# -- the plug-in's source -------------------------------------------------------------------------
def test_the_procedure_file():
    main = SOURCE / "color2embed.py"
    text = main.read_text(encoding="utf-8")
    assert text.startswith("#!/usr/bin/env python3\n")  # GIMP starts it through its shebang
    assert os.access(main, os.X_OK)
    for needle in ('PROCEDURE = "python-fu-c2e-colorize"', 'set_image_types("RGB*, GRAY*")',
                   'add_menu_path("<Image>/Colors")', "Gimp.ImageProcedure.new",
                   "GimpUi.ProcedureDialog", 'if __name__ == "__main__":'):
        assert needle in text
    for argument in ("reference", "reference-file", "blend", "blend-file", "blend-share", "size",
                     "device", "strength", "clean", "colour-only", "gray-to-rgb",
                     "set-up-engine", "keep-palette"):
        assert f'"{argument}"' in text


# -- install, uninstall, package ------------------------------------------------------------------
def test_install_copies_vendors_and_records_the_worker(tmp_path, tiny_weights):
    run = c2e("plugins", "install", "gimp", "--gimp-dir", str(tmp_path / "3.0"),
              "--weights", str(tiny_weights))
    assert run.returncode == 0, run.stderr
    folder = tmp_path / "3.0" / "plug-ins" / "color2embed"
    assert "Colors > Colorize from Reference Image" in run.stdout
    main = folder / "color2embed.py"
    assert main.stat().st_mode & stat.S_IXUSR
    assert vendored_files(folder) == client_files()
    assert sorted(p.name for p in (folder / "c2e_gimp").glob("*.py")) == sorted(
        p.name for p in (SOURCE / "c2e_gimp").glob("*.py"))
    assert not list(folder.rglob("ruff.toml")) and not list(folder.rglob("__pycache__"))
    settings = json.loads((folder / "settings.json").read_text(encoding="utf-8"))
    assert settings == {"python": os.path.abspath(sys.executable),
                        "weights": str(Path(tiny_weights).resolve())}
    assert not [p for p in (tmp_path / "3.0" / "plug-ins").iterdir() if p.name != "color2embed"]


def test_reinstall_keeps_the_recorded_weights(profile):
    settings = profile / "plug-ins" / "color2embed" / "settings.json"
    data = json.loads(settings.read_text(encoding="utf-8"))
    settings.write_text(json.dumps(dict(data, weights="paper")), encoding="utf-8")
    GimpPlugin().install(profile)
    assert json.loads(settings.read_text(encoding="utf-8"))["weights"] == "paper"


def test_uninstall_removes_the_plug_in(profile):
    run = c2e("plugins", "uninstall", "gimp", "--gimp-dir", str(profile))
    assert run.returncode == 0, run.stderr
    assert not (profile / "plug-ins" / "color2embed").exists()
    assert (profile / "plug-ins").is_dir()  # GIMP's folder stays
    again = c2e("plugins", "uninstall", "gimp", "--gimp-dir", str(profile))
    assert again.returncode == 0 and "not installed" in again.stdout


def test_package_unpacks_into_plug_ins(tmp_path):
    zip_path = GimpPlugin().package(tmp_path / "color2embed-gimp.zip")
    with zipfile.ZipFile(zip_path) as archive:
        names = set(archive.namelist())
        info = archive.getinfo("color2embed/color2embed.py")
    assert {"color2embed/", "color2embed/c2e_client/__init__.py", "color2embed/settings.json",
            "color2embed/c2e_gimp/colorize.py"} <= names
    assert (info.external_attr >> 16) & stat.S_IXUSR  # unzip keeps it executable
    with pytest.raises(HostPluginError, match="exists"):
        GimpPlugin().package(zip_path)


@pytest.mark.parametrize("system, env, expected", [
    ("Linux", {}, "home/.config/GIMP/3.0"),
    ("Linux", {"XDG_CONFIG_HOME": "/xdg/config"}, "/xdg/config/GIMP/3.0"),
    ("Linux", {"GIMP3_DIRECTORY": "/custom/gimp"}, "/custom/gimp"),
    ("Windows", {"APPDATA": "C:/Users/u/AppData/Roaming"}, "C:/Users/u/AppData/Roaming/GIMP/3.0"),
    ("Darwin", {}, "home/Library/Application Support/GIMP/3.0"),
])
def test_gimp_folders_per_platform(tmp_path, system, env, expected):
    home = tmp_path / "home"
    want = Path(expected) if expected.startswith(("/", "C:")) else tmp_path / expected
    assert GimpPlugin().default_dir(system, env, home) == want


def test_newest_gimp_3_profile_wins(tmp_path):
    for name in ("2.10", "3.0", "3.2", "3.10-backup"):
        (tmp_path / ".config" / "GIMP" / name).mkdir(parents=True)
    assert GimpPlugin().default_dir("Linux", {}, tmp_path) == tmp_path / ".config/GIMP/3.2"


def test_hosts_table_and_errors(tmp_path):
    assert isinstance(HOSTS["gimp"], GimpPlugin) and get_host("GIMP") is HOSTS["gimp"]
    run = c2e("plugins", "install", "gimp", "--gimp-dir", str(tmp_path), "--weights",
              "missing/x.pt", cwd=tmp_path)
    assert run.returncode == 2 and "weights file not found" in run.stderr
    assert len(run.stderr.strip().splitlines()) == 1


# -- the plug-in's pure parts ---------------------------------------------------------------------
def test_options(plugin):
    options = plugin.options.ColorizeOptions()
    options.check()
    assert options.worker_options() == {"size": 256, "device": "auto", "strength": 1.0,
                                        "clean": 1.0, "keep_palette": True}
    native = plugin.options.ColorizeOptions(size=0, device="cuda:1", strength=0.5, weights="w",
                                            clean=1.0, keep_palette=False)
    assert native.worker_options() == {"size": "native", "device": "cuda:1", "strength": 0.5,
                                       "clean": 1.0, "keep_palette": False, "weights": "w"}
    for bad, message in [({"size": 40}, "multiple of 16"), ({"size": 8192}, "multiple of 16"),
                         ({"size": True}, "multiple of 16"), ({"size": "native"}, "or 0 for"),
                         ({"device": "tpu"}, "device"), ({"device": "gpu"}, "cuda:N"),
                         ({"strength": 1.5}, "strength"), ({"clean": -0.5}, "clean"),
                         ({"weights": None}, "weights")]:
        with pytest.raises(plugin.options.ColorizeError, match=message):
            plugin.options.ColorizeOptions(**bad)


@pytest.mark.parametrize("precision, alpha, expected", [
    ("U8_NON_LINEAR", True, ("R'G'B'A u8", "RGBA", "u8", False)),
    ("GIMP_PRECISION_U8_PERCEPTUAL", False, ("R'G'B' u8", "RGB", "u8", False)),
    ("U16_NON_LINEAR", False, ("R'G'B' u16", "RGB", "u16", False)),
    ("U16_LINEAR", True, ("RGBA u16", "RGBA", "u16", True)),
    ("U32_LINEAR", True, ("RGBA float", "RGBA", "f32", True)),
    ("HALF_NON_LINEAR", True, ("R'G'B'A half", "RGBA", "f16", False)),
    ("FLOAT_LINEAR", False, ("RGB float", "RGB", "f32", True)),
    ("DOUBLE_NON_LINEAR", True, ("R'G'B'A float", "RGBA", "f32", False)),
])
def test_layer_layouts_keep_the_bit_depth(plugin, precision, alpha, expected):
    assert tuple(plugin.layouts.layer_layout(precision, alpha)) == expected


def test_mask_and_reference_layouts(plugin):
    layouts = plugin.layouts
    assert layouts.mask_layout(layouts.layer_layout("U8_LINEAR", True)).gegl_format == "Y u8"
    assert layouts.mask_layout(layouts.layer_layout("U16_LINEAR", True)).dtype == "f32"
    assert layouts.reference_size(800, 600) == (800, 600)
    assert layouts.reference_size(4000, 3000) == (1024, 768)
    assert layouts.reference_size(10, 5000) == (2, 1024)
    with pytest.raises(ValueError, match="unknown GIMP precision"):
        layouts.layer_layout("U12_LINEAR", True)


def test_settings_and_what_to_do_without_a_worker(plugin, tmp_path):
    client, options = plugin.client, plugin.options
    settings = client.load_settings(options.ColorizeOptions)
    assert settings.python == os.path.abspath(sys.executable) and settings.options.weights == ""
    assert settings.path == str(plugin.folder / "settings.json")
    broken = tmp_path / "broken.json"
    broken.write_text("[1, 2", encoding="utf-8")
    empty = client.load_settings(options.ColorizeOptions, str(broken))
    assert (empty.python, empty.options.weights) == ("", "")
    with pytest.raises(options.ColorizeError, match="c2e plugins install gimp"):
        client.check_python(empty.python, options.GIMP, empty.path)
    with pytest.raises(options.ColorizeError, match="'/nowhere/bin/python'.*does not exist"):
        client.start_worker("/nowhere/bin/python", options.GIMP, recorded_in=str(broken))


def test_worker_starts_lazily_and_explains_a_python_without_c2e(plugin, tmp_path):
    fake = tmp_path / "python"  # a Python that runs but has no c2e
    fake.write_text("#!/bin/sh\necho 'No module named c2e_core' >&2\nexit 1\n")
    fake.chmod(0o755)
    client = plugin.client
    lazy = client.LazyWorker(client.WorkerSession(plugin.options.GIMP, recorded_in="s.json"),
                             str(fake))
    assert lazy.client is None
    lazy.close()  # nothing started, nothing to stop
    seen = []
    with pytest.raises(client.WorkerError) as failure:
        image = client.Pixels(1, 1, "RGB", "u8", b"\0\0\0")
        lazy.colorize(image, image, on_progress=lambda *update: seen.append(update))
    message = str(failure.value)
    assert "does not have c2e installed" in message and "c2e plugins install gimp" in message
    assert "recorded in s.json" in message
    assert seen == [(0, 0, "Starting the c2e worker")]
