"""Helpers shared by the datasets: band selection, splits, sample dicts."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from panfw.errors import DataError, UserError
from panfw.interfaces import SPLITS
from panfw.sensors import Sensor


def check_split(split: str, dataset: str) -> str:
    """The split if valid, else a UserError listing the accepted ones."""
    if split not in SPLITS:
        raise UserError(f"dataset {dataset!r}: unknown split {split!r}; accepted: {', '.join(SPLITS)}")
    return split


def band_indices(bands: str | Sequence[int], sensor: Sensor, n_bands: int | None = None,
                 where: str = "") -> tuple[int, ...] | None:
    """Resolve a band option: "all" -> None (every band), "bgrn" -> the sensor's B, G, R, NIR
    (0-based [1, 2, 4, 6] for 8-band WorldView; every band of a 4-band sensor), or explicit indices."""
    n = n_bands if n_bands is not None else sensor.n_bands
    if isinstance(bands, str):
        key = bands.lower()
        if key == "all":
            return None
        if key == "bgrn":
            if n == 4:
                return None
            if sensor.bgrn is not None and n == sensor.n_bands:
                return tuple(sensor.bgrn)
            raise UserError(f"{where}bands = 'bgrn' is defined for 4-band data and 8-band WorldView data, "
                            f"not {n} bands of sensor {sensor.name!r}; give explicit indices")
        raise UserError(f"{where}bands = {bands!r} is not accepted; use 'all', 'bgrn' or a list of "
                        f"0-based band indices below {n}")
    try:
        idx = tuple(int(i) for i in bands)
    except (TypeError, ValueError):
        raise UserError(f"{where}bands = {bands!r} is not accepted; use 'all', 'bgrn' or a list of "
                        f"0-based band indices below {n}") from None
    if not idx or any(i < 0 or i >= n for i in idx) or len(set(idx)) != len(idx):
        raise UserError(f"{where}bands = {list(idx)}: give distinct 0-based indices below {n}")
    return None if idx == tuple(range(n)) else idx


def select(x: torch.Tensor, idx: tuple[int, ...] | None) -> torch.Tensor:
    """Bands ``idx`` of a (C,H,W) tensor (all when None)."""
    return x if idx is None else x[list(idx)]


def check_finite(sample: dict, where: str, index: int) -> None:
    """DataError naming the file, key and sample index when a value is NaN or infinite."""
    for key, value in sample.items():
        if isinstance(value, torch.Tensor) and not torch.isfinite(value).all():
            bad = (~torch.isfinite(value)).sum().item()
            raise DataError(f"{where}: key {key!r}, sample {index}: {bad} non-finite value(s) (NaN or inf); "
                            "every value must be a finite number")
