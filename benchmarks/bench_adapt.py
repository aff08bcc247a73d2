"""panfw adapt benchmark: a held-out sensor, real-trait scenes, and the time of a 512² scene.

    OMP_NUM_THREADS=1 panfw run recipes/quickstart.toml        # the all-in-one model, once
    python benchmarks/bench_adapt.py heldout --model runs/quickstart/<stamp>/best.pt
    python benchmarks/bench_adapt.py traits                    # default backbone, GeoTIFF scenes
    python benchmarks/bench_adapt.py timing                    # 512x512 PAN GeoTIFF, adapt + fuse

heldout: synthetic scenes of the Jilin-1-like sensor ``jl1`` (visible-only PAN, MTF gains unlike
WV2/WV3/GF2; never in the quickstart's training data), full resolution with the true HR image
kept: HQNR, D_lambda^K, D_s and the true PSNR of plain upsampling, MTF-GLP-FS, the unadapted model
and the adapted one. traits: GeoTIFF pairs with real-world traits (odd sizes, a dark water body,
11-bit data in 16-bit files, 8 and 4 bands, no-data corners) adapted with the defaults of
``panfw adapt``; HQNR against plain upsampling and MTF-GLP-FS. Prints markdown tables.
"""

from __future__ import annotations

import argparse
import json
import math
import tempfile
import time
from pathlib import Path

import numpy as np
import torch


def _scene(sensor: str, index: int, size: int, seed: int = 7) -> dict:
    from panfw_datasets.synthetic import make_tile

    return make_tile(sensor, "test_fr", index, size, seed=seed)


def heldout(model: str, n: int, size: int, overrides: list[str], start: int = 0) -> str:
    """Adapt ``model`` to ``n`` held-out jl1 scenes; a markdown table of the mean scores."""
    import panfw
    from panfw.config.recipe import loads_recipe
    from panfw.procedures.adapt import Adapter, build_backbone, fr_scores, prepare_scene, sensor_with_bits
    from panfw.procedures.adapt import _defaults_with as with_overrides
    from panfw_metrics import functional as Fm

    spec = (with_overrides(overrides) if overrides else loads_recipe("")).adapt
    sensor = sensor_with_bits("jl1", 12)
    rows: dict[str, list[dict]] = {}
    for i in range(start, start + n):
        t = _scene("jl1", i, size)
        k = float(sensor.max_dn)
        ms, lms, pan, gt = (t[key][None] / k for key in ("ms", "lms", "pan", "gt"))
        net, _ = build_backbone(model, 4, "jl1", 4)
        cands = {"lms": lms, "mtf_glp_fs": panfw.create_model("mtf_glp_fs", bands=4, sensor="jl1")(lms, pan, ms)}
        with torch.no_grad():
            cands["unadapted"] = net.eval()(lms, pan, ms)
        t0 = time.perf_counter()
        reg = prepare_scene(ms, pan, sensor, 4, spec.pan_mode, lms=lms)
        res = Adapter(net, [reg], sensor, spec, seed=i).run()
        dt = time.perf_counter() - t0
        with torch.no_grad():
            cands["adapted"] = res.model(lms, pan, ms)
        for name, img in cands.items():
            img = img.float().clamp(0, 1)
            sc = fr_scores(img, ms, pan, lms, sensor)
            sc["psnr"] = float(Fm.psnr(img.double(), gt.double()))
            sc["sam"] = float(Fm.sam(img.double() * k, gt.double() * k))
            sc["seconds"] = dt if name == "adapted" else 0.0
            rows.setdefault(name, []).append(sc)
        print(f"scene {i}: " + ", ".join(f"{nm} {v[-1]['hqnr']:.4f}/{v[-1]['psnr']:.2f} dB" for nm, v in rows.items()),
              flush=True)
    labels = {"lms": "plain upsampling (lms)", "mtf_glp_fs": "MTF-GLP-FS", "unadapted": "quickstart model, unadapted",
              "adapted": "quickstart model, adapted"}
    lines = [f"Held-out sensor jl1 (Jilin-1-like, synthetic), {n} full-resolution scenes of {size}x{size} PAN px, "
             "mean:", "", "| image | D_lambda^K | D_s | HQNR | true PSNR (dB) | true SAM (deg) | adapt s/scene |",
             "|---|---|---|---|---|---|---|"]
    for name, scs in rows.items():
        m = {key: float(np.mean([s[key] for s in scs])) for key in scs[0]}
        lines.append(f"| {labels[name]} | {m['d_lambda_k']:.4f} | {m['d_s']:.4f} | {m['hqnr']:.4f} | {m['psnr']:.2f} | "
                     f"{m['sam']:.2f} | {m['seconds']:.0f} |" if name == "adapted" else
                     f"| {labels[name]} | {m['d_lambda_k']:.4f} | {m['d_s']:.4f} | {m['hqnr']:.4f} | {m['psnr']:.2f} | "
                     f"{m['sam']:.2f} | |")
    return "\n".join(lines)


