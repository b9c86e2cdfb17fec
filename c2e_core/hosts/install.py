"""Install, uninstall and package the plugins of host applications (``c2e plugins ...``).

One table, :data:`HOSTS`, maps a host's name to a :class:`HostPlugin` that knows where that
host keeps user plugins on Linux, Windows and macOS and how to put its plugin there. A host
plugin is the folder ``<host>/`` of the resource package ``c2e_plugins`` (``c2e_plugins/`` of
the source tree, package data of the wheel; found with :mod:`importlib.resources`, so an
editable install, a checkout and an installed wheel all work) plus the one shared client
package, ``c2e_plugins/client/c2e_client/``, copied (vendored) into it at install time, and a
``settings.json`` recording the interpreter the worker runs with (this one: the environment
``c2e`` runs in). Nothing happens at import.
"""

from __future__ import annotations

import io
import json
import os
import platform
import re
import shutil
import sys
import tempfile
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from c2e_core.errors import HostPluginError
from c2e_core.files.atomic import atomic_write

#: The resource package that holds the plugins' files (a sibling of ``c2e_core``).
PLUGINS_PACKAGE = "c2e_plugins"
#: The shared client package (worker protocol, option checks, worker start-up, settings).
CLIENT_PACKAGE = "c2e_client"
#: The file, inside an installed plugin's package, that the plugin reads its settings from.
SETTINGS_FILE = "settings.json"
#: Never copied: bytecode, an old settings file, lint settings, tool caches (``.ruff_cache``).
_SKIPPED = shutil.ignore_patterns("__pycache__", "*.pyc", SETTINGS_FILE, "ruff.toml", ".*")


def plugins_root() -> Path:
    """The folder of the plugins' files: package ``c2e_plugins``, wherever it is installed."""
    try:
        root = resources.files(PLUGINS_PACKAGE)
    except ModuleNotFoundError:
        raise HostPluginError(
            f"the plugins' files (package '{PLUGINS_PACKAGE}') are not installed: reinstall c2e"
        ) from None
    if not isinstance(root, Path):  # a zip import: the files must be copied from a folder
        raise HostPluginError(f"{root}: the plugins' files are not in a folder: reinstall c2e")
    return root


def client_source() -> Path:
    """The shared client package's folder, ``c2e_plugins/client/c2e_client``."""
    return plugins_root() / "client" / CLIENT_PACKAGE


@dataclass
class InstallReport:
    """What :meth:`HostPlugin.install` or :meth:`HostPlugin.uninstall` did, for the user."""

    folder: Path
    files: list[Path] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


