"""One-shot per-scene adaptation (TRA-PAN): fit any registered model to the one scene in front of it.

No training set: the scene itself supervises the model (Chen et al., arXiv 2505.06576; its
predecessor ZS-Pan). Steps, all on the MS/PAN pair of the scene:

1. **Degradation-aware modelling**: a per-pixel spectral response network R (C -> 32 -> 32 -> 1,
   sigmoids) is fitted so that R(MS) equals the PAN reduced to the MS grid by the sensor's PAN MTF
   and decimation; the spatial degradation is the sensor's MTF filter and decimation of
   ``panfw.ops`` (the same operators as the metrics).
2. **Warm-up**: supervised reduced-resolution steps: the scene degraded by Wald's protocol
   (``panfw.ops``) is the input, the original MS the target; random crops and flips.
3. **Random alternation**: each step is full resolution with probability ``p_fr``, else a
   reduced-resolution step as above. A full-resolution step has no target: the loss is
   ``w_spectral * |MTF-reduce(HRMS) - MS| + w_spatial * |R(HRMS) - PAN|`` (the no-reference losses
   ``spectral_consistency`` and ``spatial_consistency`` of the losses plugin, 8 : 1 by default).

Every ``select_every`` steps the current weights are scored by HQNR on an evaluation window of the
scene (no reference needed), and the best weights are kept (the unadapted backbone is a candidate
too): a run cannot end worse, by HQNR, than what it started from. Training steps sample crops, so
the cost follows the step budget, not the scene size. The defaults are panfw's, not the paper's
(which gives none): see docs/adapt.md.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable
from typing import Any

import attrs
import torch
from torch import nn

from panfw.errors import UserError

__all__ = ["SpectralResponse", "fit_response", "draw_schedule", "SceneData", "prepare_scene", "CropSampler",
           "Adapter", "AdaptResult", "fr_scores"]


# ---------------------------------------------------------------------------------------------
# stage 1: the spectral response


class SpectralResponse(nn.Module):
    """Per-pixel spectral response R: (B,C,H,W) -> (B,1,H,W), C -> hidden -> hidden -> 1 with sigmoids
    (ZS-Pan/TRA-PAN). Inputs and output are standardised by statistics fixed at fitting time."""

    def __init__(self, bands: int, hidden: int = 32) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(bands, hidden), nn.Sigmoid(), nn.Linear(hidden, hidden), nn.Sigmoid(),
                                 nn.Linear(hidden, 1))
        self.register_buffer("x_mean", torch.zeros(bands))
        self.register_buffer("x_std", torch.ones(bands))
        self.register_buffer("y_mean", torch.zeros(()))
        self.register_buffer("y_std", torch.ones(()))

    def pixels(self, x: torch.Tensor) -> torch.Tensor:
        """R on pixel spectra (N, C) -> (N, 1)."""
        return self.net((x - self.x_mean) / self.x_std) * self.y_std + self.y_mean

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pixels(x.movedim(1, -1)).movedim(-1, 1)


def fit_response(ms: torch.Tensor, pan_lr: torch.Tensor, *, hidden: int = 32, steps: int = 300, lr: float = 3e-2,
                 seed: int = 0, max_pixels: int = 65536, batch: int = 4096) -> tuple[SpectralResponse, list[float]]:
    """Fit R so that R(ms) ~ pan_lr on the MS grid (MSE, Adam on random batches of ``batch`` of up
    to ``max_pixels`` pixels); returns R (frozen, eval mode) and the loss per step."""
    c = ms.shape[1]
    x = ms.detach().permute(1, 0, 2, 3).reshape(c, -1)
    y = pan_lr.detach().reshape(-1)
    g = torch.Generator().manual_seed(int(seed))
    if y.numel() > max_pixels:
        idx = torch.randperm(y.numel(), generator=g)[:max_pixels].to(y.device)
        x, y = x[:, idx], y[idx]
    x, y = x.float(), y.float()
    torch.manual_seed(int(seed))  # the MLP's initialisation
    r = SpectralResponse(c, hidden).to(ms.device)
    r.x_mean.copy_(x.mean(1))
    r.x_std.copy_(x.std(1).clamp_min(1e-6))
    r.y_mean.copy_(y.mean())
    r.y_std.copy_(y.std().clamp_min(1e-6))
    xb, yb = x.T.contiguous(), y[:, None]
    opt = torch.optim.Adam(r.parameters(), lr=lr)
    curve = []
    n = yb.shape[0]
    for _ in range(int(steps)):
        idx = torch.randint(n, (min(batch, n),), generator=g).to(xb.device) if n > batch else slice(None)
        loss = torch.mean((r.pixels(xb[idx]) - yb[idx]) ** 2)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        curve.append(float(loss.detach()))
    r.eval().requires_grad_(False)
    return r, curve


# ---------------------------------------------------------------------------------------------
# the scene and its crops


def draw_schedule(steps: int, warmup: int, p_fr: float, seed: int = 0) -> list[bool]:
    """Which steps are full resolution: ``warmup`` reduced-resolution steps, then each step full
    resolution with probability ``p_fr`` (seeded Bernoulli draws)."""
    if not 0.0 <= p_fr <= 1.0:
        raise UserError(f"adapt.p_fr = {p_fr}: a probability in [0, 1] is accepted")
    g = torch.Generator().manual_seed(int(seed) * 7919 + 17)
    draws = torch.rand(max(0, int(steps)), generator=g) < p_fr
    return [False] * int(warmup) + draws.tolist()


@attrs.define
class SceneData:
    """One region of a scene in [0,1]: the full-resolution pair (ms, lms, pan) and its Wald-reduced
    pair (rr_ms, rr_lms, rr_pan; target = ms)."""

    ms: torch.Tensor       # (1, C, h, w)
    lms: torch.Tensor      # (1, C, H, W)
    pan: torch.Tensor      # (1, 1, H, W)
    rr_ms: torch.Tensor    # (1, C, h/r, w/r)
    rr_lms: torch.Tensor   # (1, C, h, w)
    rr_pan: torch.Tensor   # (1, 1, h, w)
    pan_lr: torch.Tensor   # (1, 1, h, w): PAN by its MTF on the MS grid (R's target)
    ratio: int


def prepare_scene(ms: torch.Tensor, pan: torch.Tensor, sensor: Any, ratio: int, pan_mode: str = "mtf",
                  lms: torch.Tensor | None = None) -> SceneData:
    """The training views of one region: ms (1,C,h,w) and pan (1,1,rh,rw) in [0,1], h and w
    multiples of the ratio (crop odd-sized scenes first)."""
    from panfw.ops import decimate, interp23tap, mtf_filter_pan, wald_degrade

    r = int(ratio)
    h, w = ms.shape[-2:]
    if h % r or w % r or tuple(pan.shape[-2:]) != (h * r, w * r):
        raise UserError(f"adapt: a training region needs MS sides divisible by the ratio {r} and the PAN "
                        f"{r}x the MS; got MS {h}x{w}, PAN {tuple(pan.shape[-2:])}")
    rr_ms, rr_pan = wald_degrade(ms, pan, sensor, r, pan_mode=pan_mode)
    from panfw.sensors import get_sensor

    pan_lr = decimate(mtf_filter_pan(pan, get_sensor(sensor).mtf_pan, r), r)
    return SceneData(ms=ms, lms=interp23tap(ms, r) if lms is None else lms, pan=pan, rr_ms=rr_ms,
                     rr_lms=interp23tap(rr_ms, r), rr_pan=rr_pan, pan_lr=pan_lr, ratio=r)


class CropSampler:
    """Random aligned crops (and flips/transposes) of the scene's FR or RR views, seeded per step."""

    def __init__(self, regions: list[SceneData], crop: int, batch: int, seed: int = 0, flips: bool = True) -> None:
        self.regions, self.batch, self.seed, self.flips = regions, int(batch), int(seed), bool(flips)
        r = regions[0].ratio
        self.crop = max(2 * r, int(crop) // r * r)

    def _size(self, region: SceneData, fr: bool) -> tuple[int, int, int]:
        r = region.ratio
        hh, ww = (region.pan if fr else region.rr_pan).shape[-2:]
        c = min(self.crop, hh // r * r, ww // r * r)
        return c, hh, ww

    def sample(self, step: int, fr: bool) -> dict[str, torch.Tensor]:
        """The batch of ``step``: lms, pan, ms at full resolution (``fr``) or the reduced views with
        ``gt`` = the original MS."""
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + int(step))
        out: dict[str, list[torch.Tensor]] = {"lms": [], "pan": [], "ms": []}
        if not fr:
            out["gt"] = []
        c = min(self._size(reg, fr)[0] for reg in self.regions)
        for _ in range(self.batch):
            reg = self.regions[int(torch.randint(len(self.regions), (1,), generator=g))]
            r = reg.ratio
            _, hh, ww = self._size(reg, fr)
            y = int(torch.randint((hh - c) // r + 1, (1,), generator=g)) * r
            x = int(torch.randint((ww - c) // r + 1, (1,), generator=g)) * r
            lms, pan, ms = (reg.lms, reg.pan, reg.ms) if fr else (reg.rr_lms, reg.rr_pan, reg.rr_ms)
            views = {"lms": lms[..., y:y + c, x:x + c], "pan": pan[..., y:y + c, x:x + c],
                     "ms": ms[..., y // r:(y + c) // r, x // r:(x + c) // r]}
            if not fr:
                views["gt"] = reg.ms[..., y:y + c, x:x + c]
            if self.flips:
                k = int(torch.randint(8, (1,), generator=g))  # the 8 symmetries of the square
                views = {n: _dihedral(v, k) for n, v in views.items()}
            for n, v in views.items():
                out[n].append(v)
        return {n: torch.cat(v).contiguous() for n, v in out.items()}


def _dihedral(x: torch.Tensor, k: int) -> torch.Tensor:
    if k & 4:
        x = x.transpose(-1, -2)
    if k & 1:
        x = x.flip(-1)
    if k & 2:
        x = x.flip(-2)
    return x


# ---------------------------------------------------------------------------------------------
# scores


def fr_scores(fused: torch.Tensor, ms: torch.Tensor, pan: torch.Tensor, lms: torch.Tensor, sensor: Any
              ) -> dict[str, float]:
    """D_lambda, D_s, QNR, HQNR (and D_lambda^K) of one [0,1] image with the registered metrics."""
    import panfw

    cache: dict = {}
    out = {}
    for name in ("d_lambda", "d_s", "qnr", "d_lambda_k", "hqnr"):
        metric = panfw.create("metrics", name)
        out[name] = float(metric(fused, ms, pan, sensor=sensor, lms=lms, cache=cache)[0])
    return out


def eval_window(region: SceneData, size: int, block: int = 32) -> SceneData:
    """The centred window of at most ``size`` PAN pixels (sides multiples of ``block`` and of ratio
    times ``block``'s MS cells) used to score candidates."""
    r = region.ratio
    hh, ww = region.pan.shape[-2:]
    step = block * r // math.gcd(block, r) if block % r else block
    eh, ew = min(size, hh) // step * step, min(size, ww) // step * step
    if eh < block or ew < block:
        raise UserError(f"adapt: the scene ({hh}x{ww} PAN pixels) is smaller than one {block}x{block} block "
                        "of the quality indices")
    y, x = (hh - eh) // 2 // r * r, (ww - ew) // 2 // r * r
    sl = (..., slice(y, y + eh), slice(x, x + ew))
    msl = (..., slice(y // r, (y + eh) // r), slice(x // r, (x + ew) // r))
    return attrs.evolve(region, ms=region.ms[msl], lms=region.lms[sl], pan=region.pan[sl])


# ---------------------------------------------------------------------------------------------
# the adaptation


def _cosine(lr: float, i: int, n: int, kind: str) -> float:
    """The learning rate of alternation step i of n: constant, or cosine from lr to lr/10."""
    if kind != "cosine" or n <= 1:
        return lr
    return lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * i / (n - 1))))


@attrs.define
class AdaptResult:
    """What ``Adapter.run`` produced."""

    model: nn.Module
    response: SpectralResponse
    scores: dict[str, dict[str, float]]   # "unadapted", "lms", "adapted" -> FR indices on the eval window
    selected_step: int                    # -1: the unadapted backbone was kept
    curves: dict[str, list]               # response, rr, fr (step, value), hqnr (step, value)
    seconds: dict[str, float]
    n_fr: int
    n_rr: int


class Adapter:
    """One scene's adaptation; ``settings`` is the recipe's ``[adapt]`` section (``AdaptSpec``)."""

    def __init__(self, model: nn.Module, regions: list[SceneData], sensor: Any, settings: Any,
                 device: str | torch.device = "cpu", log: Callable[[str], None] | None = None,
                 progress: bool = False, baselines: dict[str, nn.Module] | None = None, seed: int = 0) -> None:
        import panfw

        self.seed = int(seed)
        self.model, self.regions, self.sensor, self.s = model, regions, sensor, settings
        self.baselines = dict(baselines or {})
        self.device = torch.device(device)
        self.log = log or (lambda msg: None)
        self.progress = progress
        r = regions[0].ratio
        norm = settings.norm
        self.spectral = panfw.create("losses", "spectral_consistency", norm=norm, margin=settings.margin, ratio=r)
        self.spatial = panfw.create("losses", "spatial_consistency", norm=norm, margin=settings.margin, ratio=r)
        self.quality = panfw.create("losses", "spatial_quality", block=settings.quality_block,
                                    margin=settings.margin, ratio=r) if settings.quality_weight else None
        self.rr_loss = panfw.create("losses", settings.rr_loss)

    def _to(self, batch: dict) -> dict:
        return {k: v.to(self.device) for k, v in batch.items()}

    def _score(self, model: nn.Module, win: SceneData) -> dict[str, float]:
        model.eval()
        with torch.no_grad():
            out = model(win.lms.to(self.device), win.pan.to(self.device), win.ms.to(self.device)).float().cpu()
        model.train()
        return fr_scores(out.clamp(0, 1), win.ms, win.pan, win.lms, self.sensor)

    def run(self) -> AdaptResult:
        """Fit R, warm up, alternate, keep the best weights by HQNR."""
        s, dev = self.s, self.device
        seconds: dict[str, float] = {}
        t0 = time.perf_counter()
        torch.manual_seed(int(self.seed))
        big = max(self.regions, key=lambda reg: reg.ms.numel())
        response, rcurve = fit_response(big.ms.to(dev), big.pan_lr.to(dev), hidden=s.response_hidden,
                                        steps=s.response_steps, lr=s.response_lr, seed=self.seed)
        self.spatial.response = response
        seconds["response"] = time.perf_counter() - t0
        self.log(f"stage 1: spectral response fitted in {seconds['response']:.1f} s "
                 f"(MSE {rcurve[-1]:.3g}, from {rcurve[0]:.3g})")

        win = eval_window(big, s.eval_size)
        t1 = time.perf_counter()
        model = self.model.to(dev).train()
        scores = {"lms": fr_scores(win.lms, win.ms, win.pan, win.lms, self.sensor),
                  "unadapted": self._score(model, win)}
        for bname, bmodel in self.baselines.items():
            scores[bname] = self._score(bmodel, win)
        seconds["scoring"] = time.perf_counter() - t1
        best = {"hqnr": scores["unadapted"]["hqnr"], "step": -1, "state": copy.deepcopy(model.state_dict()),
                "scores": scores["unadapted"]}
        hcurve = [(0, scores["unadapted"]["hqnr"])]

        total = int(s.warmup_steps) + int(s.steps)
        schedule = draw_schedule(s.steps, s.warmup_steps, s.p_fr, self.seed)
        sampler = CropSampler(self.regions, s.crop, s.batch_size, self.seed, s.flips)
        params = [p for p in model.parameters() if p.requires_grad]
        if not params and total:
            raise UserError("adapt: the backbone has no trainable parameters (a classical method?); "
                            "choose a learned model with --model")
        curves: dict[str, list] = {"response": rcurve, "rr": [], "fr": [], "hqnr": hcurve}
        if not total or not params:
            seconds["adapt"] = 0.0
            return AdaptResult(model.eval(), response, {**scores, "adapted": scores["unadapted"]}, -1, curves,
                               seconds, 0, 0)
        opt = torch.optim.Adam(params, lr=s.warmup_lr, betas=(0.9, 0.999))
        from tqdm import tqdm

        from panfw.engine.loop import Loop, Optimization

        def set_lr(i: int) -> None:  # warm-up at its own rate, then the alternation's (cosine decay)
            lr = s.warmup_lr if i < s.warmup_steps else _cosine(s.lr, i - s.warmup_steps, s.steps, s.schedule)
            for grp in opt.param_groups:
                grp["lr"] = lr

        def step(batch: tuple[int, dict]) -> torch.Tensor:
            i, b = batch[0], self._to(batch[1])
            pred = model(b["lms"], b["pan"], b["ms"])
            if "gt" in b:
                loss = self.rr_loss(pred, b["gt"])
                curves["rr"].append((i, float(loss.detach())))
                return loss
            loss = (s.spectral_weight * self.spectral(pred, b["ms"], b["pan"], sensor=self.sensor)
                    + s.spatial_weight * self.spatial(pred, b["ms"], b["pan"], sensor=self.sensor))
            if self.quality is not None:
                loss = loss + s.quality_weight * self.quality(pred, b["ms"], b["pan"], sensor=self.sensor)
            curves["fr"].append((i, float(loss.detach())))
            return loss

        def batches(epoch: int, start: int):
            for i in range(start, total):  # each step's crops depend on (seed, step) only
                yield i, sampler.sample(i, schedule[i])

        bar = tqdm(total=total, desc="adapt", unit="step", disable=not self.progress, leave=False)
        adapter = self

        class Hooks:
            """Learning rate per step, the progress bar, HQNR candidates every select_every steps."""

            def on_train_start(self, loop: Any) -> None:
                set_lr(0)

            def on_optimizer_step(self, loop: Any) -> None:
                set_lr(loop.state.step + 1)
                bar.update(1)

            def on_step_end(self, loop: Any) -> None:
                done = loop.state.step
                if s.select == "hqnr" and s.select_every and done % s.select_every == 0 and done > s.warmup_steps:
                    adapter._candidate(model, win, done, best, hcurve)

        t2 = time.perf_counter()
        loop = Loop(step=step, batches=batches, steps_per_epoch=total, total_steps=total,
                    optimization=Optimization(opt, params, grad_clip=s.grad_clip), callbacks=[Hooks()])
        try:
            loop.run()
        finally:
            bar.close()
        if s.select == "hqnr":
            if not hcurve or hcurve[-1][0] != total:
                self._candidate(model, win, total, best, hcurve)
            model.load_state_dict(best["state"])
            selected, scores["adapted"] = best["step"], best["scores"]
        else:
            selected, scores["adapted"] = total, self._score(model, win)
        seconds["adapt"] = time.perf_counter() - t2
        n_fr = sum(schedule)
        self.log(f"stage 2: {total} steps ({s.warmup_steps} warm-up, {n_fr} full-resolution) in "
                 f"{seconds['adapt']:.1f} s; kept step {selected} (HQNR {scores['adapted']['hqnr']:.4f}, "
                 f"unadapted {scores['unadapted']['hqnr']:.4f}, lms {scores['lms']['hqnr']:.4f})")
        return AdaptResult(model.eval(), response, scores, selected, curves, seconds, n_fr, total - n_fr)

    def _candidate(self, model: nn.Module, win: SceneData, step: int, best: dict, hcurve: list) -> None:
        sc = self._score(model, win)
        hcurve.append((step, sc["hqnr"]))
        if sc["hqnr"] > best["hqnr"] or not math.isfinite(best["hqnr"]):
            best.update(hqnr=sc["hqnr"], step=step, state=copy.deepcopy(model.state_dict()), scores=sc)


# ---------------------------------------------------------------------------------------------
# the procedure: a GeoTIFF scene or a dataset sample in, the fused image and a report out

BIT_DEPTHS = (8, 10, 11, 12, 14, 16)


def default_backbone() -> str:
    """FusionNet when a plugin registers it (ZS-Pan's backbone), else PanTiny Small."""
    import panfw

    reg = panfw.registry("models")
    return "fusionnet" if "fusionnet" in reg else "pantiny_small"


def infer_bits(values: Any, dtype: str, where: str) -> int:
    """The smallest usual bit depth that holds the data (11 for 16-bit files of 11-bit data)."""
    import numpy as np

    if not np.issubdtype(np.dtype(dtype), np.integer):
        raise UserError(f"{where}: floating-point data ({dtype}) has no bit depth to read; pass --bits N "
                        "(the DN range is 2^N - 1) or --sensor NAME")
    top = float(np.max(values)) if np.size(values) else 0.0
    for b in BIT_DEPTHS:
        if top <= 2 ** b - 1:
            return b
    return int(np.iinfo(dtype).bits)


def _fill_nodata(x: Any, bad: Any) -> Any:
    """Nodata pixels take their band's median, so that they train nothing (flat patches)."""
    import numpy as np

    if bad is None or not bad.any():
        return x
    x = x.copy()
    for b in range(x.shape[0]):
        good = x[b][~bad]
        x[b][bad] = np.median(good) if good.size else 0.0
    return x


def _region_windows(h: int, w: int, ratio: int, side: int, count: int, seed: int) -> list[tuple[int, int, int, int]]:
    """MS-grid windows (row, col, rows, cols) of the training regions: the whole scene when it is
    small, else up to ``count`` seeded random windows of ``side`` PAN pixels."""
    import numpy as np

    ms_side = max(ratio, side // ratio // ratio * ratio)
    rows, cols = min(h, ms_side) // ratio * ratio, min(w, ms_side) // ratio * ratio
    if rows < 2 * ratio or cols < 2 * ratio:
        raise UserError(f"adapt: the MS image ({h}x{w} pixels) is too small to adapt on; at least "
                        f"{2 * ratio}x{2 * ratio} MS pixels are needed")
    if rows == h // ratio * ratio and cols == w // ratio * ratio:
        return [(0, 0, rows, cols)]
    rng = np.random.default_rng([int(seed), 4242])
    n_y, n_x = math.ceil(h / rows), math.ceil(w / cols)
    cells = [(i, j) for i in range(n_y) for j in range(n_x)]
    picks = rng.permutation(len(cells))[:count]
    out = []
    for k in sorted(picks.tolist()):
        i, j = cells[k]
        out.append((min(i * rows, h - rows), min(j * cols, w - cols), rows, cols))
    return out


@attrs.define
class LoadedScene:
    """The training regions of a GeoTIFF pair and what was learnt about the data."""

    regions: list[SceneData]
    bands: int
    ratio: int
    bits: int
    dtype: str


def load_geotiff_regions(pan_path: Any, ms_path: Any, spec: Any, sensor: Any, seed: int,
                         bits: int | None) -> LoadedScene:
    """Read the training regions of a PAN/MS GeoTIFF pair (windowed reads), in [0, 1]."""
    import numpy as np
    from rasterio.windows import Window

    from panfw.io.geotiff import open_pair

    with open_pair(pan_path, ms_path) as pair:
        r = pair.ratio
        mr, mc, mh, mw = pair.ms_window
        pr, pc = pair.pan_window[:2]
        ms_ds, pan_ds = pair.ms, pair.pan
        dtype = ms_ds.dtypes[0]
        wins = _region_windows(mh, mw, r, spec.region, spec.regions, seed)
        raw = []
        for y, x, hh, ww in wins:
            m = ms_ds.read(window=Window(mc + x, mr + y, ww, hh), out_dtype="float32")
            p = pan_ds.read(1, window=Window(pc + x * r, pr + y * r, ww * r, hh * r), out_dtype="float32")[None]
            bad_m = (m == ms_ds.nodata).any(0) if ms_ds.nodata is not None else None
            bad_p = (p[0] == pan_ds.nodata) if pan_ds.nodata is not None else None
            raw.append((_fill_nodata(m, bad_m), _fill_nodata(p, bad_p)))
        if not bits:
            bits = infer_bits(np.stack([a.max() for a, _ in raw] + [b.max() for _, b in raw]), dtype,
                              f"MS {ms_path}")
    top = float(2 ** bits - 1)
    regions = [prepare_scene(torch.from_numpy(m / top)[None], torch.from_numpy(p / top)[None], sensor, r,
                             spec.pan_mode) for m, p in raw]
    return LoadedScene(regions, raw[0][0].shape[0], r, int(bits), dtype)


def sensor_with_bits(name: str, bits: int) -> Any:
    """The sensor (MTF gains, ratio) with the data's bit depth (the DN scale of the indices)."""
    from panfw.sensors import get_sensor

    s = get_sensor(name)
    return s if s.bit_depth == bits else attrs.evolve(s, bit_depth=int(bits))


def build_backbone(spec_model: str, bands: int, sensor: str | None, ratio: int) -> tuple[nn.Module, dict]:
    """The backbone to adapt (a private copy) and what is known about it (name, source, data)."""
    from panfw.io.resolve import resolve_model

    name = spec_model or default_backbone()
    res = resolve_model(name, bands=bands, sensor=sensor, ratio=ratio)
    if not res.is_module:
        raise UserError(f"adapt --model {name}: {res.kind} files cannot be trained; give a checkpoint, a run "
                        "directory or a registered model name")
    if res.bands is not None and res.bands != bands:
        raise UserError(f"adapt --model {name}: the model takes {res.bands} bands but the scene has {bands}; "
                        f"give a {bands}-band checkpoint or a registered name (built for {bands} bands)")
    model = copy.deepcopy(res.model_or_runtime)
    info = {"name": res.name, "source": res.source, "kind": res.kind, "data": dict(res.data),
            "trained": res.kind == "checkpoint"}
    return model, info


def _pick_sensor(spec: Any, info_data: dict | None, log: Callable[[str], None]) -> str:
    if spec.sensor:
        return spec.sensor
    if info_data and info_data.get("sensor"):
        return str(info_data["sensor"])
    log("note: no --sensor given and the model names none; using the generic MTF (Nyquist gains 0.3, "
        "PAN 0.15). Give --sensor for the sensor's own MTF")
    return "generic"


def write_report(out_dir: Any, result: AdaptResult, meta: dict) -> dict:
    """``adapt.json``, ``adapt.md`` and ``adapt_curves.png`` in ``out_dir``; returns the JSON content."""
    import json
    from pathlib import Path

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    rows = [("plain upsampling (lms)", result.scores["lms"])]
    rows += [(f"{k}", v) for k, v in result.scores.items() if k not in ("lms", "unadapted", "adapted")]
    rows += [(f"unadapted {meta['model']['name']}" + ("" if meta["model"]["trained"] else " (initialisation)"),
              result.scores["unadapted"]), (f"adapted {meta['model']['name']}", result.scores["adapted"])]
    data = {**meta, "scores": result.scores, "selected_step": result.selected_step,
            "steps": {"full_resolution": result.n_fr, "reduced_resolution": result.n_rr},
            "seconds": {k: round(v, 3) for k, v in result.seconds.items()},
            "curves": {k: v for k, v in result.curves.items()}}
    (out_dir / "adapt.json").write_text(json.dumps(data, indent=1), encoding="utf-8")
    lines = [f"# panfw adapt: {meta.get('output', '')}", "",
             f"Backbone {meta['model']['name']} ({meta['model']['source']}), sensor {meta['sensor']}, "
             f"{meta['bits']}-bit, {meta['bands']} bands, ratio {meta['ratio']}. "
             f"Scores on the scoring window ({meta['window']}) of the scene; kept step {result.selected_step} "
             "(-1: the unadapted backbone).", "",
             "| image | D_lambda | D_s | QNR | D_lambda^K | HQNR |", "|---|---|---|---|---|---|"]
    for label, sc in rows:
        lines.append(f"| {label} | {sc['d_lambda']:.4f} | {sc['d_s']:.4f} | {sc['qnr']:.4f} | "
                     f"{sc['d_lambda_k']:.4f} | {sc['hqnr']:.4f} |")
    lines += ["", "| stage | seconds |", "|---|---|"]
    lines += [f"| {k} | {v:.1f} |" for k, v in result.seconds.items()]
    lines += ["", "Loss curves: adapt_curves.png.", ""]
    (out_dir / "adapt.md").write_text("\n".join(lines), encoding="utf-8")
    _plot_curves(out_dir / "adapt_curves.png", result.curves)
    return data


def _plot_curves(path: Any, curves: dict) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(12, 3.2))
    axes[0].semilogy(curves["response"])
    axes[0].set_title("stage 1: spectral response (MSE)")
    axes[0].set_xlabel("step")
    for key, label in (("rr", "reduced resolution"), ("fr", "full resolution")):
        if curves[key]:
            xs, ys = zip(*curves[key])
            axes[1].plot(xs, ys, ".", ms=3, label=label)
    axes[1].set_yscale("log")
    axes[1].set_title("stage 2: losses")
    axes[1].set_xlabel("step")
    axes[1].legend()
    if curves["hqnr"]:
        xs, ys = zip(*curves["hqnr"])
        axes[2].plot(xs, ys, "o-")
    axes[2].set_title("HQNR on the scoring window")
    axes[2].set_xlabel("step")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


class AdaptProcedure:
    """``setup()`` (scene regions, backbone, sensor), ``run()`` (the adaptation), ``save()`` (the fused
    image and the report). Input: a PAN/MS GeoTIFF pair, or one sample of a registered dataset."""

    def __init__(self, recipe: Any, out: Any, *, pan: Any = None, ms: Any = None, data: Any = None,
                 index: int = 0, root: str = "", progress: bool = True,
                 echo: Callable[[str], None] = print) -> None:
        from pathlib import Path

        if (pan is None) != (ms is None) or (pan is None) == (data is None):
            raise UserError("panfw adapt: give --pan and --ms (a GeoTIFF pair), or --data NAME --index N "
                            "(a dataset sample)")
        self.recipe, self.spec, self.out = recipe, recipe.adapt, Path(out)
        self.pan, self.ms, self.data, self.index, self.root = pan, ms, data, int(index), root
        self.progress, self.echo = progress, echo
        self.result: AdaptResult | None = None
        self.meta: dict = {}
        self.sample: dict | None = None

    # -- setup ------------------------------------------------------------------------------
    def setup(self) -> None:
        """Read the scene, build the backbone, choose sensor and bit depth."""
        from pathlib import Path

        spec = self.spec
        if self.out.suffix.lower() not in ((".tif", ".tiff") if self.data is None else (".h5", ".npz")):
            want = ".tif" if self.data is None else ".h5 or .npz"
            raise UserError(f"-o {self.out}: the output of this input is a {want} file")
        if self.data is not None:
            self._setup_sample()
            return
        for p, what in ((self.pan, "PAN"), (self.ms, "MS")):
            if not Path(p).is_file():
                raise UserError(f"{what} file {str(p)!r} not found")
        if self.out.resolve() in (Path(self.pan).resolve(), Path(self.ms).resolve()):
            raise UserError(f"-o {self.out}: would overwrite an input")
        import rasterio

        with rasterio.open(self.ms) as ds:
            bands = ds.count
        from panfw.io.geotiff import open_pair

        with open_pair(self.pan, self.ms) as pair:
            ratio = pair.ratio
        model, info = build_backbone(spec.model, bands, spec.sensor or None, ratio)
        sensor = _pick_sensor(spec, info["data"], self.echo)
        bits = spec.bits or (sensor_bits(sensor) if spec.sensor else None) or info["data"].get("bit_depth")
        scene = load_geotiff_regions(self.pan, self.ms, spec, sensor, self.recipe.seed, bits)
        self._finish_setup(model, info, sensor, scene.regions, scene.bits, scene.bands, scene.ratio)

    def _setup_sample(self) -> None:
        from panfw.engine.data import create_dataset
        from panfw.procedures.evaluate import parse_data_option

        spec = self.spec
        dspec = parse_data_option(self.data) if isinstance(self.data, str) else self.data
        ds = create_dataset(dspec, "test_fr", self.root)
        if not 0 <= self.index < len(ds):
            raise UserError(f"--index {self.index}: dataset {dspec.name} (test_fr) has samples 0..{len(ds) - 1}")
        item = ds[self.index]
        ms, pan = item["ms"][None].float(), item["pan"][None].float()
        lms = item["lms"][None].float()
        ratio = int(getattr(ds, "ratio", 4) or 4)
        dsensor = spec.sensor or item.get("sensor") or getattr(ds, "sensor", None)
        model, info = build_backbone(spec.model, ms.shape[1], dsensor, ratio)
        sensor = dsensor or _pick_sensor(spec, info["data"], self.echo)
        bits = spec.bits or sensor_bits(sensor)
        h, w = ms.shape[-2:]
        hh, ww = h // ratio * ratio, w // ratio * ratio
        region = prepare_scene(ms[..., :hh, :ww], pan[..., :hh * ratio, :ww * ratio], sensor, ratio, spec.pan_mode,
                               lms=lms[..., :hh * ratio, :ww * ratio])
        self.sample = {"ms": ms, "pan": pan, "lms": lms, "gt": item.get("gt")}
        self._finish_setup(model, info, sensor, [region], bits, ms.shape[1], ratio)

    def _finish_setup(self, model: nn.Module, info: dict, sensor: str, regions: list[SceneData], bits: int,
                      bands: int, ratio: int) -> None:
        from panfw.inference import pick_device
        from panfw.io.resolve import resolve_model

        self.model, self.info, self.regions = model, info, regions
        self.sensor_name, self.bits, self.bands, self.ratio = sensor, int(bits), int(bands), int(ratio)
        self.sensor = sensor_with_bits(sensor, bits)
        self.device = pick_device(self.spec.device)
        self.baselines = {}
        for name in self.spec.baselines:
            res = resolve_model(name, bands=bands, sensor=sensor, ratio=ratio)
            self.baselines[name] = res.model_or_runtime
        win = eval_window(max(regions, key=lambda reg: reg.ms.numel()), self.spec.eval_size)
        self.meta = {"model": info, "sensor": sensor, "bits": self.bits, "bands": self.bands, "ratio": self.ratio,
                     "window": "x".join(map(str, win.pan.shape[-2:])) + " PAN px",
                     "regions": len(regions), "seed": self.recipe.seed,
                     "settings": attrs.asdict(self.spec), "output": str(self.out)}

    # -- run ----------------------------------------------------------------------------------
    def run(self) -> AdaptResult:
        """Adapt the backbone to the scene."""
        torch.manual_seed(int(self.recipe.seed))
        adapter = Adapter(self.model, self.regions, self.sensor, self.spec, device=self.device, log=self.echo,
                          progress=self.progress, baselines=self.baselines, seed=self.recipe.seed)
        self.result = adapter.run()
        return self.result

    # -- save ---------------------------------------------------------------------------------
    def save(self) -> dict:
        """Write the fused image (the tiled scene loop of ``panfw fuse`` for GeoTIFFs) and the report."""
        res = self.result
        t = time.perf_counter()
        model = res.model.eval()
        if self.data is None:
            from panfw.inference.scene import fuse_scene

            # an existing output was refused (or allowed by --overwrite) before the adaptation began
            rep = fuse_scene(self.pan, self.ms, model, self.out, bits=self.bits, tile=self.spec.tile or None,
                             overlap=None if self.spec.overlap < 0 else self.spec.overlap, device=str(self.device),
                             progress=self.progress,
                             overwrite=True)
            self.echo(rep.summary())
        else:
            self._save_sample(model)
        res.seconds["fuse"] = time.perf_counter() - t
        data = write_report(self.out.parent, res, self.meta)
        return data

    def _save_sample(self, model: nn.Module) -> None:
        import numpy as np

        from panfw.ops import tiled_call

        s = self.sample
        tile = self.spec.tile or 512
        overlap = 64 if self.spec.overlap < 0 else self.spec.overlap
        with torch.no_grad():
            fused = tiled_call(lambda a, b, c: model(a.to(self.device), b.to(self.device), c.to(self.device)).cpu(),
                               s["lms"], s["pan"], s["ms"], tile=tile, overlap=overlap,
                               ratio=self.ratio) if max(s["lms"].shape[-2:]) > tile else \
                model(s["lms"].to(self.device), s["pan"].to(self.device), s["ms"].to(self.device)).cpu()
        dn = (fused.clamp(0, 1)[0] * float(2 ** self.bits - 1)).numpy().astype(np.float32)
        self.out.parent.mkdir(parents=True, exist_ok=True)
        if self.out.suffix.lower() == ".npz":
            np.savez_compressed(self.out, fused=dn, sensor=self.sensor_name, bits=self.bits)
        else:
            import h5py

            with h5py.File(self.out, "w") as f:
                f.create_dataset("fused", data=dn[None], compression="gzip")
                f.attrs.update(sensor=self.sensor_name, bits=self.bits, model=self.info["name"])
        self.echo(f"fused sample {self.index} of {self.data} -> {self.out}")

    def cleanup(self) -> None:
        """Nothing is held open between stages."""


def sensor_bits(name: str) -> int:
    """The bit depth of a sensor by name."""
    from panfw.sensors import get_sensor

    return get_sensor(name).bit_depth


def adapt(out: Any, *, pan: Any = None, ms: Any = None, data: Any = None, index: int = 0, recipe: Any = None,
          overrides: list[str] | None = None, root: str = "", progress: bool = True,
          echo: Callable[[str], None] = print, overwrite: bool = False) -> dict:
    """``panfw adapt``: adapt and fuse one scene (every variant of a sweep recipe, each into its own
    folder beside ``out``, then a comparison table). Returns adapt.json's content ({variant: ...}).
    An existing output is refused before any work unless ``overwrite`` (the rule of every command)."""
    from pathlib import Path

    from panfw.config.recipe import Recipe, load_recipe, loads_recipe

    if recipe is None:
        r = loads_recipe("", source="<defaults>") if not overrides else _defaults_with(overrides)
    elif isinstance(recipe, Recipe):
        r = recipe
    else:
        r = load_recipe(recipe, list(overrides or []))
    out = Path(out)
    targets = [out] if not r.sweep else [out.parent / name / out.name for name, _ in r.variants()]
    existing = [str(t) for t in targets if t.exists()]
    if existing and not overwrite:
        raise UserError(f"-o {', '.join(existing)} exists; pass --overwrite to replace it (every panfw command "
                        "that writes refuses to replace a file without it)")
    if not r.sweep:
        return _one(r, out, pan, ms, data, index, root, progress, echo)
    results = {}
    for name, variant in r.variants():
        echo(f"== sweep variant {name} ==")
        results[name] = _one(variant, out.parent / name / out.name, pan, ms, data, index, root, progress, echo)
    lines = ["| variant | D_lambda^K | D_s | HQNR | kept step | seconds |", "|---|---|---|---|---|---|"]
    for name, d in results.items():
        sc = d["scores"]["adapted"]
        lines.append(f"| {name} | {sc['d_lambda_k']:.4f} | {sc['d_s']:.4f} | {sc['hqnr']:.4f} | "
                     f"{d['selected_step']} | {sum(d['seconds'].values()):.1f} |")
    text = "\n".join(lines) + "\n"
    out.parent.mkdir(parents=True, exist_ok=True)
    (out.parent / "sweep.md").write_text(text, encoding="utf-8")
    echo(text)
    return results


def _defaults_with(overrides: list[str]) -> Any:
    import tomli_w

    from panfw.config.recipe import RecipeError, loads_recipe, parse_value

    data: dict = {}
    for item in overrides:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise RecipeError(f"command line: override {item!r} is not KEY=VALUE (e.g. -s adapt.steps=100)")
        node = data
        parts = key.strip().split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = parse_value(raw.strip())
    return loads_recipe(tomli_w.dumps(data), source="command line (-s)")


def _one(r: Any, out: Any, pan: Any, ms: Any, data: Any, index: int, root: str, progress: bool,
         echo: Callable[[str], None]) -> dict:
    proc = AdaptProcedure(r, out, pan=pan, ms=ms, data=data, index=index, root=root, progress=progress, echo=echo)
    proc.setup()
    proc.run()
    result = proc.save()
    proc.cleanup()
    sc = result["scores"]
    echo(f"HQNR: adapted {sc['adapted']['hqnr']:.4f}, unadapted {sc['unadapted']['hqnr']:.4f}, lms "
         f"{sc['lms']['hqnr']:.4f}" + "".join(f", {k} {v['hqnr']:.4f}" for k, v in sc.items()
                                              if k not in ("adapted", "unadapted", "lms"))
         + f" -> {out} (report {out.parent / 'adapt.md'})")
    return result
