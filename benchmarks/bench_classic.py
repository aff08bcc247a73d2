"""Time every classical method of the ``classic`` plugin on one synthetic scene (default 4x2048x2048).

    .venv/bin/python benchmarks/bench_classic.py --size 2048 --bands 4 --repeats 3 --threads 2

Prints a Markdown table (median, min and max wall time of ``--repeats`` runs per method and the
median process CPU time, all threads; float32 [0, 1] inputs as the engine feeds them, float64
inside). On a shared machine the CPU time is the steadier figure. Each method is first run once on a small
crop so one-off set-up (kernel construction, lazy imports) is not counted. Methods slower than
``--slow-limit`` seconds on their first full-size run are not repeated.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time

import torch

import panfw
from panfw.ops import interp23tap


def make_scene(size: int, bands: int, ratio: int = 4, seed: int = 0):
    """A smooth synthetic scene in [0, 1]: lms = interp23tap(ms), PAN a band mix plus noise (float32)."""
    gen = torch.Generator().manual_seed(seed)
    h = size
    coarse = torch.rand(1, 1, h // 32, h // 32, generator=gen)
    structure = torch.nn.functional.interpolate(coarse, size=(h, h), mode="bicubic", align_corners=False)
    spectra = 0.4 + 0.6 * torch.rand(1, bands, 1, 1, generator=gen)
    hr = 0.07 + 0.7 * spectra * (0.8 * structure + 0.2 * torch.rand(1, bands, h, h, generator=gen))
    pan = hr.mean(dim=1, keepdim=True) + 0.002 * torch.randn(1, 1, h, h, generator=gen)
    ms = torch.nn.functional.avg_pool2d(hr, ratio)
    lms = interp23tap(ms, ratio)
    return lms.float().clamp(0, 1), pan.float().clamp(0, 1), ms.float()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=2048)
    ap.add_argument("--bands", type=int, default=4)
    ap.add_argument("--sensor", default="wv3")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    ap.add_argument("--methods", default="", help="comma-separated names (default: every classic model)")
    ap.add_argument("--slow-limit", type=float, default=120.0)
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    names = [n for n in args.methods.split(",") if n] or [
        e.name for e in panfw.registry("models") if e.plugin == "classic"]
    lms, pan, ms = make_scene(args.size, args.bands)
    small = make_scene(64, args.bands)
    print(f"scene {args.bands}x{args.size}x{args.size}, sensor {args.sensor}, torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads, {platform.processor() or platform.machine()}")
    print("\n| method | median (s) | min (s) | max (s) | CPU (s) | runs |\n|---|---|---|---|---|---|")
    for name in names:
        try:
            model = panfw.create_model(name, bands=args.bands, sensor=args.sensor, ratio=4)
            model(*small)
        except Exception as exc:  # noqa: BLE001 - report and go on (e.g. TV refuses 8 bands)
            print(f"| {name} | – | – | – | – | {type(exc).__name__}: {exc} |")
            continue
        times, cpu = [], []
        for _ in range(max(1, args.repeats)):
            t0, c0 = time.perf_counter(), time.process_time()
            with torch.no_grad():
                out = model(lms, pan, ms)
            times.append(time.perf_counter() - t0)
            cpu.append(time.process_time() - c0)
            assert out.shape == lms.shape
            if times[0] > args.slow_limit:
                break
        print(f"| {name} | {statistics.median(times):.2f} | {min(times):.2f} | {max(times):.2f} | "
              f"{statistics.median(cpu):.2f} | {len(times)} |", flush=True)


if __name__ == "__main__":
    main()
