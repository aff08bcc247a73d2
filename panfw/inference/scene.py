"""The scene loop of ``panfw fuse``: a PAN + MS GeoTIFF scene of any size, tiled, blended, written
progressively. The model arrives as a runtime (``panfw.inference``); the pair checks are
``panfw.io.geotiff``'s.

Steps: check that PAN and MS cover the same ground with an integer resolution ratio; scale digital
numbers by the bit depth to [0, 1]; for each PAN tile (tiles overlap), read the MS window plus a
margin, upsample it onto the PAN grid (23-tap interpolator or bicubic), run the model, blend the
tile into a row stripe (``panfw.ops.tiling``); write each stripe as soon as no later tile touches
it. Reading, upsampling and the nodata masks run in a reader thread (``prefetch``) two tiles ahead
of the model. Memory grows with the scene width and the tile size, never with the scene height.

The default runtime is the fastest here for the model and the default overlap 4x the model's
measured reach (``panfw.inference.auto``); the report's notes say which and why.
"""

from __future__ import annotations

import math
import os
import time
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import attrs
import numpy as np
import torch
from torch import nn

from panfw.errors import UserError
from panfw.ops.bands import select_bands
from panfw.ops.tiling import RowBlender, tile_starts, tile_weight

UPSAMPLERS = ("interp23tap", "bicubic")
MS_MARGIN = 12  # MS pixels read around each window: interp23tap's reach is < 11 at any power-of-2 ratio
STATS_SIZE = 2048  # side (PAN px) of the central window a model's scene statistics come from, at most


@attrs.define
class FuseReport:
    """What ``fuse_scene`` did."""

    out: Path
    height: int
    width: int
    bands: int
    ratio: int
    bits: int
    tiles: int
    seconds: float
    backend: str
    device: str
    model: str
    clipped: int = 0  # output values outside [0, 2^bits - 1], clipped when written
    notes: list[str] = attrs.field(factory=list)  # what the user should know (statistics window, clipping)

    @property
    def megapixels_per_s(self) -> float:
        return self.height * self.width / 1e6 / max(self.seconds, 1e-9)

    def summary(self) -> str:
        return (f"fused {self.width}x{self.height} px, {self.bands} bands (ratio {self.ratio}, {self.bits}-bit) "
                f"with {self.model} [{self.backend}, {self.device}]: {self.tiles} tiles in {self.seconds:.1f} s "
                f"({self.megapixels_per_s:.3f} MP/s) -> {self.out}")


def parse_bands(value: str | Sequence[int] | None, available: int, sensor: Any = None,
                where: str = "MS") -> list[int] | None:
    """``--bands`` as 1-based band numbers for rasterio ("2,3,5,7" as in GDAL, or "bgrn")."""
    picks = select_bands(value, available, sensor, one_based=True, where=f"{where}: --")
    return None if picks is None else [i + 1 for i in picks]


# ---- the scene loop ------------------------------------------------------------------------------

def _bit_depth(bits: int | None, sensor: Any, data: dict, dtype: str, ms_path: Any) -> int:
    if bits is not None:  # 0 is a wrong value, not a missing one
        np_type = np.dtype(dtype)
        limit = np.iinfo(np_type).bits if np.issubdtype(np_type, np.integer) else 32
        if not 1 <= int(bits) <= limit:
            raise UserError(f"--bits {bits}: the digital numbers of {ms_path} ({dtype}) have 1 to {limit} bits "
                            "(e.g. 11 for WorldView/QuickBird, 10 for GaoFen-2, 12 for Landsat/Sentinel-2)")
        return int(bits)
    if sensor is not None:
        return sensor.bit_depth
    if data.get("bit_depth"):
        return int(data["bit_depth"])
    if data.get("sensor"):
        from panfw.sensors import get_sensor

        return get_sensor(data["sensor"]).bit_depth
    if dtype == "uint8":
        return 8
    mixed = data.get("sensors") or []
    why = f" (it was trained on {', '.join(mixed)}, of different bit depths)" if len(mixed) > 1 else ""
    raise UserError(f"cannot tell the bit depth of {ms_path} ({dtype}) for this model{why}: pass --bits N "
                    "(e.g. 11 for WorldView/QuickBird, 10 for GaoFen-2) or --sensor NAME")


