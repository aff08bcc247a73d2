"""Pan-Mamba on the CPU: forward and forward+backward time of the whole model at PAN 128x128 and 256x256,
the pure-PyTorch parallel (blocked log-depth) selective scan against the sequential one.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_panmamba.py            # one thread, batch 1

Each cell is the median of ``--repeats`` timed runs after one warm-up; at the largest size (runs of
minutes) ``--big-repeats`` timed runs and no warm-up. forward = ``model(lms, pan, ms)`` under
``torch.no_grad()``; forward+backward = the forward with autograd, ``out.mean().backward()``. Prints a
Markdown table (seconds; the speed-up of the parallel scan) and the peak resident memory.
"""

from __future__ import annotations

import argparse
import platform
import resource
import statistics
import time

import torch

import panfw


def inputs(size: int, bands: int = 4, ratio: int = 4, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    ms = torch.rand(1, bands, size // ratio, size // ratio, generator=g)
    lms = torch.nn.functional.interpolate(ms, size=(size, size), mode="bicubic", align_corners=False)
    pan = lms.mean(1, keepdim=True) + 0.05 * torch.rand(1, 1, size, size, generator=g)
    return lms, pan, ms


def timed(fn, repeats: int, warmup: bool = True) -> float:
    if warmup:
        fn()
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[128, 256])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--big-repeats", type=int, default=1, help="timed runs at the largest size (no warm-up)")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    model = panfw.create_model("panmamba", bands=4)
    print(f"torch {torch.__version__}, {platform.processor() or platform.machine()}, {args.threads} thread(s), "
          f"batch 1, {sum(p.numel() for p in model.parameters()):,} params")
    rows = []
    for size in args.sizes:
        x = inputs(size)
        cells = {}
        for scan in ("parallel", "sequential"):
            model.set_scan(scan)
            big = size == max(args.sizes) and len(args.sizes) > 1
            reps = args.big_repeats if big else args.repeats

            def fwd(x=x):
                with torch.no_grad():
                    model(*x)

            def fwd_bwd(x=x):
                model.zero_grad(set_to_none=True)
                model(*x).mean().backward()

            cells[scan] = (timed(fwd, reps, not big), timed(fwd_bwd, reps, not big), reps)
            print(f"  PAN {size}: {scan} forward {cells[scan][0]:.2f} s, forward+backward {cells[scan][1]:.2f} s "
                  f"(median of {reps})", flush=True)
        rows.append((size, cells))
    print()
    print("| PAN | tokens | scan | forward (s) | forward+backward (s) |")
    print("|---|---:|---|---:|---:|")
    for size, cells in rows:
        for scan in ("parallel", "sequential"):
            f, fb, reps = cells[scan]
            note = "" if reps > 1 else " ¹"  # one run, no warm-up
            print(f"| {size}² | {size * size:,} | {scan}{note} | {f:.2f} | {fb:.2f} |")
        p, s = cells["parallel"], cells["sequential"]
        print(f"| {size}² | | speed-up | {s[0] / p[0]:.1f}x | {s[1] / p[1]:.1f}x |")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"\npeak resident memory {peak:,.0f} MiB; ¹ one timed run, no warm-up")


if __name__ == "__main__":
    main()
