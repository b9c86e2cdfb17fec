"""The Krita plugin without Krita: install, uninstall, package, and its pure-Python parts.

The plugin's modules are imported from an installed copy (with its vendored client) as a
package whose ``__init__`` (Krita's registration) does not run; one test imports the whole
plugin against stand-ins for ``krita`` and PyQt6, as Krita 6 would.
"""

from __future__ import annotations

import importlib
import json
import os
import struct
import subprocess
import sys
import types
import zipfile
from pathlib import Path

import numpy as np
import pytest

from c2e_core.hosts.install import (
    HOSTS,
    HostPluginError,
    KritaPlugin,
    get_host,
    kconfig_value,
    set_kconfig_value,
)
from tests.conftest import client_files, vendored_files

REPO = Path(__file__).resolve().parents[1]
SOURCE = REPO / "c2e_plugins" / "krita"
KRITA_IMPORTER = Path("/usr/share/krita/pykrita/plugin_importer/plugin_importer.py")


def c2e(*args: str, cwd: Path = REPO) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "c2e_core", *args], capture_output=True,
                          text=True, cwd=str(cwd), timeout=120)


@pytest.fixture
def installed(tmp_path) -> Path:
    """The plugin installed into a scratch Krita resource folder; returns that folder."""
    folder = tmp_path / "krita"
    KritaPlugin().install(folder, config=tmp_path / "kritarc")
    return folder


@pytest.fixture
def plugin(installed, monkeypatch):
    """The installed plugin's package, its modules importable, ``__init__`` not run."""
    name = "c2e_krita_plugin_under_test"
    package = types.ModuleType(name)
    package.__path__ = [str(installed / "pykrita" / "color2embed")]
    monkeypatch.setitem(sys.modules, name, package)
    for module in [m for m in sys.modules if m.startswith(f"{name}.")]:
        monkeypatch.delitem(sys.modules, module)
    for module in ("c2e_client", "pixels", "colorize"):
        setattr(package, module, importlib.import_module(f"{name}.{module}"))
    return package


def test_desktop_and_action_files():
    desktop = (SOURCE / "color2embed.desktop").read_text(encoding="utf-8")
    for line in ("[Desktop Entry]", "Type=Service", "ServiceTypes=Krita/PythonPlugin",
                 "X-KDE-Library=color2embed", "X-Krita-Manual=Manual.html"):
        assert line in desktop.splitlines()
    assert (SOURCE / "color2embed" / "Manual.html").is_file()
    import xml.etree.ElementTree as ET

    root = ET.parse(SOURCE / "color2embed.action").getroot()
    action = root.find("Actions/Action")
    assert action.get("name") == "color2embed_colorize"
    assert action.findtext("text") == "Colorize from Reference…"
    assert action.findtext("toolTip") and action.findtext("shortcut") == "Ctrl+Alt+Shift+K"


# -- install, uninstall, package ------------------------------------------------------------
def test_install_copies_vendors_records_and_enables(tmp_path, tiny_weights):
    folder, kritarc = tmp_path / "krita", tmp_path / "kritarc"
    kritarc.write_text("[General]\nfoo=bar\n\n[python]\nenable_other=true\n", encoding="utf-8")
    run = c2e("plugins", "install", "krita", "--krita-dir", str(folder), "--config",
              str(kritarc), "--weights", str(tiny_weights))
    assert run.returncode == 0, run.stderr
    assert "Tools > Scripts > Colorize from Reference" in run.stdout
    package = folder / "pykrita" / "color2embed"
    assert (folder / "pykrita" / "color2embed.desktop").read_bytes() == (
        SOURCE / "color2embed.desktop").read_bytes()
    assert (folder / "actions" / "color2embed.action").is_file()
    assert vendored_files(package) == client_files()  # vendored, not forked
    for source in sorted((SOURCE / "color2embed").glob("*.py")):
        assert (package / source.name).read_bytes() == source.read_bytes()
    settings = json.loads((package / "settings.json").read_text(encoding="utf-8"))
    assert settings == {"python": str(Path(sys.executable).absolute()),
                        "weights": str(tiny_weights.resolve())}
    text = kritarc.read_text(encoding="utf-8")
    assert "foo=bar" in text and "enable_other=true" in text
    assert kconfig_value(text, "python", "enable_color2embed") == "true"
    assert not list((folder / "pykrita").glob(".color2embed*"))  # no staging left behind


def test_reinstall_keeps_the_users_choices(installed, tmp_path):
    settings_file = installed / "pykrita" / "color2embed" / "settings.json"
    saved = json.loads(settings_file.read_text())
    saved.update(size=512, strength=0.5, python="/old/python")
    settings_file.write_text(json.dumps(saved))
    KritaPlugin().install(installed, config=tmp_path / "kritarc")
    again = json.loads(settings_file.read_text())
    assert again["size"] == 512 and again["strength"] == 0.5
    assert again["python"] == str(Path(sys.executable).absolute())  # the installing env wins


