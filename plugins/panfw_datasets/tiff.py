"""``tiff_folder``: folders of TIFF tiles in the layout of the PanTiny paper's code.

A folder holds ``ms/`` and ``pan/`` with tiles paired by file name (optionally one such folder per
split: ``train128/``, ``test128/``, ...). Two kinds of pairs are accepted:

- **same grid** (PAN tile as large as the MS tile, the paper's 128x128 8-bit tiles): the MS tile is
  the ground truth; the low-resolution MS is made on the fly, by PIL-style bicubic /ratio re-quantised
  to the file's integer steps (``lr="bicubic"``, the paper) or by the sensor's MTF filter and 4i+2
  decimation (``lr="mtf"``); the PAN is used as it is. Reduced-resolution splits only.
- **full-resolution pairs** (PAN ratio x larger than the MS): ``test_fr`` returns them as they are
  (lms by bicubic or interp23tap); the other splits degrade both by Wald's protocol first.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from panfw.data import data_root
from panfw.errors import DataError, UserError
from panfw.ops import downsample_bicubic, interp23tap, mtf_filter, simulate_rr, upsample_bicubic
from panfw.ops.bands import select_bands
from panfw.sensors import get_sensor
from panfw_datasets.common import as_tuple, check_split, select

SPLIT_DIRS = {
    "train": ("train128", "train"),
    "valid": ("valid128", "valid", "val"),
    "test_rr": ("test128", "test_rr", "test"),
    "test_fr": ("full", "test_fr", "full512", "test_full"),
}
SUFFIXES = (".tif", ".tiff")


def read_tiff(path: Path) -> np.ndarray:
    """A TIFF as a (C, H, W) array of its stored dtype."""
    import rasterio
    from rasterio.errors import NotGeoreferencedWarning

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", NotGeoreferencedWarning)
            with rasterio.open(path) as src:
                return src.read()
    except rasterio.errors.RasterioIOError as exc:
        raise DataError(f"file {str(path)!r} is not a readable TIFF: {exc}") from None


def _tiles(folder: Path) -> dict[str, Path]:
    return {p.stem: p for p in sorted(folder.iterdir()) if p.suffix.lower() in SUFFIXES}


def resolve_folder(base: Path, split: str) -> Path:
    """The folder holding ms/ and pan/ for a split: base itself or one of its split folders."""
    if (base / "ms").is_dir() and (base / "pan").is_dir():
        return base
    tried = [base]
    for name in SPLIT_DIRS[split]:
        cand = base / name
        tried.append(cand)
        if (cand / "ms").is_dir() and (cand / "pan").is_dir():
            return cand
    raise DataError(f"dataset 'tiff_folder', split {split}: no ms/ and pan/ folders in "
                    f"{', '.join(repr(str(t)) for t in tried)}")


class TiffFolder(Dataset):
    """Paired MS/PAN TIFF tiles; items float32 in [0,1] made on the fly (see the module doc)."""

    def __init__(self, folder: str | os.PathLike, split: str = "train", sensor: str = "generic",
                 lr: str = "bicubic", bands: str | Sequence[int] = "all", scale: float | None = None,
                 quantize: bool = True) -> None:
        self.folder = Path(folder)
        self.split = split
        spec = get_sensor(sensor)
        self.sensor, self.ratio, self._spec = spec.name, spec.ratio, spec
        self.name = "tiff_folder"
        if lr not in ("bicubic", "mtf"):
            raise UserError(f"dataset 'tiff_folder': lr = {lr!r}; accepted: bicubic (the paper), mtf")
        self.lr, self.quantize = lr, bool(quantize)
        ms, pan = _tiles(self.folder / "ms"), _tiles(self.folder / "pan")
        names = sorted(set(ms) & set(pan))
        lonely = sorted(set(ms) ^ set(pan))
        if lonely:
            raise DataError(f"folder {str(self.folder)!r}: tiles without a partner of the same name in ms/ and "
                            f"pan/: {', '.join(lonely[:5])}{' ...' if len(lonely) > 5 else ''}")
        if not names:
            raise DataError(f"folder {str(self.folder)!r}: no .tif tiles in ms/ and pan/")
        self.pairs = [(ms[n], pan[n]) for n in names]
        m0, p0 = read_tiff(self.pairs[0][0]), read_tiff(self.pairs[0][1])
        self._check_pair(m0, p0, 0)
        self.full_pair = p0.shape[-1] != m0.shape[-1]
        if split == "test_fr" and not self.full_pair:
            raise DataError(f"folder {str(self.folder)!r}: test_fr needs full-resolution pairs (PAN {self.ratio}x "
                            f"the MS); these tiles are on one grid ({m0.shape[-2]}x{m0.shape[-1]})")
        self.dtype = m0.dtype
        if scale is None:
            scale = 255.0 if m0.dtype == np.uint8 else (1.0 if m0.dtype.kind == "f" else float(spec.max_dn))
        self.scale = float(scale)
        self.n_file_bands = m0.shape[0]
        self.band_indices = as_tuple(select_bands(bands, m0.shape[0], spec, where="dataset 'tiff_folder': "))
        self.bands = m0.shape[0] if self.band_indices is None else len(self.band_indices)
        self._gains = spec.gains(m0.shape[0])

    def _check_pair(self, ms: np.ndarray, pan: np.ndarray, i: int) -> None:
        where = f"tiles {self.pairs[i][0].name!r} (ms/) and (pan/) in {str(self.folder)!r}"
        if pan.shape[0] != 1:
            raise DataError(f"{where}: the PAN has {pan.shape[0]} bands; one is accepted")
        mh, mw = ms.shape[-2:]
        ph, pw = pan.shape[-2:]
        if (ph, pw) not in ((mh, mw), (mh * self.ratio, mw * self.ratio)):
            raise DataError(f"{where}: MS {mh}x{mw} and PAN {ph}x{pw}; accepted: the same size, or the PAN "
                            f"{self.ratio}x the MS ({mh * self.ratio}x{mw * self.ratio})")
        if mh % self.ratio or mw % self.ratio:
            raise DataError(f"{where}: MS {mh}x{mw} is not divisible by the ratio {self.ratio}")

    def __len__(self) -> int:
        return len(self.pairs)

    def _q(self, x: torch.Tensor) -> torch.Tensor:
        if self.quantize and self.dtype.kind in "ui":
            return (x * self.scale).round().clamp(0, self.scale) / self.scale
        return x

    def __getitem__(self, index: int) -> dict:
        ms_np, pan_np = (read_tiff(p) for p in self.pairs[index])
        self._check_pair(ms_np, pan_np, index)
        if ms_np.shape[0] != self.n_file_bands:
            raise DataError(f"tile {str(self.pairs[index][0])!r}: {ms_np.shape[0]} bands, the first tile has "
                            f"{self.n_file_bands}")
        ms = torch.from_numpy(ms_np.astype(np.float64) / self.scale)
        pan = torch.from_numpy(pan_np.astype(np.float64) / self.scale)
        r = self.ratio
        item: dict[str, Any] = {}
        if self.split == "test_fr":
            lms = upsample_bicubic(ms[None], r)[0] if self.lr == "bicubic" else interp23tap(ms[None], r)[0]
            item.update(ms=ms, lms=self._q(lms) if self.lr == "bicubic" else lms, pan=pan)
        elif self.lr == "bicubic":
            gt = ms
            if self.full_pair:
                pan = self._q(downsample_bicubic(pan[None], r)[0])
            ms_lr = self._q(downsample_bicubic(gt[None], r)[0])
            item.update(gt=gt, ms=ms_lr, lms=self._q(upsample_bicubic(ms_lr[None], r)[0]), pan=pan)
        elif self.full_pair:
            out = simulate_rr(ms[None], pan[None], self._spec, r, band_indices=None)
            item.update({k: v[0] for k, v in out.items()})
        else:
            ms_lr = mtf_filter(ms[None], self._gains, r, decimate=True)
            item.update(gt=ms, ms=ms_lr[0], lms=interp23tap(ms_lr, r)[0], pan=pan)
        out = {k: (v if k == "pan" else select(v, self.band_indices)).to(torch.float32).contiguous()
               for k, v in item.items()}
        out["sensor"] = self.sensor
        return out

    def __repr__(self) -> str:
        return f"TiffFolder({str(self.folder)!r}, {self.split}, {len(self)} tiles, lr={self.lr})"


def tiff_folder(split: str, root: str | None = None, path: str | None = None, sensor: str = "generic",
                lr: str = "bicubic", bands: str | Sequence[int] = "all", scale: float | None = None,
                quantize: bool = True) -> TiffFolder:
    """Folders ms/ and pan/ of TIFF tiles paired by name (the PanTiny paper's layout), LR made on the fly.

    Options: path (the folder; else root or $PANFW_DATA), sensor (gains, ratio, name), lr 'bicubic'
    (the paper: PIL-style bicubic, re-quantised) | 'mtf' (MTF + 4i+2 decimation, interp23tap),
    bands, scale (default 255 for 8-bit, the sensor's max DN for 16-bit), quantize."""
    check_split(split, "tiff_folder")
    base = data_root(path or root)
    if base is None:
        raise DataError("dataset 'tiff_folder': no folder; set path = \"...\" (or data.root / PANFW_DATA)")
    if not base.is_dir():
        raise DataError(f"dataset 'tiff_folder': folder {str(base)!r} does not exist")
    return TiffFolder(resolve_folder(base, split), split, sensor=sensor, lr=lr, bands=bands, scale=scale,
                      quantize=quantize)
