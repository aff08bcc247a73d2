"""Pan-Mamba on the CPU: forward and forward+backward time of the whole model at PAN 128x128 and 256x256,
the pure-PyTorch chunked and parallel (blocked log-depth) selective scans against the sequential one.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_panmamba.py            # one thread, batch 1
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_panmamba.py --one-scan # one scan alone

Each (size, scan) cell runs in its own process, so its peak resident memory is its own. A cell is the
median of ``--repeats`` timed runs after one warm-up; at the largest size (runs of minutes)
``--big-repeats`` timed runs and no warm-up. forward = ``model(lms, pan, ms)`` under ``torch.no_grad()``;
forward+backward = the forward with autograd, ``out.mean().backward()``. Prints a Markdown table
(seconds; each scan's speed-up over the sequential one) and each cell's peak memory.
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import statistics
import subprocess
import sys
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


SCANS = ("chunked", "parallel", "sequential")


def cell(size: int, scan: str, reps: int, warmup: bool, threads: int, checkpoint: bool = False) -> dict:
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    model = panfw.create_model("panmamba", bands=4, scan=scan, checkpoint=checkpoint)
    x = inputs(size)

    def fwd() -> None:
        with torch.no_grad():
            model(*x)

    def fwd_bwd() -> None:
        model.zero_grad(set_to_none=True)
        model(*x).mean().backward()

    out = {"forward": timed(fwd, reps, warmup), "forward_backward": timed(fwd_bwd, reps, warmup), "reps": reps}
    out["peak_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return out


def one_scan(threads: int, batch: int = 8, length: int = 1024, d: int = 64, n: int = 16) -> None:
    """One selective scan alone (the shape of a training step at PAN 32x32, batch 8), each scan."""
    from panfw_baselines import panmamba as pm

    torch.set_num_threads(threads)
    g = torch.Generator().manual_seed(0)
    u, delta = torch.randn(batch, d, length, generator=g), 0.5 * torch.rand(batch, d, length, generator=g)
    A = -16 * torch.rand(d, n, generator=g)
    B, C = torch.randn(batch, n, length, generator=g), torch.randn(batch, n, length, generator=g)
    gy = torch.randn(batch, d, length, generator=g)
    print(f"one selective scan, b {batch}, L {length}, d {d}, n {n} (median of 5 after a warm-up):")
    for scan in SCANS:
        def fwd(scan=scan) -> None:
            pm.ssm(u, delta, A, B, C, scan)

        def fwd_bwd(scan=scan) -> None:
            leaves = [t.clone().requires_grad_() for t in (u, delta, A, B, C)]
            pm._SSMFunction.apply(*leaves, scan).backward(gy)

        reps = 1 if scan == "sequential" else 5
        print(f"  {scan}: forward {timed(fwd, reps):.3f} s, forward+backward {timed(fwd_bwd, reps):.3f} s")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[128, 256])
    ap.add_argument("--scans", nargs="+", default=list(SCANS), choices=SCANS)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--big-repeats", type=int, default=1, help="timed runs at the largest size (no warm-up)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--one-scan", action="store_true", help="time one selective scan alone, each scan")
    ap.add_argument("--checkpoint", action="store_true", help="the model with checkpoint=True (activations recomputed)")
    ap.add_argument("--cell", nargs=2, metavar=("SIZE", "SCAN"), help=argparse.SUPPRESS)  # one child process
    args = ap.parse_args()
    if args.one_scan:
        one_scan(args.threads)
        return
    if args.cell:
        size, scan = int(args.cell[0]), args.cell[1]
        big = size == max(args.sizes) and len(args.sizes) > 1
        print(json.dumps(cell(size, scan, args.big_repeats if big else args.repeats, not big, args.threads,
                              args.checkpoint)))
        return
    model = panfw.create_model("panmamba", bands=4)
    print(f"torch {torch.__version__}, {platform.processor() or platform.machine()}, {args.threads} thread(s), "
          f"batch 1, {sum(p.numel() for p in model.parameters()):,} params, checkpoint={args.checkpoint}")
    rows = []
    for size in args.sizes:
        cells = {}
        for scan in args.scans:
            cmd = [sys.executable, __file__, "--cell", str(size), scan, "--sizes", *map(str, args.sizes),
                   "--repeats", str(args.repeats), "--big-repeats", str(args.big_repeats),
                   "--threads", str(args.threads), *(["--checkpoint"] if args.checkpoint else [])]
            cells[scan] = json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout)
            c = cells[scan]
            print(f"  PAN {size}: {scan} forward {c['forward']:.2f} s, forward+backward {c['forward_backward']:.2f} s "
                  f"(median of {c['reps']}), peak {c['peak_mib']:,.0f} MiB", flush=True)
        rows.append((size, cells))
    print()
    print("| PAN | tokens | scan | forward (s) | forward+backward (s) | peak memory (MiB) |")
    print("|---|---:|---|---:|---:|---:|")
    for size, cells in rows:
        for scan, c in cells.items():
            note = "" if c["reps"] > 1 else " ¹"  # one run, no warm-up
            print(f"| {size}² | {size * size:,} | {scan}{note} | {c['forward']:.2f} | {c['forward_backward']:.2f} | "
                  f"{c['peak_mib']:,.0f} |")
        if "sequential" in cells:
            s = cells["sequential"]
            for scan, c in cells.items():
                if scan != "sequential":
                    print(f"| {size}² | | {scan} speed-up | {s['forward'] / c['forward']:.1f}x | "
                          f"{s['forward_backward'] / c['forward_backward']:.1f}x | |")
    print("\n¹ one timed run, no warm-up")


if __name__ == "__main__":
    main()