def test_uninstall_removes_everything(installed, tmp_path):
    kritarc = tmp_path / "kritarc"
    run = c2e("plugins", "uninstall", "krita", "--krita-dir", str(installed), "--config",
              str(kritarc))
    assert run.returncode == 0, run.stderr
    assert not (installed / "pykrita" / "color2embed").exists()
    assert not (installed / "pykrita" / "color2embed.desktop").exists()
    assert not (installed / "actions" / "color2embed.action").exists()
    assert kconfig_value(kritarc.read_text(), "python", "enable_color2embed") is None
    again = c2e("plugins", "uninstall", "krita", "--krita-dir", str(installed), "--config",
                str(kritarc))
    assert again.returncode == 0 and "not installed" in again.stdout


def test_package_is_what_kritas_importer_accepts(tmp_path):
    output = tmp_path / "color2embed.zip"
    run = c2e("plugins", "package", "krita", "-o", str(output))
    assert run.returncode == 0, run.stderr
    with zipfile.ZipFile(output) as archive:
        names = set(archive.namelist())
        settings = json.loads(archive.read("color2embed/settings.json"))
    assert {"color2embed.desktop", "color2embed.action", "color2embed/",
            "color2embed/__init__.py", "color2embed/c2e_client/__init__.py"} <= names
    assert not any("__pycache__" in n for n in names)
    assert settings["python"] == str(Path(sys.executable).absolute())
    again = c2e("plugins", "package", "krita", "-o", str(output))
    assert again.returncode == 2 and "--overwrite" in again.stderr
    assert len(again.stderr.strip().splitlines()) == 1
    assert c2e("plugins", "package", "krita", "-o", str(output), "--overwrite").returncode == 0
    portable = tmp_path / "portable.zip"
    assert c2e("plugins", "package", "krita", "--no-python", "-o", str(portable)).returncode == 0
    with zipfile.ZipFile(portable) as archive:  # for other machines: the plugin's own engine
        assert "python" not in json.loads(archive.read("color2embed/settings.json"))
    if not KRITA_IMPORTER.is_file():
        return
    # Krita's own importer (Tools > Scripts > Import Python Plugin from File…)
    spec = importlib.util.spec_from_file_location("krita_plugin_importer", KRITA_IMPORTER)
    importer = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(importer)
    resources = tmp_path / "resources"
    resources.mkdir()
    imported = importer.PluginImporter(str(output), str(resources), lambda _: True).import_all()
    assert [p["name"] for p in imported] == ["color2embed"]
    assert (resources / "pykrita" / "color2embed" / "c2e_client" / "launch.py").is_file()
    assert (resources / "pykrita" / "color2embed.desktop").is_file()
    assert (resources / "actions" / "color2embed.action").is_file()


@pytest.mark.parametrize("args, message", [
    (["install", "photoshop"], "unknown host 'photoshop' (known: "),
    (["package", "krita", "-o", "out.tar"], "must be a .zip file"),
    (["install", "krita", "--weights", "missing/x.pt"], "weights file not found"),
])
def test_plugins_command_errors_are_one_line(tmp_path, args, message):
    if args[0] == "install":  # never the real Krita folders, even on a mistake
        args += ["--krita-dir", str(tmp_path), "--config", str(tmp_path / "kritarc")]
    run = c2e("plugins", *args, cwd=tmp_path)
    assert run.returncode == 2
    assert message in run.stderr and len(run.stderr.strip().splitlines()) == 1


def test_hosts_table():
    assert isinstance(HOSTS["krita"], KritaPlugin) and get_host("Krita") is HOSTS["krita"]
    with pytest.raises(HostPluginError, match="known: .*krita"):
        get_host("photoshop")


@pytest.mark.parametrize("system, env, resources, kritarc", [
    ("Linux", {}, "home/.local/share/krita", "home/.config/kritarc"),
    ("Linux", {"XDG_DATA_HOME": "/xdg/data", "XDG_CONFIG_HOME": "/xdg/config"},
     "/xdg/data/krita", "/xdg/config/kritarc"),
    ("Windows", {"APPDATA": "C:/Users/u/AppData/Roaming",
                 "LOCALAPPDATA": "C:/Users/u/AppData/Local"},
     "C:/Users/u/AppData/Roaming/krita", "C:/Users/u/AppData/Local/kritarc"),
    ("Darwin", {}, "home/Library/Application Support/krita", "home/Library/Preferences/kritarc"),
])
def test_krita_folders_per_platform(tmp_path, system, env, resources, kritarc):
    home = tmp_path / "home"
    krita = KritaPlugin()
    expect = lambda p: Path(p) if p.startswith(("/", "C:")) else tmp_path / p  # noqa: E731
    assert krita.default_dir(system, env, home) == expect(resources)
    assert krita.config_path(system, env, home) == expect(kritarc)


