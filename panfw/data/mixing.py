"""All-in-one mixing of several datasets: concatenated, or balanced per sensor."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch.utils.data import Dataset

from panfw.errors import DataError, UserError

MODES = ("concat", "balanced")


def _describe(ds: Any, i: int) -> str:
    name = getattr(ds, "name", None) or type(ds).__name__
    return f"#{i} {name} ({getattr(ds, 'sensor', '?')}, {getattr(ds, 'bands', '?')} bands)"


class MixedDataset(Dataset):
    """Several datasets behind one index map; items keep their own ``sensor``.

    ``concat`` indexes every sample of every part once (the loader shuffles); ``balanced`` draws the
    same number of samples from each sensor (the largest sensor's count): smaller sensors are
    repeated in seeded random orders, datasets of one sensor are pooled."""

    def __init__(self, parts: Sequence[Any], mode: str = "concat", seed: int = 0) -> None:
        if mode not in MODES:
            raise UserError(f"unknown mixing mode {mode!r}; accepted: {', '.join(MODES)}")
        if not parts:
            raise DataError("nothing to mix: no dataset given")
        self.parts = list(parts)
        self.mode, self.seed = mode, seed
        bands = {getattr(p, "bands", None) for p in self.parts}
        if len(bands) > 1:
            listing = ", ".join(_describe(p, i) for i, p in enumerate(self.parts))
            raise DataError(f"cannot mix datasets with different band counts: {listing}; select the same "
                            "bands in each, e.g. bands = \"bgrn\" (B, G, R, NIR)")
        ratios = {getattr(p, "ratio", None) for p in self.parts}
        if len(ratios) > 1:
            listing = ", ".join(f"{_describe(p, i)} ratio {getattr(p, 'ratio', '?')}"
                                for i, p in enumerate(self.parts))
            raise DataError(f"cannot mix datasets with different PAN/MS ratios: {listing}")
        self.bands = bands.pop()
        self.ratio = ratios.pop()
        self.sensors = tuple(dict.fromkeys(str(getattr(p, "sensor", "")) for p in self.parts))
        self.sensor = "+".join(self.sensors)
        self.name = "mix(" + ", ".join(str(getattr(p, "name", getattr(p, "sensor", "?"))) for p in self.parts) + ")"
        pairs = [(pi, j) for pi, p in enumerate(self.parts) for j in range(len(p))]
        if mode == "concat":
            self.index = torch.tensor(pairs, dtype=torch.long).view(-1, 2)
        else:
            self.index = self._balanced(pairs)

    def _balanced(self, pairs: list[tuple[int, int]]) -> torch.Tensor:
        groups: dict[str, list[tuple[int, int]]] = {}
        for pi, j in pairs:
            groups.setdefault(str(getattr(self.parts[pi], "sensor", pi)), []).append((pi, j))
        target = max(len(g) for g in groups.values())
        g = torch.Generator().manual_seed(int(self.seed))
        rows: list[tuple[int, int]] = []
        for name in sorted(groups):
            members = groups[name]
            if not members:
                continue
            picks: list[tuple[int, int]] = []
            while len(picks) < target:
                perm = torch.randperm(len(members), generator=g).tolist()
                picks += [members[k] for k in perm[:target - len(picks)]]
            rows += picks
        return torch.tensor(rows, dtype=torch.long).view(-1, 2)

    def counts(self) -> dict[str, int]:
        """How many items of the index map come from each sensor."""
        out: dict[str, int] = {}
        for pi in self.index[:, 0].tolist():
            s = str(getattr(self.parts[pi], "sensor", pi))
            out[s] = out.get(s, 0) + 1
        return out

    def __len__(self) -> int:
        return self.index.shape[0]

    def __getitem__(self, i: int) -> dict:
        pi, j = self.index[i].tolist()
        return self.parts[pi][j]

    def __repr__(self) -> str:
        return f"MixedDataset({self.mode}, {len(self)} items, {self.counts()})"


def mix(datasets: Sequence[Any], mode: str = "concat", seed: int = 0) -> Any:
    """All-in-one training set: ``concat`` (every sample once; the paper's way, shuffled by the loader)
    or ``balanced`` (equal draws per sensor). One dataset in ``concat`` mode is returned as it is.
    Different band counts or ratios are a DataError."""
    if len(datasets) == 1 and mode == "concat":
        return datasets[0]
    return MixedDataset(datasets, mode, seed)
