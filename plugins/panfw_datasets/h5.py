"""PanCollection h5 datasets (wv3, gf2, qb, wv2): file discovery, validation, lazy or cached reading.

Files hold float64 arrays in raw digital numbers, N x C x H x W, keys ``gt`` (not in full-resolution
test files), ``lms``, ``ms`` and ``pan``. Items are divided by the sensor's maximum DN.
"""

from __future__ import annotations

import fnmatch
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from panfw.data import data_root
from panfw.errors import DataError, UserError
from panfw.ops.bands import select_bands
from panfw.sensors import Sensor, get_sensor
from panfw_datasets.common import as_tuple, check_split, select

# split -> file-name patterns ({s} = sensor); upstream names first, then the Hugging Face names
FILE_PATTERNS = {
    "train": ("train_{s}.h5", "train_{s}_*.h5"),
    "valid": ("valid_{s}.h5", "valid_{s}_*.h5"),
    "test_rr": ("test_{s}_multiExm1.h5",),
    "test_fr": ("test_{s}_OrigScale_multiExm1.h5",),
}
# The Hugging Face mirror (elsting/PanCollection) appends the training-set size to the names.
HF_NAMES = {
    "wv3": {"train": "train_wv3_9714.h5", "valid": "valid_wv3_9714.h5"},
    "qb": {"train": "train_qb_17139.h5", "valid": "valid_qb_17139.h5"},
    "gf2": {"train": "train_gf2_19809.h5", "valid": "valid_gf2_19809.h5"},
}
SENSORS = ("wv3", "gf2", "qb", "wv2")
TRAIN_SETS = {"wv3", "gf2", "qb"}  # WorldView-2 has test sets only
BROKEN = {"train_wv2_15084.h5": "168 MB cannot hold 15084 samples (about 8.6 GB): a broken upload"}
SOURCES = ("Hugging Face: https://huggingface.co/datasets/elsting/PanCollection ; "
           "upstream: https://github.com/liangjiandeng/PanCollection (links to the h5 files)")
KEYS = ("gt", "lms", "ms", "pan")


def expected_names(sensor: str, split: str) -> list[str]:
    """File names (patterns) accepted for a sensor's split, upstream and Hugging Face spellings."""
    return [p.format(s=sensor) for p in FILE_PATTERNS[split]]


def _h5_files(root: Path, depth: int = 3) -> list[Path]:
    out: list[Path] = []
    base = len(root.parts)
    for dirpath, dirnames, filenames in os.walk(root):
        if len(Path(dirpath).parts) - base >= depth:
            dirnames[:] = []
        dirnames.sort()
        out += [Path(dirpath) / f for f in sorted(filenames) if f.lower().endswith(".h5")]
    return out


def find_file(root: Path, sensor: str, split: str, files: list[Path] | None = None) -> Path | None:
    """The first file under ``root`` (3 levels deep) whose name matches the split's patterns
    (case-insensitive), shallowest first; known-broken uploads are skipped."""
    files = _h5_files(root) if files is None else files
    for pattern in expected_names(sensor, split):
        hits = [f for f in files if fnmatch.fnmatch(f.name.lower(), pattern.lower())
                and f.name not in BROKEN]
        if hits:
            return min(hits, key=lambda f: (len(f.parts), str(f)))
    return None


def resolve_file(name: str, sensor: Sensor, split: str, root, file) -> Path:
    """The h5 file of a dataset split: ``file`` when given, else found under root / $PANFW_DATA."""
    if file:
        path = Path(file).expanduser()
        if not path.is_file():
            raise DataError(f"dataset {name!r}: file {str(path)!r} does not exist")
        return path
    if split in ("train", "valid") and name not in TRAIN_SETS:
        raise DataError(f"dataset {name!r} has no {split} set in PanCollection (WorldView-2 is test-only, "
                        f"used for generalisation; its HF train_wv2_15084.h5 is a broken upload); use it for "
                        f"test_rr/test_fr, train on wv3/gf2/qb, or pass file=... for your own h5")
    base = data_root(root)
    if base is None:
        raise DataError(f"dataset {name!r}: no data folder; set data.root in the recipe or the PANFW_DATA "
                        f"environment variable to the folder holding {expected_names(name, split)[0]} "
                        f"({SOURCES})")
    if not base.is_dir():
        raise DataError(f"dataset {name!r}: data folder {str(base)!r} does not exist")
    path = find_file(base, name, split)
    if path is None:
        raise DataError(f"dataset {name!r}, split {split}: no file named "
                        f"{' or '.join(expected_names(name, split))} under {str(base)!r} (searched 3 levels "
                        f"deep); `panfw data check {base}` lists what is there ({SOURCES})")
    return path