def test_custom_resource_folder_from_kritarc(tmp_path):
    home = tmp_path / "home"
    (home / ".config").mkdir(parents=True)
    (home / ".config" / "kritarc").write_text("ResourceDirectory=/art/krita-res\n[python]\n")
    assert KritaPlugin().default_dir("Linux", {}, home) == Path("/art/krita-res")


def test_kconfig_editing_keeps_other_lines():
    text = "Top=1\n[python]\nenable_a=true\nenable_x=false\n\n[Other]\nk=v\n"
    set_x = set_kconfig_value(text, "python", "enable_x", "true")
    assert kconfig_value(set_x, "python", "enable_x") == "true"
    assert kconfig_value(set_x, "Other", "k") == "v" and kconfig_value(set_x, "", "Top") == "1"
    assert set_x.count("enable_x") == 1
    removed = set_kconfig_value(set_x, "python", "enable_x", None)
    assert "enable_x" not in removed and "enable_a=true" in removed and "k=v" in removed
    added = set_kconfig_value("", "python", "enable_y", "true")
    assert added == "[python]\nenable_y=true\n"
    assert set_kconfig_value("[A]\nx=1\n", "python", "gone", None) == "[A]\nx=1\n"


# -- the plugin's pure parts ---------------------------------------------------------------
@pytest.mark.parametrize("dtype, numpy_dtype", [("u8", "<u1"), ("u16", "<u2"), ("f16", "<f2"),
                                                ("f32", "<f4")])
def test_multiply_alpha(plugin, dtype, numpy_dtype):
    rng = np.random.default_rng(0)
    count = 500
    if dtype.startswith("u"):
        top = np.iinfo(numpy_dtype).max
        pixels = rng.integers(0, top + 1, (count, 4)).astype(numpy_dtype)
    else:
        pixels = rng.random((count, 4)).astype(numpy_dtype)
    mask = rng.choice([0, 255, 1, 128, 254], count).astype(np.uint8)
    out = np.frombuffer(plugin.pixels.multiply_alpha(pixels.tobytes(), mask.tobytes(), dtype),
                        numpy_dtype).reshape(count, 4)
    assert np.array_equal(out[:, :3], pixels[:, :3])  # colours untouched
    expected = pixels[:, 3].astype(np.float64) * mask / 255.0
    tolerance = 0.5 if dtype.startswith("u") else 1e-3
    assert np.abs(out[:, 3] - expected).max() <= tolerance
    assert np.all(out[mask == 0, 3] == 0)
    assert np.array_equal(out[mask == 255], pixels[mask == 255])
    with pytest.raises(ValueError, match="differ in size"):
        plugin.pixels.multiply_alpha(pixels.tobytes(), mask[:-1].tobytes(), dtype)


def test_profiles_and_rectangles(plugin):
    encoding = plugin.pixels.profile_encoding
    assert encoding("sRGB-elle-V2-srgbtrc.icc") == "srgb"
    assert encoding("sRGB built-in") == "srgb"
    assert encoding("sRGB-elle-V2-g10.icc") == "linear" == encoding("scRGB (linear)")
    assert encoding("Rec2020-elle-V4-g10.icc") is None
    assert encoding("ClayRGB-elle-V2-g22.icc") is None
    Rect = plugin.pixels.Rect
    assert Rect(0, 0, 10, 10).intersected(Rect(5, 6, 10, 10)) == Rect(5, 6, 5, 4)
    assert Rect(0, 0, 4, 4).intersected(Rect(8, 8, 2, 2)).empty


def test_options_and_settings(plugin, tmp_path):
    options = plugin.colorize.ColorizeOptions
    error = plugin.colorize.ColorizeError
    assert error is plugin.c2e_client.ColorizeError
    for bad in ({"size": 100}, {"size": True}, {"size": 0}, {"device": "tpu"},
                {"device": "cuda:1"}, {"strength": 1.5}, {"strength": "1"}, {"source": "all"},
                {"weights": None}):
        with pytest.raises(error):
            options(**bad)
    hello = {"devices": ["cpu", "cuda:0"], "options": ["clean"]}
    assert options(size="native", device="gpu").worker_options(hello) == {
        "size": "native", "device": "cuda:0", "strength": 1.0, "clean": 1.0,
        "keep_palette": True}
    client = plugin.c2e_client
    folder = tmp_path / "settings"
    folder.mkdir()
    path = str(folder / "settings.json")
    assert client.load_settings(options, path).options.size == 256  # missing file: defaults
    (folder / "settings.json").write_text("{not json")
    assert client.load_settings(options, path).python == ""
    (folder / "settings.json").write_text(json.dumps(
        {"python": "/p", "size": 100, "device": "gpu", "strength": 0.25, "extra": 1}))
    loaded = client.load_settings(options, path)
    assert (loaded.python, loaded.options.size, loaded.options.device,
            loaded.options.strength) == ("/p", 256, "gpu", 0.25)
    loaded.options.size = "native"
    client.save_settings(loaded)
    assert client.load_settings(options, path).options.size == "native"
    assert [p.name for p in folder.iterdir()] == ["settings.json"]  # no temporary left
    # installed: the settings file is the plugin's own, next to the vendored client
    installed = client.load_settings(options)
    assert installed.path == str(Path(plugin.__path__[0]) / "settings.json")
    assert installed.python == os.path.abspath(sys.executable)


