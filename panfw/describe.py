"""What ``panfw show`` prints: summary, options, and for models parameter count and measured FLOPs."""

from __future__ import annotations

import inspect

from panfw._suggest import did_you_mean
from panfw.errors import UserError
from panfw.registries import KINDS

_ALIASES = {"model": "models", "fusion": "fusions", "refine": "refines", "loss": "losses",
            "dataset": "datasets", "metric": "metrics"}


def normalise_kind(kind: str) -> str:
    """'model' or 'models' -> 'models'."""
    k = _ALIASES.get(kind, kind)
    if k not in KINDS:
        raise UserError(f"unknown kind {kind!r}{did_you_mean(kind, [*KINDS, *_ALIASES])}; "
                        f"accepted: {', '.join(KINDS)}")
    return k


def count_parameters(model) -> int:
    """Trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def measure_flops(model, bands: int = 4, size: int = 128, ratio: int = 4) -> int:
    """FLOPs (2 x MACs) of one forward pass at a PAN size of size x size, measured with
    torch.utils.flop_counter (not the 2 x params x H x W proxy the paper tables use)."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    lms = torch.rand(1, bands, size, size)
    pan = torch.rand(1, 1, size, size)
    ms = torch.rand(1, bands, size // ratio, size // ratio)
    model = model.eval()
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(lms, pan, ms)
    return int(counter.get_total_flops())


def describe(kind: str, name: str, bands: int = 4, size: int = 128) -> str:
    """A human-readable description of one registered entry."""
    import panfw

    kind = normalise_kind(kind)
    entry = panfw.registry(kind).get(name)
    lines = [f"{entry.name} ({kind[:-1] if kind != 'losses' else 'loss'}, from plugin {entry.plugin})"]
    if entry.summary:
        lines.append(f"  {entry.summary}")
    if entry.options:
        lines.append("  options:")
        for key, default in entry.options.items():
            shown = "(required)" if default is inspect.Parameter.empty else repr(default)
            lines.append(f"    {key} = {shown}")
    if entry.accepts_any_option:
        lines.append("  (accepts further keyword options)")
    if kind == "models":
        opts = {"bands": bands} if "bands" in entry.options or entry.accepts_any_option else {}
        model = entry.build(**opts)
        params = count_parameters(model)
        lines.append(f"  parameters: {params:,} (at {bands} bands)")
        try:
            flops = measure_flops(model, bands=bands, size=size)
            lines.append(f"  FLOPs: {flops / 1e9:.3f} G measured at PAN {size}x{size}, {bands} bands "
                         f"(paper proxy 2 x params x 128^2 = {2 * params * 128 * 128 / 1e9:.3f} G)")
        except Exception as exc:  # noqa: BLE001 - a model that cannot run on random input still shows
            lines.append(f"  FLOPs: not measured ({type(exc).__name__}: {exc})")
    return "\n".join(lines)
