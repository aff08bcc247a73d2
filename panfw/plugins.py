"""One pluggy PluginManager("panfw"): entry points loaded tolerantly, registries filled through hooks.

Bundled plugins are listed under the ``panfw`` entry-point group of panfw's own distribution and are
loaded exactly like third-party ones. Environment:

- ``PANFW_STRICT_PLUGINS=1``: a plugin that fails to import or register is fatal (for CI and authors);
- ``PANFW_LOAD_PLUGINS=a,b``: load only these entry points (empty string: none);
- ``PANFW_DISABLE_PLUGINS=a,b``: skip these entry points.
"""

from __future__ import annotations

import importlib.metadata
import os
import traceback
import warnings
from typing import Any

import attrs
import pluggy

from panfw import hookspecs
from panfw.errors import PluginError, RegistryError
from panfw.registries import KINDS, Registry

HOOK_OF_KIND = {kind: f"register_{kind}" for kind in KINDS}


@attrs.define
class PluginInfo:
    """What ``panfw plugins`` shows for one plugin."""

    name: str
    module: str = ""
    package: str = ""
    version: str = ""
    hooks: list = attrs.field(factory=list)
    registered: dict = attrs.field(factory=dict)  # kind -> [names]
    error: str = ""


class PanfwWarning(UserWarning):
    """A plugin problem that panfw survived."""


def _strict() -> bool:
    return os.environ.get("PANFW_STRICT_PLUGINS", "") not in ("", "0", "false", "no")


def _env_list(var: str) -> set[str] | None:
    value = os.environ.get(var)
    if value is None:
        return None
    return {v.strip() for v in value.split(",") if v.strip()}


class PluginSystem:
    """The plugin manager, the registries and what each plugin did."""

    def __init__(self) -> None:
        self.pm = pluggy.PluginManager("panfw")
        self.pm.add_hookspecs(hookspecs)
        self.registries = {kind: Registry(kind) for kind in KINDS}
        self.info: dict[str, PluginInfo] = {}
        self._loaded = False

    # -- loading -------------------------------------------------------------------------
    def load_entrypoints(self) -> None:
        """Load every ``panfw`` entry point once; failures are recorded, warned about, or raised."""
        if self._loaded:
            return
        self._loaded = True
        allow, block = _env_list("PANFW_LOAD_PLUGINS"), _env_list("PANFW_DISABLE_PLUGINS") or set()
        for ep in sorted(importlib.metadata.entry_points(group="panfw"), key=lambda e: e.name):
            if (allow is not None and ep.name not in allow) or ep.name in block:
                continue
            if ep.name in self.info:
                continue
            dist = getattr(ep, "dist", None)
            info = PluginInfo(name=ep.name, module=ep.value,
                              package=dist.metadata["Name"] if dist else "",
                              version=dist.version if dist else "")
            try:
                module = ep.load()
            except Exception as exc:  # noqa: BLE001 - a broken plugin must not take panfw down
                self._fail(info, f"import failed: {type(exc).__name__}: {exc}", exc)
                continue
            self.register(module, name=ep.name, info=info)

    def register(self, plugin: Any, name: str | None = None, info: PluginInfo | None = None) -> str:
        """Register a plugin object (module or instance with hookimpls) and run its register hooks."""
        name = name or getattr(plugin, "__name__", None) or repr(plugin)
        info = info or PluginInfo(name=name, module=getattr(plugin, "__name__", type(plugin).__name__))
        try:
            self.pm.register(plugin, name=name)
        except ValueError as exc:
            self._fail(info, f"registration failed: {exc}", exc)
            return name
        info.hooks = sorted(h.name for h in self.pm.get_hookcallers(plugin) or [])
        self.info[name] = info
        for kind in KINDS:
            self._run_register_hook(plugin, name, kind, info)
        return name

    def unregister(self, name: str) -> None:
        """Remove a plugin and everything it registered."""
        plugin = self.pm.get_plugin(name)
        if plugin is not None:
            self.pm.unregister(plugin)
        info = self.info.pop(name, None)
        if info:
            for kind, names in info.registered.items():
                for n in names:
                    entry = self.registries[kind]._entries.get(n)
                    if entry is not None and entry.plugin == name:
                        self.registries[kind].remove(n)

    def _run_register_hook(self, plugin: Any, name: str, kind: str, info: PluginInfo) -> None:
        impl = getattr(plugin, HOOK_OF_KIND[kind], None)
        if impl is None or not hasattr(impl, "panfw_impl"):
            return
        added: list[str] = []

        def register(reg_name: str, factory: Any, **meta: Any) -> None:
            self.registries[kind].add(reg_name, factory, plugin=name, **meta)
            added.append(reg_name)

        try:
            impl(register=register)
        except RegistryError as exc:
            if "registered twice" in str(exc):
                # a duplicate is an error whatever the mode: two plugins cannot share a name
                for n in added:
                    self.registries[kind].remove(n)
                self._fail(info, str(exc), exc, always_raise=True)
            for n in added:
                self.registries[kind].remove(n)
            self._fail(info, f"{HOOK_OF_KIND[kind]} failed: {exc}", exc)
            return
        except Exception as exc:  # noqa: BLE001
            for n in added:
                self.registries[kind].remove(n)
            self._fail(info, f"{HOOK_OF_KIND[kind]} failed: {type(exc).__name__}: {exc}", exc)
            return
        if added:
            info.registered.setdefault(kind, []).extend(added)

    def _fail(self, info: PluginInfo, message: str, exc: BaseException, always_raise: bool = False) -> None:
        info.error = message
        self.info[info.name] = info
        if always_raise:
            raise RegistryError(message) from exc
        if _strict():
            raise PluginError(f"plugin {info.name!r} ({info.module}): {message}") from exc
        detail = "".join(traceback.format_exception_only(type(exc), exc)).strip()
        warnings.warn(f"panfw plugin {info.name!r} ({info.module}) was skipped: {message} [{detail}]",
                      PanfwWarning, stacklevel=3)

    def failures(self) -> list[PluginInfo]:
        return [i for i in self.info.values() if i.error]

    def add_commands(self, cli: Any) -> None:
        """Let every plugin add its commands; a failing plugin is reported, not fatal."""
        for impl in self.pm.hook.register_commands.get_hookimpls():
            try:
                impl.function(cli=cli)
            except Exception as exc:  # noqa: BLE001
                info = self.info.get(impl.plugin_name) or PluginInfo(name=impl.plugin_name)
                self._fail(info, f"register_commands failed: {type(exc).__name__}: {exc}", exc)


_system: PluginSystem | None = None


def get_system() -> PluginSystem:
    """The process-wide plugin system, entry points loaded on first use."""
    global _system
    if _system is None:
        _system = PluginSystem()
        _system.load_entrypoints()
    return _system


def reset() -> None:
    """Forget all plugins (tests); the next use loads the entry points again."""
    global _system
    _system = None


def registry(kind: str) -> Registry:
    """The registry of ``kind`` (models, fusions, refines, losses, datasets, metrics)."""
    if kind not in KINDS:
        raise RegistryError(f"unknown registry {kind!r}; known: {', '.join(KINDS)}")
    return get_system().registries[kind]


def register_plugin(plugin: Any, name: str | None = None) -> str:
    """Register a plugin object at run time (tests, notebooks); returns its name."""
    return get_system().register(plugin, name=name)


def unregister_plugin(name: str) -> None:
    """Remove a plugin registered with ``register_plugin``."""
    get_system().unregister(name)
