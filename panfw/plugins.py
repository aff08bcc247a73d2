"""One pluggy PluginManager("panfw"): entry points loaded tolerantly, registries filled through hooks.

Bundled plugins are listed under the ``panfw`` entry-point group of panfw's own distribution and are
loaded exactly like third-party ones. Every hook is called through pluggy (so ``specname``,
``tryfirst``, ``trylast`` and ``optionalhook`` behave as pluggy documents), one plugin at a time
(``pm.subset_hook_caller``), so each registered thing is attributed to the plugin that registered it
and a plugin that fails is removed whole. Environment:

- ``PANFW_STRICT_PLUGINS=1``: a plugin that fails to import or register is fatal (for CI and authors);
- ``PANFW_LOAD_PLUGINS=a,b``: load only these entry points (empty string: none);
- ``PANFW_DISABLE_PLUGINS=a,b``: skip these entry points.

The core's own implementations of a hook (the runtimes of ``panfw.inference.runtimes``) are
registered first, through the same hooks, whatever these variables say.

Two plugins registering the same name in one registry is always an error naming both.
"""

from __future__ import annotations

import importlib.metadata
import inspect
import os
import traceback
import types
import warnings
from collections.abc import Callable, Iterable
from typing import Any

import attrs
import pluggy

from panfw import hookspecs
from panfw._suggest import did_you_mean
from panfw.errors import DuplicateNameError, PluginError
from panfw.registries import KIND_TABLE, KINDS, Registry, kind_of

_SPEC_NAMES = [k.hook for k in KIND_TABLE] + ["register_commands"]


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


class _HookFailed(Exception):
    """A plugin's hook raised; carries the hook's name and the original exception."""

    def __init__(self, hook: str, exc: BaseException) -> None:
        super().__init__(hook)
        self.hook, self.exc = hook, exc


class _Hashable:
    """A hashable stand-in for a plugin object that is not: it carries the object's functions and
    methods (bound to the object) as its own attributes, which is where pluggy looks for hooks."""

    def __init__(self, obj: Any) -> None:
        for name in dir(obj):
            if name.startswith("__"):
                continue
            static = inspect.getattr_static(obj, name, None)
            # properties and other descriptors are not evaluated, as pluggy itself does not
            if isinstance(static, (staticmethod, classmethod, types.MethodType)) or inspect.isfunction(static):
                self.__dict__[name] = getattr(obj, name)


def _builtin_plugins() -> list[tuple[str, Callable[[], Any]]]:
    """The core modules that implement hooks, as (plugin name, loader)."""

    def runtimes() -> Any:
        from panfw.inference import plugin as module

        return module

    return [("panfw.inference.runtimes", runtimes)]