class HostPlugin:
    """A host application's plugin: where it goes on each platform and how it is copied."""

    #: The host's name on the command line (``c2e plugins install NAME``).
    name = ""
    #: The host's name for people.
    title = ""
    #: Where the plugin appears in the host's menus.
    menu = ""
    #: What to do with the zip that :meth:`package` makes.
    package_use = ""
    #: The host's folder in ``c2e_plugins``.
    source_folder = ""

    @property
    def source(self) -> Path:
        """The host's plugin files: ``c2e_plugins/<source_folder>``."""
        return plugins_root() / self.source_folder

    def default_dir(self, system: str | None = None, env: Mapping[str, str] | None = None,
                    home: Path | None = None) -> Path:
        """The host's user resource folder on ``system`` (``platform.system()`` by default)."""
        raise NotImplementedError

    def install(self, folder: Path | None = None, *, python: str | None = None,
                weights: str | None = None, config: Path | None = None) -> InstallReport:
        raise NotImplementedError

    def uninstall(self, folder: Path | None = None, *, config: Path | None = None
                  ) -> InstallReport:
        raise NotImplementedError

    #: Files of ``source`` that go at the root of the zip, beside the package folder.
    package_extras: tuple[str, ...] = ()

    def package(self, output: Path, *, python: str | None = None, weights: str | None = None,
                overwrite: bool = False, record_python: bool = True) -> Path:
        """A zip of the plugin package (plus :attr:`package_extras`), as :attr:`package_use`
        says to use it. ``record_python=False``: no worker Python in its settings (a zip for
        other machines, where the plugin sets up its own engine)."""
        output = Path(output)
        if output.suffix.lower() != ".zip":
            raise HostPluginError(f"{output}: the package must be a .zip file")
        if output.exists() and not overwrite:
            raise HostPluginError(f"{output}: exists (use --overwrite to replace it)")
        if not output.parent.is_dir():
            raise HostPluginError(f"{output}: folder '{output.parent}' not found")
        self._check_sources()
        with tempfile.TemporaryDirectory() as temporary:
            package = Path(temporary) / self.plugin
            settings = _worker_settings(python, weights)
            if not record_python:
                del settings["python"]
            self._copy_package(package, settings)
            buffer = io.BytesIO()
            with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
                for name in self.package_extras:
                    archive.write(self.source / name, name)
                for path in [package, *sorted(package.rglob("*"))]:
                    archive.write(path, path.relative_to(package.parent).as_posix())
        atomic_write(output, buffer.getvalue())
        return output

    def _check_sources(self) -> None:
        raise NotImplementedError

    def _install_package(self, parent: Path, python: str | None, weights: str | None
                         ) -> tuple[Path, dict]:
        """Copy the package into ``parent`` (staged there, then swapped in whole), keeping the
        settings a previous install recorded unless ``python``/``weights`` replace them;
        return the package folder and its settings."""
        target = parent / self.plugin
        settings = _read_settings(target / SETTINGS_FILE)
        settings.update(_worker_settings(python, weights))
        self._check_sources()
        parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{self.plugin}-", dir=parent))
        try:
            self._copy_package(staging / self.plugin, settings)
            _replace_folder(staging / self.plugin, target)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        return target, settings

    def _copy_package(self, destination: Path, settings: dict) -> None:
        """The plugin package with the vendored client and ``settings``, at ``destination``."""
        shutil.copytree(self.source / self.plugin, destination, ignore=_SKIPPED)
        shutil.copytree(client_source(), destination / CLIENT_PACKAGE, ignore=_SKIPPED)
        text = json.dumps(settings, indent=2, sort_keys=True) + "\n"
        (destination / SETTINGS_FILE).write_text(text, encoding="utf-8")


# -- Krita -------------------------------------------------------------------------------------
class KritaPlugin(HostPlugin):
    """Krita: ``<resources>/pykrita/color2embed{,.desktop}`` and ``<resources>/actions/``,
    enabled by ``[python] enable_color2embed=true`` in ``kritarc``."""

    name = "krita"
    title = "Krita"
    menu = "Tools > Scripts > Colorize from Reference…"
    package_use = "in Krita, Tools > Scripts > Import Python Plugin from File…"
    plugin = "color2embed"
    source_folder = "krita"
    package_extras = (f"{plugin}.desktop", f"{plugin}.action")

    def default_dir(self, system=None, env=None, home=None) -> Path:
        system, env, home = _platform(system, env, home)
        custom = kconfig_value(_read_text(self.config_path(system, env, home)), "",
                               "ResourceDirectory")
        if custom:  # Settings > Configure Krita > General > Resource folder
            return Path(custom).expanduser()
        if system == "Windows":
            return Path(_env_dir(env, "APPDATA", home / "AppData" / "Roaming")) / "krita"
        if system == "Darwin":
            return home / "Library" / "Application Support" / "krita"
        return Path(_env_dir(env, "XDG_DATA_HOME", home / ".local" / "share")) / "krita"

    def config_path(self, system=None, env=None, home=None) -> Path:
        """Krita's settings file, ``kritarc``."""
        system, env, home = _platform(system, env, home)
        if system == "Windows":
            return Path(_env_dir(env, "LOCALAPPDATA", home / "AppData" / "Local")) / "kritarc"
        if system == "Darwin":
            return home / "Library" / "Preferences" / "kritarc"
        return Path(_env_dir(env, "XDG_CONFIG_HOME", home / ".config")) / "kritarc"

    def install(self, folder=None, *, python=None, weights=None, config=None) -> InstallReport:
        """Copy the plugin into ``folder`` (Krita's resource folder) and enable it."""
        folder = Path(folder) if folder is not None else self.default_dir()
        config = Path(config) if config is not None else self.config_path()
        pykrita, actions = folder / "pykrita", folder / "actions"
        package, settings = self._install_package(pykrita, python, weights)
        actions.mkdir(parents=True, exist_ok=True)
        desktop = pykrita / f"{self.plugin}.desktop"
        action = actions / f"{self.plugin}.action"
        atomic_write(desktop, (self.source / desktop.name).read_bytes())
        atomic_write(action, (self.source / action.name).read_bytes())
        text = _read_text(config)
        atomic_write(config, set_kconfig_value(text, "python", f"enable_{self.plugin}", "true")
                     .encode("utf-8"))
        return InstallReport(folder, [package, desktop, action, config], [_worker_note(settings)])

    def uninstall(self, folder=None, *, config=None) -> InstallReport:
        """Remove the plugin's files from ``folder`` and its switch from ``kritarc``."""
        folder = Path(folder) if folder is not None else self.default_dir()
        config = Path(config) if config is not None else self.config_path()
        report = InstallReport(folder)
        for path in (folder / "pykrita" / self.plugin,
                     folder / "pykrita" / f"{self.plugin}.desktop",
                     folder / "actions" / f"{self.plugin}.action"):
            if path.is_dir():
                shutil.rmtree(path)
            elif path.exists():
                path.unlink()
            else:
                continue
            report.files.append(path)
        text = _read_text(config)
        if kconfig_value(text, "python", f"enable_{self.plugin}") is not None:
            atomic_write(config, set_kconfig_value(text, "python", f"enable_{self.plugin}", None)
                         .encode("utf-8"))
            report.files.append(config)
        return report

    def _check_sources(self) -> None:
        needed = [self.source / f"{self.plugin}.desktop", self.source / f"{self.plugin}.action",
                  self.source / self.plugin / "__init__.py", client_source() / "__init__.py"]
        missing = [str(p) for p in needed if not p.is_file()]
        if missing:
            raise HostPluginError(
                f"the {self.title} plugin's files are missing ({missing[0]}): reinstall c2e"
            )