def _read_ms(ms: Any, bands: list[int], row0: int, col0: int, rows: int, cols: int) -> np.ndarray:
    """MS window [row0, row0+rows) x [col0, col0+cols) as float32; outside the image, mirrored."""
    from rasterio.windows import Window

    r0, c0 = max(row0, 0), max(col0, 0)
    r1, c1 = min(row0 + rows, ms.height), min(col0 + cols, ms.width)
    a = ms.read(bands, window=Window(c0, r0, c1 - c0, r1 - r0), out_dtype="float32")
    pad = ((0, 0), (r0 - row0, row0 + rows - r1), (c0 - col0, col0 + cols - c1))
    return np.pad(a, pad, mode="symmetric") if any(p != (0, 0) for p in pad[1:]) else a


def _upsample(x: torch.Tensor, ratio: int, method: str) -> torch.Tensor:
    from panfw.ops.resample import interp23tap, upsample_bicubic

    return interp23tap(x, ratio) if method == "interp23tap" else upsample_bicubic(x, ratio)


def _to_dtype(values: np.ndarray, dtype: str, max_dn: float,
              nodata: np.ndarray | None = None) -> tuple[np.ndarray, tuple[int, int]]:
    """[0, 1] values back to digital numbers in the MS data type, clipped to the valid range
    [0, max_dn] (rounded for integers); returns them and how many valid values (``nodata`` mask
    (H, W) left out) were clipped (below 0 or not a number, above max_dn)."""
    dn = values * max_dn
    finite = np.isfinite(dn)
    counted = slice(None) if nodata is None else (slice(None), ~nodata)
    low = int(np.count_nonzero(((dn < 0) | np.isnan(dn))[counted]))
    high = int(np.count_nonzero((dn > max_dn)[counted]))
    dn = np.clip(np.where(finite, dn, np.where(np.isnan(dn), 0.0, dn)), 0.0, max_dn)
    if np.issubdtype(np.dtype(dtype), np.integer):
        return np.rint(dn).astype(dtype), (low, high)
    return dn.astype(dtype), (low, high)


def _nodata_mask(pan: Any, ms: Any, bands: list[int], ratio: int, row0: int, rows: int) -> np.ndarray | None:
    """True where the PAN or any used MS band is nodata, on PAN rows [row0, row0+rows)."""
    from rasterio.windows import Window

    mask = None
    if pan.nodata is not None:
        p = pan.read(1, window=Window(0, row0, pan.width, rows))
        mask = (p == pan.nodata) | (np.isnan(p) if np.issubdtype(p.dtype, np.floating) and
                                    math.isnan(pan.nodata) else False)
    if ms.nodata is not None:
        m0, m1 = row0 // ratio, (row0 + rows - 1) // ratio + 1
        m = ms.read(bands, window=Window(0, m0, ms.width, m1 - m0))
        bad = (m == ms.nodata).any(0)
        if np.issubdtype(m.dtype, np.floating) and math.isnan(ms.nodata):
            bad |= np.isnan(m).any(0)
        bad = np.repeat(np.repeat(bad, ratio, 0), ratio, 1)[row0 - m0 * ratio:row0 - m0 * ratio + rows]
        mask = bad if mask is None else (mask | bad)
    return mask


def _mark_nodata(values: np.ndarray, mask: np.ndarray | None, nodata: float | None) -> None:
    """Write ``nodata`` where ``mask`` is set; a valid integer pixel that rounded to the nodata value
    moves one step away, so that it is not read back as missing."""
    if nodata is None:
        return
    if np.issubdtype(values.dtype, np.integer):
        step = 1 if nodata < np.iinfo(values.dtype).max else -1
        values[values == nodata] = nodata + step
    if mask is not None:
        values[:, mask] = nodata


def _out_nodata(pan: Any, ms: Any, dtype: str) -> float | None:
    """MS nodata; else PAN nodata where the MS data type can hold it; else none."""
    if ms.nodata is not None:
        return ms.nodata
    if pan.nodata is None:
        return None
    v = pan.nodata
    if np.issubdtype(np.dtype(dtype), np.integer):
        info = np.iinfo(dtype)
        return v if (not math.isnan(v) and float(v).is_integer() and info.min <= v <= info.max) else None
    return v


