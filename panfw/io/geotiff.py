"""GeoTIFF PAN/MS pairs: opening and the checks every command shares (``panfw fuse``, ``panfw data make``).

A pair is usable when the PAN has one band, both rasters are north-up in the same CRS and the MS/PAN
pixel-size ratio is one integer >= 2 (the same in x and y). Rasters without a georeference are
accepted when their sizes are an integer ratio apart (the overlap is the whole MS).

Grids (``align_axis``, one rule for ``fuse``, ``data make`` and ``adapt``): where the centre of each
MS pixel falls on the PAN grid is read from the two geotransforms. The upsampling of every model
(interp23tap, the toolbox's) puts MS pixel i on PAN pixel ratio·i + ratio//2, and corner-aligned
grids (PanCollection, most vendors) sit half a PAN pixel before that at even ratios, which is the
convention the data and models share. A PAN grid half a PAN pixel off the MS corners (Landsat: the
first PAN pixel centred on the first MS pixel) is detected, said, and aligned by cropping: the
first MS row/column and the PAN pixels before the next MS pixel's place are dropped, after which MS
pixel i sits exactly on PAN pixel ratio·i + ratio//2. Any other sub-pixel offset (more than 0.05 PAN
pixel from both; at odd ratios, where corner alignment is exact, a half-pixel one too) is refused with
the fix (resample with gdalwarp). PAN rows or columns beyond the MS
footprint are cropped with a note. ``fuse`` then needs the two to cover the same ground (at most the
alignment's first MS pixel and up to one MS pixel of PAN beyond the MS on each side left out); ``data make``
uses their overlap. ``Pair.notes`` says what was done.
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
    notes: list[str] = attrs.field(factory=list)  # offsets found, rows and columns cropped

    def close(self) -> None:
        self.pan.close()
        self.ms.close()

    def views(self) -> tuple[WindowedRaster, WindowedRaster]:
        """The PAN and MS as rasters of just their windows (what ``fuse`` reads and georeferences)."""
        return WindowedRaster(self.pan, self.pan_window), WindowedRaster(self.ms, self.ms_window)

    def __enter__(self) -> Pair:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


class WindowedRaster:
    """A window (row, col, height, width) of an open rasterio dataset that reads, sizes and
    georeferences like a dataset of its own (reads are translated into the window)."""

    def __init__(self, ds: Any, window: Window) -> None:
        self.ds, self.row0, self.col0, self.height, self.width = ds, *window

    def __getattr__(self, name: str) -> Any:  # count, dtypes, nodata, crs, descriptions, tags, ...
        return getattr(self.ds, name)

    @property
    def transform(self) -> Any:
        from affine import Affine

        t = self.ds.transform  # the window's origin moved by (col0, row0) pixels, same pixel size
        c, r = self.col0, self.row0
        return Affine(t.a, t.b, t.c + c * t.a + r * t.b, t.d, t.e, t.f + c * t.d + r * t.e)

    def read(self, indexes: Any = None, window: Any = None, **kw: Any) -> Any:
        from rasterio.windows import Window as RWindow

        if window is None:
            window = RWindow(0, 0, self.width, self.height)
        moved = RWindow(window.col_off + self.col0, window.row_off + self.row0, window.width, window.height)
        return self.ds.read(indexes, window=moved, **kw)


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
        notes: list[str] = []
        if not geo:
            wins = (0, 0, ms.height, ms.width), (0, 0, ms.height * r, ms.width * r)
        elif crop:
            wins = overlap_windows(pan, ms, r, pan_path, ms_path, notes)
        else:
            wins = same_ground_windows(pan, ms, r, pan_path, ms_path, notes)
    except BaseException:
        pan.close()
        ms.close()
        raise
    return Pair(pan=pan, ms=ms, pan_path=pan_path, ms_path=ms_path, ratio=r, ms_window=wins[0],
                pan_window=wins[1], georeferenced=geo, notes=notes)


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


@attrs.frozen
class AxisAlignment:
    """One axis of a pair's grids: ``offset`` = PAN origin minus MS origin in PAN pixels (along the
    axis), ``ms_start``/``pan_start`` the first MS and PAN pixel used, ``half`` whether the PAN grid is
    half a PAN pixel off the MS corners (then aligned so MS pixel i sits on PAN pixel r·i + r//2)."""

    offset: float
    ms_start: int
    pan_start: int
    half: bool


def align_axis(ms_origin: float, pan_origin: float, pan_res: float, ratio: int, axis: str,
               where: str, tol: float = 0.05) -> AxisAlignment:
    """Where the MS pixels fall on the PAN grid along one axis (``pan_res`` signed, as in the
    geotransform) and the first MS and PAN pixel that put them where the upsampling expects (see the
    module docstring); a sub-pixel offset that is neither is a DataError saying how to resample."""
    dx = (pan_origin - ms_origin) / pan_res  # PAN pixels; > 0: the PAN starts inside the MS footprint
    centre = ratio / 2 - 0.5 - dx  # MS pixel 0's centre on the PAN index axis
    d = centre - ratio // 2
    frac = d - math.floor(d)
    if min(frac, 1 - frac) <= tol:  # MS centres on PAN pixel centres: exactly r·i + r//2 after a crop
        n0, half = round(d), ratio % 2 == 0
    elif abs(frac - 0.5) <= tol and ratio % 2 == 0:  # the corner-aligned convention of even ratios
        n0, half = round(d + 0.5), False
    else:  # (at odd ratios corner alignment is exact and a half-pixel offset cannot be cropped away)
        accepted = ("0, the usual corner alignment, or 0.5, MS pixel centres on PAN pixel centres" if ratio % 2 == 0
                    else f"0, corner alignment, at the odd ratio {ratio}")
        raise DataError(f"{where}: the pixel grids are not aligned along {axis}: the PAN grid is offset by "
                        f"{dx - math.floor(dx):.2f} of a PAN pixel from the MS pixel corners (accepted: {accepted}); "
                        f"resample one image onto the other's grid first (e.g. gdalwarp -tap -tr with the "
                        f"PAN pixel size, or onto the MS grid x {ratio})")
    q = max(0, -(n0 // ratio)) if n0 < 0 else 0
    return AxisAlignment(offset=dx, ms_start=q, pan_start=q * ratio + n0, half=half)


def _alignments(pan: Any, ms: Any, ratio: int, pan_path: str | Path, ms_path: str | Path
                ) -> tuple[AxisAlignment, AxisAlignment]:
    where = f"PAN {pan_path} and MS {ms_path}"
    pt, mt = pan.transform, ms.transform
    return (align_axis(mt.c, pt.c, pt.a, ratio, "x (columns)", where),
            align_axis(mt.f, pt.f, pt.e, ratio, "y (rows)", where))


def _align_notes(ax: AxisAlignment, ay: AxisAlignment, ratio: int, notes: list[str]) -> None:
    for a, what in ((ax, "columns"), (ay, "rows")):
        if a.half:
            notes.append(f"the PAN grid is offset by {a.offset:+.2f} PAN pixel from the MS grid along the {what} "
                         f"(MS pixel centres on PAN pixel centres, as Landsat delivers): aligned so MS pixel i "
                         f"sits on PAN pixel {ratio}i+{ratio // 2} as the upsampling expects, by dropping "
                         f"{a.ms_start} MS and {a.pan_start} PAN {what} at the start")
        elif a.ms_start or a.pan_start:
            notes.append(f"{a.ms_start} MS and {a.pan_start} PAN {what} before the common grid start dropped")


def same_ground_windows(pan: Any, ms: Any, ratio: int, pan_path: str | Path, ms_path: str | Path,
                        notes: list[str] | None = None) -> tuple[Window, Window]:
    """The MS and PAN windows ``fuse`` uses: the grids aligned (``align_axis``), PAN rows/columns beyond
    the MS footprint cropped; anything more than that is a DataError (``check_same_ground``'s)."""
    notes = [] if notes is None else notes
    ax, ay = _alignments(pan, ms, ratio, pan_path, ms_path)
    h = min(ms.height - ay.ms_start, (pan.height - ay.pan_start) // ratio)
    w = min(ms.width - ax.ms_start, (pan.width - ax.pan_start) // ratio)
    ok = True
    for a, n, n_ms, n_pan in ((ay, h, ms.height, pan.height), (ax, w, ms.width, pan.width)):
        ms_lost = n_ms - a.ms_start - n  # MS pixels at the end without PAN
        pan_extra = n_pan - a.pan_start - n * ratio
        # the MS must be used whole (but the alignment's first pixel); up to one MS pixel of PAN beyond
        # it on either side, after the alignment, is cropped
        if n <= 0 or ms_lost or (a.ms_start and not a.half) or a.pan_start >= 2 * ratio or pan_extra >= 2 * ratio:
            ok = False
    if not ok:
        check_same_ground(pan, ms, ratio, pan_path, ms_path)  # its message names what differs
        raise DataError(f"PAN {pan_path} and MS {ms_path} do not cover the same ground: after aligning the grids "
                        f"the PAN covers {w}x{h} of the {ms.width}x{ms.height} MS pixels; crop both to a common "
                        f"extent (e.g. gdal_translate -projwin) with PAN size = {ratio} x MS size")
    _align_notes(ax, ay, ratio, notes)
    extra_r = pan.height - ay.pan_start - h * ratio
    extra_c = pan.width - ax.pan_start - w * ratio
    if extra_r or extra_c:
        parts = [f"{extra_r} row{'s' * (extra_r != 1)}" if extra_r else "",
                 f"{extra_c} column{'s' * (extra_c != 1)}" if extra_c else ""]
        notes.append(f"the PAN has {' and '.join(p for p in parts if p)} beyond the MS footprint "
                     f"({pan.width}x{pan.height} PAN px for {w}x{h} MS px at ratio {ratio}): cropped")
    return (ay.ms_start, ax.ms_start, h, w), (ay.pan_start, ax.pan_start, h * ratio, w * ratio)


def overlap_windows(pan: Any, ms: Any, ratio: int, pan_path: str | Path,
                    ms_path: str | Path, notes: list[str] | None = None) -> tuple[Window, Window]:
    """The MS and PAN windows of the overlap of two georeferenced rasters (what ``data make`` uses),
    with the grids aligned as ``align_axis`` says."""
    notes = [] if notes is None else notes
    pan_name, ms_name = Path(pan_path).name, Path(ms_path).name
    left, right = max(pan.bounds.left, ms.bounds.left), min(pan.bounds.right, ms.bounds.right)
    top, bottom = min(pan.bounds.top, ms.bounds.top), max(pan.bounds.bottom, ms.bounds.bottom)
    if left >= right or bottom >= top:
        raise DataError(f"{pan_name} (bounds {tuple(round(v, 3) for v in pan.bounds)}) and {ms_name} "
                        f"(bounds {tuple(round(v, 3) for v in ms.bounds)}) do not overlap")
    ax, ay = _alignments(pan, ms, ratio, pan_path, ms_path)
    h = min(ms.height - ay.ms_start, (pan.height - ay.pan_start) // ratio)
    w = min(ms.width - ax.ms_start, (pan.width - ax.pan_start) // ratio)
    if h <= 0 or w <= 0:
        raise DataError(f"{pan_name} and {ms_name} do not overlap")
    _align_notes(ax, ay, ratio, notes)
    return (ay.ms_start, ax.ms_start, h, w), (ay.pan_start, ax.pan_start, h * ratio, w * ratio)