# -- GIMP ----------------------------------------------------------------------------------------
class GimpPlugin(HostPlugin):
    """GIMP 3: ``<profile>/plug-ins/color2embed/color2embed.py`` (executable, in a folder of the
    same name), found by GIMP at its next start."""

    name = "gimp"
    title = "GIMP"
    menu = "Colors > Colorize from Reference Image…"
    package_use = ("unpack it into GIMP's plug-ins folder (Edit > Preferences > Folders > "
                   "Plug-ins), then restart GIMP")
    plugin = "color2embed"
    source_folder = "gimp"
    #: The profile folder GIMP 3.0 uses when none newer exists.
    version = "3.0"

    def default_dir(self, system=None, env=None, home=None) -> Path:
        """GIMP 3's profile folder: ``$GIMP3_DIRECTORY``, else the newest ``GIMP/3.N``."""
        system, env, home = _platform(system, env, home)
        if env.get("GIMP3_DIRECTORY"):
            return Path(env["GIMP3_DIRECTORY"]).expanduser()
        if system == "Windows":
            root = Path(_env_dir(env, "APPDATA", home / "AppData" / "Roaming")) / "GIMP"
        elif system == "Darwin":
            root = home / "Library" / "Application Support" / "GIMP"
        else:
            root = Path(_env_dir(env, "XDG_CONFIG_HOME", home / ".config")) / "GIMP"
        found = [p for p in root.glob("3.*") if p.is_dir() and re.fullmatch(r"3\.\d+", p.name)]
        if found:
            return max(found, key=lambda p: int(p.name.split(".")[1]))
        return root / self.version

    def install(self, folder=None, *, python=None, weights=None, config=None) -> InstallReport:
        """Copy the plug-in into ``folder``/plug-ins (``folder``: GIMP's profile folder)."""
        folder = Path(folder) if folder is not None else self.default_dir()
        target, settings = self._install_package(folder / "plug-ins", python, weights)
        return InstallReport(folder, [target], [_worker_note(settings)])

    def uninstall(self, folder=None, *, config=None) -> InstallReport:
        """Remove the plug-in's folder from ``folder``/plug-ins."""
        folder = Path(folder) if folder is not None else self.default_dir()
        report = InstallReport(folder)
        target = folder / "plug-ins" / self.plugin
        if target.is_dir():
            shutil.rmtree(target)
            report.files.append(target)
        return report

    def _check_sources(self) -> None:
        needed = [self.source / self.plugin / f"{self.plugin}.py",
                  client_source() / "__init__.py"]
        missing = [str(p) for p in needed if not p.is_file()]
        if missing:
            raise HostPluginError(
                f"the {self.title} plug-in's files are missing ({missing[0]}): reinstall c2e"
            )

    def _copy_package(self, destination: Path, settings: dict) -> None:
        super()._copy_package(destination, settings)
        (destination / f"{self.plugin}.py").chmod(0o755)  # GIMP runs only executable files


