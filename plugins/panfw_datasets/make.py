"""``panfw data make``: a PanCollection-format reduced-resolution h5 from a full-resolution GeoTIFF pair."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch

from panfw.errors import DataError, UserError
from panfw.io.geotiff import open_pair
from panfw.ops import simulate_rr
from panfw.sensors import get_sensor


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
        with open_pair(pan, ms, ratio=ratio or spec.ratio, crop=True) as pair:
            pan_src, ms_src = pair.pan, pair.ms
            if ms_src.count != spec.n_bands:
                fits = [s for s in ("wv3", "wv2", "qb", "gf2", "ikonos", "geoeye1", "generic")
                        if get_sensor(s).n_bands == ms_src.count]
                raise DataError(f"{Path(ms).name} has {ms_src.count} bands but sensor {spec.name!r} has "
                                f"{spec.n_bands}; accepted sensors for {ms_src.count} bands: "
                                f"{', '.join(fits) or 'none'}")
            r = pair.ratio
            notes = list(pair.notes)  # grid offsets aligned (the same rule as fuse)
            # Wald's protocol decimates the MS once more by the ratio: the overlap is cropped to a multiple
            mr, mc, mh, mw = pair.ms_window
            ch, cw = mh - mh % r, mw - mw % r
            if (ch, cw) != (mh, mw) and ch and cw:
                notes.append(f"the {mw}x{mh} MS overlap is cropped to {cw}x{ch} pixels, a multiple of the ratio {r} "
                             "(the reduced-resolution MS is decimated once more by it)")
                mh, mw = ch, cw
            pr, pc = pair.pan_window[:2]
            ms_arr, ms_ok = _read(ms_src, (mr, mc, mh, mw))
            pan_arr, pan_ok = _read(pan_src, (pr, pc, mh * r, mw * r))
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
            "overlap_ms": (h, w), "patch": patch, "notes": notes}