def validate_layout(path: Path | str, f: Any, sensor: Sensor, split: str | None) -> dict:
    """Check keys, shapes and ratio of an open h5 file; return its layout (n, keys, shapes)."""
    where = f"file {str(path)!r}"
    need = ["lms", "ms", "pan"] + (["gt"] if split in (None, "train", "valid", "test_rr") else [])
    if split is None and "gt" not in f:
        need.remove("gt")
    for key in need:
        if key not in f:
            raise DataError(f"{where}: missing key {key!r} (found: {', '.join(sorted(f.keys())) or 'none'}); "
                            f"a PanCollection {'full' if split == 'test_fr' else 'reduced'}-resolution file "
                            f"has keys {', '.join(need)}")
    shapes = {k: tuple(f[k].shape) for k in KEYS if k in f}
    for key, shape in shapes.items():
        if len(shape) != 4:
            raise DataError(f"{where}: key {key!r} has shape {shape}; expected N x C x H x W (4-D)")
    n = shapes["pan"][0]
    c = sensor.n_bands
    for key, shape in shapes.items():
        if shape[0] != n:
            raise DataError(f"{where}: key {key!r} has {shape[0]} samples but 'pan' has {n}")
        want_c = 1 if key == "pan" else c
        if shape[1] != want_c:
            raise DataError(f"{where}: key {key!r} has {shape[1]} band(s) (shape {shape}); sensor "
                            f"{sensor.name!r} data needs {want_c}")
    h, w = shapes["pan"][2:]
    for key in ("lms", "gt"):
        if key in shapes and shapes[key][2:] != (h, w):
            raise DataError(f"{where}: key {key!r} is {shapes[key][2]}x{shapes[key][3]} but 'pan' is "
                            f"{h}x{w}; they must match")
    mh, mw = shapes["ms"][2:]
    r = sensor.ratio
    if (mh * r, mw * r) != (h, w):
        raise DataError(f"{where}: key 'ms' is {mh}x{mw} and 'pan' {h}x{w}: PAN/MS ratio "
                        f"{h / max(mh, 1):g} but sensor {sensor.name!r} needs {r} (ms = pan / {r})")
    if n == 0:
        raise DataError(f"{where}: no samples (key 'pan' has shape {shapes['pan']})")
    return {"n": n, "shapes": shapes}


def _open(path: Path):
    import h5py

    try:
        return h5py.File(path, "r")
    except OSError as exc:
        raise DataError(f"file {str(path)!r} is not a readable HDF5 file: {exc}") from None


