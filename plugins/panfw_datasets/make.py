"""``panfw data make``: a PanCollection-format reduced-resolution h5 from a full-resolution GeoTIFF pair."""

from __future__ import annotations

import math
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch

from panfw.errors import DataError, UserError
from panfw.ops import simulate_rr
from panfw.sensors import get_sensor


def _open(path: Path):
    import rasterio

    if not Path(path).is_file():
        raise DataError(f"file {str(path)!r} does not exist")
    try:
        return rasterio.open(path)
    except rasterio.errors.RasterioIOError as exc:
        raise DataError(f"file {str(path)!r} is not a readable raster: {exc}") from None


def _georeferenced(src) -> bool:
    return src.crs is not None and not src.transform.is_identity


def _near_int(x: float, tol: float = 1e-3) -> int | None:
    n = round(x)
    return int(n) if n >= 1 and abs(x - n) <= tol * max(1.0, abs(x)) else None


def plan_windows(pan_src, ms_src, ratio: int | None) -> dict[str, Any]:
    """Where the two rasters overlap: MS window (row, col, h, w) and the PAN window (ratio x), checking
    the PAN/MS ratio is an integer and the grids are aligned."""
    pan_name, ms_name = Path(pan_src.name).name, Path(ms_src.name).name
    if _georeferenced(pan_src) and _georeferenced(ms_src):
        if pan_src.crs != ms_src.crs:
            raise DataError(f"{pan_name} and {ms_name} use different coordinate systems ({pan_src.crs} vs "
                            f"{ms_src.crs}); reproject one of them first")
        pt, mt = pan_src.transform, ms_src.transform
        if pt.b or pt.d or mt.b or mt.d:
            raise DataError(f"{pan_name} / {ms_name}: rotated rasters are not supported")
        rx, ry = abs(mt.a) / abs(pt.a), abs(mt.e) / abs(pt.e)
        r = _near_int(rx)
        if r is None or _near_int(ry) != r:
            raise DataError(f"pixel sizes of {ms_name} ({abs(mt.a):g} x {abs(mt.e):g}) and {pan_name} "
                            f"({abs(pt.a):g} x {abs(pt.e):g}) give a PAN/MS ratio of {rx:g} x {ry:g}; an integer "
                            "ratio (the same in x and y) is needed")
        left = max(pan_src.bounds.left, ms_src.bounds.left)
        right = min(pan_src.bounds.right, ms_src.bounds.right)
        top = min(pan_src.bounds.top, ms_src.bounds.top)
        bottom = max(pan_src.bounds.bottom, ms_src.bounds.bottom)
        if left >= right or bottom >= top:
            raise DataError(f"{pan_name} (bounds {tuple(round(v, 3) for v in pan_src.bounds)}) and {ms_name} "
                            f"(bounds {tuple(round(v, 3) for v in ms_src.bounds)}) do not overlap")
        mc0 = math.ceil((left - mt.c) / mt.a - 1e-6)
        mr0 = math.ceil((top - mt.f) / mt.e - 1e-6)
        mc1 = math.floor((right - mt.c) / mt.a + 1e-6)
        mr1 = math.floor((bottom - mt.f) / mt.e + 1e-6)
        x0, y0 = mt.c + mc0 * mt.a, mt.f + mr0 * mt.e
        pc0, pr0 = (x0 - pt.c) / pt.a, (y0 - pt.f) / pt.e
        if _near_int(pc0 + 1) is None or _near_int(pr0 + 1) is None:
            raise DataError(f"the pixel grids of {pan_name} and {ms_name} are not aligned: an MS pixel corner "
                            f"falls at PAN pixel {pc0:.3f}, {pr0:.3f}; resample one onto the other's grid first")
        pc0, pr0 = round(pc0), round(pr0)
        h = min(mr1 - mr0, (pan_src.height - pr0) // r)
        w = min(mc1 - mc0, (pan_src.width - pc0) // r)
    else:
        rx, ry = pan_src.width / ms_src.width, pan_src.height / ms_src.height
        r = _near_int(rx, 0)
        if r is None or _near_int(ry, 0) != r:
            raise DataError(f"{pan_name} ({pan_src.width}x{pan_src.height}) and {ms_name} ({ms_src.width}x"
                            f"{ms_src.height}) are not georeferenced and their sizes are not an integer ratio "
                            "apart; give georeferenced GeoTIFFs or a PAN exactly ratio x the MS")
        mr0 = mc0 = pr0 = pc0 = 0
        h, w = ms_src.height, ms_src.width
    if ratio is not None and r != ratio:
        raise DataError(f"{pan_name} / {ms_name}: the PAN/MS ratio is {r} but {ratio} was asked for")
    if h <= 0 or w <= 0:
        raise DataError(f"{pan_name} and {ms_name} do not overlap")
    return {"ratio": r, "ms": (mr0, mc0, h, w), "pan": (pr0, pc0, h * r, w * r)}


def _read(src, win: tuple[int, int, int, int]) -> tuple[np.ndarray, np.ndarray]:
    from rasterio.windows import Window

    r0, c0, h, w = win
    window = Window(c0, r0, w, h)
    data = src.read(window=window).astype(np.float64)
    mask = np.ones(data.shape[-2:], dtype=bool)
    if src.nodata is not None:
        mask &= ~(data == src.nodata).any(axis=0)
    mask &= np.isfinite(data).all(axis=0)
    return data, mask


def make_h5(pan: str | Path, ms: str | Path, sensor: str, out: str | Path, patch: int = 64,
            stride: int | None = None, pan_mode: str = "bicubic", ratio: int | None = None,
            overwrite: bool = False) -> dict[str, Any]:
    """Write a PanCollection-format reduced-resolution file (gt, ms, lms, pan; float64 DN, N x C x H x W)
    by Wald's protocol from a full-resolution PAN/MS GeoTIFF pair; patches of ``patch`` pixels on the
    reduced PAN grid (= the original MS grid)."""
    import h5py
    from rasterio.errors import NotGeoreferencedWarning

    spec = get_sensor(sensor)
    out = Path(out)
    if out.exists() and not overwrite:
        raise UserError(f"output {str(out)!r} exists; remove it or pass --overwrite")
    stride = stride or patch
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NotGeoreferencedWarning)
        with _open(Path(pan)) as pan_src, _open(Path(ms)) as ms_src:
            if pan_src.count != 1:
                raise DataError(f"{Path(pan).name} has {pan_src.count} bands; a PAN has one")
            if ms_src.count != spec.n_bands:
                fits = [s for s in ("wv3", "wv2", "qb", "gf2", "ikonos", "geoeye1", "generic")
                        if get_sensor(s).n_bands == ms_src.count]
                raise DataError(f"{Path(ms).name} has {ms_src.count} bands but sensor {spec.name!r} has "
                                f"{spec.n_bands}; accepted sensors for {ms_src.count} bands: "
                                f"{', '.join(fits) or 'none'}")
            plan = plan_windows(pan_src, ms_src, ratio or spec.ratio)
            r = plan["ratio"]
            ms_arr, ms_ok = _read(ms_src, plan["ms"])
            pan_arr, pan_ok = _read(pan_src, plan["pan"])
    if patch % r or patch < r:
        raise UserError(f"--patch {patch} must be a multiple of the ratio {r}")
    h, w = ms_arr.shape[-2:]
    if h < patch or w < patch:
        raise DataError(f"the overlap of the two rasters is {h}x{w} MS pixels, smaller than one patch "
                        f"({patch}); use a smaller --patch")
    rr = simulate_rr(torch.from_numpy(ms_arr)[None], torch.from_numpy(pan_arr)[None], spec, r, pan_mode=pan_mode)
    rr = {k: v[0].numpy() for k, v in rr.items()}
    valid = ms_ok & pan_ok.reshape(h, r, w, r).all(axis=(1, 3))
    positions = [(y, x) for y in range(0, h - patch + 1, stride) for x in range(0, w - patch + 1, stride)
                 if valid[y:y + patch, x:x + patch].all()]
    skipped = len(range(0, h - patch + 1, stride)) * len(range(0, w - patch + 1, stride)) - len(positions)
    if not positions:
        raise DataError("no patch without nodata / non-finite pixels in the overlap of the two rasters")
    c, m = ms_arr.shape[0], patch // r
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".part")
    with h5py.File(tmp, "w") as f:
        shapes = {"gt": (c, patch, patch), "lms": (c, patch, patch), "ms": (c, m, m), "pan": (1, patch, patch)}
        dsets = {k: f.create_dataset(k, shape=(len(positions), *s), dtype="float64", chunks=(1, *s))
                 for k, s in shapes.items()}
        for i, (y, x) in enumerate(positions):
            dsets["gt"][i] = rr["gt"][:, y:y + patch, x:x + patch]
            dsets["lms"][i] = rr["lms"][:, y:y + patch, x:x + patch]
            dsets["pan"][i] = rr["pan"][:, y:y + patch, x:x + patch]
            dsets["ms"][i] = rr["ms"][:, y // r:y // r + m, x // r:x // r + m]
        f.attrs.update(sensor=spec.name, ratio=r, pan_mode=pan_mode, patch=patch, stride=stride,
                       source_pan=str(pan), source_ms=str(ms), made_by="panfw data make")
    tmp.replace(out)
    return {"out": str(out), "n": len(positions), "skipped": skipped, "ratio": r, "bands": c,
            "overlap_ms": (h, w), "patch": patch}
