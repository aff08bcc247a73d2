"""Which modules stay FP32 when a model is cast to a reduced precision for export."""

from __future__ import annotations

from torch import nn


def keeps_fp32(module: nn.Module, precision: str) -> bool:
    """Whether ``module`` stays FP32 under ``precision`` ("fp16", "bf16").

    A module class says so with ``keep_fp32 = True`` (every reduced precision) or a tuple of the
    precisions that need it, e.g. ``("fp16",)``; torch's own LayerNorm and GroupNorm always do."""
    flag = getattr(module, "keep_fp32", False)
    if isinstance(module, (nn.LayerNorm, nn.GroupNorm)) or flag is True:
        return True
    return isinstance(flag, (tuple, list, set, frozenset)) and precision in flag
