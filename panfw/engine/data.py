"""Datasets for a run: the mixed training set, the test sets, and a sampler that can resume mid-epoch."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import attrs
import torch
from torch.utils.data import Dataset, Sampler

from panfw.config.recipe import DatasetSpec, Recipe
from panfw.data import collate, mix
from panfw.errors import DataError, UserError


def create_dataset(spec: DatasetSpec, split: str, root: str = "") -> Any:
    """A registered dataset for one split; ``root`` is passed only when given and accepted."""
    import panfw

    return panfw.registry("datasets").build(spec.name, split, context={"root": root or None}, **spec.options)


def data_info(ds: Any) -> dict:
    """What a dataset says about itself: sensor, bands, ratio (contract attributes)."""
    sample = None
    bands = getattr(ds, "bands", None)
    ratio = getattr(ds, "ratio", None)
    sensor = getattr(ds, "sensor", None)
    if bands is None or ratio is None or sensor is None:
        if len(ds) == 0:
            raise DataError(f"dataset {type(ds).__name__} is empty")
        sample = ds[0]
        bands = bands or int(sample["lms"].shape[0])
        ratio = ratio or int(sample["pan"].shape[-1] // sample["ms"].shape[-1])
        sensor = sensor or str(sample.get("sensor", "generic"))
    return {"sensor": str(sensor), "bands": int(bands), "ratio": int(ratio)}


def collate_fn() -> Any:
    """The core collate (it keeps "sensor" a list of str)."""
    return collate


@attrs.define
class TrainData:
    """The training set of a run and what the model needs to know about it."""

    dataset: Any
    parts: list[Any]
    infos: list[dict]
    bands: int
    ratio: int
    sensors: list[str]

    @property
    def sensor(self) -> str:
        """The one sensor of a single-sensor run, else "" (a mixed, all-in-one run)."""
        return self.sensors[0] if len(set(self.sensors)) == 1 else ""


def build_train_data(recipe: Recipe, seed: int) -> TrainData:
    """The training datasets of ``data.train``, mixed per ``data.mixing``."""
    if not recipe.data.train:
        raise UserError("recipe: data.train: no training dataset; add [[data.train]] name = \"synthetic\" "
                        "(or wv3, gf2, ...)")
    parts = [create_dataset(spec, "train", recipe.data.root) for spec in recipe.data.train]
    infos = [data_info(p) for p in parts]
    bands = {i["bands"] for i in infos}
    if len(bands) > 1:
        listing = ", ".join(f"{s.name} ({i['bands']} bands)" for s, i in zip(recipe.data.train, infos))
        raise DataError(f"recipe: data.train: the training sets have different band counts ({listing}); "
                        "select the same bands in each, e.g. bands = \"bgrn\"")
    ratios = {i["ratio"] for i in infos}
    if len(ratios) > 1:
        raise DataError(f"recipe: data.train: the training sets have different PAN/MS ratios {sorted(ratios)}")
    dataset = mix(parts, recipe.data.mixing, seed)
    if recipe.data.cache:
        dataset = _cached(dataset)
    return TrainData(dataset=dataset, parts=parts, infos=infos, bands=bands.pop(), ratio=ratios.pop(),
                     sensors=[i["sensor"] for i in infos])


class _cached(Dataset):
    """Keep every sample in memory after its first read (``data.cache``)."""

    def __init__(self, base: Any) -> None:
        self.base = base
        self.store: dict[int, Any] = {}
        for attr in ("sensor", "bands", "ratio"):
            if hasattr(base, attr):
                setattr(self, attr, getattr(base, attr))

    def __len__(self) -> int:
        return len(self.base)

    def __getitem__(self, i: int) -> Any:
        if i not in self.store:
            self.store[i] = self.base[i]
        return self.store[i]


@attrs.define
class TestSet:
    """One test dataset at one resolution, with the label the report uses."""

    label: str
    spec: DatasetSpec
    resolution: str  # "rr" or "fr"
    dataset: Any
    sensor: str
    bands: int
    ratio: int


def test_specs(recipe: Recipe) -> list[DatasetSpec]:
    """``data.test``, or the training datasets when it is empty."""
    return list(recipe.data.test or recipe.data.train)


def labels_for(specs: list[DatasetSpec], sensors: list[str]) -> list[str]:
    """Report labels: the dataset name, or name/sensor when a name is used more than once."""
    names = [s.name for s in specs]
    out = []
    for spec, sensor in zip(specs, sensors):
        label = spec.name if names.count(spec.name) == 1 else f"{spec.name}/{sensor}"
        out.append(label)
    for i, label in enumerate(out):  # still ambiguous: number them
        if out.count(label) > 1:
            out[i] = f"{label}#{out[:i].count(label) + 1}"
    return out


def build_test_sets(specs: list[DatasetSpec], root: str = "", resolutions: tuple[str, ...] = ("rr", "fr"),
                    max_images: int = 0) -> list[TestSet]:
    """Reduced- and full-resolution test sets (splits test_rr / test_fr) of each spec."""
    built: list[tuple[DatasetSpec, str, Any, dict]] = []
    for spec in specs:
        for res in resolutions:
            ds = create_dataset(spec, f"test_{res}", root)
            if max_images and len(ds) > max_images:
                ds = torch.utils.data.Subset(ds, range(max_images))
                base = ds.dataset
            else:
                base = ds
            built.append((spec, res, ds, data_info(base)))
    # a label per spec (the rr and fr sets of one spec share it)
    first: dict[int, dict] = {}
    for spec, _res, _ds, info in built:
        first.setdefault(id(spec), info)
    label_of = dict(zip([id(s) for s in specs], labels_for(specs, [first[id(s)]["sensor"] for s in specs])))
    return [TestSet(label=label_of[id(spec)], spec=spec, resolution=res, dataset=ds, sensor=info["sensor"],
                    bands=info["bands"], ratio=info["ratio"]) for spec, res, ds, info in built]


class ResumableSampler(Sampler[int]):
    """Shuffled indices for one rank, the same for every rank count, resumable mid-epoch.

    Epoch ``e`` uses the permutation of a generator seeded with ``seed + e`` (global RNG untouched).
    Global batch ``i`` is positions ``[i*B, (i+1)*B)`` of the permutation; rank ``r`` of ``W`` takes
    the ``r``-th contiguous slice of ``B/W`` of it, so N ranks see exactly the batches one process
    would. Incomplete last batches are dropped. ``start(batch)`` skips the batches already trained.
    """

    def __init__(self, n: int, global_batch: int, seed: int = 0, rank: int = 0, world_size: int = 1,
                 shuffle: bool = True) -> None:
        if global_batch % world_size:
            raise UserError(f"train.batch_size = {global_batch} is not divisible by the {world_size} "
                            "processes; use a multiple of the process count")
        if n < global_batch:
            raise DataError(f"the training set has {n} samples, fewer than one batch "
                            f"(train.batch_size = {global_batch}); lower train.batch_size")
        self.n, self.global_batch, self.seed = n, global_batch, seed
        self.rank, self.world_size, self.shuffle = rank, world_size, shuffle
        self.local_batch = global_batch // world_size
        self.epoch = 0
        self.first_batch = 0

    @property
    def batches_per_epoch(self) -> int:
        return self.n // self.global_batch

    def set_epoch(self, epoch: int, start_batch: int = 0) -> None:
        """Choose the epoch's permutation and the first batch to yield."""
        self.epoch, self.first_batch = epoch, start_batch

    def __iter__(self) -> Iterator[int]:
        if self.shuffle:
            g = torch.Generator().manual_seed(self.seed + self.epoch)
            perm = torch.randperm(self.n, generator=g).tolist()
        else:
            perm = list(range(self.n))
        lo = self.rank * self.local_batch
        for b in range(self.first_batch, self.batches_per_epoch):
            base = b * self.global_batch + lo
            yield from perm[base:base + self.local_batch]

    def __len__(self) -> int:
        return max(0, self.batches_per_epoch - self.first_batch) * self.local_batch


def eval_batch_size(sample: dict, pixels: int = 512 * 512) -> int:
    """Images per evaluation batch: as many as fit ``pixels`` PAN pixels (at least one)."""
    h, w = sample["pan"].shape[-2:]
    return max(1, min(16, pixels // max(1, h * w)))


def iterate_batches(ds: Any, batch_size: int) -> Iterator[dict]:
    """Batches of a test set in order, collated by the core collate."""
    collate = collate_fn()
    n = len(ds)
    for start in range(0, n, batch_size):
        items = [ds[i] for i in range(start, min(n, start + batch_size))]
        if len({tuple(it["pan"].shape) for it in items}) == 1:
            yield collate(items)
        else:  # scenes of different sizes (e.g. a folder of whole images): one at a time
            yield from (collate([it]) for it in items)
