"""Typed registries: name -> factory, one-line summary, options and the providing plugin.

``panfw.registry(kind)`` returns the registry of one kind.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterator
from typing import Any

import attrs

from panfw._suggest import did_you_mean, known_list
from panfw.errors import RegistryError

KINDS = ("models", "fusions", "refines", "losses", "datasets", "metrics")
SINGULAR = {"models": "model", "fusions": "fusion block", "refines": "refine block", "losses": "loss",
            "datasets": "dataset", "metrics": "metric"}


def _factory_options(factory: Callable) -> tuple[dict[str, Any], bool]:
    """Keyword options a factory accepts (name -> default, or inspect.Parameter.empty) and
    whether it takes **kwargs."""
    try:
        sig = inspect.signature(factory)
    except (TypeError, ValueError):
        return {}, True
    options, var_kw = {}, False
    for p in sig.parameters.values():
        if p.kind is p.VAR_KEYWORD:
            var_kw = True
        elif p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY):
            options[p.name] = p.default
    return options, var_kw


def _summary(factory: Callable) -> str:
    doc = inspect.getdoc(factory) or ""
    return doc.strip().splitlines()[0] if doc.strip() else ""


@attrs.frozen
class Entry:
    """One registered thing."""

    name: str
    kind: str
    factory: Callable
    plugin: str
    summary: str = ""
    options: dict = attrs.field(factory=dict)
    accepts_any_option: bool = False
    meta: dict = attrs.field(factory=dict)

    def build(self, *args: Any, **options: Any) -> Any:
        """Call the factory."""
        return self.factory(*args, **options)


class Registry:
    """Registry of one kind (models, fusions, ...)."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._entries: dict[str, Entry] = {}

    def add(self, name: str, factory: Callable, plugin: str = "<unknown>", **meta: Any) -> Entry:
        """Add a factory; a name already taken by another plugin is an error naming both plugins."""
        if not isinstance(name, str) or not name:
            raise RegistryError(f"plugin {plugin!r} registered a {SINGULAR[self.kind]} with an invalid "
                                f"name {name!r}: a non-empty string is accepted")
        if name in self._entries:
            other = self._entries[name].plugin
            raise RegistryError(f"{SINGULAR[self.kind]} {name!r} is registered twice: by plugin {other!r} "
                                f"and by plugin {plugin!r}; rename one of them")
        options, var_kw = _factory_options(factory)
        if "options" in meta:
            options = dict(meta.pop("options"))
        summary = meta.pop("summary", None) or _summary(factory)
        entry = Entry(name=name, kind=self.kind, factory=factory, plugin=plugin, summary=summary,
                      options=options, accepts_any_option=var_kw, meta=meta)
        self._entries[name] = entry
        return entry

    def remove(self, name: str) -> None:
        self._entries.pop(name, None)

    def get(self, name: str) -> Entry:
        """The entry for ``name``; unknown names list the known ones with a did-you-mean."""
        try:
            return self._entries[name]
        except (KeyError, TypeError):
            raise RegistryError(
                f"unknown {SINGULAR[self.kind]} {name!r}{did_you_mean(name, self._entries)}; "
                f"known: {known_list(self._entries)}") from None

    def build(self, name: str, *args: Any, **options: Any) -> Any:
        """Build ``name``, checking option names against what the factory accepts."""
        entry = self.get(name)
        check_options(entry, options)
        return entry.factory(*args, **options)

    def names(self) -> list[str]:
        return sorted(self._entries)

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[Entry]:
        return iter(sorted(self._entries.values(), key=lambda e: e.name))

    def __len__(self) -> int:
        return len(self._entries)


def check_options(entry: Entry, options: dict, where: str = "") -> None:
    """Refuse option names the factory does not accept."""
    if entry.accepts_any_option:
        return
    for key in options:
        if key not in entry.options:
            raise RegistryError(
                f"{where}{SINGULAR[entry.kind]} {entry.name!r} has no option {key!r}"
                f"{did_you_mean(key, entry.options)}; accepted: {known_list(entry.options)}")
