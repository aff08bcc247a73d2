"""Typed registries: name -> factory, one-line summary, options, metadata and the providing plugin.

``KIND_TABLE`` is the one table of kinds; each kind is filled by the hook ``register_<kind>`` in
``panfw/hookspecs.py``. ``panfw.registry(kind)`` returns the registry of one kind, and
``Registry.build`` is the one way anything registered is built: it checks option names and passes
context values (bands, sensor, ratio, root, device, ...) only to factories that declare them.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import attrs

from panfw._suggest import did_you_mean, known_list
from panfw.errors import DuplicateNameError, RegistryError


@attrs.frozen
class Kind:
    """One kind of registered thing."""

    name: str       # plural, the registry's name: "models"
    singular: str   # in messages: "fusion block"
    alias: str      # accepted on the command line besides the plural: "fusion"

    @property
    def hook(self) -> str:
        """The hook that fills this registry."""
        return f"register_{self.name}"


KIND_TABLE: tuple[Kind, ...] = (
    Kind("models", "model", "model"),
    Kind("fusions", "fusion block", "fusion"),
    Kind("refines", "refine block", "refine"),
    Kind("losses", "loss", "loss"),
    Kind("datasets", "dataset", "dataset"),
    Kind("metrics", "metric", "metric"),
    Kind("runtimes", "runtime", "runtime"),
)
KINDS: tuple[str, ...] = tuple(k.name for k in KIND_TABLE)
SINGULAR: dict[str, str] = {k.name: k.singular for k in KIND_TABLE}
_BY_NAME: dict[str, Kind] = {**{k.alias: k for k in KIND_TABLE}, **{k.name: k for k in KIND_TABLE}}


def kind_of(name: str) -> Kind:
    """The kind called ``name`` ('models' or 'model'); unknown names are a RegistryError."""
    try:
        return _BY_NAME[name]
    except (KeyError, TypeError):
        raise RegistryError(f"unknown kind {name!r}{did_you_mean(name, _BY_NAME)}; "
                            f"accepted: {', '.join(KINDS)}") from None


def _signature(factory: Callable) -> tuple[dict[str, Any], bool]:
    """Keyword parameters of a factory (name -> default, or inspect.Parameter.empty) and whether it
    takes **kwargs."""
    try:
        sig = inspect.signature(factory)
    except (TypeError, ValueError):
        return {}, True
    params, var_kw = {}, False
    for p in sig.parameters.values():
        if p.kind is p.VAR_KEYWORD:
            var_kw = True
        elif p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY):
            params[p.name] = p.default
    return params, var_kw


def _summary(factory: Callable) -> str:
    doc = inspect.getdoc(factory) or ""
    return doc.strip().splitlines()[0] if doc.strip() else ""


@attrs.frozen
class Entry:
    """One registered thing: ``options`` are what a recipe may set (name -> default, or
    ``inspect.Parameter.empty`` when required); ``meta`` is the rest of the registration's keywords."""

    name: str
    kind: str
    factory: Callable
    plugin: str
    summary: str = ""
    options: dict = attrs.field(factory=dict)
    accepts_any_option: bool = False
    meta: dict = attrs.field(factory=dict)
    parameters: frozenset = frozenset()  # keyword parameters in the factory's signature

    def declares(self, key: str) -> bool:
        """Whether the factory names ``key`` in its signature or registered options (``**kwargs`` is
        not a declaration: context is never pushed into a factory that did not ask for it)."""
        return key in self.options or key in self.parameters

    def context_options(self, context: Mapping[str, Any] | None, options: Mapping[str, Any] | None = None
                        ) -> dict[str, Any]:
        """The context values this factory declares, minus those ``options`` set explicitly and
        those that are None."""
        options = options or {}
        return {k: v for k, v in (context or {}).items()
                if v is not None and k not in options and self.declares(k)}

    def check_options(self, options: Mapping[str, Any], where: str = "") -> None:
        """Refuse option names the factory does not accept, naming what it accepts."""
        if self.accepts_any_option:
            return
        for key in options:
            if key not in self.options:
                raise RegistryError(
                    f"{where}{SINGULAR[self.kind]} {self.name!r} has no option {key!r}"
                    f"{did_you_mean(key, self.options)}; accepted: {known_list(self.options)}")

    def build(self, *args: Any, context: Mapping[str, Any] | None = None, **options: Any) -> Any:
        """Check ``options``, add the declared ``context`` values, call the factory."""
        self.check_options(options)
        return self.factory(*args, **self.context_options(context, options), **options)


class Registry:
    """Registry of one kind (models, fusions, ...)."""

    def __init__(self, kind: str) -> None:
        self.kind = kind_of(kind).name
        self._entries: dict[str, Entry] = {}

    def add(self, name: str, factory: Callable, plugin: str = "<unknown>", *, summary: str | None = None,
            options: Mapping[str, Any] | None = None, **meta: Any) -> Entry:
        """Add a factory; a name already taken is a DuplicateNameError naming both plugins."""
        what = SINGULAR[self.kind]
        if not isinstance(name, str) or not name:
            raise RegistryError(f"plugin {plugin!r} registered a {what} with an invalid name {name!r}: "
                                f"a non-empty string is accepted")
        if not callable(factory):
            raise RegistryError(f"plugin {plugin!r} registered {what} {name!r} with a factory that is not "
                                f"callable ({type(factory).__name__})")
        if name in self._entries:
            first = self._entries[name].plugin
            by = (f"both times by plugin {plugin!r}; register it once" if first == plugin else
                  f"by plugin {first!r} and by plugin {plugin!r}; rename one of them")
            raise DuplicateNameError(self.kind, name, first, plugin, f"{what} {name!r} is registered twice: {by}")
        params, var_kw = _signature(factory)
        entry = Entry(name=name, kind=self.kind, factory=factory, plugin=plugin,
                      summary=summary or _summary(factory),
                      options=dict(options) if options is not None else dict(params),
                      accepts_any_option=var_kw, meta=meta, parameters=frozenset(params))
        self._entries[name] = entry
        return entry

    def remove(self, name: str) -> None:
        """Forget ``name`` (nothing happens when it is not registered)."""
        self._entries.pop(name, None)

    def remove_plugin(self, plugin: str) -> list[str]:
        """Forget everything ``plugin`` registered here; returns the names removed."""
        names = [n for n, e in self._entries.items() if e.plugin == plugin]
        for n in names:
            del self._entries[n]
        return names

    def get(self, name: str) -> Entry:
        """The entry for ``name``; unknown names list the known ones with a did-you-mean."""
        try:
            return self._entries[name]
        except (KeyError, TypeError):
            raise RegistryError(
                f"unknown {SINGULAR[self.kind]} {name!r}{did_you_mean(name, self._entries)}; "
                f"known: {known_list(self._entries)}") from None

    def build(self, name: str, *args: Any, context: Mapping[str, Any] | None = None, **options: Any) -> Any:
        """Build ``name``: options checked against the factory's, context passed where declared."""
        return self.get(name).build(*args, context=context, **options)

    def names(self) -> list[str]:
        """Registered names, sorted."""
        return sorted(self._entries)

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[Entry]:
        return iter(sorted(self._entries.values(), key=lambda e: e.name))

    def __len__(self) -> int:
        return len(self._entries)


def check_options(entry: Entry, options: Mapping[str, Any], where: str = "") -> None:
    """Refuse option names the factory does not accept (``entry.check_options``)."""
    entry.check_options(options, where)