class PanCollectionH5(Dataset):
    """One PanCollection h5 file: items ms/lms/pan(/gt) float32 in [0,1] and the sensor name.

    Reading is lazy (the file is opened once per worker process and one sample is read at a time);
    ``cache=True`` reads the whole file once into float32 memory."""

    def __init__(self, path: str | os.PathLike, sensor: str | Sensor, split: str = "train",
                 bands: str | Sequence[int] = "all", cache: bool = False, name: str | None = None) -> None:
        self.path = Path(path)
        spec = get_sensor(sensor)
        self.split = split
        self.name = name or spec.name
        self.sensor = spec.name
        self.ratio = spec.ratio
        self.scale = float(spec.max_dn)
        self._spec = spec
        self.band_indices = as_tuple(select_bands(bands, spec.n_bands, spec, where=f"dataset {self.name!r}: "))
        self.bands = len(self.band_indices) if self.band_indices is not None else spec.n_bands
        with _open(self.path) as f:
            layout = validate_layout(self.path, f, spec, split)
            self.keys = [k for k in KEYS if k in f and not (k == "gt" and split == "test_fr")]
            self._n = layout["n"]
            self.shapes = layout["shapes"]
        self._h5 = None
        self._pid = None
        self._cache: dict[str, torch.Tensor] | None = None
        if cache:
            self._cache = self._read_all()
        else:
            self[0]  # the first sample: catches a NaN file early  # noqa: B018

    def __len__(self) -> int:
        return self._n

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state["_h5"], state["_pid"] = None, None
        return state

    def _file(self):
        if self._h5 is None or self._pid != os.getpid():
            self._h5 = _open(self.path)
            self._pid = os.getpid()
        return self._h5

    def _bad(self, key: str, index: int, count: int) -> DataError:
        return DataError(f"file {str(self.path)!r}: key {key!r}, sample {index}: {count} non-finite value(s) "
                         "(NaN or inf); every value must be a finite number")

    def _read_all(self, block: int = 256) -> dict[str, torch.Tensor]:
        f = self._file()
        out = {}
        for key in self.keys:
            ds = f[key]
            arr = np.empty(ds.shape, dtype=np.float32)
            for a in range(0, self._n, block):
                chunk = np.asarray(ds[a:a + block], dtype=np.float64)
                finite = np.isfinite(chunk).reshape(chunk.shape[0], -1).all(axis=1)
                if not finite.all():
                    i = int(np.argmin(finite))
                    raise self._bad(key, a + i, int((~np.isfinite(chunk[i])).sum()))
                arr[a:a + block] = chunk / self.scale
            t = torch.from_numpy(arr)
            if key != "pan" and self.band_indices is not None:
                t = t[:, list(self.band_indices)].contiguous()
            out[key] = t
        return out

    def __getitem__(self, index: int) -> dict:
        if index < 0:
            index += self._n
        if not 0 <= index < self._n:
            raise IndexError(f"sample {index} out of range for {self._n} samples in {str(self.path)!r}")
        item: dict[str, Any] = {}
        if self._cache is not None:
            for key in self.keys:
                item[key] = self._cache[key][index]
        else:
            f = self._file()
            for key in self.keys:
                a = np.asarray(f[key][index], dtype=np.float64)
                if not np.isfinite(a).all():
                    raise self._bad(key, index, int((~np.isfinite(a)).sum()))
                t = torch.from_numpy((a / self.scale).astype(np.float32))
                item[key] = t if key == "pan" else select(t, self.band_indices)
        item["sensor"] = self.sensor
        return item

    def __repr__(self) -> str:
        return (f"PanCollectionH5({self.name}, {self.split}, {self._n} samples, {self.bands} bands, "
                f"{str(self.path)!r}{', cached' if self._cache is not None else ''})")


def _factory(name: str):
    sensor = get_sensor(name)

    def factory(split: str, root: str | None = None, bands: str | Sequence[int] = "all", cache: bool = False,
                file: str | None = None) -> PanCollectionH5:
        check_split(split, name)
        path = resolve_file(name, sensor, split, root, file)
        return PanCollectionH5(path, sensor, split, bands=bands, cache=cache, name=name)

    factory.__name__ = name
    factory.__doc__ = (f"PanCollection {sensor.title} ({sensor.n_bands} bands, {sensor.bit_depth}-bit, "
                       f"{'test sets only' if name not in TRAIN_SETS else 'train/valid/test_rr/test_fr'}) "
                       f"from h5 files under root or $PANFW_DATA.\n\n"
                       f"Options: bands 'all' | 'bgrn' | [indices]; cache (read the whole file into float32 "
                       f"memory); file (an explicit h5 path instead of the search).")
    return factory


DATASETS = {name: _factory(name) for name in SENSORS}


# ---- inspection (panfw data check / info) ----------------------------------------------------------

def guess_sensor(path: Path, shapes: dict, max_value: float | None) -> str:
    """A best guess of the sensor of a file from its name, band count and value range."""
    low = path.name.lower()
    for s in SENSORS:
        if f"_{s}" in low or low.startswith(f"{s}_"):
            return s
    c = shapes.get("ms", shapes.get("lms", (0, 0)))[1]
    if c == 8:
        return "wv3 or wv2 (8 bands, 11-bit)"
    if c == 4:
        if max_value is not None and max_value <= 1023:
            return "gf2 (4 bands, values <= 1023: 10-bit)"
        return "qb (4 bands, 11-bit)"
    return "unknown"


