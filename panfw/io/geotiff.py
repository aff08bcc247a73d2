"""GeoTIFF PAN/MS pairs: opening and the checks every command shares (``panfw fuse``, ``panfw data make``).

A pair is usable when the PAN has one band, both rasters are north-up in the same CRS and the MS/PAN
pixel-size ratio is one integer >= 2 (the same in x and y). Then either the two must cover the same
ground (``fuse``: extents within half a PAN pixel, PAN size = ratio x MS size), or only their overlap
is used (``data make``: the MS pixel corners must fall on PAN pixel corners). Rasters without a
georeference are accepted when their sizes are an integer ratio apart (the overlap is the whole MS).
"""

from __future__ import annotations

import math
import warnings
from pathlib import Path
from typing import Any

import attrs

from panfw.errors import DataError

Window = tuple[int, int, int, int]  # row, col, height, width


@attrs.define
class Pair:
    """An open PAN/MS pair, checked: ``ratio`` and the windows (row, col, h, w) of the part to use."""

    pan: Any
    ms: Any
    pan_path: Path
    ms_path: Path
    ratio: int
    ms_window: Window
    pan_window: Window
    georeferenced: bool

    def close(self) -> None:
        self.pan.close()
        self.ms.close()

    def __enter__(self) -> Pair:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def open_raster(path: str | Path, what: str = "raster") -> Any:
    """A rasterio dataset, or a DataError naming the file."""
    import rasterio

    path = Path(path)
    if not path.is_file():
        raise DataError(f"{what} file {str(path)!r} not found")
    try:
        return rasterio.open(path)
    except rasterio.errors.RasterioIOError as exc:
        raise DataError(f"{what} file {str(path)!r} is not a readable raster: {exc}") from None


def open_pair(pan_path: str | Path, ms_path: str | Path, *, ratio: int | None = None,
              crop: bool = False) -> Pair:
    """Open and check a PAN/MS pair; ``crop`` uses the overlap of the two instead of requiring the same
    ground; ``ratio`` is the PAN/MS ratio asked for (checked against the files)."""
    from rasterio.errors import NotGeoreferencedWarning

    pan_path, ms_path = Path(pan_path), Path(ms_path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NotGeoreferencedWarning)
        pan = open_raster(pan_path, "PAN")
        try:
            ms = open_raster(ms_path, "MS")
        except BaseException:
            pan.close()
            raise
    try:
        if pan.count != 1:
            raise DataError(f"PAN {pan_path} has {pan.count} bands; a single-band panchromatic image is expected")
        geo = _georeferenced(pan) and _georeferenced(ms)
        r = pixel_ratio(pan, ms, pan_path, ms_path) if geo else _size_ratio(pan, ms, pan_path, ms_path)
        if ratio is not None and r != ratio:
            raise DataError(f"PAN {pan_path} / MS {ms_path}: the PAN/MS ratio is {r} but {ratio} was asked for")
        if not geo:
            wins = (0, 0, ms.height, ms.width), (0, 0, ms.height * r, ms.width * r)
        elif crop:
            wins = overlap_windows(pan, ms, r, pan_path, ms_path)
        else:
            check_same_ground(pan, ms, r, pan_path, ms_path)
            wins = (0, 0, ms.height, ms.width), (0, 0, pan.height, pan.width)
    except BaseException:
        pan.close()
        ms.close()
        raise
    return Pair(pan=pan, ms=ms, pan_path=pan_path, ms_path=ms_path, ratio=r, ms_window=wins[0],
                pan_window=wins[1], georeferenced=geo)


def _georeferenced(ds: Any) -> bool:
    return ds.crs is not None and not ds.transform.is_identity


def _crs(crs: Any) -> str:
    if crs is None:
        return "none"
    try:
        return crs.to_string()
    except Exception:  # noqa: BLE001
        return str(crs)


def _size_ratio(pan: Any, ms: Any, pan_path: Path, ms_path: Path) -> int:
    rx, ry = pan.width / ms.width, pan.height / ms.height
    if rx != ry or rx != int(rx) or rx < 2:
        raise DataError(f"PAN {pan_path} ({pan.width}x{pan.height}) and MS {ms_path} ({ms.width}x{ms.height}) "
                        "are not georeferenced and their sizes are not an integer ratio >= 2 apart; give "
                        "georeferenced GeoTIFFs or a PAN exactly ratio x the MS")
    return int(rx)


