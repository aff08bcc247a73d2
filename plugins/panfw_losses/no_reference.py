"""No-reference (full-resolution) losses: consistency of a fused image with the MS and PAN it came from.

There is no ground truth at full resolution, but the acquisition model gives two checks (ZS-Pan,
TRA-PAN):

- **spectral consistency**: the fused image, degraded as the sensor degrades a scene (the MS MTF
  filter of ``panfw.ops`` and decimation on the ratio*i + ratio//2 grid), should give back the MS;
- **spatial consistency**: the fused image, seen through the sensor's spectral response R (the PAN
  as a function of the MS bands, per pixel), should give back the PAN.

Both are registered with ``kind="no_reference"`` and called ``loss(pred, ms, pan, sensor=None,
ratio=None)``; images in [0, 1]. ``margin`` drops that many MS pixels at each border before
comparing: on crops of a larger scene the filter's border padding is not what the sensor saw.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from panfw.errors import UserError
from panfw.ops import decimate, mtf_filter, mtf_filter_pan

NORMS = ("l1", "l2", "charbonnier")


def _norm_fn(norm: str, where: str) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    if norm == "l1":
        return F.l1_loss
    if norm == "l2":
        return F.mse_loss
    if norm == "charbonnier":
        return lambda a, b: torch.sqrt((a - b) ** 2 + 1e-6).mean()
    raise UserError(f"loss {where!r}: norm {norm!r} is not accepted; accepted: {', '.join(NORMS)}")


def _trim(x: torch.Tensor, m: int) -> torch.Tensor:
    if m <= 0:
        return x
    if x.shape[-1] <= 2 * m or x.shape[-2] <= 2 * m:
        raise UserError(f"no-reference loss: margin {m} px leaves nothing of a {x.shape[-2]}x{x.shape[-1]} image")
    return x[..., m:-m, m:-m]


def _sensor_and_ratio(sensor, ratio, default_sensor, default_ratio):
    from panfw.sensors import get_sensor

    s = get_sensor(sensor if sensor is not None else default_sensor)
    if isinstance(s, list | tuple):  # one sensor per image: the losses use the first (batches are one scene)
        s = s[0]
    r = int(ratio if ratio is not None else (default_ratio or s.ratio))
    return s, r


def mtf_reduce(x: torch.Tensor, sensor, ratio: int) -> torch.Tensor:
    """The sensor's spatial degradation of an MS-like image: per-band MTF filter and decimation."""
    from panfw.sensors import get_sensor

    return mtf_filter(x, get_sensor(sensor).gains(x.shape[-3]), ratio, decimate=True)


def pan_reduce(pan: torch.Tensor, sensor, ratio: int) -> torch.Tensor:
    """The PAN on the MS grid: the sensor's PAN MTF filter and decimation."""
    from panfw.sensors import get_sensor

    return decimate(mtf_filter_pan(pan, get_sensor(sensor).mtf_pan, ratio), ratio)


