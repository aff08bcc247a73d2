"""Time scoring PanCollection-sized test sets with every panfw metric, against a per-block loop port.

    .venv/bin/python benchmarks/bench_metrics.py --images 20 --repeats 3 --threads 2

Two synthetic sets shaped like PanCollection's test sets (float32 [0, 1], as datasets yield them):
reduced resolution (RR) 20 x (gt/fused 8x256x256) and full resolution (FR) 20 x (fused 8x512x512,
ms 8x128x128, lms 8x512x512, pan 1x512x512), sensor WV3.

- **panfw**: ``panfw.evaluation.Evaluator`` with all metrics of the set (RR: psnr, ssim, sam, ergas,
  q, q2n, scc; FR: d_lambda, d_s, qnr, d_lambda_k, hqnr), batches of ``--batch`` images.
- **loop**: a straightforward numpy float64 port written here that follows the toolbox's code
  literally: Python loops over the 32x32 blocks (q2n's block loop with the recursive onion
  products; blockproc-style loops over bands, band pairs and blocks in D_lambda and D_s), filter2 as
  ``scipy.signal.correlate2d`` for Q_avg, per-band loops elsewhere. It uses panfw's operators for
  MTF filtering, interp23tap and imresize (same cost on both sides) and panfw's psnr/ssim.

Prints the median / min / max of ``--repeats`` runs per set and implementation, a per-metric
breakdown for panfw, and checks that both implementations give the same values (1e-9 relative).
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import statistics
import time
from functools import partial

import numpy as np
import torch
from scipy import ndimage, signal

import panfw
from panfw.evaluation import Evaluator
from panfw.ops import decimate, imresize, interp23tap, mtf_filter

RR_METRICS = ["psnr", "ssim", "sam", "ergas", "q", "q2n", "scc"]
FR_METRICS = ["d_lambda", "d_s", "qnr", "d_lambda_k", "hqnr"]
SENSOR = "wv3"


# ---- synthetic test sets -------------------------------------------------------------------------

def _scene(size: int, bands: int, gen: torch.Generator) -> torch.Tensor:
    coarse = torch.rand(1, 1, size // 16, size // 16, generator=gen, dtype=torch.float64)
    structure = torch.nn.functional.interpolate(coarse, size=(size, size), mode="bicubic", align_corners=False)
    spectra = 0.4 + 0.6 * torch.rand(1, bands, 1, 1, generator=gen, dtype=torch.float64)
    texture = torch.nn.functional.avg_pool2d(torch.rand(1, bands, size, size, generator=gen, dtype=torch.float64),
                                             3, stride=1, padding=1, count_include_pad=False)
    return (0.07 + 0.7 * spectra * (0.75 * structure + 0.25 * texture)).clamp(0, 1)


def make_rr(n: int, bands: int = 8, size: int = 256, seed: int = 0) -> list[dict]:
    gen = torch.Generator().manual_seed(seed)
    out = []
    for _ in range(n):
        gt = _scene(size, bands, gen)
        noise = 0.01 * torch.randn(gt.shape, generator=gen, dtype=torch.float64)
        fused = (torch.nn.functional.avg_pool2d(gt, 3, stride=1, padding=1, count_include_pad=False) + noise)
        out.append({"gt": gt[0].float(), "fused": fused.clamp(0, 1)[0].float()})
    return out


def make_fr(n: int, bands: int = 8, size: int = 512, seed: int = 1) -> list[dict]:
    gen = torch.Generator().manual_seed(seed)
    out = []
    for _ in range(n):
        hr = _scene(size, bands, gen)
        pan = hr.mean(1, keepdim=True)
        ms = decimate(mtf_filter(hr, SENSOR), 4)
        lms = interp23tap(ms, 4)
        detail = pan - interp23tap(decimate(pan, 4), 4)
        fused = (lms + 0.8 * detail).clamp(0, 1)
        out.append({"fused": fused[0].float(), "ms": ms[0].float(), "lms": lms[0].float(), "pan": pan[0].float()})
    return out


def _batches(items: list[dict], size: int):
    for i in range(0, len(items), size):
        chunk = items[i:i + size]
        batch = {k: torch.stack([s[k] for s in chunk]) for k in chunk[0]}
        batch["sensor"] = [SENSOR] * len(chunk)
        yield batch


# ---- panfw ---------------------------------------------------------------------------------------

def score_panfw(items: list[dict], metrics: list[str], batch: int, device: str) -> dict[str, np.ndarray]:
    ev = Evaluator(metrics, sensor=SENSOR)
    for b in _batches(items, batch):
        b = {k: (v.to(device) if isinstance(v, torch.Tensor) else v) for k, v in b.items()}
        ev.update(b.pop("fused"), b)
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    return {k: v.numpy() for k, v in ev.values().items()}


# ---- the loop port (numpy float64, toolbox structure) ----------------------------------------------

def _np(x: torch.Tensor) -> np.ndarray:
    return x.detach().double().cpu().numpy()


def loop_sam(ref, fus):
    dot = (ref * fus).sum(0)
    norm = np.sqrt((ref * ref).sum(0) * (fus * fus).sum(0))
    keep = norm != 0
    ang = np.arccos(np.clip(dot[keep] / norm[keep], -1, 1))
    return ang.sum() / keep.sum() * 180 / math.pi


def loop_ergas(ref, fus, ratio=4):
    acc = 0.0
    for k in range(ref.shape[0]):
        acc += np.mean((ref[k] - fus[k]) ** 2) / np.mean(ref[k]) ** 2
    return (100 / ratio) * math.sqrt(acc / ref.shape[0])


def loop_img_qi(a, b, block=32):
    n = block * block
    win = np.ones((block, block))
    s1, s2 = signal.correlate2d(a, win, "valid"), signal.correlate2d(b, win, "valid")
    s11, s22 = signal.correlate2d(a * a, win, "valid"), signal.correlate2d(b * b, win, "valid")
    s12 = signal.correlate2d(a * b, win, "valid")
    mul, sq = s1 * s2, s1 * s1 + s2 * s2
    num = 4 * (n * s12 - mul) * mul
    den1 = n * (s11 + s22) - sq
    den = den1 * sq
    q = np.ones_like(den)
    idx = (den1 == 0) & (sq != 0)
    q[idx] = 2 * mul[idx] / sq[idx]
    idx = den != 0
    q[idx] = num[idx] / den[idx]
    return q.mean()


def loop_q_avg(ref, fus, block=32):
    return float(np.mean([loop_img_qi(ref[k], fus[k], block) for k in range(ref.shape[0])]))


def loop_scc(ref, fus):
    k = np.array([[1.0, 2, 1], [0, 0, 0], [-1, -2, -1]])
    gs = []
    for img in (fus, ref):
        g = []
        for band in img:
            x = band[1:-1, 1:-1]
            gy = ndimage.correlate(x, k, mode="constant")
            gx = ndimage.correlate(x, k.T, mode="constant")
            g.append(np.sqrt(gy**2 + gx**2))
        gs.append(np.stack(g))
    gf, gr = gs
    return (gf * gr).sum() / np.sqrt((gf**2).sum()) / np.sqrt((gr**2).sum())


def _onion_mult(a, b):
    n = a.shape[0]
    if n == 1:
        return a * b
    h = n // 2
    x, y = a[:h], np.concatenate([a[h:h + 1], -a[h + 1:]])
    c, d = b[:h], np.concatenate([b[h:h + 1], -b[h + 1:]])
    if n == 2:
        return np.concatenate([x * c - d * y, x * d + c * y])
    def conj(v):
        return np.concatenate([v[:1], -v[1:]])

    return np.concatenate([_onion_mult(x, c) - _onion_mult(d, conj(y)), _onion_mult(conj(x), d) + _onion_mult(c, y)])


def _onions_quality(d1, d2):
    d1, d2 = d1.copy(), d2.copy()
    d2[1:] = -d2[1:]
    nb, s = d1.shape[0], d1.shape[1] * d1.shape[2]
    for i in range(nb):
        mu, sd = d1[i].mean(), d1[i].std(ddof=1)
        sd = sd if sd != 0 else np.finfo(float).eps
        d1[i] = (d1[i] - mu) / sd + 1
        if mu == 0:
            d2[i] = d2[i] - mu + 1 if i == 0 else -(-d2[i] - mu + 1)
        else:
            d2[i] = (d2[i] - mu) / sd + 1 if i == 0 else -((-d2[i] - mu) / sd + 1)
    m1, m2 = d1.reshape(nb, -1).mean(1), d2.reshape(nb, -1).mean(1)
    w = s / (s - 1)
    mod1, mod2 = math.sqrt((m1**2).sum()), math.sqrt((m2**2).sum())
    var = w * (d1**2).sum(0).mean() + w * (d2**2).sum(0).mean() - w * (mod1**2 + mod2**2)
    bias = 2 * mod1 * mod2 / (mod1**2 + mod2**2)
    if var == 0:
        q = np.zeros(nb)
        q[-1] = bias
        return q
    qu = _onion_mult(d1, d2)
    qm = _onion_mult(m1, m2)
    return (w * qu.reshape(nb, -1).mean(1) - w * qm) * bias * (2 / var)


def loop_q2n(ref, fus, block=32):
    c, h, w = ref.shape
    eh, ew = -h % block, -w % block
    pad = ((0, 0), (0, eh), (0, ew))
    ref = np.clip(np.floor(np.pad(ref, pad, mode="symmetric") + 0.5), 0, 65535)
    fus = np.clip(np.floor(np.pad(fus, pad, mode="symmetric") + 0.5), 0, 65535)
    n3 = 1 << (c - 1).bit_length()
    if n3 != c:
        z = np.zeros((n3 - c,) + ref.shape[1:])
        ref, fus = np.concatenate([ref, z]), np.concatenate([fus, z])
    vals = []
    for y in range(0, ref.shape[1], block):
        for x in range(0, ref.shape[2], block):
            q = _onions_quality(ref[:, y:y + block, x:x + block], fus[:, y:y + block, x:x + block])
            vals.append(math.sqrt((q**2).sum()))
    return float(np.mean(vals))


def _uqi(x, y):
    x, y = x.ravel(), y.ravel()
    mx, my = x.mean(), y.mean()
    cov = np.cov(x, y)
    return 4 * cov[0, 1] * mx * my / (cov[0, 0] + cov[1, 1]) / (mx**2 + my**2)


def _block_mean_uqi(a, b, block=32):
    vals = [_uqi(a[y:y + block, x:x + block], b[y:y + block, x:x + block])
            for y in range(0, a.shape[0], block) for x in range(0, a.shape[1], block)]
    return float(np.mean(vals))


def loop_d_lambda(fus, lms, block=32):
    c = fus.shape[0]
    acc = 0.0
    for i in range(c - 1):
        for j in range(i + 1, c):
            acc += abs(_block_mean_uqi(fus[i], fus[j], block) - _block_mean_uqi(lms[i], lms[j], block))
    return acc / (c * (c - 1) / 2)


def loop_d_s(fus, lms, pan, pan_low, block=32):
    return float(np.mean([abs(_block_mean_uqi(fus[k], pan, block) - _block_mean_uqi(lms[k], pan_low, block))
                          for k in range(fus.shape[0])]))


def score_loop_rr(items: list[dict]) -> dict[str, np.ndarray]:
    sensor = panfw.sensors.get_sensor(SENSOR)
    k = sensor.max_dn
    psnr, ssim = panfw.create_metric("psnr"), panfw.create_metric("ssim")
    out = {n: [] for n in RR_METRICS}
    for s in items:
        out["psnr"].append(float(psnr(s["fused"][None], s["gt"][None])[0]))
        out["ssim"].append(float(ssim(s["fused"][None], s["gt"][None])[0]))
        ref = _np(s["gt"])[:, 20:-21, 20:-21] * k
        fus = _np(s["fused"])[:, 20:-21, 20:-21] * k
        out["sam"].append(loop_sam(ref, fus))
        out["ergas"].append(loop_ergas(ref, fus, sensor.ratio))
        out["q"].append(loop_q_avg(ref, fus))
        out["q2n"].append(loop_q2n(ref, fus))
        out["scc"].append(loop_scc(ref, fus))
    return {n: np.array(v) for n, v in out.items()}


def score_loop_fr(items: list[dict]) -> dict[str, np.ndarray]:
    sensor = panfw.sensors.get_sensor(SENSOR)
    k = sensor.max_dn
    out = {n: [] for n in FR_METRICS}
    for s in items:
        fus, lms = _np(s["fused"]) * k, _np(s["lms"]) * k
        pan_t = s["pan"].double() * k
        pan = pan_t[0].numpy()
        pan_low = _np(interp23tap(imresize(pan_t, scale=0.25), 4))[0]
        fus_mtf = _np(mtf_filter(torch.from_numpy(fus), sensor.gains(fus.shape[0]), 4))
        dl = loop_d_lambda(fus, lms)
        ds = loop_d_s(fus, lms, pan, pan_low)
        dk = 1 - loop_q2n(lms, fus_mtf)
        out["d_lambda"].append(dl)
        out["d_s"].append(ds)
        out["qnr"].append((1 - dl) * (1 - ds))
        out["d_lambda_k"].append(dk)
        out["hqnr"].append((1 - dk) * (1 - ds))
    return {n: np.array(v) for n, v in out.items()}


# ---- an older revision of panfw's metric code, for same-run comparisons -----------------------------

BASELINE_FILES = {"panfw_metrics.functional": "plugins/panfw_metrics/functional.py",
                  "panfw.ops.mtf": "panfw/ops/mtf.py", "panfw.ops.ssim": "panfw/ops/ssim.py"}


def load_baseline(rev: str):
    """A switch ``use(old: bool)`` between the working tree's metric code and ``rev``'s (git show of
    functional.py, ops/mtf.py, ops/ssim.py loaded as separate modules and patched in where the
    metrics look them up), so both are timed alternately in one run."""
    import importlib.util
    import subprocess
    import sys
    import tempfile
    from pathlib import Path

    import panfw_metrics.metrics as metric_objects

    root = Path(__file__).resolve().parent.parent
    old = {}
    tmp = Path(tempfile.mkdtemp(prefix="panfw_baseline_"))
    for name, path in BASELINE_FILES.items():
        src = subprocess.run(["git", "-C", str(root), "show", f"{rev}:{path}"], check=True,
                             capture_output=True, text=True).stdout
        file = tmp / (name.replace(".", "_") + ".py")
        file.write_text(src)
        spec = importlib.util.spec_from_file_location(f"baseline_{name.replace('.', '_')}", file)
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
        old[name] = mod
    new = {name: sys.modules[name] for name in BASELINE_FILES}
    saved = {"Fm": new["panfw_metrics.functional"], "fft": new["panfw.ops.mtf"]._fft_correlate,
             "ssim_map": new["panfw.ops.ssim"].ssim_map}

    def use(baseline: bool) -> None:
        metric_objects.Fm = old["panfw_metrics.functional"] if baseline else saved["Fm"]
        new["panfw.ops.mtf"]._fft_correlate = old["panfw.ops.mtf"]._fft_correlate if baseline else saved["fft"]
        new["panfw.ops.ssim"].ssim_map = old["panfw.ops.ssim"].ssim_map if baseline else saved["ssim_map"]

    return use


def compare(items: list[dict], metrics: list[str], batch: int, device: str, rev: str, repeats: int,
            title: str) -> list[str]:
    """Rows timing the working tree against ``rev``, alternating within each repeat."""
    use = load_baseline(rev)
    walls, cpus, vals = {"baseline": [], "now": []}, {"baseline": [], "now": []}, {}
    for r in range(repeats):
        for key in (("baseline", "now") if r % 2 == 0 else ("now", "baseline")):
            use(key == "baseline")
            t, c = time.perf_counter(), time.process_time()
            vals[key] = score_panfw(items, metrics, batch, device)
            walls[key].append(time.perf_counter() - t)
            cpus[key].append(time.process_time() - c)
    use(False)
    dev = max(float(np.max(np.abs(vals["now"][m] - vals["baseline"][m]) / np.maximum(np.abs(vals["baseline"][m]),
                                                                                    1e-300))) for m in metrics)
    rows = [row(f"{title}, panfw at {rev}", walls["baseline"], cpus["baseline"], len(items)),
            row(f"{title}, panfw now", walls["now"], cpus["now"], len(items)),
            f"| {title}: {rev} / now | {statistics.median(walls['baseline']) / statistics.median(walls['now']):.2f}x | "
            f"| | {statistics.median(cpus['baseline']) / statistics.median(cpus['now']):.2f}x | | max rel. "
            f"difference {dev:.1e} |"]
    return rows


# ---- timing ---------------------------------------------------------------------------------------

def timed(fn, repeats: int):
    """(result, wall times, process CPU times) of ``repeats`` calls."""
    walls, cpus, result = [], [], None
    for _ in range(repeats):
        t, c = time.perf_counter(), time.process_time()
        result = fn()
        walls.append(time.perf_counter() - t)
        cpus.append(time.process_time() - c)
    return result, walls, cpus


def row(label: str, walls: list[float], cpus: list[float], n: int) -> str:
    med = statistics.median(walls)
    return (f"| {label} | {med:.2f} | {min(walls):.2f} | {max(walls):.2f} | {statistics.median(cpus):.2f} | "
            f"{1000 * med / n:.0f} | {len(walls)} |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=20)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--loop-repeats", type=int, default=1)
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--sets", default="rr,fr")
    ap.add_argument("--no-loop", action="store_true", help="skip the loop port")
    ap.add_argument("--breakdown", action="store_true", help="also time each panfw metric alone")
    ap.add_argument("--baseline", default="", help="git revision whose metric code is timed against "
                    "the working tree's, alternately in the same run (e.g. 356e0f4)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, device {args.device}, "
          f"{platform.processor() or platform.machine()}, {args.images} images per set, batch {args.batch}; "
          f"load {'/'.join(f'{v:.1f}' for v in os.getloadavg())}")
    rows, breakdown = [], []
    sets = {"rr": (make_rr, RR_METRICS, score_loop_rr, "RR 8x256x256"),
            "fr": (make_fr, FR_METRICS, score_loop_fr, "FR 8x512x512")}
    for key in args.sets.split(","):
        make, metrics, loop, title = sets[key]
        items = make(args.images)
        score_panfw(items[:1], metrics, 1, args.device)  # warm-up: lazy imports, kernels
        ours, w_ours, c_ours = timed(partial(score_panfw, items, metrics, args.batch, args.device), args.repeats)
        rows.append(row(f"{title}, panfw (all {len(metrics)} metrics)", w_ours, c_ours, len(items)))
        if args.baseline:
            rows.extend(compare(items, metrics, args.batch, args.device, args.baseline, args.repeats, title))
        if args.breakdown:
            for m in metrics:
                _, w, c = timed(partial(score_panfw, items, [m], args.batch, args.device), args.repeats)
                breakdown.append(row(f"{title}, {m} alone", w, c, len(items)))
        if not args.no_loop:
            theirs, w_loop, c_loop = timed(partial(loop, items), args.loop_repeats)
            rows.append(row(f"{title}, loop port", w_loop, c_loop, len(items)))
            rows.append(f"| {title}: loop / panfw | {statistics.median(w_loop) / statistics.median(w_ours):.1f}x "
                        f"| | | {statistics.median(c_loop) / statistics.median(c_ours):.1f}x | | |")
            for m in metrics:
                a, b = ours[m], theirs[m]
                err = float(np.max(np.abs(a - b) / np.maximum(np.abs(b), 1e-12)))
                assert err < 1e-9, (m, err, a[:3], b[:3])
    print("\n| set, implementation | median wall (s) | min (s) | max (s) | median CPU (s) | wall ms / image | runs |")
    print("|---|---|---|---|---|---|---|")
    print("\n".join(rows + breakdown))
    print(f"\nload after {'/'.join(f'{v:.1f}' for v in os.getloadavg())}")


if __name__ == "__main__":
    main()
