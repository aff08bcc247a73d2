"""Training steps per second of PanTiny Small and Big at batch 16 on 64x64 patches, eager and
``torch.compile``, with the engine's own pieces (model factory, composed loss, Adam as the paper).

    .venv/bin/python benchmarks/bench_train.py --threads 2 --steps 7 --warmup 3

A step = forward + loss (the released 3 L1 + 4 (1 - SSIM), as recipes/pantiny_big_released.toml)
+ backward + Adam step, on fixed random tensors (data loading is not timed). Prints a Markdown
table: median seconds per step (min-max) and steps/s, per model and mode. torch.compile's first
steps (compilation) are warm-up and not timed; its compile time is reported apart.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time

import torch

import panfw


def make_batch(batch: int, size: int, bands: int = 4, ratio: int = 4, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    gt = torch.rand(batch, bands, size, size, generator=g)
    ms = torch.nn.functional.avg_pool2d(gt, ratio)
    lms = torch.nn.functional.interpolate(ms, size=(size, size), mode="bicubic", align_corners=False)
    pan = gt.mean(1, keepdim=True)
    return lms, pan, ms, gt


def time_steps(model_name: str, compile_: bool, batch: int, size: int, steps: int, warmup: int) -> dict:
    from panfw.config.recipe import LossTerm
    from panfw.engine.objective import build_loss

    torch.manual_seed(0)
    model = panfw.create_model(model_name, bands=4)
    loss_fn = build_loss([LossTerm("l1", 3.0), LossTerm("ssim", 4.0)])
    opt = torch.optim.Adam(model.parameters(), lr=5e-4, weight_decay=1e-4)
    net = torch.compile(model) if compile_ else model
    lms, pan, ms, gt = make_batch(batch, size)

    def step() -> None:
        opt.zero_grad(set_to_none=True)
        loss = loss_fn(net(lms, pan, ms), gt)
        loss.backward()
        opt.step()

    t0 = time.perf_counter()
    for _ in range(warmup):
        step()
    warm = time.perf_counter() - t0
    times = []
    for _ in range(steps):
        t = time.perf_counter()
        step()
        times.append(time.perf_counter() - t)
    med = statistics.median(times)
    return {"model": model_name, "mode": "compile" if compile_ else "eager", "median": med,
            "min": min(times), "max": max(times), "steps_per_s": 1.0 / med, "warmup_s": warm}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default="pantiny_small,pantiny_big")
    ap.add_argument("--modes", default="eager,compile")
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--size", type=int, default=64, help="PAN/GT patch size (MS is size/4)")
    ap.add_argument("--steps", type=int, default=7, help="timed steps")
    ap.add_argument("--warmup", type=int, default=3, help="untimed steps first (compilation included)")
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {platform.processor() or platform.machine()}, "
          f"{torch.get_num_threads()} threads; batch {args.batch}, {args.size}x{args.size} patches; "
          f"median of {args.steps} steps after {args.warmup} warm-up steps\n")
    print("| Model | Mode | s/step median (min-max) | steps/s | warm-up s |")
    print("|---|---|---:|---:|---:|")
    for name in args.models.split(","):
        for mode in args.modes.split(","):
            try:
                r = time_steps(name, mode == "compile", args.batch, args.size, args.steps, args.warmup)
            except Exception as exc:  # noqa: BLE001 - e.g. no C++ compiler for inductor
                print(f"| {name} | {mode} | failed: {type(exc).__name__}: {exc} | | |")
                continue
            print(f"| {name} | {r['mode']} | {r['median']:.3f} ({r['min']:.3f}-{r['max']:.3f}) | "
                  f"{r['steps_per_s']:.2f} | {r['warmup_s']:.1f} |", flush=True)


if __name__ == "__main__":
    main()
