"""The plugin's settings: the worker's Python and the dialog's last choices.

They live in ``settings.json`` next to this file. ``c2e plugins install krita`` writes
``python`` (the interpreter of the environment where c2e is installed) and, when asked,
``weights``; the dialog saves the rest after each run. Unknown or invalid values fall back to
their defaults, so a damaged file never stops the plugin.
"""

from __future__ import annotations

import json
import os
import tempfile
from typing import Any

from .colorize import ColorizeError, ColorizeOptions

SETTINGS_FILE = "settings.json"


class Settings:
    """The worker's interpreter (``python``) and the remembered :class:`ColorizeOptions`."""

    def __init__(self, python: str = "", options: ColorizeOptions | None = None):
        self.python = python
        self.options = options if options is not None else ColorizeOptions()

    def as_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"python": self.python}
        data.update(self.options.as_dict())
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Settings:
        """Settings from a dict, keeping the default for each missing or invalid value."""
        options = ColorizeOptions()
        for name in options.as_dict():
            if name not in data:
                continue
            previous = getattr(options, name)
            setattr(options, name, data[name])
            try:
                options.check()
            except ColorizeError:
                setattr(options, name, previous)
        python = data.get("python")
        return cls(python if isinstance(python, str) else "", options)


def settings_path() -> str:
    return os.path.join(os.path.dirname(os.path.abspath(__file__)), SETTINGS_FILE)


def load_settings(path: str | None = None) -> Settings:
    """The saved settings, or the defaults when the file is missing or unreadable."""
    try:
        with open(path or settings_path(), encoding="utf-8") as handle:
            data = json.load(handle)
    except (OSError, ValueError):
        return Settings()
    return Settings.from_dict(data if isinstance(data, dict) else {})


def save_settings(settings: Settings, path: str | None = None) -> None:
    """Write the settings atomically (a temporary file renamed over the old one)."""
    path = path or settings_path()
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
