"""PanTiny Small and Big: panfw against the reference-style implementation, in one run.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_pantiny.py --threads 1
    .venv/bin/python benchmarks/bench_pantiny.py --what infer --size 512 --repeats 5 --threads 2

``--what fuse``: ``panfw fuse`` of a synthetic 4096² scene (bench_fuse.write_scene) with panfw's
default runtime and overlap, in a child process (its peak RSS), against the reference-style
model's rate on one 512² tile measured in the same run.

Inference: one forward of a (1, 4, S, S) scene under ``torch.inference_mode`` (default S = 512).
Training: one step = forward + the released loss 3 L1 + 4 (1 - SSIM) + backward + Adam, batch 16
on 64x64 patches (panfw: its registered losses; reference: the pytorch-ssim style loss of
``ref_pantiny.RefLoss``). Both implementations carry the same weights; the script checks their
outputs agree (relative max deviation) before timing. The timed calls alternate between the
implementations within each repeat, so machine load hits both alike; the table gives medians
(min-max) and the ratio of medians, with the load average before and after.

``--impls``: ``ref`` (benchmarks/ref_pantiny.py), ``panfw`` (the registered model, eager: on the
CPU without gradients its fast path, panfw/layers/cpu.py), ``plain`` (the same model with that path
off: the plain modules, as exported and trained), and ``rt:NAME`` for any registered runtime
(``panfw.create("runtimes", NAME, model)``), e.g. ``rt:onnxruntime`` (inference only).

``--malloc-arena``: glibc serves tensors above 32 MB by fresh ``mmap`` pages, so every large
activation is page-faulted again on each forward (a large share of the time on this VM, for every
implementation alike); this flag raises glibc's mmap and trim thresholds first (``mallopt``) so freed
memory is reused. Ratios are given for both settings.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import ref_pantiny  # noqa: E402
from bench_train import make_batch  # noqa: E402  (the same synthetic batch as the training benchmark)

import panfw  # noqa: E402


def build(name: str, seed: int = 0) -> tuple[torch.nn.Module, torch.nn.Module]:
    """panfw's model and the reference-style one with the same weights (norms and temperatures
    perturbed away from their 1/0 init so a wrong norm or scale would show)."""
    torch.manual_seed(seed)
    model = panfw.create_model(name, bands=4)
    with torch.no_grad():
        for key, p in model.named_parameters():
            if "norm" in key or "temperature" in key:
                p.add_(0.2 * torch.randn_like(p))
    return model, ref_pantiny.load_panfw(name, model.state_dict())


def loadavg() -> str:
    return "/".join(f"{v:.1f}" for v in os.getloadavg())


def malloc_arena() -> bool:
    """Keep freed memory in glibc's heap (no fresh mmap pages per large tensor)."""
    import ctypes

    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return False
    m_trim_threshold, m_mmap_threshold = -1, -3
    return bool(libc.mallopt(m_mmap_threshold, 1 << 30)) and bool(libc.mallopt(m_trim_threshold, 1 << 31))


def _plain(model: torch.nn.Module):
    from panfw.layers import cpu

    def run(*args):
        with cpu.enabled(False):
            return model(*args)
    return run


def inference_callables(name: str, impls: list[str], size: int) -> tuple[dict, tuple]:
    model, ref = build(name)
    model.eval(), ref.eval()
    lms, pan, ms, _ = make_batch(1, size)
    fns = {}
    for impl in impls:
        if impl == "ref":
            fns[impl] = ref
        elif impl == "panfw":
            fns[impl] = model
        elif impl == "plain":
            fns[impl] = _plain(model)
        elif impl.startswith("rt:"):
            from panfw.inference import build_runtime

            fns[impl] = build_runtime(impl[3:], model, device="cpu",
                                      context={"bands": 4, "ratio": 4, "size": size})
        else:
            raise SystemExit(f"unknown --impls entry {impl!r}; accepted: ref, panfw, plain, rt:NAME")
    return fns, (lms, pan, ms)


def bench_inference(name: str, impls: list[str], size: int, repeats: int) -> dict:
    fns, args = inference_callables(name, impls, size)
    outs, times = {}, {k: [] for k in fns}
    with torch.inference_mode():
        for impl, fn in fns.items():  # warm-up (kernel selection, graph builds) and the output check
            outs[impl] = fn(*args)
        for r in range(repeats):
            order = list(fns) if r % 2 == 0 else list(fns)[::-1]
            for impl in order:
                t = time.perf_counter()
                fns[impl](*args)
                times[impl].append(time.perf_counter() - t)
    base = outs["panfw"] if "panfw" in outs else next(iter(outs.values()))
    dev = {k: ((o - base).abs().max() / base.abs().max()).item() for k, o in outs.items()}
    return {"times": times, "dev": dev}