class FakeDocument:
    def __init__(self, name):
        self._name = name

    def __eq__(self, other):
        return isinstance(other, FakeDocument) and other._name == self._name

    def fileName(self):  # noqa: N802 (Krita's API)
        return f"/pictures/{self._name}.png"

    def name(self):
        return self._name


def test_reference_candidates_and_device(plugin):
    colorize = plugin.colorize
    a, b, c = FakeDocument("a"), FakeDocument("b"), FakeDocument("c")
    assert colorize.reference_candidates([a, b, c], a, []) == [c, b]  # newest opened first
    assert colorize.reference_candidates([a, b, c], a, [a, b]) == [b, c]  # most recently used
    assert colorize.document_title(b) == "b.png"
    worker_device = plugin.c2e_client.worker_device
    assert worker_device("auto", {}) == "auto"
    assert worker_device("gpu", {"devices": ["cpu", "cuda:0"]}) == "cuda:0"
    with pytest.raises(colorize.ColorizeError, match="no GPU"):
        worker_device("gpu", {"devices": ["cpu"]})


def test_missing_python_says_what_to_do_in_krita(plugin, tmp_path):
    session = plugin.c2e_client.WorkerSession(plugin.colorize.HOST)
    for python, message in (("", "does not know which Python"),
                            (str(tmp_path / "nope"), "does not exist")):
        with pytest.raises(plugin.colorize.ColorizeError, match=message) as caught:
            session.client(python)
        assert "c2e plugins install krita" in str(caught.value)
        assert "'Worker Python' in the Colorize from Reference dialog" in str(caught.value)


def test_plugin_imports_under_krita6_pyqt6(installed, monkeypatch):
    """The whole package imports with PyQt6 and no PyQt5, and registers its extension."""

    class Anything(type):
        def __getattr__(cls, name):
            return Anything(name, (object,), {})

    def stub(name):
        module = types.ModuleType(name)
        module.__getattr__ = lambda attribute: Anything(attribute, (object,), {})
        return module

    registered = []

    class Krita:
        @staticmethod
        def instance():
            return Krita

        addExtension = staticmethod(registered.append)  # noqa: N815 (Krita's API)

    class Extension:
        def __init__(self, parent):
            self.parent = parent

    krita = types.ModuleType("krita")
    krita.Krita, krita.Extension = Krita, Extension
    monkeypatch.setitem(sys.modules, "krita", krita)
    monkeypatch.setitem(sys.modules, "PyQt5", None)  # import PyQt5 -> ImportError
    qt6 = types.ModuleType("PyQt6")
    for part in ("QtCore", "QtGui", "QtWidgets"):
        setattr(qt6, part, stub(f"PyQt6.{part}"))
        monkeypatch.setitem(sys.modules, f"PyQt6.{part}", getattr(qt6, part))
    monkeypatch.setitem(sys.modules, "PyQt6", qt6)
    monkeypatch.syspath_prepend(str(installed / "pykrita"))
    for name in [m for m in sys.modules if m == "color2embed" or m.startswith("color2embed.")]:
        monkeypatch.delitem(sys.modules, name)
    package = importlib.import_module("color2embed")
    try:
        assert len(registered) == 1
        assert type(registered[0]).__name__ == "ColorizeExtension"
        assert package.extension.ACTION_ID == "color2embed_colorize"
    finally:
        for name in [m for m in sys.modules if m == "color2embed" or m.startswith("color2embed.")]:
            del sys.modules[name]


def test_float_layouts_are_little_endian_rgba(plugin):
    assert plugin.pixels.RGBA_LAYOUTS == {"U8": ("BGRA", "u8"), "U16": ("BGRA", "u16"),
                                         "F16": ("RGBA", "f16"), "F32": ("RGBA", "f32")}
    half = struct.pack("<4e", 0.25, 0.5, 0.75, 1.0)
    out = plugin.pixels.multiply_alpha(half, b"\x80", "f16")
    assert struct.unpack("<4e", out)[3] == pytest.approx(128 / 255, abs=1e-3)
