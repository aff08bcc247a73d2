"""Fuse a real PAN + MS GeoTIFF scene of any size with a model: tiled, blended, written progressively.

Steps: check that PAN and MS cover the same ground with an integer resolution ratio; scale digital
numbers by the bit depth to [0, 1]; for each PAN tile (tiles overlap), read the MS window plus a
margin, upsample it onto the PAN grid (23-tap interpolator or bicubic), run the model, blend the
tile into a row stripe (``panfw.ops.tiling``); write each stripe as soon as no later tile touches
it. Memory grows with the scene width and the tile size, never with the scene height.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import attrs
import numpy as np
import torch
from torch import nn

from panfw.errors import UserError
from panfw.ops.bands import select_bands
from panfw.ops.tiling import RowBlender, tile_starts, tile_weight

BACKENDS = ("torch", "onnx", "trt")
UPSAMPLERS = ("interp23tap", "bicubic")
MS_MARGIN = 12  # MS pixels read around each window: interp23tap's reach is < 11 at any power-of-2 ratio


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

    @property
    def megapixels_per_s(self) -> float:
        return self.height * self.width / 1e6 / max(self.seconds, 1e-9)

    def summary(self) -> str:
        return (f"fused {self.width}x{self.height} px, {self.bands} bands (ratio {self.ratio}, {self.bits}-bit) "
                f"with {self.model} [{self.backend}, {self.device}]: {self.tiles} tiles in {self.seconds:.1f} s "
                f"({self.megapixels_per_s:.3f} MP/s) -> {self.out}")


# ---- geometry checks ------------------------------------------------------------------------------

def check_pair(pan: Any, ms: Any, pan_path: str | Path, ms_path: str | Path) -> int:
    """The integer PAN/MS resolution ratio of two open rasterio datasets, or a UserError naming both
    files and what differs (CRS, resolution ratio, extent, band count)."""
    where = f"PAN {pan_path} and MS {ms_path}"
    if pan.count != 1:
        raise UserError(f"PAN {pan_path} has {pan.count} bands; a single-band panchromatic image is expected")
    if (pan.crs is None) != (ms.crs is None) or (pan.crs is not None and pan.crs != ms.crs):
        raise UserError(f"{where} have different coordinate reference systems: PAN {_crs(pan.crs)} vs MS "
                        f"{_crs(ms.crs)}; reproject one onto the other (e.g. gdalwarp -t_srs)")
    for ds, name, path in ((pan, "PAN", pan_path), (ms, "MS", ms_path)):
        t = ds.transform
        if t.b != 0 or t.d != 0:
            raise UserError(f"{name} {path} has a rotated or sheared geotransform {tuple(t)[:6]}; "
                            "only north-up images are accepted (gdalwarp them first)")
    pres, mres = (abs(pan.transform.a), abs(pan.transform.e)), (abs(ms.transform.a), abs(ms.transform.e))
    rx, ry = mres[0] / pres[0], mres[1] / pres[1]
    ratio = round(rx)
    if abs(rx - ry) > 1e-6 * max(rx, ry) or abs(rx - ratio) > 1e-3 or ratio < 2:
        raise UserError(f"{where}: the MS/PAN pixel-size ratio must be one integer >= 2 in x and y; "
                        f"PAN pixels {pres[0]:g} x {pres[1]:g}, MS pixels {mres[0]:g} x {mres[1]:g} "
                        f"(ratio {rx:g} x {ry:g})")
    half = 0.5 * pres[0], 0.5 * pres[1]
    pb, mb = pan.bounds, ms.bounds
    diffs = {"left": (pb.left - mb.left, half[0]), "right": (pb.right - mb.right, half[0]),
             "bottom": (pb.bottom - mb.bottom, half[1]), "top": (pb.top - mb.top, half[1])}
    bad = {k: d for k, (d, tol) in diffs.items() if abs(d) > tol}
    if bad or pan.width != ratio * ms.width or pan.height != ratio * ms.height:
        detail = ", ".join(f"{k} differs by {d:g} ({d / (2 * diffs[k][1]):.2f} PAN pixels)" for k, d in bad.items())
        raise UserError(f"{where} do not cover the same ground (extents must agree within half a PAN "
                        f"pixel): PAN bounds {tuple(round(v, 6) for v in pb)}, {pan.width}x{pan.height} px; "
                        f"MS bounds {tuple(round(v, 6) for v in mb)}, {ms.width}x{ms.height} px at ratio "
                        f"{ratio}{'; ' + detail if detail else ''}. Crop both to a common extent "
                        f"(e.g. gdal_translate -projwin) with PAN size = {ratio} x MS size")
    return ratio


def _crs(crs: Any) -> str:
    if crs is None:
        return "none"
    try:
        return crs.to_string()
    except Exception:  # noqa: BLE001
        return str(crs)


def parse_bands(value: str | Sequence[int] | None, available: int, sensor: Any = None,
                where: str = "MS") -> list[int] | None:
    """``--bands`` as 1-based band numbers for rasterio ("2,3,5,7" as in GDAL, or "bgrn")."""
    picks = select_bands(value, available, sensor, one_based=True, where=f"{where}: --")
    return None if picks is None else [i + 1 for i in picks]


# ---- model runners -------------------------------------------------------------------------------

@attrs.define
class Engine:
    """A model ready to run on tiles, with what is known about it."""

    run: Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]
    name: str
    bands: int | None
    data: dict
    backend: str
    device: str
    sizes: tuple[int, int] | None = None  # (min, max) H and W an exported file accepts


def _pick_device(device: str | None) -> str:
    if device in (None, "", "auto"):
        return "cuda" if torch.cuda.is_available() else "cpu"
    if str(device).startswith("cuda") and not torch.cuda.is_available():
        raise UserError(f"--device {device}: no CUDA device is available here; use --device cpu")
    return str(device)


def make_engine(model: str | Path | nn.Module, backend: str | None = None, device: str | None = None,
                bands: int | None = None, tile: int = 512, ratio: int = 4) -> Engine:
    """Load ``model`` (checkpoint, run dir, registered name, module, or exported .onnx/.pt2/.ep file)
    for ``backend`` (torch, onnx, trt; default from the file type)."""
    from panfw.export import ShapeSpec, cast_model, export_model, load_exported, resolve_model

    device = _pick_device(device)
    path = None if isinstance(model, nn.Module) else Path(str(model))
    exported = path is not None and (path.suffix in (".onnx", ".pt2", ".ep"))
    if backend is None:
        backend = "onnx" if exported and path.suffix == ".onnx" else "torch"
    if backend not in BACKENDS:
        raise UserError(f"unknown --backend {backend!r}; accepted: {', '.join(BACKENDS)}")
    if exported:
        if backend == "onnx" and path.suffix != ".onnx":
            raise UserError(f"--backend onnx runs .onnx files, not {path}")
        runner, meta = load_exported(path, device=device)
        kind = meta.get("kind", "onnx" if path.suffix == ".onnx" else "exported_program")
        if backend == "trt" and kind != "tensorrt":
            raise UserError(f"{path} is a {kind} file, not a TensorRT export; drop --backend trt or "
                            "export with panfw export --trt")
        name = (meta.get("model") or {}).get("name", path.name)
        data = dict(meta.get("data") or {})
        used = "trt" if kind == "tensorrt" else backend
        sizes = (int(meta["min_size"]), int(meta["max_size"])) if "min_size" in meta and "max_size" in meta else None
        return Engine(_as_runner(runner, device), name, meta.get("bands"), data, used, device, sizes)
    if path is not None and (path.suffix in (".pt", ".pth") or path.exists()):
        net, info = resolve_model(path)  # the checkpoint knows its bands; fuse_scene compares them
    else:
        net, info = resolve_model(model if path is None else str(model), bands=bands, ratio=ratio)
    nbands = info["data"]["bands"]
    if backend == "torch":
        net = net.to(device).eval()

        def run(lms: torch.Tensor, pan: torch.Tensor, ms: torch.Tensor) -> torch.Tensor:
            with torch.inference_mode():
                return net(lms.to(device), pan.to(device), ms.to(device))

        return Engine(run, info["name"], nbands, info["data"], backend, device)
    if backend == "onnx":
        import tempfile

        size = max(4 * ratio, tile)
        with tempfile.TemporaryDirectory(prefix="panfw-fuse-") as tmp:  # the session keeps the model
            export_model(net, "onnx", Path(tmp) / "model.onnx", bands=nbands, ratio=ratio, min_size=2 * ratio,
                         opt_size=size, max_size=size, parity_sizes=[(size, size)])
            runner, _ = load_exported(Path(tmp) / "model.onnx", device=device)
        return Engine(_as_runner(runner, device), info["name"], nbands, info["data"], backend, device)
    # trt: compile for this tile size on the fly
    from panfw.export.tensorrt import compile_trt, require_trt

    require_trt()
    if not device.startswith("cuda"):
        raise UserError("--backend trt runs on CUDA only; use --device cuda")
    spec = ShapeSpec(bands=nbands, ratio=ratio, min_size=2 * ratio, opt_size=max(2 * ratio, tile),
                     max_size=max(2 * ratio, tile))
    trt_module = compile_trt(cast_model(net, "fp32"), spec, name=info["name"])
    return Engine(_as_runner(trt_module, device), info["name"], nbands, info["data"], backend, device)


def _as_runner(fn: Callable[..., Any], device: str) -> Callable[..., torch.Tensor]:
    def run(lms: torch.Tensor, pan: torch.Tensor, ms: torch.Tensor) -> torch.Tensor:
        with torch.inference_mode():
            return torch.as_tensor(fn(lms.to(device), pan.to(device), ms.to(device)))

    return run


# ---- the scene loop ------------------------------------------------------------------------------

def _bit_depth(bits: int | None, sensor: Any, data: dict, dtype: str, ms_path: Any) -> int:
    if bits:
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


def _to_dtype(values: np.ndarray, dtype: str, max_dn: float) -> np.ndarray:
    """[0, 1] values back to digital numbers in the MS data type (rounded and clipped for integers)."""
    dn = values * max_dn
    if np.issubdtype(np.dtype(dtype), np.integer):
        info = np.iinfo(dtype)
        return np.clip(np.rint(dn), info.min, info.max).astype(dtype)
    return dn.astype(dtype)


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

    engine: Engine
    picks: list[int]
    ratio: int
    tile: int
    overlap: int
    max_dn: float
    method: str
    nodata: float | None


def fuse_scene(pan_path: str | Path, ms_path: str | Path, model: str | Path | nn.Module,
               out_path: str | Path, *, bits: int | None = None, sensor: str | None = None,
               tile: int = 512, overlap: int = 64, backend: str | None = None, device: str | None = None,
               bands: str | Sequence[int] | None = None, upsample: str | None = None,
               compress: str | None = None, progress: bool = True) -> FuseReport:
    """Fuse the PAN and MS GeoTIFFs with ``model`` into ``out_path`` (PAN georeference, MS data type,
    band descriptions and nodata); see the module docstring for the steps."""
    import rasterio

    start = time.perf_counter()
    pan_path, ms_path, out_path = Path(pan_path), Path(ms_path), Path(out_path)
    for p, what in ((pan_path, "PAN"), (ms_path, "MS")):
        if not p.is_file():
            raise UserError(f"{what} file {str(p)!r} not found")
    if out_path.resolve() in (pan_path.resolve(), ms_path.resolve()):
        raise UserError(f"-o {out_path}: would overwrite an input")
    try:
        with rasterio.open(pan_path) as pan, rasterio.open(ms_path) as ms:
            plan = _plan(pan, ms, pan_path, ms_path, model, bits=bits, sensor=sensor, tile=tile,
                         overlap=overlap, backend=backend, device=device, bands=bands, upsample=upsample)
            tiles = _write(pan, ms, plan, out_path, compress, progress)
            height, width = pan.height, pan.width
    except rasterio.errors.RasterioIOError as exc:
        raise UserError(f"cannot read or write a GeoTIFF: {exc}") from None
    e = plan.engine
    return FuseReport(out=out_path, height=height, width=width, bands=len(plan.picks), ratio=plan.ratio,
                      bits=int(round(math.log2(plan.max_dn + 1))), tiles=tiles,
                      seconds=time.perf_counter() - start, backend=e.backend, device=e.device, model=e.name)


def _plan(pan: Any, ms: Any, pan_path: Path, ms_path: Path, model: Any, *, bits: int | None,
          sensor: str | None, tile: int, overlap: int, backend: str | None, device: str | None,
          bands: Any, upsample: str | None) -> _Plan:
    """Check the inputs and options, load the model."""
    from panfw.sensors import get_sensor

    ratio = check_pair(pan, ms, pan_path, ms_path)
    sens = get_sensor(sensor) if sensor else None
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
    engine = make_engine(model, backend=backend, device=device, bands=nb, tile=tile, ratio=ratio)
    dsens = sens or (get_sensor(engine.data["sensor"]) if engine.data.get("sensor") else None)
    if bgrn:
        picks = parse_bands(bands, ms.count, dsens, where=f"MS {ms_path}")
    if picks is None and engine.bands is not None and engine.bands != ms.count:
        hint = ""
        if dsens is not None and dsens.bgrn is not None and engine.bands == 4:
            hint = f" (B, G, R, NIR of {dsens.name}: --bands {','.join(str(i + 1) for i in dsens.bgrn)})"
        raise UserError(f"model {engine.name} expects {engine.bands} bands but MS {ms_path} has {ms.count}; "
                        f"pick {engine.bands} with --bands (1-based band numbers, or bgrn){hint}")
    if engine.bands is not None and nb != engine.bands:
        raise UserError(f"--bands picks {nb} bands but model {engine.name} expects {engine.bands}")
    if engine.data.get("ratio") and int(engine.data["ratio"]) != ratio:
        import warnings

        warnings.warn(f"model {engine.name} was trained at ratio {engine.data['ratio']}; the scene "
                      f"has ratio {ratio}", stacklevel=3)
    if engine.sizes is not None:
        lo, hi = engine.sizes
        used = {min(tile, pan.height), min(tile, pan.width)}
        if min(used) < lo or max(used) > hi:
            raise UserError(f"{model} accepts H, W from {lo} to {hi} PAN pixels, the tiles here are "
                            f"{'/'.join(map(str, sorted(used)))}: choose --tile within that range, or "
                            "export again with other --min-size/--max-size")
    nbits = _bit_depth(bits, sens, engine.data, ms.dtypes[0], ms_path)
    return _Plan(engine=engine, picks=picks or list(range(1, ms.count + 1)), ratio=ratio, tile=tile,
                 overlap=overlap, max_dn=float(2 ** nbits - 1), method=method,
                 nodata=_out_nodata(pan, ms, ms.dtypes[0]))


def _write(pan: Any, ms: Any, plan: _Plan, out_path: Path, compress: str | None, progress: bool) -> int:
    """The tile loop: read, upsample, run, blend, write finished row stripes. Returns the tile count."""
    import rasterio
    from rasterio.windows import Window
    from tqdm import tqdm

    height, width, dtype = pan.height, pan.width, ms.dtypes[0]
    r, m, picks, max_dn = plan.ratio, MS_MARGIN, plan.picks, plan.max_dn
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
            dst.update_tags(**ms.tags(), PANFW_MODEL=plan.engine.name,
                            PANFW_BITS=str(int(round(math.log2(max_dn + 1)))),
                            PANFW_MS_BANDS=",".join(map(str, picks)))
            for yi, y in enumerate(ys):
                for x in xs:
                    p = pan.read(1, window=Window(x, y, tw, th), out_dtype="float32") / max_dn
                    lo = torch.from_numpy(_read_ms(ms, picks, y // r - m, x // r - m, th // r + 2 * m,
                                                   tw // r + 2 * m) / max_dn)[None]
                    lms = _upsample(lo, r, plan.method)[..., m * r:m * r + th, m * r:m * r + tw]
                    low = lo[..., m:m + th // r, m:m + tw // r]
                    out = plan.engine.run(lms.contiguous(), torch.from_numpy(p)[None, None], low.contiguous())
                    blender.add(y, x, out.detach().float().cpu()[0],
                                tile_weight(y, x, th, tw, height, width, plan.overlap))
                    bar.update(1)
                y0, rows = blender.pop(ys[yi + 1] if yi + 1 < len(ys) else height)
                n = rows.shape[1]
                if n:
                    values = _to_dtype(rows.numpy(), dtype, max_dn)
                    _mark_nodata(values, _nodata_mask(pan, ms, picks, r, y0, n), plan.nodata)
                    dst.write(values, window=Window(0, y0, width, n))
        os.replace(tmp_path, out_path)
    except BaseException:
        tmp_path.unlink(missing_ok=True)
        raise
    finally:
        bar.close()
    return len(ys) * len(xs)