@attrs.define
class _Plan:
    """Everything the tile loop needs."""

    runtime: Any
    name: str
    bands: int | None
    picks: list[int]
    ratio: int
    tile: int
    overlap: int
    max_dn: float
    method: str
    nodata: float | None
    module: Any = None  # the nn.Module behind the runtime, when there is one
    rgb: tuple[int, int, int] | None = None  # 0-based output bands shown as R, G, B by --preview
    halo: int = 0  # PAN pixels of context read around each tile (the model's scene_halo)
    notes: list[str] = attrs.field(factory=list)  # the runtime and overlap chosen, and why


def fuse_scene(pan_path: str | Path, ms_path: str | Path, model: str | Path | nn.Module,
               out_path: str | Path, *, bits: int | None = None, sensor: str | None = None,
               tile: int | None = None, overlap: int | None = None, backend: str | None = None,
               device: str | None = None,
               bands: str | Sequence[int] | None = None, upsample: str | None = None,
               compress: str | None = None, progress: bool = True, overwrite: bool = False,
               model_options: dict | None = None, stats_size: int | None = None,
               preview: str | Path | None = None) -> FuseReport:
    """Fuse the PAN and MS GeoTIFFs with ``model`` into ``out_path`` (PAN georeference, MS data type,
    band descriptions and nodata); see the module docstring for the steps."""
    import rasterio

    from panfw.io.geotiff import open_pair

    start = time.perf_counter()
    pan_path, ms_path, out_path = Path(pan_path), Path(ms_path), Path(out_path)
    if out_path.resolve() in (pan_path.resolve(), ms_path.resolve()):
        raise UserError(f"-o {out_path}: would overwrite an input")
    preview = None if preview is None else Path(preview)
    if preview is not None:
        if preview.suffix.lower() != ".png":
            raise UserError(f"--preview {preview}: a .png file is written (e.g. --preview quicklook.png)")
        if preview.exists() and not overwrite:
            raise UserError(f"--preview {preview} exists; pass --overwrite to replace it")
    notes: list[str] = []
    plan = None
    try:
        with open_pair(pan_path, ms_path) as pair:
            notes += pair.notes  # grid offsets aligned, PAN rows/columns beyond the MS cropped
            for note in pair.notes:
                warnings.warn(note, stacklevel=2)
            pair.pan, pair.ms = pair.views()  # the aligned windows, read and georeferenced as rasters
            plan = _plan(pair, model, bits=bits, sensor=sensor, tile=tile, overlap=overlap, backend=backend,
                         device=device, bands=bands, upsample=upsample, model_options=model_options)
            notes += plan.notes
            if out_path.exists() and not overwrite:  # after the checks: a bad option is named first
                raise UserError(f"-o {out_path} exists; pass --overwrite to replace it (every panfw command "
                                "that writes a file refuses to replace one without it)")
            notes += _fit_scene(pair.pan, pair.ms, plan, stats_size)
            tiles, (clipped, below) = _write(pair.pan, pair.ms, plan, out_path, compress, progress)
            height, width = pair.pan.height, pair.pan.width
    except rasterio.errors.RasterioIOError as exc:
        raise UserError(f"cannot read or write a GeoTIFF: {exc}") from None
    except OSError as exc:  # an unwritable -o folder, a full disk: the user's to fix
        raise UserError(f"cannot write {exc.filename or out_path}: {exc.strerror or exc}") from None
    finally:
        if plan is not None and hasattr(plan.module, "clear_scene"):
            plan.module.clear_scene()  # a module passed in goes back as it came
    if clipped:
        share = clipped / max(1, height * width * len(plan.picks))
        msg = (f"{clipped} output values ({100 * share:.3g}%) fell outside the valid range 0..{int(plan.max_dn)} "
               f"DN and were clipped ({below} below 0, {clipped - below} above {int(plan.max_dn)})")
        if plan.name in FLOOR_MS_METHODS and below:
            msg += (f"; {plan.name} divides by quantities made from the upsampled MS, which undershoots "
                    "near zero in dark areas: --option floor_ms=true floors it at zero first")
        warnings.warn(msg, stacklevel=2)
        notes.append(msg)
    if preview is not None:
        notes.append(f"quicklook: {write_preview(out_path, preview, plan.rgb)}")
    rt = plan.runtime
    return FuseReport(out=out_path, height=height, width=width, bands=len(plan.picks), ratio=plan.ratio,
                      bits=int(round(math.log2(plan.max_dn + 1))), tiles=tiles,
                      seconds=time.perf_counter() - start, backend=rt.name, device=rt.device, model=plan.name,
                      clipped=clipped, notes=notes)


