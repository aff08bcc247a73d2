"""What ``panfw list`` and ``panfw show`` print: summary, options, metadata, and for models the
parameter count and measured FLOPs; as text or as JSON-safe records (the documentation site reads
``panfw list KIND --json``)."""

from __future__ import annotations

import inspect
import math
from typing import Any

from panfw.evaluation.cost import FIGURE_SIZE, count_params, measure_flops
from panfw.registries import Entry, kind_of


def json_safe(value: Any) -> Any:
    """``value`` as JSON types: tuples become lists, non-finite floats and other objects strings."""
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [json_safe(v) for v in (sorted(value, key=str) if isinstance(value, (set, frozenset)) else value)]
    return getattr(value, "__name__", None) or repr(value)


def _int_default(entry: Entry, key: str) -> int | None:
    value = entry.options.get(key)
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def entry_cost(entry: Entry, bands: int | None = None, size: int = FIGURE_SIZE) -> dict[str, Any]:
    """Parameters at default options (``bands`` when given) and FLOPs measured at PAN size x size.

    A factory that fails to build raises (a bug in the plugin); a model the FLOP counter cannot run
    gets ``flops`` None and the reason in ``error``."""
    bands = bands or entry.meta.get("fixed_bands") or _int_default(entry, "bands") or 4
    ratio = _int_default(entry, "ratio") or 4
    model = entry.build(context={"bands": bands})
    out: dict[str, Any] = {"bands": bands, "ratio": ratio, "size": size, "params": count_params(model),
                           "params_total": count_params(model, trainable=False), "flops": None, "error": None}
    try:
        out["flops"] = measure_flops(model, bands=bands, size=size, ratio=ratio)
    except Exception as exc:  # noqa: BLE001 - a model that cannot run on random input still shows
        out["error"] = f"{type(exc).__name__}: {exc}"
    return out


def record(entry: Entry, cost: bool = True, bands: int | None = None, size: int = FIGURE_SIZE) -> dict[str, Any]:
    """One entry as a JSON-safe dict: name, kind, summary, plugin, options (name, default,
    required), accepts_any_option, meta, and for models ``cost`` (see ``entry_cost``)."""
    out: dict[str, Any] = {
        "name": entry.name, "kind": entry.kind, "summary": entry.summary, "plugin": entry.plugin,
        "options": [{"name": k, "required": d is inspect.Parameter.empty,
                     "default": None if d is inspect.Parameter.empty else json_safe(d)}
                    for k, d in entry.options.items()],
        "accepts_any_option": entry.accepts_any_option,
        "meta": json_safe(entry.meta),
    }
    if cost and entry.kind == "models":
        out["cost"] = entry_cost(entry, bands=bands, size=size)
    return out


def describe(kind: str, name: str, bands: int | None = None, size: int = FIGURE_SIZE) -> str:
    """A human-readable description of one registered entry."""
    from panfw.plugins import registry

    kind = kind_of(kind)
    entry = registry(kind.name).get(name)
    rec = record(entry, bands=bands, size=size)
    lines = [f"{entry.name} ({kind.singular}, from plugin {entry.plugin})"]
    if entry.summary:
        lines.append(f"  {entry.summary}")
    if rec["options"]:
        lines.append("  options:")
        for opt in rec["options"]:
            shown = "(required)" if opt["required"] else repr(entry.options[opt["name"]])
            lines.append(f"    {opt['name']} = {shown}")
    if entry.accepts_any_option:
        lines.append("  (accepts further keyword options)")
    for key, value in entry.meta.items():
        lines.append(f"  {key}: {value}")
    if "cost" in rec:
        c = rec["cost"]
        frozen = c["params_total"] - c["params"]
        total = f", {frozen:,} frozen: {c['params_total']:,} in all" if frozen else ""
        lines.append(f"  parameters: {c['params']:,} trainable{total} (at {c['bands']} bands)")
        if c["flops"] is not None:
            proxy = 2 * c["params"] * FIGURE_SIZE ** 2 / 1e9
            lines.append(f"  FLOPs: {c['flops'] / 1e9:.3f} G measured at PAN {size}x{size}, {c['bands']} bands "
                         f"(paper proxy 2 x params x {FIGURE_SIZE}^2 = {proxy:.3f} G)")
        else:
            lines.append(f"  FLOPs: not measured ({c['error']})")
    return "\n".join(lines)
