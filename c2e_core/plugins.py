"""The plugin manager: built-in plugins, entry-point discovery, and a typed facade over the hooks.

Everything the library can choose between (architectures, named weights, processing steps, CLI
commands) is collected through the ``c2e_*`` hooks, built-in behaviour included, so third-party
plugins are first-class. Nothing happens at import time; :func:`get_plugin_host` builds the host
on first use.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import inspect
import os
import sys
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
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
    """A registered architecture: ``builder(config) -> nn.Module`` and, optionally, the
    configuration class its builder accepts and its named configurations (presets)."""

    name: str
    builder: Callable[[Any], Any]
    description: str
    plugin: str
    config_class: type | None = None
    presets: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Preset:
    """A named configuration of a registered architecture (``paper``, ``small``, …)."""

    name: str
    architecture: str
    config: Any
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


def _make_architecture(
    name: str,
    builder: Callable[[Any], Any],
    description: str = "",
    *,
    config_class: type | None = None,
    presets: Mapping[str, Any] | None = None,
    plugin: str = "",
) -> Architecture:
    return Architecture(name, builder, description, plugin, config_class, dict(presets or {}))


def _make_weights(name, path, sha256, description="", *, plugin="") -> NamedWeights:
    return NamedWeights(name, Path(path), sha256, description, plugin)


def _make_processor(name, stage, function, description="", *, plugin="") -> Processor:
    if stage not in ("pre", "post"):
        raise PluginError(f"processor {name!r} from {plugin!r}: stage must be pre or post")
    return Processor(name, stage, function, description, plugin)


def _code_of(function: Any) -> Any:
    """The code object of a hook implementation (a function, method or generator function)."""
    return getattr(inspect.unwrap(function), "__code__", None)


class PluginHost:
    """Typed access to the registered plugins; the only place that calls hooks.

    Collector hooks are called through pluggy (so ``tryfirst``/``trylast`` and wrappers apply)
    once per plugin set: their results are cached until a plugin is registered or unregistered.
    """

    def __init__(self, manager: pluggy.PluginManager, failed: dict[str, str] | None = None):
        self.manager = manager
        self.failed = dict(failed or {})
        self._cache: dict[str, dict[str, Any]] = {}
        self._cached_for: tuple = ()

    # -- collectors -------------------------------------------------------------------------
    def _collect(self, hook_name: str, make: Callable[..., Any]) -> dict[str, Any]:
        """Call a collector hook through pluggy (cached): ``{name: make(name, ..., plugin=)}``."""
        plugins = tuple(self.manager.list_name_plugin())
        if plugins != self._cached_for:
            self._cache, self._cached_for = {}, plugins
        if hook_name not in self._cache:
            self._cache[hook_name] = self._call_collector(hook_name, make)
        return dict(self._cache[hook_name])

    def _call_collector(self, hook_name: str, make: Callable[..., Any]) -> dict[str, Any]:
        """Call the hook; a plugin that raises is reported and the call made again without it."""
        impls: dict[Any, list[Any]] = {}
        for impl in getattr(self.manager.hook, hook_name).get_hookimpls():
            impls.setdefault(_code_of(impl.function), []).append(impl)
        impls.pop(None, None)
        skipped: list[object] = []
        while True:
            try:
                return self._call_once(hook_name, make, impls, skipped)
            except PluginError:
                raise
            except Exception as exc:  # one broken plugin must not take the others down
                impl = _raising_impl(exc, impls)
                if impl is None or impl.plugin in skipped:
                    raise PluginError(f"{hook_name} failed: {type(exc).__name__}: {exc}") from exc
                skipped.append(impl.plugin)
                plugin_name = self._plugin_name(impl)
                message = f"{type(exc).__name__}: {exc}"
                self.failed.setdefault(plugin_name, message)
                warnings.warn(
                    f"c2e plugin {plugin_name!r} failed in {hook_name}: {message}",
                    RuntimeWarning,
                    stacklevel=4,
                )

    def _call_once(self, hook_name, make, impls, skipped) -> dict[str, Any]:
        """One pluggy call of the hook (without the ``skipped`` plugins) with a ``register``
        callback that names each entry's plugin from the implementation calling it."""
        order = {name: index for index, (name, _) in enumerate(self.manager.list_name_plugin())}
        found: dict[str, Any] = {}

        def register(name: str, *args: Any, **kwargs: Any) -> None:
            plugin = self._plugin_name(_caller_impl(impls))
            if not isinstance(name, str) or not name:
                raise PluginError(f"plugin {plugin!r} registered an empty name in {hook_name}")
            if name in found:  # the plugin registered later is the one at fault
                first, second = sorted(
                    (found[name].plugin, plugin), key=lambda n: order.get(n, len(order))
                )
                raise PluginError(
                    f"plugin {second!r} registers {name!r}, already registered by {first!r}"
                )
            found[name] = make(name, *args, plugin=plugin, **kwargs)

        hook = getattr(self.manager.hook, hook_name)
        (self.manager.subset_hook_caller(hook_name, skipped) if skipped else hook)(
            register=register
        )
        return found

    def _plugin_name(self, impl: Any) -> str:
        if impl is None:
            return "<unknown>"
        return self.manager.get_name(impl.plugin) or repr(impl.plugin)

    def architectures(self) -> dict[str, Architecture]:
        return self._collect("c2e_register_architectures", _make_architecture)

    def presets(self) -> dict[str, Preset]:
        """Every registered architecture's named configurations: one namespace, like timm's."""
        found: dict[str, Preset] = {}
        for architecture in self.architectures().values():
            for name, config in architecture.presets.items():
                if name in found:
                    raise PluginError(
                        f"preset {name!r} of {architecture.name!r} ({architecture.plugin!r}) is "
                        f"already a preset of {found[name].architecture!r}"
                    )
                found[name] = Preset(name, architecture.name, config, architecture.plugin)
        return found

    def named_weights(self) -> dict[str, NamedWeights]:
        return self._collect("c2e_register_weights", _make_weights)

    def processors(self) -> dict[str, Processor]:
        return self._collect("c2e_register_processors", _make_processor)

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

    def unregister(self, plugin: object | None = None, name: str | None = None) -> None:
        """Remove a plugin (by object or name); the collected registrations follow."""
        self.manager.unregister(plugin, name=name)


def _impl_of(frame: Any, impls: dict[Any, list[Any]]) -> Any:
    """The hook implementation running in ``frame``, if any (methods told apart by ``self``)."""
    candidates = impls.get(frame.f_code)
    if not candidates:
        return None
    if len(candidates) > 1:  # one class's method registered for several instances
        owner = frame.f_locals.get("self")
        return next((impl for impl in candidates if impl.plugin is owner), candidates[0])
    return candidates[0]


def _caller_impl(impls: dict[Any, list[Any]]) -> Any:
    """The hook implementation on the call stack nearest to the caller (``None``: not found)."""
    frame = sys._getframe(2)
    while frame is not None:
        impl = _impl_of(frame, impls)
        if impl is not None:
            return impl
        frame = frame.f_back
    return None


def _raising_impl(exc: BaseException, impls: dict[Any, list[Any]]) -> Any:
    """The innermost hook implementation in ``exc``'s traceback (``None``: not found)."""
    found = None
    tb = exc.__traceback__
    while tb is not None:
        found = _impl_of(tb.tb_frame, impls) or found
        tb = tb.tb_next
    return found


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
