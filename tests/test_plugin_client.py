"""The plugins' shared client package (``c2e_plugins/client/c2e_client``) and what both plugins
are made of once installed: standard library, their host's modules and their own files only."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

from c2e_core.hosts.install import GimpPlugin, KritaPlugin
from tests.conftest import CLIENT_DIR, load_client

client = load_client()

#: Per host: how to install it into a scratch folder, where its package lands, what it may
#: import besides the standard library (the host's own modules and the plugin's top level).
HOSTS = {
    "krita": (KritaPlugin, Path("pykrita") / "color2embed", {"krita", "PyQt5", "PyQt6"}),
    "gimp": (GimpPlugin, Path("plug-ins") / "color2embed", {"gi", "c2e_client", "c2e_gimp"}),
}


def installed_files(host: str, root: Path) -> list[Path]:
    plugin_class, package, _ = HOSTS[host]
    if host == "krita":
        plugin_class().install(root, config=root / "kritarc")
    else:
        plugin_class().install(root)
    return sorted((root / package).rglob("*.py"))


@pytest.mark.parametrize("host", sorted(HOSTS))
def test_installed_plugin_is_python38_and_stdlib_only(host, tmp_path):
    """Every file of the installed plugin, vendored client included, parses as Python 3.8 and
    imports only the standard library, the host's modules and the plugin's own."""
    files = installed_files(host, tmp_path)
    assert any(p.parent.name == "c2e_client" for p in files)
    allowed = set(sys.stdlib_module_names) | HOSTS[host][2] | {"__future__"}
    for path in files:
        tree = ast.parse(path.read_text(encoding="utf-8"), feature_version=(3, 8))
        modules = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                modules.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                modules.add(node.module.split(".")[0])
        assert not modules - allowed, f"{path.name} imports {sorted(modules - allowed)}"
        assert not any(isinstance(node, ast.Match) for node in ast.walk(tree)), path.name


def test_the_client_imports_itself_relatively():
    """Its modules import each other relatively: it works at the top level (GIMP) and inside
    the plugin's package (Krita)."""
    for path in CLIENT_DIR.glob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module:
                assert not node.module.startswith("c2e_client"), path.name


# -- launch --------------------------------------------------------------------------------------
def test_worker_environment_drops_the_hosts_python_and_appimage_paths():
    env = client.worker_environment({
        "PYTHONHOME": "/krita", "PYTHONPATH": "/krita/lib", "PYTHONUSERBASE": "/gimp/user",
        "HOME": "/home/u", "APPDIR": "/tmp/.mount_krita",
        "LD_LIBRARY_PATH": "/tmp/.mount_krita/usr/lib:/opt/cuda",
        "QT_PLUGIN_PATH": "/tmp/.mount_krita/plugins",
    })
    assert env == {"HOME": "/home/u", "APPDIR": "/tmp/.mount_krita",
                   "LD_LIBRARY_PATH": "/opt/cuda"}
    assert client.worker_environment({"PATH": "/usr/bin", "LD_LIBRARY_PATH": "/x"}) == {
        "PATH": "/usr/bin", "LD_LIBRARY_PATH": "/x"}  # no AppImage: paths kept


def test_set_up_hints_name_the_host():
    gimp = client.Host("gimp", "GIMP")
    assert gimp.setup_hint.endswith("'c2e plugins install gimp', then restart GIMP.")
    krita = client.Host("krita", "Krita", "or set it in the dialog")
    assert krita.setup_hint.endswith("then restart Krita; or set it in the dialog.")
    with pytest.raises(client.ColorizeError, match=r"\(no 'python' in s.json\)\. In a terminal"):
        client.check_python("", gimp, "s.json")
    with pytest.raises(client.ColorizeError, match="Python '/no/python' does not exist"):
        client.check_python("/no/python", gimp)


def test_session_restarts_a_worker_for_another_python(tmp_path):
    fake = tmp_path / "python"
    fake.write_text("#!/bin/sh\nexit 1\n")
    fake.chmod(0o755)
    session = client.WorkerSession(client.Host("x", "X"), args=["-c", "pass"])
    with pytest.raises(client.WorkerError, match="exited before it was ready") as failure:
        session.client(str(fake))
    assert "'c2e plugins install x'" in str(failure.value)
    assert session.started is None and not session.running and session.pid is None


