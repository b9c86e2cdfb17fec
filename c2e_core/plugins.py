"""The plugin manager: built-in plugins, entry-point discovery, and a typed facade over the hooks.

Everything the library can choose between (architectures, named weights, processing steps, CLI
commands) is collected through the ``c2e_*`` hooks, built-in behaviour included, so third-party
plugins are first-class. Nothing happens at import time; :func:`get_plugin_host` builds the host
on first use.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import os
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pluggy

from c2e_core import hookspecs
from c2e_core.errors import PluginError

ENTRY_POINT_GROUP = hookspecs.PROJECT_NAME
#: Set to ``1`` to skip entry-point discovery (tests, or to rule out a broken plugin).
DISABLE_AUTOLOAD_ENV = "C2E_DISABLE_PLUGIN_AUTOLOAD"
BUILTIN_PLUGINS = ("c2e_core.builtin",)


@dataclass(frozen=True)
class Architecture:
    name: str
    builder: Callable[[dict], Any]
    description: str
    plugin: str


@dataclass(frozen=True)
class NamedWeights:
    name: str
    path: Path
    sha256: str
    description: str
    plugin: str


@dataclass(frozen=True)
class Processor:
    name: str
    stage: str
    function: Callable[..., Any]
    description: str
    plugin: str


class PluginHost:
    """Typed access to the registered plugins; the only place that calls hooks."""

    def __init__(self, manager: pluggy.PluginManager, failed: dict[str, str] | None = None):
        self.manager = manager
        self.failed = dict(failed or {})

    # -- collectors -------------------------------------------------------------------------
    def _collect(self, hook_name: str, make: Callable[..., Any]) -> dict[str, Any]:
        found: dict[str, Any] = {}
        hook = getattr(self.manager.hook, hook_name)
        for impl in hook.get_hookimpls():  # registration order: built-ins first
            plugin_name = self.manager.get_name(impl.plugin) or repr(impl.plugin)

            def register(name: str, *args: Any, _plugin: str = plugin_name, **kwargs: Any) -> None:
                if not isinstance(name, str) or not name:
                    raise PluginError(f"plugin {_plugin!r} registered an empty name in {hook_name}")
                if name in found:
                    raise PluginError(
                        f"plugin {_plugin!r} registers {name!r}, already registered by "
                        f"{found[name].plugin!r}"
                    )
                found[name] = make(name, *args, plugin=_plugin, **kwargs)

            try:
                impl.function(register=register)
            except PluginError:
                raise
            except Exception as exc:  # one broken plugin must not take the others down
                message = f"{type(exc).__name__}: {exc}"
                self.failed.setdefault(plugin_name, message)
                warnings.warn(
                    f"c2e plugin {plugin_name!r} failed in {hook_name}: {message}",
                    RuntimeWarning,
                    stacklevel=3,
                )
        return found

    def architectures(self) -> dict[str, Architecture]:
        return self._collect(
            "c2e_register_architectures",
            lambda name, builder, description="", plugin="": Architecture(
                name, builder, description, plugin
            ),
        )

    def named_weights(self) -> dict[str, NamedWeights]:
        return self._collect(
            "c2e_register_weights",
            lambda name, path, sha256, description="", plugin="": NamedWeights(
                name, Path(path), sha256, description, plugin
            ),
        )

    def processors(self) -> dict[str, Processor]:
        def make(name, stage, function, description="", plugin=""):
            if stage not in ("pre", "post"):
                raise PluginError(f"processor {name!r} from {plugin!r}: stage must be pre or post")
            return Processor(name, stage, function, description, plugin)

        return self._collect("c2e_register_processors", make)

    # -- single answers and notifications ---------------------------------------------------
    def resolve_weights(self, spec: str) -> Path | None:
        result = self.manager.hook.c2e_resolve_weights(spec=spec)
        return Path(result) if result is not None else None

    def report_progress(self, job: str, done: int, total: int, message: str = "") -> bool:
        """Tell every plugin about progress; True if any of them asks to cancel."""
        answers = self.manager.hook.c2e_progress(job=job, done=done, total=total, message=message)
        return any(answer is True for answer in answers)

    def add_commands(self, subparsers: argparse._SubParsersAction) -> None:
        self.manager.hook.c2e_register_commands(subparsers=subparsers)

    def plugin_names(self) -> list[str]:
        return [name for name, _ in self.manager.list_name_plugin()]

    def register(self, plugin: object, name: str | None = None) -> None:
        """Register a plugin object or module (checked against the hookspecs)."""
        self.manager.register(plugin, name=name)
        self.manager.check_pending()


def _load_entry_points(manager: pluggy.PluginManager) -> dict[str, str]:
    failed: dict[str, str] = {}
    for entry_point in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        if manager.has_plugin(entry_point.name) or manager.is_blocked(entry_point.name):
            continue
        try:
            plugin = entry_point.load()
            manager.register(plugin, name=entry_point.name)
            manager.check_pending()  # a misspelled hook name is this plugin's error
        except Exception as exc:  # a broken plugin must never take the application down
            if manager.has_plugin(entry_point.name):
                manager.unregister(name=entry_point.name)
            failed[entry_point.name] = f"{type(exc).__name__}: {exc}"
            warnings.warn(
                f"c2e plugin {entry_point.name!r} ({entry_point.value}) failed to load: "
                f"{type(exc).__name__}: {exc}",
                RuntimeWarning,
                stacklevel=2,
            )
    return failed


def create_plugin_host(load_entry_points: bool | None = None) -> PluginHost:
    """Make a fresh host with the built-in plugins and, unless disabled, installed plugins."""
    manager = pluggy.PluginManager(hookspecs.PROJECT_NAME)
    manager.add_hookspecs(hookspecs)
    for module_name in BUILTIN_PLUGINS:
        module = importlib.import_module(module_name)
        manager.register(module, name=module_name)
    if load_entry_points is None:
        load_entry_points = os.environ.get(DISABLE_AUTOLOAD_ENV, "") not in ("1", "true", "yes")
    failed = _load_entry_points(manager) if load_entry_points else {}
    manager.check_pending()
    return PluginHost(manager, failed)


_host: PluginHost | None = None


def get_plugin_host() -> PluginHost:
    """The process-wide plugin host, created on first use."""
    global _host
    if _host is None:
        _host = create_plugin_host()
    return _host


def reset_plugin_host() -> None:
    """Forget the process-wide host (tests; after installing a plugin)."""
    global _host
    _host = None
