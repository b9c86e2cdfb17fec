# Python 3.8 compatible on purpose, so no pyupgrade rewrites:
# ruff: noqa: UP004, UP006, UP031, UP035, UP045
"""A plugin's settings: ``settings.json`` in the plugin's folder (the one holding this package).

``c2e plugins install HOST`` writes ``python`` (the interpreter of the environment where c2e is
installed) and, when asked, ``weights``; a plugin may save its dialog's last choices there too.
Unknown or invalid values fall back to their defaults, so a damaged file never stops the plugin.
Standard library only.
"""

from __future__ import annotations

import json
import os
import tempfile
from typing import Any, Dict, Optional, Type

from .options import ColorizeError, ColorizeOptions

SETTINGS_FILE = "settings.json"


def plugin_folder() -> str:
    """The installed plugin's folder: where this client package was vendored."""
    return os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def settings_path() -> str:
    return os.path.join(plugin_folder(), SETTINGS_FILE)


class Settings(object):
    """``python``: the worker's interpreter; ``options``: the remembered options; ``path``: the
    file they came from."""

    def __init__(self, python: str = "", options: Optional[ColorizeOptions] = None,
                 path: str = ""):
        self.python = python
        self.options = options if options is not None else ColorizeOptions()
        self.path = path

    def as_dict(self) -> Dict[str, Any]:
        data: Dict[str, Any] = {"python": self.python}
        data.update(self.options.as_dict())
        return data

    @classmethod
    def from_dict(cls, data: Dict[str, Any], options_class: Type[ColorizeOptions] = ColorizeOptions,
                  path: str = "") -> Settings:
        """Settings from a dict, keeping the default for each missing or invalid value."""
        options = options_class()
        for name, _ in options.FIELDS:
            if name not in data:
                continue
            previous = getattr(options, name)
            setattr(options, name, data[name])
            try:
                options.check()
            except ColorizeError:
                setattr(options, name, previous)
        python = data.get("python")
        return cls(python if isinstance(python, str) else "", options, path)


def load_settings(options_class: Type[ColorizeOptions] = ColorizeOptions,
                  path: Optional[str] = None) -> Settings:
    """The saved settings, or the defaults when the file is missing or unreadable."""
    path = path or settings_path()
    try:
        with open(path, encoding="utf-8") as handle:
            data = json.load(handle)
    except (OSError, ValueError):
        data = {}
    return Settings.from_dict(data if isinstance(data, dict) else {}, options_class, path)


def save_settings(settings: Settings, path: Optional[str] = None) -> None:
    """Write the settings atomically (a temporary file renamed over the old one)."""
    path = path or settings.path or settings_path()
    folder = os.path.dirname(path) or "."
    handle, temporary = tempfile.mkstemp(prefix=".settings-", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            json.dump(settings.as_dict(), stream, indent=2, sort_keys=True)
            stream.write("\n")
        os.replace(temporary, path)
    except BaseException:
        try:
            os.unlink(temporary)
        except OSError:
            pass
        raise
