"""Data benchmarks: samples/s read from a PanCollection-format h5 training file (lazy and cached) and
the time to generate the quickstart's synthetic data.

    .venv/bin/python benchmarks/bench_data.py [--samples 256] [--repeats 3] [--threads 1]

Prints a markdown table (medians over the repeats) for docs/benchmarks.md "## Data".
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path

import h5py
import numpy as np
import torch


def write_train_file(path: Path, n: int, bands: int = 8, size: int = 64, ratio: int = 4) -> None:
    """A PanCollection-layout training file (float64 DN, chunked per sample like a real one)."""
    rng = np.random.default_rng(0)
    shapes = {"gt": (bands, size, size), "lms": (bands, size, size), "ms": (bands, size // ratio, size // ratio),
              "pan": (1, size, size)}
    with h5py.File(path, "w") as f:
        for key, shape in shapes.items():
            ds = f.create_dataset(key, shape=(n, *shape), dtype="float64")
            for a in range(0, n, 64):
                b = min(n, a + 64)
                ds[a:b] = rng.uniform(0, 2047, (b - a, *shape)).round()


def bench_h5(path: Path, repeats: int) -> dict[str, float]:
    from panfw_datasets.h5 import PanCollectionH5

    out: dict[str, list[float]] = {"lazy": [], "cached_build": [], "cached": []}
    for r in range(repeats):
        ds = PanCollectionH5(path, "wv3", "train")
        order = np.random.default_rng(r).permutation(len(ds))
        t = time.perf_counter()
        for i in order:
            ds[int(i)]
        out["lazy"].append(len(ds) / (time.perf_counter() - t))
        t = time.perf_counter()
        cached = PanCollectionH5(path, "wv3", "train", cache=True)
        out["cached_build"].append(time.perf_counter() - t)
        t = time.perf_counter()
        for i in order:
            cached[int(i)]
        out["cached"].append(len(ds) / (time.perf_counter() - t))
    return {k: statistics.median(v) for k, v in out.items()}


def bench_synthetic(repeats: int, n_train: int = 200, n_test: int = 8) -> dict[str, float]:
    from panfw_datasets.synthetic import SyntheticDataset

    times: dict[str, list[float]] = {}
    for _ in range(repeats):
        total, cpu0 = 0.0, time.process_time()
        for sensor in ("wv3", "gf2", "wv2"):
            for split, n in (("train", n_train), ("test_rr", n_test), ("test_fr", n_test)):
                t = time.perf_counter()
                SyntheticDataset(split, sensor=sensor, n=n).materialize()
                dt = time.perf_counter() - t
                times.setdefault(f"{sensor} {split}", []).append(dt)
                total += dt
        times.setdefault("total", []).append(total)
        times.setdefault("total_cpu", []).append(time.process_time() - cpu0)
        # recipes/quickstart.toml's data: 3 x 256 training patches of 32², 4 + 4 test scenes of 128²
        t, cpu0 = time.perf_counter(), time.process_time()
        for sensor, bands in (("wv2", "bgrn"), ("wv3", "bgrn"), ("gf2", "all")):
            SyntheticDataset("train", sensor=sensor, n=256, size=32, bands=bands).materialize()
            for split in ("test_rr", "test_fr"):
                SyntheticDataset(split, sensor=sensor, n=4, bands=bands).materialize()
        times.setdefault("recipe", []).append(time.perf_counter() - t)
        times.setdefault("recipe_cpu", []).append(time.process_time() - cpu0)
    return {k: statistics.median(v) for k, v in times.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--samples", type=int, default=256, help="samples in the h5 training file")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    print(f"# {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, torch {torch.__version__}, "
          f"threads {args.threads}, repeats {args.repeats} (medians)")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "train_wv3.h5"
        write_train_file(path, args.samples)
        size_mb = path.stat().st_size / 2**20
        h5 = bench_h5(path, args.repeats)
    syn = bench_synthetic(args.repeats)
    print("| measurement | value |")
    print("|---|---|")
    print(f"| h5 lazy read (WV3 train layout, {args.samples} samples, {size_mb:.0f} MiB, random order) | "
          f"{h5['lazy']:.0f} samples/s |")
    print(f"| h5 cache=True: load whole file into float32 | {h5['cached_build']:.2f} s "
          f"({args.samples / h5['cached_build']:.0f} samples/s) |")
    print(f"| h5 cached read | {h5['cached']:.0f} samples/s |")
    for key, value in syn.items():
        if not key.startswith(("total", "recipe")):
            print(f"| synthetic {key} | {value:.2f} s |")
    print(f"| synthetic quickstart total (3 sensors x 200 train 64², 8 test_rr 128², 8 test_fr 128²), wall | "
          f"{syn['total']:.1f} s |")
    print(f"| same, CPU time of the process | {syn['total_cpu']:.1f} s |")
    print(f"| recipes/quickstart.toml data (3 x 256 train 32², 4 test_rr + 4 test_fr 128²), wall / CPU | "
          f"{syn['recipe']:.1f} s / {syn['recipe_cpu']:.1f} s |")


if __name__ == "__main__":
    main()