# -- options -------------------------------------------------------------------------------------
def test_shared_options_check_and_translate():
    options = client.ColorizeOptions(size="native", device="cuda:2", strength=0, weights="p",
                                     clean=0.75)
    assert options.worker_options() == {"size": "native", "device": "cuda:2", "strength": 0.0,
                                        "clean": 0.75, "keep_palette": True, "weights": "p"}
    assert options.as_dict() == {"size": "native", "device": "cuda:2", "strength": 0,
                                 "clean": 0.75, "keep_palette": True, "weights": "p",
                                 "colour_only": False, "blend_share": 0.5, "preview": True}
    # the layer's blend mode is the host's business: the worker never sees it
    coloured = client.ColorizeOptions(colour_only=True)
    assert "colour_only" not in coloured.worker_options() and coloured.as_dict()["colour_only"]
    # a second reference blended in takes its share, the first the rest
    assert client.ColorizeOptions(blend_share=0.25).reference_weights() == [0.75, 0.25]
    assert repr(options).startswith("ColorizeOptions(size='native'")
    with pytest.raises(TypeError, match="unknown option colour"):
        client.ColorizeOptions(colour=1)
    for bad, message in [({"size": 17}, "multiple of 16 from 16 to 4096, or 'native'"),
                         ({"size": "256"}, "not '256'"), ({"device": "cuda:x"}, "cuda:N"),
                         ({"strength": True}, "strength"), ({"weights": 3}, "weights"),
                         ({"clean": 2}, "clean must be a number from 0 to 1"),
                         ({"keep_palette": 1}, "keep_palette must be true or false"),
                         ({"colour_only": "yes"}, "colour_only must be true or false"),
                         ({"blend_share": 1.5}, "blend_share must be from 0 to 1"),
                         ({"preview": 1}, "preview must be true or false")]:
        with pytest.raises(client.ColorizeError, match=message):
            client.ColorizeOptions(**bad)
    # a worker that lists its options gets the clean-up; one from before it (no list) refuses
    cleaning = client.ColorizeOptions(clean=0.5)
    assert cleaning.worker_options({"options": ["size", "clean"]})["clean"] == 0.5
    with pytest.raises(client.ColorizeError, match=r"version 0.0.9\) cannot clean up"):
        cleaning.worker_options({"c2e_version": "0.0.9", "devices": ["cpu"]})
    # the clean-up is on by default: an old worker refuses it until it is set to 0
    with pytest.raises(client.ColorizeError, match="or set Clean up to 0"):
        client.ColorizeOptions().worker_options({"c2e_version": "0.0.9"})
    assert client.ColorizeOptions(clean=0).worker_options({"c2e_version": "0.0.9"})["clean"] == 0
    # turning the palette step off needs a worker that lists it; on, any worker with clean-up
    calm = client.ColorizeOptions(keep_palette=False)
    assert calm.worker_options({"options": ["clean", "keep_palette"]})["keep_palette"] is False
    with pytest.raises(client.ColorizeError,
                       match=r"0.1.0\) cannot clean up without keeping the palette"):
        calm.worker_options({"c2e_version": "0.1.0", "options": ["clean"]})
    assert client.ColorizeOptions().worker_options({"options": ["clean"]})["keep_palette"]
    assert client.ColorizeOptions(clean=0, keep_palette=False).worker_options(
        {"options": ["clean"]})["clean"] == 0  # no clean-up: nothing to refuse
    assert client.worker_device("gpu", {"devices": ["cpu", "mps"]}) == "mps"
    with pytest.raises(client.ColorizeError, match="sees no GPU"):
        client.worker_device("gpu", {})


def test_settings_keep_defaults_for_bad_values(tmp_path):
    path = tmp_path / "settings.json"
    path.write_text('{"python": 3, "strength": 0.5, "size": "huge", "weights": "paper"}')
    settings = client.load_settings(path=str(path))
    assert (settings.python, settings.options.strength, settings.options.size,
            settings.options.weights, settings.path) == ("", 0.5, 256, "paper", str(path))
    settings.python = "/env/bin/python"
    client.save_settings(settings)
    assert client.load_settings(path=str(path)).as_dict() == {
        "python": "/env/bin/python", "size": 256, "device": "auto", "strength": 0.5,
        "clean": 1.0, "keep_palette": True, "weights": "paper", "colour_only": False,
        "blend_share": 0.5, "preview": True}
    # a remembered cleanup comes back; a bad one is the default
    path.write_text('{"clean": 0.6}')
    assert client.load_settings(path=str(path)).options.clean == 0.6
    path.write_text('{"clean": "lots"}')
    assert client.load_settings(path=str(path)).options.clean == 1.0
    path.write_text('{"keep_palette": false}')
    assert client.load_settings(path=str(path)).options.keep_palette is False
    path.write_text('{"keep_palette": "no"}')
    assert client.load_settings(path=str(path)).options.keep_palette is True
    # a remembered choice of the colour-only layer comes back; a bad value is the default
    path.write_text('{"colour_only": true}')
    assert client.load_settings(path=str(path)).options.colour_only is True
    path.write_text('{"colour_only": "yes"}')
    assert client.load_settings(path=str(path)).options.colour_only is False


def test_black_outside_zeroes_colour_where_nothing_is_kept():
    """The reference's selection: colour samples outside it become 0, alpha stays, any layout."""
    rgba16 = client.Pixels(2, 1, "BGRA", "u16", bytes(range(1, 17)))
    out = client.black_outside(rgba16, b"\xff\x00")
    assert out.data == bytes(range(1, 9)) + bytes(6) + bytes([15, 16])
    assert (out.width, out.height, out.channels, out.dtype) == (2, 1, "BGRA", "u16")
    rgb8 = client.Pixels(3, 1, "RGB", "u8", bytes(range(10, 19)), linear=True)
    out = client.black_outside(rgb8, b"\x00\xff\x00")
    assert out.data == bytes([0, 0, 0, 13, 14, 15, 0, 0, 0]) and out.linear
    assert bytes([0, 127, 128, 255]).translate(client.HALF_SELECTED) == b"\x00\x00\xff\xff"
    with pytest.raises(ValueError, match="one byte per pixel"):
        client.black_outside(rgb8, b"\x00")