def inspect_file(path: str | os.PathLike, max_samples: int = 32) -> dict:
    """Keys, shapes, dtypes and the value range of the first ``max_samples`` samples of an h5 file."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"file {str(path)!r} does not exist")
    info: dict[str, Any] = {"file": str(path), "size_bytes": path.stat().st_size, "keys": {}}
    with _open(path) as f:
        for key in sorted(f.keys()):
            ds = f[key]
            entry: dict[str, Any] = {"shape": tuple(ds.shape), "dtype": str(ds.dtype)}
            if getattr(ds, "ndim", 0) >= 1 and ds.shape[0] > 0 and np.issubdtype(ds.dtype, np.number):
                n = min(ds.shape[0], max_samples)
                a = np.asarray(ds[:n], dtype=np.float64)
                entry.update(min=float(np.nanmin(a)) if np.isfinite(a).any() else float("nan"),
                             max=float(np.nanmax(a)) if np.isfinite(a).any() else float("nan"),
                             non_finite=int((~np.isfinite(a)).sum()), samples_read=n)
            info["keys"][key] = entry
    shapes = {k: v["shape"] for k, v in info["keys"].items()}
    vmax = max((v.get("max", 0.0) for v in info["keys"].values() if np.isfinite(v.get("max", np.nan))),
               default=None)
    info["sensor_guess"] = guess_sensor(path, shapes, vmax)
    return info


def contract_problems(info: dict) -> list[str]:
    """What keeps a file from being a usable PanCollection file (``inspect_file``'s result): the keys
    ms, lms, pan (and gt for reduced resolution), 4-D N x C x H x W with one N, a 1-band pan, lms/gt on
    the pan grid, ms an integer ratio >= 2 smaller in both sizes, no non-finite values read."""
    keys = info["keys"]
    problems = [f"missing key {k!r}" for k in ("ms", "lms", "pan") if k not in keys]
    shapes = {k: tuple(keys[k]["shape"]) for k in KEYS if k in keys}
    for k, shape in shapes.items():
        if len(shape) != 4:
            problems.append(f"key {k!r} has shape {shape}, not N x C x H x W")
    if problems:
        return problems
    n = {shape[0] for shape in shapes.values()}
    if len(n) > 1:
        problems.append(f"the keys have different sample counts: {', '.join(f'{k} {v[0]}' for k, v in shapes.items())}")
    if shapes["pan"][1] != 1:
        problems.append(f"'pan' has {shapes['pan'][1]} bands, not 1")
    h, w = shapes["pan"][2:]
    for k in ("lms", "gt"):
        if k in shapes and shapes[k][2:] != (h, w):
            problems.append(f"{k!r} is {shapes[k][2]}x{shapes[k][3]} but 'pan' is {h}x{w}")
    mh, mw = shapes["ms"][2:]
    if not mh or not mw or h % mh or w % mw or h // mh != w // mw or h // mh < 2:
        problems.append(f"'ms' {mh}x{mw} and 'pan' {h}x{w} are not one integer ratio >= 2 apart")
    for k, e in keys.items():
        if e.get("non_finite"):
            problems.append(f"{k!r} has {e['non_finite']} non-finite values in the first {e['samples_read']} samples")
    return problems


def check_root(root: str | os.PathLike | None) -> list[dict]:
    """For every sensor and split: the file found under root (or None), and whether it is valid."""
    base = data_root(root)
    if base is None:
        raise UserError("no data folder: give ROOT or set the PANFW_DATA environment variable")
    if not base.is_dir():
        raise DataError(f"data folder {str(base)!r} does not exist")
    files = _h5_files(base)
    rows = []
    for sensor in SENSORS:
        for split in FILE_PATTERNS:
            row: dict[str, Any] = {"sensor": sensor, "split": split, "names": expected_names(sensor, split),
                                   "path": None, "status": "missing", "detail": ""}
            if split in ("train", "valid") and sensor not in TRAIN_SETS:
                row.update(status="n/a", detail="WorldView-2 is test-only in PanCollection")
                rows.append(row)
                continue
            broken = [f for f in files if f.name in BROKEN and f.name.startswith(split)
                      and f"_{sensor}_" in f.name]
            path = find_file(base, sensor, split, files)
            if path is None:
                hf = HF_NAMES.get(sensor, {}).get(split)
                row["detail"] = f"get {hf or row['names'][0]} from {SOURCES}"
                if broken:
                    row["detail"] = f"{broken[0].name} ignored: {BROKEN[broken[0].name]}; " + row["detail"]
            else:
                row["path"] = str(path)
                try:
                    with _open(path) as f:
                        layout = validate_layout(path, f, get_sensor(sensor), split)
                    bad = [p for p in contract_problems(inspect_file(path, max_samples=4)) if "non-finite" in p]
                    if bad:
                        raise DataError(f"file {str(path)!r}: {'; '.join(bad)}")
                    row.update(status="ok", detail=f"{layout['n']} samples, pan {layout['shapes']['pan'][2]}x"
                                                   f"{layout['shapes']['pan'][3]}")
                except DataError as exc:
                    row.update(status="invalid", detail=str(exc))
            rows.append(row)
    return rows
