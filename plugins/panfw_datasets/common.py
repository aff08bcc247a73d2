"""Helpers shared by the datasets: splits and band picking."""

from __future__ import annotations

import torch

from panfw.errors import UserError
from panfw.interfaces import SPLITS


def check_split(split: str, dataset: str) -> str:
    """The split if valid, else a UserError listing the accepted ones."""
    if split not in SPLITS:
        raise UserError(f"dataset {dataset!r}: unknown split {split!r}; accepted: {', '.join(SPLITS)}")
    return split


def as_tuple(idx: list[int] | None) -> tuple[int, ...] | None:
    """A band selection (``panfw.ops.select_bands``) as a tuple, None for every band."""
    return None if idx is None else tuple(idx)


def select(x: torch.Tensor, idx: tuple[int, ...] | None) -> torch.Tensor:
    """Bands ``idx`` of a (C,H,W) tensor (all when None)."""
    return x if idx is None else x[list(idx)]
