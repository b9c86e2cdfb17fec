"""Packaging: the host plugins' files are package data (``c2e_plugins``), found through
:mod:`importlib.resources`, carried by the wheel and copied whole by ``c2e plugins``.

A file added to ``c2e_plugins/`` and forgotten in ``pyproject.toml``'s package data (the wheel
would lack it) or in :mod:`c2e_core.hosts.install` (the installed plugin would lack it) fails
here, without building anything: the wheel's files are what setuptools' ``build_py`` lists from
``pyproject.toml``. ``scripts/ci-wheel-check`` installs a real wheel and runs the commands.
"""

from __future__ import annotations

import ast
import os
import re
import sys
import warnings
import zipfile
from pathlib import Path

import pytest

import c2e_plugins
from c2e_core.hosts import install
from c2e_core.hosts.install import HOSTS, GimpPlugin, KritaPlugin

REPO = Path(__file__).resolve().parents[1]


def plugin_files(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` by relative path, without what ``install`` never copies:
    bytecode, the plugins' lint settings (``ruff.toml``) and hidden tool caches."""
    return {
        path.relative_to(folder).as_posix(): path.read_bytes()
        for path in sorted(folder.rglob("*"))
        if path.is_file()
        and "__pycache__" not in path.parts
        and not any(part.startswith(".") for part in path.relative_to(folder).parts)
        and path.suffix != ".pyc"
        and path.name != "ruff.toml"
    }


def under(prefix: str, files: dict[str, bytes]) -> dict[str, bytes]:
    return {f"{prefix}/{name}": data for name, data in files.items()}


def test_plugin_files_come_from_the_c2e_plugins_package():
    root = install.plugins_root()
    assert root == Path(c2e_plugins.__file__).parent
    assert root == REPO / "c2e_plugins"  # the tests run on this source tree
    assert install.client_source() == root / "client" / "c2e_client"
    assert {host.source for host in HOSTS.values()} == {root / "krita", root / "gimp"}


def test_krita_install_and_package_copy_every_plugin_file(tmp_path):
    root = install.plugins_root()
    source, client = plugin_files(root / "krita"), plugin_files(root / "client" / "c2e_client")
    expected = {  # where each file of c2e_plugins/krita and the client goes
        ("actions/" if name.endswith(".action") else "pykrita/") + name: data
        for name, data in source.items()
    } | under("pykrita/color2embed/c2e_client", client)
    folder = tmp_path / "krita"
    KritaPlugin().install(folder, config=tmp_path / "kritarc")
    installed = plugin_files(folder)
    assert installed.pop("pykrita/color2embed/settings.json")
    assert installed == expected

    output = KritaPlugin().package(tmp_path / "color2embed.zip")
    with zipfile.ZipFile(output) as archive:
        packaged = {n: archive.read(n) for n in archive.namelist() if not n.endswith("/")}
    assert packaged.pop("color2embed/settings.json")
    assert packaged == {name.split("/", 1)[1]: data for name, data in expected.items()}


def test_gimp_install_copies_every_plugin_file(tmp_path):
    root = install.plugins_root()
    expected = under("plug-ins", plugin_files(root / "gimp")) | under(
        "plug-ins/color2embed/c2e_client", plugin_files(root / "client" / "c2e_client")
    )
    GimpPlugin().install(tmp_path)
    installed = plugin_files(tmp_path)
    assert installed.pop("plug-ins/color2embed/settings.json")
    assert installed == expected
    assert os.access(tmp_path / "plug-ins" / "color2embed" / "color2embed.py", os.X_OK)


def test_the_wheel_carries_every_plugin_file(monkeypatch):
    """What ``build_py`` puts in the wheel (and the sdist) from pyproject.toml's package
    configuration includes every file of ``c2e_plugins/``."""
    pytest.importorskip("setuptools")
    from setuptools.config.pyprojecttoml import apply_configuration
    from setuptools.dist import Distribution

    monkeypatch.chdir(REPO)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a deprecated setting warns on every pip install
        dist = apply_configuration(Distribution({"script_name": "setup.py"}), "pyproject.toml")
    build_py = dist.get_command_obj("build_py")
    build_py.ensure_finalized()
    wheel = {
        Path(path).relative_to(build_py.build_lib).as_posix()
        for path in build_py.get_outputs(include_bytecode=False)
    }
    files = set(under("c2e_plugins", plugin_files(REPO / "c2e_plugins")))
    assert files - wheel == set()
    assert "c2e_core/bundled/manifest.json" in wheel


#: Import names whose distribution is called otherwise.
DISTRIBUTIONS = {"PIL": "pillow", "skimage": "scikit-image"}


def test_every_imported_package_is_declared():
    """Every third-party module c2e_core imports is a dependency or in an extra."""
    tomllib = pytest.importorskip("tomllib")  # Python 3.11
    project = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    requirements = project["dependencies"] + [
        r for extra in project["optional-dependencies"].values() for r in extra
    ]
    declared = {re.match(r"[A-Za-z0-9_.-]+", r).group().lower() for r in requirements}
    imported = set()
    for path in (REPO / "c2e_core").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_bytes())):
            if isinstance(node, ast.Import):
                imported |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                imported.add(node.module.split(".")[0])
    third_party = imported - set(sys.stdlib_module_names) - {"c2e_core"}
    assert {DISTRIBUTIONS.get(name, name).lower() for name in third_party} - declared == set()


def _members(path: Path) -> dict[str, tuple[bytes, int]]:
    """A zip's files: contents and Unix permission bits (timestamps aside)."""
    with zipfile.ZipFile(path) as archive:
        return {info.filename: (archive.read(info), (info.external_attr >> 16) & 0o777)
                for info in archive.infolist()}  # fmt: skip


@pytest.mark.parametrize("host", sorted(HOSTS))
def test_the_zips_linked_from_the_readme_are_current(host, tmp_path):
    """``docs/downloads/color2embed-HOST.zip`` (linked from the README for installing without a
    terminal) is what ``c2e plugins package HOST --no-python`` makes from this checkout."""
    committed = REPO / "docs" / "downloads" / f"color2embed-{host}.zip"
    fresh = HOSTS[host].package(tmp_path / "fresh.zip", record_python=False)
    again = f"c2e plugins package {host} --no-python --overwrite -o {committed.relative_to(REPO)}"
    assert _members(committed) == _members(fresh), f"stale; run: {again}"