def _version() -> str:
    try:
        return importlib.metadata.version("panfw")
    except importlib.metadata.PackageNotFoundError:  # run from a source tree that is not installed
        return ""


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
        self._pending: list[str] = []  # plugins whose register hooks have not run yet

    # -- loading -------------------------------------------------------------------------
    def load_entrypoints(self, register: bool = True) -> None:
        """Load every ``panfw`` entry point once; failures are recorded, warned about, or raised.
        ``register=False`` defers the register hooks to ``ensure_registered`` (plugin commands only)."""
        if self._loaded:
            return
        self._loaded = True
        allow, block = _env_list("PANFW_LOAD_PLUGINS"), _env_list("PANFW_DISABLE_PLUGINS") or set()
        loaded: list[tuple[Any, str, PluginInfo]] = []
        for name, load in _builtin_plugins():
            info = PluginInfo(name=name, module=name, package="panfw", version=_version())
            try:
                loaded.append((load(), name, info))
            except Exception as exc:  # noqa: BLE001 - reported like a plugin's, fatal under strict mode
                self._fail(info, f"import failed: {type(exc).__name__}: {exc}", exc)
        for ep in sorted(importlib.metadata.entry_points(group="panfw"), key=lambda e: e.name):
            if (allow is not None and ep.name not in allow) or ep.name in block or ep.name in self.info:
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
            loaded.append((module, ep.name, info))
        # pluggy calls the last-registered plugin first: registering in reverse makes the unmarked
        # hooks run in name order; all plugins are known before any hook runs, so tryfirst/trylast
        # order them across plugins
        self._pending = [name for module, name, info in reversed(loaded) if self._add(module, name, info)]
        if register:
            self.ensure_registered()

    def ensure_registered(self) -> None:
        """Run the register hooks of the loaded plugins (once). Deferred until a registry is needed, so
        ``panfw --help`` and plugin commands start without building every registry."""
        pending, self._pending = self._pending, []
        if pending:
            self._run_registration(pending)

    def register(self, plugin: Any, name: str | None = None, info: PluginInfo | None = None) -> str:
        """Register a plugin object (module or instance with hookimpls) and run its register hooks."""
        name = name or getattr(plugin, "__name__", None) or repr(plugin)
        info = info or PluginInfo(name=name, module=getattr(plugin, "__name__", type(plugin).__name__))
        self.ensure_registered()
        if self._add(plugin, name, info):
            self._run_registration([name])
        return name

    def unregister(self, name: str) -> None:
        """Remove a plugin and everything it registered."""
        plugin = self.pm.get_plugin(name)
        if plugin is not None:
            self.pm.unregister(plugin)
        self.info.pop(name, None)
        for reg in self.registries.values():
            reg.remove_plugin(name)

    def _add(self, plugin: Any, name: str, info: PluginInfo) -> bool:
        """Hand the plugin to pluggy (which validates its hookimpls); refuse hooks panfw does not have."""
        try:
            hash(plugin)
        except TypeError:
            plugin = _Hashable(plugin)  # pluggy keeps plugins in sets (a SimpleNamespace is not hashable)
        try:
            self.pm.register(plugin, name=name)
        except (ValueError, pluggy.PluginValidationError) as exc:
            self._fail(info, f"registration failed: {exc}", exc)
            return False
        callers = self.pm.get_hookcallers(plugin) or []
        unknown = [hc.name for hc in callers if not hc.has_spec()
                   and any(i.plugin is plugin and not i.optionalhook for i in hc.get_hookimpls())]
        if unknown:
            self.pm.unregister(plugin)
            hook = unknown[0]
            self._fail(info, f"implements unknown hook {hook!r}{did_you_mean(hook, _SPEC_NAMES)}; "
                             f"panfw's hooks: {', '.join(_SPEC_NAMES)}", ValueError(hook))
            return False
        info.hooks = sorted(hc.name for hc in callers if hc.has_spec())
        self.info[name] = info
        return True

    def _call_order(self, hook: str, names: Iterable[str]) -> list[str]:
        """Plugins among ``names`` implementing ``hook``, in pluggy's call order (tryfirst first)."""
        wanted, order = set(names), []
        for impl in reversed(getattr(self.pm.hook, hook).get_hookimpls()):
            if impl.plugin_name in wanted and impl.plugin_name not in order:
                order.append(impl.plugin_name)
        return order

    def _call_one(self, hook: str, name: str, **kwargs: Any) -> None:
        """Call ``hook`` of plugin ``name`` only (all its implementations of it, pluggy-ordered)."""
        plugin = self.pm.get_plugin(name)
        others = [p for p in self.pm.get_plugins() if p is not plugin]
        try:
            self.pm.subset_hook_caller(hook, remove_plugins=others)(**kwargs)
        except DuplicateNameError:
            raise
        except Exception as exc:  # noqa: BLE001 - a plugin's bug is reported, not fatal
            raise _HookFailed(hook, exc) from exc

    def _register_callback(self, kind: str, plugin: str) -> Callable[..., None]:
        registry, info = self.registries[kind], self.info[plugin]

        def register(name: str, factory: Callable, **meta: Any) -> None:
            registry.add(name, factory, plugin=plugin, **meta)
            info.registered.setdefault(kind, []).append(name)

        return register

    def _run_registration(self, names: list[str]) -> None:
        """Run every register hook of the plugins ``names``; a plugin whose hook fails is removed whole."""
        failed: set[str] = set()
        for kind in KIND_TABLE:
            for plugin in self._call_order(kind.hook, names):
                if plugin in failed:
                    continue
                try:
                    self._call_one(kind.hook, plugin, register=self._register_callback(kind.name, plugin))
                except DuplicateNameError as exc:
                    info = self.info[plugin]
                    self._remove_failed(plugin)
                    # two plugins cannot share a name, whatever the mode
                    self._fail(info, str(exc), exc, always_raise=True)
                except _HookFailed as fail:
                    failed.add(plugin)
                    info = self.info[plugin]
                    self._remove_failed(plugin)
                    self._fail(info, f"{fail.hook} failed: {type(fail.exc).__name__}: {fail.exc}", fail.exc)

    def _remove_failed(self, name: str) -> None:
        """Undo a plugin whose registration failed, keeping its info (with the error) for ``panfw plugins``."""
        info = self.info.get(name)
        self.unregister(name)
        if info is not None:
            info.registered = {}
            self.info[name] = info

    def _fail(self, info: PluginInfo, message: str, exc: BaseException, always_raise: bool = False) -> None:
        info.error = message
        self.info[info.name] = info
        if always_raise:
            raise exc
        if _strict():
            raise PluginError(f"plugin {info.name!r} ({info.module}): {message}") from exc
        detail = "".join(traceback.format_exception_only(type(exc), exc)).strip()
        warnings.warn(f"panfw plugin {info.name!r} ({info.module}) was skipped: {message} [{detail}]",
                      PanfwWarning, stacklevel=3)

    def failures(self) -> list[PluginInfo]:
        """Plugins that failed to import or register."""
        return [i for i in self.info.values() if i.error]

    def add_commands(self, cli: Any) -> None:
        """Let every plugin add its commands (pluggy order); a failing plugin is reported, not fatal."""
        for name in self._call_order("register_commands", self.info):
            try:
                self._call_one("register_commands", name, cli=cli)
            except _HookFailed as fail:
                self._fail(self.info[name], f"register_commands failed: {type(fail.exc).__name__}: {fail.exc}",
                           fail.exc)


_system: PluginSystem | None = None


def loaded_system() -> PluginSystem:
    """The process-wide plugin system with its entry points imported, register hooks not yet run
    (enough to add plugin commands to the command line)."""
    global _system
    if _system is None:
        system = PluginSystem()
        system.load_entrypoints(register=False)  # kept only once loaded: a fatal load error repeats
        _system = system
    return _system


def get_system() -> PluginSystem:
    """The process-wide plugin system, entry points loaded and registries filled on first use."""
    global _system
    system = loaded_system()
    try:
        system.ensure_registered()
    except BaseException:
        _system = None  # a fatal registration error repeats on every use
        raise
    return system


def registry(kind: str) -> Registry:
    """The registry of ``kind`` (models, fusions, refines, losses, datasets, metrics, runtimes)."""
    return get_system().registries[kind_of(kind).name]


def register_plugin(plugin: Any, name: str | None = None) -> str:
    """Register a plugin object at run time (tests, notebooks); returns its name."""
    return get_system().register(plugin, name=name)


def unregister_plugin(name: str) -> None:
    """Remove a plugin registered with ``register_plugin``."""
    get_system().unregister(name)
