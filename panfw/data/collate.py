"""Collation of sample dicts into batches (``sensor`` and other strings stay lists of str)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch.utils.data import default_collate

from panfw.errors import DataError


def collate(samples: Sequence[dict]) -> dict:
    """Stack a list of samples: tensors to (B, ...), ``sensor`` (and other strings) to a list of str."""
    if not samples:
        raise DataError("empty batch")
    out: dict[str, Any] = {}
    for key in samples[0]:
        values = [b[key] for b in samples]
        if isinstance(values[0], torch.Tensor):
            shapes = {tuple(v.shape) for v in values}
            if len(shapes) > 1:
                sensors = sorted({str(b.get("sensor", "?")) for b in samples})
                raise DataError(f"cannot batch key {key!r}: samples have shapes {sorted(shapes)} (sensors "
                                f"{', '.join(sensors)}); use patches of one size and the same bands in every "
                                "dataset of a batch")
            out[key] = torch.stack(values)
        elif isinstance(values[0], str):
            out[key] = [str(v) for v in values]
        else:
            out[key] = default_collate(values)
    return out