def write_trait_pair(folder: Path, sensor: str, index: int, ms_size: tuple[int, int], *, dark_water: bool,
                     nodata: bool, seed: int = 11) -> tuple[Path, Path, dict]:
    """A GeoTIFF pair with real-world traits: an odd MS size (h, w), optionally a dark water body
    (a smooth 10-20 % brightness region in every band and the PAN) and a no-data corner; integer
    DN at the sensor's bit depth in uint16 files."""
    import rasterio
    from rasterio.transform import from_origin

    from panfw.sensors import get_sensor

    s = get_sensor(sensor)
    h, w = ms_size
    t = _scene(sensor, index, 4 * max(h, w), seed)
    pan = t["pan"][:, :4 * h, :4 * w].numpy().astype(np.float64)
    ms = t["ms"][:, :h, :w].numpy().astype(np.float64)
    if dark_water:  # a lake: about 12 % of the radiance, NIR darkest, with the sensor's noise on top
        rng = np.random.default_rng([seed, index, 5])
        yy, xx = np.mgrid[0:4 * h, 0:4 * w] / 4.0
        cy, cx, rad = 0.3 * h, 0.65 * w, 0.22 * min(h, w)
        lake = 1 / (1 + np.exp((np.sqrt((yy - cy) ** 2 + ((xx - cx) * 0.8) ** 2) - rad) / 1.5))
        lake_lr = lake[1::4, 1::4][:h, :w]
        depth = np.linspace(0.2, 0.05, ms.shape[0])[:, None, None]  # water absorbs the red and NIR most
        ms = ms * (1 - lake_lr * (1 - depth)) + lake_lr * rng.normal(0, 0.002 * s.max_dn, ms.shape)
        pan = pan * (1 - lake * 0.88) + lake * rng.normal(0, 0.0025 * s.max_dn, pan.shape)
    pan, ms = np.clip(np.rint(pan), 1, s.max_dn), np.clip(np.rint(ms), 1, s.max_dn)
    nd = 0 if nodata else None
    if nodata:
        ms[:, -6:, :10] = 0
        pan[:, -24:, :40] = 0
    paths = folder / f"{sensor}_{index}_pan.tif", folder / f"{sensor}_{index}_ms.tif"
    for path, arr, px in ((paths[0], pan, 0.5), (paths[1], ms, 2.0)):
        with rasterio.open(path, "w", driver="GTiff", width=arr.shape[2], height=arr.shape[1], count=arr.shape[0],
                           dtype="uint16", crs="EPSG:32633", transform=from_origin(300000.0, 5000000.0, px, px),
                           nodata=nd) as dst:
            dst.write(arr.astype("uint16"))
    return paths[0], paths[1], {"sensor": sensor, "ms_size": ms_size, "dark_water": dark_water, "nodata": nodata}


TRAIT_SCENES = [("wv2", 0, (127, 93), True, True), ("wv2", 1, (128, 128), False, False),
                ("wv3", 2, (101, 131), True, False), ("gf2", 3, (128, 128), True, True),
                ("qb", 4, (97, 119), False, True)]


