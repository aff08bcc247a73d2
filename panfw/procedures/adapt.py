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
        self.net = nn.Sequential(nn.Conv2d(bands, hidden, 1), nn.Sigmoid(), nn.Conv2d(hidden, hidden, 1),
                                 nn.Sigmoid(), nn.Conv2d(hidden, 1, 1))
        self.register_buffer("x_mean", torch.zeros(1, bands, 1, 1))
        self.register_buffer("x_std", torch.ones(1, bands, 1, 1))
        self.register_buffer("y_mean", torch.zeros(()))
        self.register_buffer("y_std", torch.ones(()))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net((x - self.x_mean) / self.x_std) * self.y_std + self.y_mean


def fit_response(ms: torch.Tensor, pan_lr: torch.Tensor, *, hidden: int = 32, steps: int = 300, lr: float = 1e-2,
                 seed: int = 0, max_pixels: int = 65536) -> tuple[SpectralResponse, list[float]]:
    """Fit R so that R(ms) ~ pan_lr on the MS grid (MSE, full-batch Adam on up to ``max_pixels``
    pixels); returns R (frozen, eval mode) and the loss per step."""
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
    r.x_mean.copy_(x.mean(1).view(1, c, 1, 1))
    r.x_std.copy_(x.std(1).clamp_min(1e-6).view(1, c, 1, 1))
    r.y_mean.copy_(y.mean())
    r.y_std.copy_(y.std().clamp_min(1e-6))
    xb, yb = x.T.reshape(1, -1, c, 1).permute(0, 2, 1, 3).contiguous(), y.view(1, 1, -1, 1)
    opt = torch.optim.Adam(r.parameters(), lr=lr)
    curve = []
    for _ in range(int(steps)):
        loss = torch.mean((r(xb) - yb) ** 2)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        curve.append(float(loss))
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
                 progress: bool = False) -> None:
        import panfw

        self.model, self.regions, self.sensor, self.s = model, regions, sensor, settings
        self.device = torch.device(device)
        self.log = log or (lambda msg: None)
        self.progress = progress
        r = regions[0].ratio
        norm = settings.norm
        self.spectral = panfw.create("losses", "spectral_consistency", norm=norm, margin=settings.margin, ratio=r)
        self.spatial = panfw.create("losses", "spatial_consistency", norm=norm, margin=settings.margin, ratio=r)
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
        torch.manual_seed(int(s.seed))
        big = max(self.regions, key=lambda reg: reg.ms.numel())
        response, rcurve = fit_response(big.ms.to(dev), big.pan_lr.to(dev), hidden=s.response_hidden,
                                        steps=s.response_steps, lr=s.response_lr, seed=s.seed)
        self.spatial.response = response
        seconds["response"] = time.perf_counter() - t0
        self.log(f"stage 1: spectral response fitted in {seconds['response']:.1f} s "
                 f"(MSE {rcurve[-1]:.3g}, from {rcurve[0]:.3g})")

        win = eval_window(big, s.eval_size)
        t1 = time.perf_counter()
        model = self.model.to(dev).train()
        scores = {"lms": fr_scores(win.lms, win.ms, win.pan, win.lms, self.sensor),
                  "unadapted": self._score(model, win)}
        seconds["scoring"] = time.perf_counter() - t1
        best = {"hqnr": scores["unadapted"]["hqnr"], "step": -1, "state": copy.deepcopy(model.state_dict())}
        hcurve = [(0, scores["unadapted"]["hqnr"])]

        total = int(s.warmup_steps) + int(s.steps)
        schedule = draw_schedule(s.steps, s.warmup_steps, s.p_fr, s.seed)
        sampler = CropSampler(self.regions, s.crop, s.batch_size, s.seed, s.flips)
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

        t2 = time.perf_counter()
        for i in tqdm(range(total), desc="adapt", unit="step", disable=not self.progress, leave=False):
            for grp in opt.param_groups:  # warm-up at its own rate, then the alternation's
                grp["lr"] = s.warmup_lr if i < s.warmup_steps else s.lr
            b = self._to(sampler.sample(i, schedule[i]))
            pred = model(b["lms"], b["pan"], b["ms"])
            if "gt" in b:
                loss = self.rr_loss(pred, b["gt"])
                curves["rr"].append((i, float(loss)))
            else:
                spec = self.spectral(pred, b["ms"], b["pan"], sensor=self.sensor)
                spat = self.spatial(pred, b["ms"], b["pan"], sensor=self.sensor)
                loss = s.spectral_weight * spec + s.spatial_weight * spat
                curves["fr"].append((i, float(loss)))
            if not math.isfinite(float(loss)):
                raise UserError(f"adapt: the loss became {float(loss)} at step {i + 1}; try a lower adapt.lr "
                                "or adapt.grad_clip = 1.0")
            opt.zero_grad(set_to_none=True)
            loss.backward()
            if s.grad_clip > 0:
                torch.nn.utils.clip_grad_norm_(params, s.grad_clip)
            opt.step()
            done = i + 1
            if s.select == "hqnr" and s.select_every and done % s.select_every == 0 and done > s.warmup_steps \
                    and done < total:
                self._candidate(model, win, done, best, hcurve)
        if s.select == "hqnr":
            self._candidate(model, win, total, best, hcurve)
            model.load_state_dict(best["state"])
            selected = best["step"]
            adapted = self._score(model, win) if selected != total else None
        else:
            selected, adapted = total, None
        seconds["adapt"] = time.perf_counter() - t2
        scores["adapted"] = adapted or self._score(model, win)
        n_fr = sum(schedule)
        self.log(f"stage 2: {total} steps ({s.warmup_steps} warm-up, {n_fr} full-resolution) in "
                 f"{seconds['adapt']:.1f} s; kept step {selected} (HQNR {scores['adapted']['hqnr']:.4f}, "
                 f"unadapted {scores['unadapted']['hqnr']:.4f}, lms {scores['lms']['hqnr']:.4f})")
        return AdaptResult(model.eval(), response, scores, selected, curves, seconds, n_fr, total - n_fr)

    def _candidate(self, model: nn.Module, win: SceneData, step: int, best: dict, hcurve: list) -> None:
        h = self._score(model, win)["hqnr"]
        hcurve.append((step, h))
        if h > best["hqnr"]:
            best.update(hqnr=h, step=step, state=copy.deepcopy(model.state_dict()))