def linear_response(ms: torch.Tensor, pan_lr: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-image least-squares PAN ~ w . MS + b on the MS grid: weights (B,C) and bias (B,)."""
    b, c = ms.shape[:2]
    x = torch.cat([ms.reshape(b, c, -1), torch.ones_like(ms[:, :1].reshape(b, 1, -1))], 1).transpose(1, 2)
    y = pan_lr.reshape(b, -1, 1)
    sol = torch.linalg.lstsq(x.double(), y.double()).solution[..., 0].to(ms.dtype)
    return sol[:, :c], sol[:, c]


class SpectralConsistency(nn.Module):
    """norm(MTF-reduce(pred) - ms): the fused image degraded by the MS MTF and decimated gives the MS."""

    kind = "no_reference"

    def __init__(self, norm: str = "l1", margin: int = 0, sensor: str = "generic", ratio: int | None = None) -> None:
        super().__init__()
        self.fn, self.norm = _norm_fn(norm, "spectral_consistency"), norm
        self.margin, self.sensor, self.ratio = int(margin), sensor, ratio

    def forward(self, pred: torch.Tensor, ms: torch.Tensor, pan: torch.Tensor | None = None, sensor=None,
                ratio: int | None = None) -> torch.Tensor:
        s, r = _sensor_and_ratio(sensor, ratio, self.sensor, self.ratio)
        low = mtf_reduce(pred, s, r)
        if low.shape[-2:] != ms.shape[-2:]:
            raise UserError(f"spectral_consistency: pred {tuple(pred.shape)} reduced by {r} is "
                            f"{tuple(low.shape)}, ms is {tuple(ms.shape)}")
        return self.fn(_trim(low, self.margin), _trim(ms.to(low.dtype), self.margin))


class SpatialConsistency(nn.Module):
    """norm(R(pred) - pan): the fused image seen through the spectral response R gives the PAN.

    ``response`` is a module (B,C,H,W) -> (B,1,H,W) fitted elsewhere (panfw adapt fits one); when it
    is None, a per-image linear response (least squares of the MTF-reduced PAN on the MS bands) is
    fitted on the fly, without gradient."""

    kind = "no_reference"

    def __init__(self, norm: str = "l1", margin: int = 0, sensor: str = "generic", ratio: int | None = None,
                 response: nn.Module | None = None) -> None:
        super().__init__()
        self.fn, self.norm = _norm_fn(norm, "spatial_consistency"), norm
        self.margin, self.sensor, self.ratio = int(margin), sensor, ratio
        self.response = response

    def forward(self, pred: torch.Tensor, ms: torch.Tensor, pan: torch.Tensor, sensor=None,
                ratio: int | None = None) -> torch.Tensor:
        s, r = _sensor_and_ratio(sensor, ratio, self.sensor, self.ratio)
        if self.response is not None:
            synth = self.response(pred)
        else:
            with torch.no_grad():
                w, b = linear_response(ms, pan_reduce(pan, s, r))
            synth = (pred * w[:, :, None, None]).sum(1, keepdim=True) + b[:, None, None, None]
        m = self.margin * r
        return self.fn(_trim(synth, m), _trim(pan.to(synth.dtype), m))


def _block_q(x: torch.Tensor, y: torch.Tensor, block: int) -> torch.Tensor:
    """Mean UIQI over distinct ``block`` x ``block`` blocks of every band of x against y (1 band):
    (B, C). As the toolbox's D_s, but differentiable (an epsilon keeps flat blocks finite)."""
    eps = 1e-12
    mx, my = F.avg_pool2d(x, block), F.avg_pool2d(y, block)
    vx = F.avg_pool2d(x * x, block) - mx**2
    vy = F.avg_pool2d(y * y, block) - my**2
    cxy = F.avg_pool2d(x * y, block) - mx * my
    q = 4 * cxy * mx * my / ((vx + vy) * (mx**2 + my**2) + eps)
    return q.flatten(2).mean(2)


class SpatialQuality(nn.Module):
    """D_s as a loss: mean over bands of |Q(pred_k, PAN) - Q(lms_k, PAN_low)|, Q the UIQI averaged
    over distinct blocks, lms = interp23tap(ms), PAN_low = interp23tap(bicubic PAN / ratio) (the
    toolbox's D_s, toolbox 1.0 option, with ``block`` pixels per block side)."""

    kind = "no_reference"

    def __init__(self, block: int = 16, margin: int = 0, sensor: str = "generic", ratio: int | None = None) -> None:
        super().__init__()
        self.block, self.margin, self.sensor, self.ratio = int(block), int(margin), sensor, ratio

    def forward(self, pred: torch.Tensor, ms: torch.Tensor, pan: torch.Tensor, sensor=None,
                ratio: int | None = None) -> torch.Tensor:
        from panfw.ops import imresize, interp23tap

        _, r = _sensor_and_ratio(sensor, ratio, self.sensor, self.ratio)
        with torch.no_grad():
            lms = interp23tap(ms.to(pred.dtype), r)
            pan_low = interp23tap(imresize(pan.to(pred.dtype), scale=1.0 / r, method="bicubic", antialias=True), r)
        m = self.margin * r
        f, p, lm, pl = (_trim(t, m) for t in (pred, pan.to(pred.dtype), lms, pan_low))
        hb, wb = f.shape[-2] // self.block * self.block, f.shape[-1] // self.block * self.block
        if hb == 0 or wb == 0:
            raise UserError(f"spatial_quality: a {f.shape[-2]}x{f.shape[-1]} image (after the margin) holds no "
                            f"{self.block}x{self.block} block; use a smaller block or larger crops")
        f, p, lm, pl = (t[..., :hb, :wb] for t in (f, p, lm, pl))
        with torch.no_grad():
            target = _block_q(lm, pl, self.block)
        return (_block_q(f, p, self.block) - target).abs().mean()


def spatial_quality(block: int = 16, margin: int = 0, sensor: str = "generic", ratio: int | None = None) -> nn.Module:
    """No-reference D_s loss: |Q(pred_k, PAN) - Q(lms_k, low-pass PAN)| per band, UIQI on distinct blocks."""
    return SpatialQuality(block, margin, sensor, ratio)


def spectral_consistency(norm: str = "l1", margin: int = 0, sensor: str = "generic",
                         ratio: int | None = None) -> nn.Module:
    """No-reference spectral consistency: norm(MTF-reduce(pred) - ms), the sensor's MS MTF and decimation."""
    return SpectralConsistency(norm, margin, sensor, ratio)


def spatial_consistency(norm: str = "l1", margin: int = 0, sensor: str = "generic",
                        ratio: int | None = None) -> nn.Module:
    """No-reference spatial consistency: norm(R(pred) - pan), R the spectral response (linear fit if none set)."""
    return SpatialConsistency(norm, margin, sensor, ratio)


NO_REFERENCE_LOSSES = {"spectral_consistency": spectral_consistency, "spatial_consistency": spatial_consistency,
                       "spatial_quality": spatial_quality}
