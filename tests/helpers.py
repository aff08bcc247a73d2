"""Test helpers shared by the test modules: tiny data files and consistent image triples.

pytest puts ``tests/`` on ``sys.path`` (the folder of the root ``conftest.py``, default "prepend"
import mode), so ``from helpers import ...`` works from ``tests/`` and ``tests/contracts/`` alike.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

# ---- tiny PanCollection h5 files -------------------------------------------------------------------


def write_h5(path: str | Path, n: int = 3, c: int = 8, size: int = 16, ratio: int = 4, with_gt: bool = True,
             top: float = 2047.0, seed: int = 0, **override: Any) -> dict[str, np.ndarray]:
    """A tiny PanCollection-format file (float64 DN, N x C x H x W, uniform random values)."""
    import h5py

    rng = np.random.default_rng(seed)
    m = size // ratio
    arrays = {"lms": rng.uniform(0, top, (n, c, size, size)), "ms": rng.uniform(0, top, (n, c, m, m)),
              "pan": rng.uniform(0, top, (n, 1, size, size))}
    if with_gt:
        arrays["gt"] = rng.uniform(0, top, (n, c, size, size))
    arrays.update(override)
    with h5py.File(path, "w") as f:
        for k, v in arrays.items():
            if v is not None:
                f.create_dataset(k, data=v)
    return arrays


# PanCollection sensors: (bands, max DN, splits with files)
H5_SENSORS = {"wv3": (8, 2047.0, ("train", "valid", "test_rr", "test_fr")),
              "qb": (4, 2047.0, ("train", "valid", "test_rr", "test_fr")),
              "gf2": (4, 1023.0, ("train", "valid", "test_rr", "test_fr")),
              "wv2": (8, 2047.0, ("test_rr", "test_fr"))}


def make_pancollection_root(root: Path, n: int = 2, size: int = 16) -> Path:
    """A folder with a tiny file for every PanCollection sensor and split (upstream file names)."""
    names = {"train": "train_{s}.h5", "valid": "valid_{s}.h5", "test_rr": "test_{s}_multiExm1.h5",
             "test_fr": "test_{s}_OrigScale_multiExm1.h5"}
    root.mkdir(parents=True, exist_ok=True)
    for k, (sensor, (c, top, splits)) in enumerate(H5_SENSORS.items()):
        for j, split in enumerate(splits):
            write_h5(root / names[split].format(s=sensor), n=n, c=c, size=size, top=top,
                     with_gt=split != "test_fr", seed=10 * k + j)
    return root


# ---- tiny TIFF folders -----------------------------------------------------------------------------


def write_tif(path: str | Path, arr: np.ndarray) -> None:
    """A plain (not georeferenced) GeoTIFF of a (C, H, W) array."""
    import rasterio

    arr = np.asarray(arr)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # NotGeoreferencedWarning
        with rasterio.open(path, "w", driver="GTiff", width=arr.shape[2], height=arr.shape[1], count=arr.shape[0],
                           dtype=arr.dtype) as dst:
            dst.write(arr)


def write_geotiff(path: str | Path, arr: np.ndarray, res: float, x0: float = 500000.0, y0: float = 4000000.0,
                  crs: str = "EPSG:32633", nodata: float | None = None) -> None:
    """A north-up georeferenced GeoTIFF of a (C, H, W) array: pixel size ``res``, top-left (x0, y0)."""
    import rasterio
    from rasterio.transform import Affine

    with rasterio.open(path, "w", driver="GTiff", width=arr.shape[2], height=arr.shape[1], count=arr.shape[0],
                       dtype=arr.dtype, crs=crs, transform=Affine(res, 0.0, x0, 0.0, -res, y0), nodata=nodata) as dst:
        dst.write(arr)


def make_tiff_folder(base: Path, n: int = 3, c: int = 4, size: int = 32, pan_size: int | None = None,
                     dtype: Any = np.uint8, top: int = 255, seed: int = 0) -> Path:
    """Folders ms/ and pan/ of ``n`` random tiles paired by name (the PanTiny paper's layout)."""
    rng = np.random.default_rng(seed)
    for sub in ("ms", "pan"):
        (base / sub).mkdir(parents=True, exist_ok=True)
    for i in range(n):
        write_tif(base / "ms" / f"tile_{i}.tif", rng.integers(0, top, (c, size, size)).astype(dtype))
        p = pan_size or size
        write_tif(base / "pan" / f"tile_{i}.tif", rng.integers(0, top, (1, p, p)).astype(dtype))
    return base


# ---- tiny data for every registered dataset -------------------------------------------------------

# name -> (make(tmp_path) -> build options, splits to check); the contract test fails for a
# registered dataset without an entry here, so a new dataset gets tiny data the day it registers
def _h5(sensor: str) -> tuple[Callable[[Path], dict], tuple[str, ...]]:
    return (lambda tmp: {"root": str(make_pancollection_root(tmp / "pc"))}), H5_SENSORS[sensor][2]


def _tiff(tmp: Path) -> dict:
    make_tiff_folder(tmp / "tiles" / "train", n=2, c=8)
    make_tiff_folder(tmp / "tiles" / "valid", n=1, c=8, seed=3)
    make_tiff_folder(tmp / "tiles" / "test", n=2, c=8, seed=1)
    make_tiff_folder(tmp / "tiles" / "full", n=1, c=8, size=8, pan_size=32, seed=2)
    return {"path": str(tmp / "tiles"), "sensor": "wv3"}


TINY_DATASETS: dict[str, tuple[Callable[[Path], dict], tuple[str, ...]]] = {
    **{s: _h5(s) for s in H5_SENSORS},
    "tiff_folder": (_tiff, ("train", "valid", "test_rr", "test_fr")),
    "synthetic": (lambda tmp: {"sensor": "wv3", "n": 2, "size": 16}, ("train", "valid", "test_rr", "test_fr")),
}


# ---- images consistent with an acquisition --------------------------------------------------------


def smooth_image(b: int, c: int, h: int, w: int, seed: int = 0, dtype: torch.dtype = torch.float64,
                 lo: float = 0.2, hi: float = 0.8, cell: int = 8) -> torch.Tensor:
    """Smooth random images in [lo, hi]: a random grid of one value per ``cell`` pixels, bicubically
    enlarged (band-limited)."""
    g = torch.Generator().manual_seed(seed)
    coarse = torch.rand(b, c, max(2, h // cell), max(2, w // cell), generator=g, dtype=torch.float64)
    x = F.interpolate(coarse, size=(h, w), mode="bicubic", align_corners=False).clamp(0, 1)
    return (lo + (hi - lo) * x).to(dtype)


def consistent_triple(sensor: str = "generic", bands: int = 4, size: int = 64, batch: int = 2, seed: int = 0,
                      dtype: torch.dtype = torch.float64, cell: int = 32) -> dict[str, Any]:
    """A fused image with the MS and PAN it is consistent with: ``ms`` its MTF filtering and
    decimation by the sensor (panfw.ops, as Wald's protocol degrades), ``lms`` = interp23tap(ms),
    ``pan`` the mean of its bands (a linear spectral response). The content is smooth (one random
    value per ``cell`` pixels); the smoother, the closer the PAN's and the MS's MTFs agree on it."""
    from panfw.ops import interp23tap, mtf_filter
    from panfw.sensors import get_sensor

    s = get_sensor(sensor)
    fused = smooth_image(batch, bands, size, size, seed, dtype, cell=cell)
    ms = mtf_filter(fused, s.gains(bands), s.ratio, decimate=True)
    return {"fused": fused, "ms": ms, "lms": interp23tap(ms, s.ratio), "pan": fused.mean(1, keepdim=True),
            "sensor": s.name, "ratio": s.ratio}


# ---- real-shaped GeoTIFF scene pairs ---------------------------------------------------------------


def write_scene_pair(folder: str | Path, *, ratio: int = 4, bands: int = 4, ms_size: tuple[int, int] = (25, 21),
                     bits: int = 11, dtype: str = "uint16", pan_res: float = 0.5, half_pixel: bool = False,
                     extra: tuple[int, int] = (0, 0), nodata_border: int = 0, nodata: float | None = None,
                     seed: int = 0, name: str = "scene") -> dict[str, Any]:
    """A PAN/MS GeoTIFF pair shaped like a real product: smooth DN content filling ``bits`` bits of
    ``dtype``, MS ``ms_size`` (rows, cols; odd sizes allowed) at ``ratio`` x ``pan_res``, the PAN on
    the same corner-aligned grid, or with ``half_pixel`` shifted by half a PAN pixel east and south
    (Landsat's PAN, whose first pixel centre is the first MS pixel's centre), with ``extra`` PAN
    (rows, cols) beyond the MS footprint and a ``nodata_border`` of MS pixels set to ``nodata``.

    Returns the paths and the arrays written: ``pan`` (1, H, W), ``ms`` (C, h, w)."""
    import rasterio
    from rasterio.transform import Affine

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    h, w = ms_size
    top = 2 ** bits - 1
    hr = smooth_image(1, bands, h * ratio, w * ratio, seed, lo=0.05, hi=0.9, cell=4 * ratio)[0].numpy()
    rng = np.random.default_rng(seed)
    ms = hr.reshape(bands, h, ratio, w, ratio).mean(axis=(2, 4))
    pan = hr.mean(0, keepdims=True) + 0.02 * rng.standard_normal((1, h * ratio, w * ratio))
    if extra[0] or extra[1]:
        pan = np.pad(pan, ((0, 0), (0, extra[0]), (0, extra[1])), mode="reflect")
    pan_dn = np.clip(np.rint(pan * top), 1, top).astype(dtype)
    ms_dn = np.clip(np.rint(ms * top), 1, top).astype(dtype)
    if nodata_border:
        nd = 0 if nodata is None else nodata
        b = nodata_border
        for arr, k in ((ms_dn, 1), (pan_dn, ratio)):
            arr[:, :b * k] = nd
            arr[:, -b * k - (extra[0] if k == ratio else 0):] = nd
            arr[:, :, :b * k] = nd
        nodata = nd
    x0, y0 = 500000.0, 4200000.0
    shift = 0.5 * pan_res if half_pixel else 0.0
    paths = {"pan": folder / f"{name}_pan.tif", "ms": folder / f"{name}_ms.tif"}
    for key, arr, res, ox, oy in (("pan", pan_dn, pan_res, x0 + shift, y0 - shift),
                                  ("ms", ms_dn, pan_res * ratio, x0, y0)):
        with rasterio.open(paths[key], "w", driver="GTiff", width=arr.shape[2], height=arr.shape[1],
                           count=arr.shape[0], dtype=dtype, crs="EPSG:32633",
                           transform=Affine(res, 0.0, ox, 0.0, -res, oy), nodata=nodata) as dst:
            dst.write(arr)
    return {**paths, "pan_array": pan_dn, "ms_array": ms_dn, "ratio": ratio, "bits": bits, "nodata": nodata}