def traits(overrides: list[str], sensor_given: bool = True) -> str:
    """Adapt with the defaults on each trait scene; a markdown table of HQNR."""
    from panfw.procedures.adapt import adapt

    lines = ["| scene | bands | MS size | traits | lms HQNR | MTF-GLP-FS HQNR | unadapted HQNR | adapted HQNR | "
             "D_lambda^K | D_s | seconds |", "|---|---|---|---|---|---|---|---|---|---|---|"]
    with tempfile.TemporaryDirectory(prefix="bench-adapt-") as tmp:
        for sensor, idx, size, water, nodata in TRAIT_SCENES:
            folder = Path(tmp) / f"{sensor}{idx}"
            folder.mkdir()
            pan, ms, info = write_trait_pair(folder, sensor, idx, size, dark_water=water, nodata=nodata)
            sets = list(overrides) + ([f'adapt.sensor="{sensor}"'] if sensor_given else [])
            t0 = time.perf_counter()
            res = adapt(folder / "fused.tif", pan=pan, ms=ms, overrides=sets, progress=False, echo=lambda m: None)
            dt = time.perf_counter() - t0
            sc = res["scores"]
            tr = ", ".join(k for k, on in (("dark water", water), ("no-data corner", nodata),
                                            ("odd size", size[0] % 32 or size[1] % 32)) if on) or "-"
            nb = 8 if sensor in ("wv2", "wv3") else 4
            lines.append(f"| {sensor} #{idx} | {nb} | {size[0]}x{size[1]} | {tr} | {sc['lms']['hqnr']:.4f} | "
                         f"{sc['mtf_glp_fs']['hqnr']:.4f} | {sc['unadapted']['hqnr']:.4f} | {sc['adapted']['hqnr']:.4f} | "
                         f"{sc['adapted']['d_lambda_k']:.4f} | {sc['adapted']['d_s']:.4f} | {dt:.0f} |")
            print(lines[-1], flush=True)
    return "\n".join(lines)


def timing(overrides: list[str]) -> str:
    """Wall time of ``panfw adapt`` (defaults) on a 512x512 PAN (128x128 MS) 4-band GeoTIFF scene."""
    from panfw.procedures.adapt import adapt

    with tempfile.TemporaryDirectory(prefix="bench-adapt-") as tmp:
        pan, ms, _ = write_trait_pair(Path(tmp), "gf2", 5, (128, 128), dark_water=False, nodata=False)
        t0, c0 = time.perf_counter(), time.process_time()
        res = adapt(Path(tmp) / "fused.tif", pan=pan, ms=ms, overrides=list(overrides) + ['adapt.sensor="gf2"'],
                    progress=False, echo=lambda m: None)
        dt, cpu = time.perf_counter() - t0, time.process_time() - c0
    secs = ", ".join(f"{k} {v:.1f} s" for k, v in res["seconds"].items())
    import os

    load = os.getloadavg()[0]
    return (f"512x512 PAN, 4 bands, {res['model']['name']} from initialisation, torch threads "
            f"{torch.get_num_threads()}: {dt:.1f} s wall, {cpu:.1f} s CPU, load average {load:.1f} ({secs}); "
            f"HQNR {res['scores']['adapted']['hqnr']:.4f}, lms {res['scores']['lms']['hqnr']:.4f}, "
            f"MTF-GLP-FS {res['scores']['mtf_glp_fs']['hqnr']:.4f}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("what", choices=["heldout", "traits", "timing"])
    p.add_argument("--model", default="", help="heldout: the quickstart checkpoint or run dir")
    p.add_argument("-n", type=int, default=3, help="heldout: number of scenes")
    p.add_argument("--start", type=int, default=0, help="heldout: index of the first scene")
    p.add_argument("--size", type=int, default=256, help="heldout: PAN size of a scene")
    p.add_argument("-s", "--set", dest="overrides", action="append", default=[], help="adapt.KEY=VALUE")
    p.add_argument("--json", help="also write the printed table into this JSON file")
    a = p.parse_args()
    if a.what == "heldout":
        if not a.model:
            p.error("heldout needs --model (the quickstart checkpoint)")
        text = heldout(a.model, a.n, a.size, a.overrides, a.start)
    elif a.what == "traits":
        text = traits(a.overrides)
    else:
        text = timing(a.overrides)
    print(text)
    if a.json:
        Path(a.json).write_text(json.dumps({"what": a.what, "table": text}), encoding="utf-8")
    _ = math


if __name__ == "__main__":
    main()