def pixel_ratio(pan: Any, ms: Any, pan_path: str | Path, ms_path: str | Path) -> int:
    """The integer MS/PAN pixel-size ratio of two georeferenced rasters, after checking they share a
    CRS and are north-up; otherwise a DataError naming both files and what differs."""
    where = f"PAN {pan_path} and MS {ms_path}"
    if (pan.crs is None) != (ms.crs is None) or (pan.crs is not None and pan.crs != ms.crs):
        raise DataError(f"{where} have different coordinate reference systems: PAN {_crs(pan.crs)} vs MS "
                        f"{_crs(ms.crs)}; reproject one onto the other (e.g. gdalwarp -t_srs)")
    for ds, name, path in ((pan, "PAN", pan_path), (ms, "MS", ms_path)):
        t = ds.transform
        if t.b != 0 or t.d != 0:
            raise DataError(f"{name} {path} has a rotated or sheared geotransform {tuple(t)[:6]}; "
                            "only north-up images are accepted (gdalwarp them first)")
    pres, mres = (abs(pan.transform.a), abs(pan.transform.e)), (abs(ms.transform.a), abs(ms.transform.e))
    rx, ry = mres[0] / pres[0], mres[1] / pres[1]
    ratio = round(rx)
    if abs(rx - ry) > 1e-6 * max(rx, ry) or abs(rx - ratio) > 1e-3 or ratio < 2:
        raise DataError(f"{where}: the MS/PAN pixel-size ratio must be one integer >= 2 in x and y; "
                        f"PAN pixels {pres[0]:g} x {pres[1]:g}, MS pixels {mres[0]:g} x {mres[1]:g} "
                        f"(ratio {rx:g} x {ry:g})")
    return int(ratio)


def check_same_ground(pan: Any, ms: Any, ratio: int, pan_path: str | Path, ms_path: str | Path) -> None:
    """Extents within half a PAN pixel on each side and PAN size = ratio x MS size (what ``fuse`` needs)."""
    half = 0.5 * abs(pan.transform.a), 0.5 * abs(pan.transform.e)
    pb, mb = pan.bounds, ms.bounds
    diffs = {"left": (pb.left - mb.left, half[0]), "right": (pb.right - mb.right, half[0]),
             "bottom": (pb.bottom - mb.bottom, half[1]), "top": (pb.top - mb.top, half[1])}
    bad = {k: d for k, (d, tol) in diffs.items() if abs(d) > tol}
    if bad or pan.width != ratio * ms.width or pan.height != ratio * ms.height:
        detail = ", ".join(f"{k} differs by {d:g} ({d / (2 * diffs[k][1]):.2f} PAN pixels)" for k, d in bad.items())
        raise DataError(f"PAN {pan_path} and MS {ms_path} do not cover the same ground (extents must agree "
                        f"within half a PAN pixel): PAN bounds {tuple(round(v, 6) for v in pb)}, "
                        f"{pan.width}x{pan.height} px; MS bounds {tuple(round(v, 6) for v in mb)}, "
                        f"{ms.width}x{ms.height} px at ratio {ratio}{'; ' + detail if detail else ''}. Crop both "
                        f"to a common extent (e.g. gdal_translate -projwin) with PAN size = {ratio} x MS size")


def _near_int(x: float, tol: float = 1e-3) -> int | None:
    n = round(x)
    return int(n) if abs(x - n) <= tol * max(1.0, abs(x)) else None


def overlap_windows(pan: Any, ms: Any, ratio: int, pan_path: str | Path,
                    ms_path: str | Path) -> tuple[Window, Window]:
    """The MS and PAN windows of the overlap of two georeferenced rasters (what ``data make`` uses);
    the MS pixel corners must fall on PAN pixel corners."""
    pan_name, ms_name = Path(pan_path).name, Path(ms_path).name
    pt, mt = pan.transform, ms.transform
    left, right = max(pan.bounds.left, ms.bounds.left), min(pan.bounds.right, ms.bounds.right)
    top, bottom = min(pan.bounds.top, ms.bounds.top), max(pan.bounds.bottom, ms.bounds.bottom)
    if left >= right or bottom >= top:
        raise DataError(f"{pan_name} (bounds {tuple(round(v, 3) for v in pan.bounds)}) and {ms_name} "
                        f"(bounds {tuple(round(v, 3) for v in ms.bounds)}) do not overlap")
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
    h = min(mr1 - mr0, (pan.height - pr0) // ratio)
    w = min(mc1 - mc0, (pan.width - pc0) // ratio)
    if h <= 0 or w <= 0:
        raise DataError(f"{pan_name} and {ms_name} do not overlap")
    return (mr0, mc0, h, w), (pr0, pc0, h * ratio, w * ratio)