#: Every host with a plugin, by name. A new host is one more :class:`HostPlugin` here.
HOSTS: dict[str, HostPlugin] = {"krita": KritaPlugin(), "gimp": GimpPlugin()}


def get_host(name: str) -> HostPlugin:
    """The host called ``name``; :class:`HostPluginError` naming the known ones otherwise."""
    try:
        return HOSTS[name.lower()]
    except KeyError:
        raise HostPluginError(
            f"unknown host '{name}' (known: {', '.join(sorted(HOSTS))})"
        ) from None


# -- settings and files --------------------------------------------------------------------------
def _worker_settings(python: str | None, weights: str | None) -> dict:
    """The plugin settings that say how to start the worker: interpreter and weights."""
    interpreter = os.path.abspath(python or sys.executable)  # not resolved: keep the venv path
    if not os.path.isfile(interpreter):
        raise HostPluginError(f"{interpreter}: no such Python interpreter")
    settings = {"python": interpreter}
    if weights:
        settings["weights"] = _weights_spec(weights)
    return settings


def _worker_note(settings: Mapping) -> str:
    """The worker command an install recorded, for the user."""
    weights = settings.get("weights")
    return f"worker: {settings['python']}" + (f" --weights {weights}" if weights else "")


def _weights_spec(weights: str) -> str:
    """A weights name as it is; a weights file as an absolute path (Krita's folder differs)."""
    path = Path(weights).expanduser()
    if path.is_file():
        return str(path.resolve())
    if os.sep in weights or "/" in weights or weights.endswith(".pt"):
        raise HostPluginError(f"{weights}: weights file not found")
    return weights


def _read_settings(path: Path) -> dict:
    """An installed plugin's settings (the user's choices survive a reinstall), or {}."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _replace_folder(new: Path, old: Path) -> None:
    """Put folder ``new`` where ``old`` is, keeping ``old`` until ``new`` is in place."""
    backup = None
    if old.exists():
        backup = old.with_name(f".{old.name}-old-{os.getpid()}")
        shutil.rmtree(backup, ignore_errors=True)
        os.replace(old, backup)
    try:
        os.replace(new, old)
    except OSError:
        if backup is not None:
            os.replace(backup, old)
        raise
    if backup is not None:
        shutil.rmtree(backup, ignore_errors=True)


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return ""


def _platform(system, env, home) -> tuple[str, Mapping[str, str], Path]:
    return (system or platform.system(), os.environ if env is None else env,
            Path.home() if home is None else Path(home))


def _env_dir(env: Mapping[str, str], name: str, default: Path) -> str:
    return env.get(name) or str(default)


# -- KConfig files (kritarc) ----------------------------------------------------------------------
_GROUP = re.compile(r"^\s*\[(.*)\]\s*$")


def kconfig_value(text: str, group: str, key: str) -> str | None:
    """The value of ``key`` in ``[group]`` of a KConfig file (``""``: before any group)."""
    current = ""
    for line in text.splitlines():
        match = _GROUP.match(line)
        if match:
            current = match.group(1)
        elif current == group and "=" in line:
            name, _, value = line.partition("=")
            if name.strip() == key:
                return value.strip()
    return None


def set_kconfig_value(text: str, group: str, key: str, value: str | None) -> str:
    """``text`` with ``key=value`` set in ``[group]`` (removed when ``value`` is None); every
    other line is kept as it is."""
    lines = text.splitlines()
    current, start, end = "", None, None
    for index, line in enumerate(lines):
        match = _GROUP.match(line)
        if match:
            if current == group and start is not None and end is None:
                end = index
            current = match.group(1)
            if current == group and start is None:
                start = index + 1
    if start is not None and end is None:
        end = len(lines)
    if start is None:
        if value is None:
            return text
        while lines and not lines[-1].strip():
            lines.pop()
        lines += ([""] if lines else []) + [f"[{group}]", f"{key}={value}"]
        return "\n".join(lines) + "\n"
    body = [i for i in range(start, end)
            if "=" in lines[i] and lines[i].partition("=")[0].strip() == key]
    for index in reversed(body):
        del lines[index]
    if value is not None:
        insert = body[0] if body else end - len(body)
        while insert > start and not lines[insert - 1].strip():
            insert -= 1
        lines.insert(insert, f"{key}={value}")
    return "\n".join(lines) + "\n"