def bench_train(name: str, impls: list[str], batch: int, size: int, repeats: int, warmup: int) -> dict:
    model, ref = build(name)
    l1, ssim = panfw.create("losses", "l1"), panfw.create("losses", "ssim")

    def panfw_loss(pred, gt):
        return 3 * l1(pred, gt) + 4 * ssim(pred, gt)

    nets = {"panfw": (model, panfw_loss), "ref": (ref, ref_pantiny.RefLoss(4))}
    lms, pan, ms, gt = make_batch(batch, size)
    steps = {}
    for impl in impls:
        if impl not in nets:
            continue  # runtimes are inference-only
        net, loss_fn = nets[impl]
        opt = torch.optim.Adam(net.parameters(), lr=5e-4, weight_decay=1e-4)

        def step(net=net, loss_fn=loss_fn, opt=opt) -> float:
            opt.zero_grad(set_to_none=True)
            loss = loss_fn(net(lms, pan, ms), gt)
            loss.backward()
            opt.step()
            return loss.item()

        steps[impl] = step
    losses = {k: s() for k, s in steps.items()}  # first step: same weights, so the same loss
    for _ in range(warmup - 1):
        for s in steps.values():
            s()
    times = {k: [] for k in steps}
    for r in range(repeats):
        order = list(steps) if r % 2 == 0 else list(steps)[::-1]
        for impl in order:
            t = time.perf_counter()
            steps[impl]()
            times[impl].append(time.perf_counter() - t)
    base = losses.get("panfw", next(iter(losses.values())))
    return {"times": times, "dev": {k: abs(v - base) / abs(base) for k, v in losses.items()}}


def report(title: str, name: str, res: dict, unit: str) -> None:
    times = res["times"]
    ref_med = statistics.median(times["ref"]) if "ref" in times else None
    for impl, ts in times.items():
        med = statistics.median(ts)
        ratio = f"{ref_med / med:.2f}x" if ref_med else "-"
        print(f"| {title} | {name} | {impl} | {med:.3f} ({min(ts):.3f}-{max(ts):.3f}) {unit} | {ratio} | "
              f"{res['dev'][impl]:.1e} | {loadavg()} |", flush=True)


def bench_fuse(name: str, size: int, threads: int, repeats: int, workdir: str) -> list[str]:
    """``panfw fuse`` of a synthetic size² scene (defaults: runtime and overlap chosen by panfw) in a
    child process, against the reference-style model's own rate on one 512² tile (same run)."""
    import resource
    import shutil
    import subprocess

    from bench_fuse import write_scene

    pan, ms = write_scene(Path(workdir), size)
    model, ref = build(name)
    ref.eval(), model.eval()
    lms, pan_t, ms_t, _ = make_batch(1, 512)
    rates = {}
    with torch.inference_mode():
        for key, net in (("ref", ref), ("panfw", model)):
            net(lms, pan_t)
            ts = []
            for _ in range(repeats):
                t = time.perf_counter()
                net(lms, pan_t)
                ts.append(time.perf_counter() - t)
            rates[key] = 512 * 512 / 1e6 / statistics.median(ts)
    out = Path(workdir) / f"fused_{size}_{name}.tif"
    exe = shutil.which("panfw") or str(Path(sys.executable).with_name("panfw"))
    cmd = [exe, "fuse", "--pan", str(pan), "--ms", str(ms), "--model", name, "-o", str(out), "--bits", "11",
           "--device", "cpu", "--overwrite", "--quiet"]
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
    load = loadavg()
    t = time.perf_counter()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - t
    if proc.returncode:
        raise SystemExit(f"panfw fuse failed:\n{proc.stderr[-2000:]}")
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    mps = size * size / 1e6 / wall
    notes = [line for line in proc.stderr.splitlines() if line.startswith("note:")]
    return [f"| panfw fuse {size}² | {name} | {wall:.1f} s wall, {mps:.3f} MP/s | ref tile {rates['ref']:.3f} MP/s, "
            f"panfw tile {rates['panfw']:.3f} MP/s | {mps / rates['ref']:.2f}x the ref tile rate | "
            f"peak RSS {peak:.0f} MiB | load {load} -> {loadavg()} |", *notes, proc.stdout.strip()]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--what", default="infer,train")
    ap.add_argument("--models", default="pantiny_small,pantiny_big")
    ap.add_argument("--impls", default="ref,panfw")
    ap.add_argument("--size", type=int, default=512, help="inference scene size (PAN pixels)")
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--train-size", type=int, default=64)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=2, help="untimed training steps first")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--malloc-arena", action="store_true", help="raise glibc's mmap threshold first")
    ap.add_argument("--fuse-size", type=int, default=4096, help="--what fuse: the PAN scene size")
    ap.add_argument("--workdir", default="/tmp/panfw-bench", help="--what fuse: where the scene is written")
    args = ap.parse_args()
    arena = malloc_arena() if args.malloc_arena else False
    torch.set_num_threads(args.threads)
    impls = args.impls.split(",")
    print(f"torch {torch.__version__}, {platform.machine()}, {torch.get_num_threads()} thread(s), "
          f"{args.repeats} repeats; glibc arena for large tensors: {arena}; load before {loadavg()}\n")
    print("| what | model | impl | median (min-max) | ref / impl | deviation vs panfw | load 1/5/15 |")
    print("|---|---|---|---:|---:|---:|---|")
    for name in args.models.split(","):
        if "infer" in args.what:
            res = bench_inference(name, impls, args.size, args.repeats)
            report(f"forward {args.size}²", name, res, "s")
        if "train" in args.what:
            res = bench_train(name, impls, args.batch, args.train_size, args.repeats, args.warmup)
            report(f"train b{args.batch} {args.train_size}²", name, res, "s/step")
        if "fuse" in args.what:
            print("\n".join(bench_fuse(name, args.fuse_size, args.threads, args.repeats, args.workdir)), flush=True)


if __name__ == "__main__":
    main()