# the parameter-free methods that take floor_ms (they divide by the upsampled MS or a low-pass)
FLOOR_MS_METHODS = ("brovey", "bt_h", "awlp", "mf", "sfim", "mtf_glp_hpm", "mtf_glp_hpm_h", "mtf_glp_hpm_r")


def _fit_scene(pan: Any, ms: Any, plan: _Plan, stats_size: int | None) -> list[str]:
    """A model with scene statistics (``fit_scene``, the classical methods) estimates them once, on the
    whole scene or its central ``stats_size`` window, before the tiles; returns notes for the user."""
    module = plan.module
    fit = getattr(module, "fit_scene", None)
    if fit is None:
        return []
    notes = []
    r, m, size = plan.ratio, MS_MARGIN, int(stats_size or STATS_SIZE)
    h, w = pan.height, pan.width
    sh, sw = min(h, max(r, size - size % r)), min(w, max(r, size - size % r))
    y0, x0 = (h - sh) // 2 // r * r, (w - sw) // 2 // r * r
    if (sh, sw) != (h, w):
        notes.append(f"{plan.name}: its image-wide statistics come from the central {sw}x{sh} PAN pixels of "
                     f"the {w}x{h} scene (--stats-size sets the window)")
    from rasterio.windows import Window

    # a nodata collar is left out of the statistics: the window shrinks to the valid pixels' bounding box
    bad = _nodata_mask(pan, ms, plan.picks, r, y0, sh)
    if bad is not None:
        bad = bad[:, x0:x0 + sw]
        rows, cols = np.flatnonzero(~bad.all(1)), np.flatnonzero(~bad.all(0))
        if rows.size and cols.size:
            r0, r1 = -(-rows[0] // r) * r, (rows[-1] + 1) // r * r
            c0, c1 = -(-cols[0] // r) * r, (cols[-1] + 1) // r * r
            if r1 > r0 and c1 > c0 and (r1 - r0, c1 - c0) != (sh, sw):
                notes.append(f"{plan.name}: its statistics leave out the nodata border (from the {c1 - c0}x{r1 - r0} "
                             f"PAN pixels at column {x0 + c0}, row {y0 + r0}); nodata inside that is included")
                y0, x0, sh, sw = y0 + r0, x0 + c0, r1 - r0, c1 - c0
    p = pan.read(1, window=Window(x0, y0, sw, sh), out_dtype="float32") / plan.max_dn
    lo = torch.from_numpy(_read_ms(ms, plan.picks, y0 // r - m, x0 // r - m, sh // r + 2 * m, sw // r + 2 * m)
                          / plan.max_dn)[None]
    lms = _upsample(lo, r, plan.method)[..., m * r:m * r + sh, m * r:m * r + sw]
    low = lo[..., m:m + sh // r, m:m + sw // r]
    with torch.no_grad():
        fit(lms.contiguous(), torch.from_numpy(p)[None, None], low.contiguous())
    exact = getattr(module, "tile_exact", True)
    if exact is not True and (plan.tile < h or plan.tile < w):
        notes.append(f"{plan.name} is fused tile by tile with the scene's statistics, but tiles cannot give its "
                     f"whole-image result exactly: {exact}; a --tile of at least {max(h, w)} fuses the scene "
                     "as one image")
    plan.halo = int(getattr(module, "scene_halo", 0) or 0)
    if plan.halo % r:
        plan.halo += r - plan.halo % r
    return notes


def _plan(pair: Any, model: Any, *, bits: int | None, sensor: str | None, tile: int, overlap: int,
          backend: str | None, device: str | None, bands: Any, upsample: str | None,
          model_options: dict | None = None) -> _Plan:
    """Check the options, load the model as a runtime sized for the tiles."""
    from panfw.inference import runtime_for
    from panfw.sensors import get_sensor

    pan, ms, ms_path, ratio = pair.pan, pair.ms, pair.ms_path, pair.ratio
    sens = get_sensor(sensor) if sensor else None
    # defaults follow the ratio (tile 512 at 2, 4, 8; 510 at 3); the overlap default is set from the
    # model's measured reach below (64, or the multiple of the ratio above it, until then)
    tile = tile if tile is not None else 512 - 512 % ratio
    given_overlap = overlap
    overlap = overlap if overlap is not None else -(-64 // ratio) * ratio
    if tile <= 0 or overlap < 0 or tile % ratio or overlap % ratio:
        raise UserError(f"--tile {tile} and --overlap {overlap} must be multiples of the ratio {ratio} "
                        "(tile > 0, overlap >= 0)")
    if overlap >= tile:
        raise UserError(f"--overlap {overlap} must be smaller than --tile {tile}")
    method = upsample or ("interp23tap" if ratio & (ratio - 1) == 0 else "bicubic")
    if method not in UPSAMPLERS:
        raise UserError(f"unknown --upsample {method!r}; accepted: {', '.join(UPSAMPLERS)}")
    if method == "interp23tap" and ratio & (ratio - 1):
        raise UserError(f"interp23tap needs a power-of-two ratio, the scene has {ratio}; use --upsample bicubic")
    bgrn = isinstance(bands, str) and bands.strip().lower() == "bgrn"
    picks = None if bgrn else parse_bands(bands, ms.count, where=f"MS {ms_path}")
    nb = 4 if bgrn else (len(picks) if picks else ms.count)
    # the pair's ratio and the sensor reach a registered model that takes them; a file knows its own
    # the bit depth a registered model gets: --bits, else the sensor's (a checkpoint knows its own)
    early_bits = _bit_depth(bits, sens, {}, ms.dtypes[0], ms_path) if (bits is not None or sens) else None
    runtime, res = runtime_for(model, backend, device, bands=nb, sensor=sensor, ratio=ratio,
                               size=max(2 * ratio, min(tile, max(pan.height, pan.width))),
                               model_options=model_options, bit_depth=early_bits)
    nbands, data, name = res.bands, res.data, res.name
    dsens = sens or (get_sensor(data["sensor"]) if data.get("sensor") else None)
    if bgrn:
        picks = parse_bands(bands, ms.count, dsens, where=f"MS {ms_path}")
    if picks is None and nbands is not None and nbands != ms.count:
        hint = ""
        if dsens is not None and dsens.bgrn is not None and nbands == 4:
            hint = f" (B, G, R, NIR of {dsens.name}: --bands {','.join(str(i + 1) for i in dsens.bgrn)})"
        raise UserError(f"model {name} expects {nbands} bands but MS {ms_path} has {ms.count}; "
                        f"pick {nbands} with --bands (1-based band numbers, or bgrn){hint}")
    if nbands is not None and nb != nbands:
        raise UserError(f"--bands picks {nb} bands but model {name} expects {nbands}")
    if data.get("ratio") and int(data["ratio"]) != ratio:
        import warnings

        warnings.warn(f"model {name} was trained at ratio {data['ratio']}; the scene "
                      f"has ratio {ratio}", stacklevel=3)
    if runtime.sizes is not None:
        lo, hi = runtime.sizes
        used = {min(tile, pan.height), min(tile, pan.width)}
        if min(used) < lo or max(used) > hi:
            raise UserError(f"{model} accepts H, W from {lo} to {hi} PAN pixels, the tiles here are "
                            f"{'/'.join(map(str, sorted(used)))}: choose --tile within that range, or "
                            "export again with other --min-size/--max-size")
    nbits = _bit_depth(bits, sens, data, ms.dtypes[0], ms_path)
    out_picks = picks or list(range(1, ms.count + 1))
    rgb = _rgb_bands(out_picks, ms.count, dsens)
    module = res.model_or_runtime if res.is_module else None
    why = getattr(runtime, "why", "") or "the exported file's own"
    notes = [f"runtime: {runtime.name} on {runtime.device} ({why}; --backend chooses another)"]
    if given_overlap is None and tile < max(pan.height, pan.width):
        from panfw.inference.auto import default_overlap

        overlap, why = default_overlap(module, nbands or nb, ratio)
        overlap = min(overlap, tile - ratio)
        notes.append(f"tile overlap {overlap} px: {why} (--overlap sets it)")
    return _Plan(runtime=runtime, name=name, bands=nbands, picks=out_picks, rgb=rgb,
                 ratio=ratio, tile=tile, overlap=overlap, max_dn=float(2 ** nbits - 1), method=method,
                 nodata=_out_nodata(pan, ms, ms.dtypes[0]), module=module, notes=notes)


def _rgb_bands(picks: list[int], count: int, sensor: Any) -> tuple[int, int, int] | None:
    """The output bands (0-based) that show red, green, blue: the sensor's (8-band WorldView), else
    B, G, R, NIR order for 4 bands and 3 bands as R, G, B; None: the first band as grey."""
    order = None
    if sensor is not None and sensor.bgrn is not None and count == sensor.n_bands:
        order = [sensor.bgrn[2] + 1, sensor.bgrn[1] + 1, sensor.bgrn[0] + 1]  # 1-based MS bands R, G, B
    elif count == 4:
        order = [3, 2, 1]
    elif count >= 3:
        order = [3, 2, 1] if count > 3 else [1, 2, 3]
    if order is not None and all(b in picks for b in order):
        return tuple(picks.index(b) for b in order)  # type: ignore[return-value]
    if len(picks) == 4:  # --bands bgrn or four picked: B, G, R, NIR
        return (2, 1, 0)
    return (0, 1, 2) if len(picks) >= 3 else None


def write_preview(tif: Path, png: Path, rgb: tuple[int, int, int] | None, size: int = 1024,
                  low: float = 2.0, high: float = 98.0) -> Path:
    """An RGB quicklook of a fused GeoTIFF: at most ``size`` pixels a side, each channel stretched
    from its ``low`` to its ``high`` percentile (nodata left out, shown black)."""
    import rasterio
    from matplotlib import image as mpimg

    with rasterio.open(tif) as ds:
        f = max(1, math.ceil(max(ds.height, ds.width) / size))
        shape = (max(1, ds.height // f), max(1, ds.width // f))
        bands = [i + 1 for i in rgb] if rgb else [1]
        a = ds.read(bands, out_shape=(len(bands), *shape)).astype(np.float64)
        valid = np.ones(shape, bool) if ds.nodata is None else ~(a == ds.nodata).any(0)
    stretched = []
    for band in a:
        v = band[valid]
        lo, hi = np.percentile(v, [low, high]) if v.size else (0.0, 1.0)
        stretched.append(np.clip((band - lo) / max(hi - lo, 1e-12), 0, 1))
    out = np.stack(stretched * 3 if len(stretched) == 1 else stretched, axis=-1)
    out[~valid] = 0
    png.parent.mkdir(parents=True, exist_ok=True)
    mpimg.imsave(png, out)
    return png


def prefetch(items: Iterator[Any], depth: int = 2) -> Iterator[Any]:
    """``items`` produced in a background thread, at most ``depth`` ahead of the consumer, so that
    reading and upsampling tiles overlaps the model (torch and GDAL release the GIL); the producer's
    exceptions are raised here, and it stops when the consumer does."""
    import queue
    import threading

    q: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()
    end = object()

    def put(item: Any) -> bool:
        while not stop.is_set():
            try:
                q.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def run() -> None:
        try:
            for item in items:
                if not put(("item", item)):
                    return
            put(("end", end))
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer
            put(("error", exc))

    thread = threading.Thread(target=run, name="panfw-fuse-reader", daemon=True)
    thread.start()
    try:
        while True:
            kind, item = q.get()
            if kind == "end":
                return
            if kind == "error":
                raise item
            yield item
    finally:
        stop.set()
        thread.join()


def _write(pan: Any, ms: Any, plan: _Plan, out_path: Path, compress: str | None, progress: bool) -> tuple[int, int]:
    """The tile loop: read (with the model's halo), upsample, run, blend, write finished row stripes.
    Returns the tile count and how many output values were clipped to the valid range."""
    import rasterio
    from rasterio.windows import Window
    from tqdm import tqdm

    height, width, dtype = pan.height, pan.width, ms.dtypes[0]
    r, m, picks, max_dn, halo = plan.ratio, MS_MARGIN, plan.picks, plan.max_dn, plan.halo
    clipped = below = 0
    ys = tile_starts(height, plan.tile, plan.overlap, r)
    xs = tile_starts(width, plan.tile, plan.overlap, r)
    th, tw = min(plan.tile, height), min(plan.tile, width)
    profile = {"driver": "GTiff", "width": width, "height": height, "count": len(picks), "dtype": dtype,
               "crs": pan.crs, "transform": pan.transform, "nodata": plan.nodata, "interleave": "pixel",
               "tiled": False, "BIGTIFF": "IF_SAFER"}
    if compress and compress.lower() != "none":
        profile.update(compress=compress, blockysize=1)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    tmp_path = out_path.with_name(f".{out_path.name}.partial")
    blender = RowBlender(len(picks), width)
    bar = tqdm(total=len(ys) * len(xs), unit="tile", desc="fuse", disable=not progress, leave=False)
    try:
        with rasterio.open(tmp_path, "w", **profile) as dst:
            for i, b in enumerate(picks):
                if ms.descriptions[b - 1]:
                    dst.set_band_description(i + 1, ms.descriptions[b - 1])
            dst.update_tags(**ms.tags(), PANFW_MODEL=plan.name,
                            PANFW_BITS=str(int(round(math.log2(max_dn + 1)))),
                            PANFW_MS_BANDS=",".join(map(str, picks)))
            def inputs():
                """Reading, upsampling and nodata masks, in a reader thread ahead of the model."""
                done = 0
                for yi, y in enumerate(ys):
                    for x in xs:
                        # the tile plus the model's halo, inside the scene; the output is cropped back
                        wy0, wx0 = max(0, y - halo), max(0, x - halo)
                        wh, ww = min(height, y + th + halo) - wy0, min(width, x + tw + halo) - wx0
                        p = pan.read(1, window=Window(wx0, wy0, ww, wh), out_dtype="float32") / max_dn
                        lo = torch.from_numpy(_read_ms(ms, picks, wy0 // r - m, wx0 // r - m, wh // r + 2 * m,
                                                       ww // r + 2 * m) / max_dn)[None]
                        lms = _upsample(lo, r, plan.method)[..., m * r:m * r + wh, m * r:m * r + ww]
                        low = lo[..., m:m + wh // r, m:m + ww // r]
                        yield "tile", (y, x, wy0, wx0, lms.contiguous(), torch.from_numpy(p)[None, None],
                                       low.contiguous())
                    upto = ys[yi + 1] if yi + 1 < len(ys) else height  # the rows the blender hands back next
                    yield "rows", (upto, _nodata_mask(pan, ms, picks, r, done, upto - done) if upto > done else None)
                    done = upto

            for kind, item in prefetch(inputs()):
                if kind == "tile":
                    y, x, wy0, wx0, lms, p, low = item
                    out = plan.runtime(lms, p, low)
                    out = out[..., y - wy0:y - wy0 + th, x - wx0:x - wx0 + tw]
                    blender.add(y, x, out.detach().float().cpu()[0],
                                tile_weight(y, x, th, tw, height, width, plan.overlap))
                    bar.update(1)
                    continue
                upto, mask = item
                y0, rows = blender.pop(upto)
                n = rows.shape[1]
                if n:
                    values, (n_low, n_high) = _to_dtype(rows.numpy(), dtype, max_dn, mask)
                    clipped += n_low + n_high
                    below += n_low
                    _mark_nodata(values, mask, plan.nodata)
                    dst.write(values, window=Window(0, y0, width, n))
        os.replace(tmp_path, out_path)
    except BaseException:
        tmp_path.unlink(missing_ok=True)
        raise
    finally:
        bar.close()
    return len(ys) * len(xs), (clipped, below)
