"""Benchmark ``panfw fuse`` on a synthetic scene: wall time, megapixels per second, peak memory.

    python benchmarks/bench_fuse.py                       # 4096x4096 PAN, 4 x 1024x1024 MS, PanTiny Small
    python benchmarks/bench_fuse.py --model pantiny_big --size 2048 --threads 2

The scene (uint16, 11-bit, UTM georeference) is written once to --workdir (default /tmp/panfw-bench).
The fusion runs in a child process (``panfw fuse ...``); its peak resident memory is the child's
``ru_maxrss`` from ``resource.getrusage(RUSAGE_CHILDREN)``. Untrained weights: the timing does not
depend on them. Prints a Markdown table row for docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np


def write_scene(workdir: Path, size: int, bands: int = 4, ratio: int = 4, seed: int = 0) -> tuple[Path, Path]:
    """A smooth random 11-bit scene: low-frequency MS, PAN = band mean + texture, written in stripes."""
    import rasterio
    from rasterio.crs import CRS
    from rasterio.transform import from_origin

    workdir.mkdir(parents=True, exist_ok=True)
    pan_path, ms_path = workdir / f"pan_{size}.tif", workdir / f"ms_{size}.tif"
    if pan_path.is_file() and ms_path.is_file():
        return pan_path, ms_path
    rng = np.random.default_rng(seed)
    h = size // ratio
    coarse = rng.random((bands, h // 32 + 2, h // 32 + 2))
    # bilinear blow-up of a coarse grid: smooth fields
    yy = np.linspace(0, coarse.shape[1] - 1.001, h)
    iy, fy = yy.astype(int), (yy % 1)[:, None]
    rows = coarse[:, iy] * (1 - fy) + coarse[:, iy + 1] * fy
    ms = rows[:, :, iy] * (1 - fy.T) + rows[:, :, iy + 1] * fy.T
    ms = 0.15 + 0.6 * ms + 0.05 * rng.random(ms.shape)
    ms_dn = np.rint(ms * 2047).astype("uint16")
    crs, res = CRS.from_epsg(32633), 0.5
    common = {"driver": "GTiff", "dtype": "uint16", "nodata": 0, "crs": crs}
    with rasterio.open(ms_path, "w", width=h, height=h, count=bands,
                       transform=from_origin(500000.0, 4200000.0, res * ratio, res * ratio), **common) as dst:
        dst.write(ms_dn)
        for i, name in enumerate(["blue", "green", "red", "nir"][:bands]):
            dst.set_band_description(i + 1, name)
    mean = ms.mean(0)
    with rasterio.open(pan_path, "w", width=size, height=size, count=1,
                       transform=from_origin(500000.0, 4200000.0, res, res), **common) as dst:
        stripe = 512
        for y in range(0, size, stripe):
            base = np.kron(mean[y // ratio:(y + stripe) // ratio], np.ones((ratio, ratio)))
            tex = 0.08 * rng.standard_normal(base.shape)
            dst.write(np.rint(np.clip(base + tex, 0.01, 1) * 2047).astype("uint16")[None],
                      window=rasterio.windows.Window(0, y, size, base.shape[0]))
    return pan_path, ms_path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", type=int, default=4096, help="PAN size (square)")
    ap.add_argument("--model", default="pantiny_small")
    ap.add_argument("--tile", type=int, default=512)
    ap.add_argument("--overlap", type=int, default=64)
    ap.add_argument("--threads", type=int, default=2, help="torch threads in the child (OMP_NUM_THREADS)")
    ap.add_argument("--backend", default="torch")
    ap.add_argument("--workdir", default="/tmp/panfw-bench")
    args = ap.parse_args()

    workdir = Path(args.workdir)
    t0 = time.perf_counter()
    pan, ms = write_scene(workdir, args.size)
    print(f"scene: {pan} ({args.size}x{args.size}), {ms}  [{time.perf_counter() - t0:.1f} s to prepare]")
    out = workdir / f"fused_{args.size}_{args.model}.tif"
    panfw = shutil.which("panfw") or str(Path(sys.executable).with_name("panfw"))
    cmd = [panfw, "fuse", "--pan", str(pan), "--ms", str(ms), "--model", args.model, "-o", str(out),
           "--bits", "11", "--tile", str(args.tile), "--overlap", str(args.overlap), "--device", "cpu",
           "--backend", args.backend, "--overwrite"]  # reruns replace the previous output
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads), MKL_NUM_THREADS=str(args.threads))
    print("command:", " ".join(cmd[0:1] + [c if "/" not in c else Path(c).name for c in cmd[1:]]))
    load = os.getloadavg()
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        sys.exit(f"panfw fuse failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    peak_mb = usage.ru_maxrss / 1024  # KiB on Linux
    cpu = usage.ru_utime + usage.ru_stime  # CPU seconds of the child: less sensitive to other load
    mp = args.size * args.size / 1e6
    print(proc.stdout.strip())
    print(f"wall {wall:.1f} s, {mp / wall:.3f} MP/s, CPU {cpu:.0f} s, peak RSS {peak_mb:.0f} MiB, "
          f"load average before {load[0]:.1f} ({os.cpu_count()} CPUs, {platform.processor() or platform.machine()})")
    print("\n| scene | model | tile / overlap | threads | wall time | MP/s | CPU time | peak RSS | load avg |")
    print("|---|---|---|---|---|---|---|---|---|")
    print(f"| {args.size}² PAN, 4×{args.size // 4}² MS, uint16 | {args.model} (untrained) | "
          f"{args.tile} / {args.overlap} | {args.threads} | {wall:.0f} s | {mp / wall:.3f} | {cpu:.0f} s | "
          f"{peak_mb:.0f} MiB | {load[0]:.1f} |")


if __name__ == "__main__":
    main()
