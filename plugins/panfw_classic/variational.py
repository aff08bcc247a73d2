"""Variational method of Vivone's toolbox: TV (Palsson et al. 2014, toolbox ``TV_pansharpen``).

Minimises ||y − M x||² + λ·TV(x), with M x = (bilinear-reduced bands of x, Σ_k w_k x_k), by the
toolbox's majorisation-minimisation iteration; see the ``TV`` docstring for the quirks kept.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from panfw.errors import UserError
from panfw.ops import imresize
from panfw.sensors import Sensor

from .base import ClassicalModel, dn_factor

# The toolbox demos' settings (Demo_Full_Resolution.m): weights w, alpha, lambda (in DN), c, iterations.
# Sensors without a demo entry use the WV3 settings.
TV_DEMO_SETTINGS: dict[str, dict] = {
    "wv3": dict(weights=(0.0657, 0.1012, 0.1537, 0.1473, 0.1245, 0.1545, 0.1338, 0.1192),
                alpha=0.75, lam=1e-3, c=8.0, maxiter=50),
    "ikonos": dict(weights=(0.1091, 0.2127, 0.2928, 0.3854), alpha=1.064, lam=0.47106, c=8.0, maxiter=10),
    "geoeye1": dict(weights=(0.1552, 0.3959, 0.2902, 0.1587), alpha=0.75, lam=157.8954, c=8.0, maxiter=50),
}


def _diff(v: Tensor, dim: int) -> Tensor:
    """Forward difference along ``dim`` (-1 or -2) with a zero last entry (the toolbox's Dx / Dy)."""
    n = v.shape[dim]
    out = torch.empty_like(v)
    torch.sub(v.narrow(dim, 1, n - 1), v.narrow(dim, 0, n - 1), out=out.narrow(dim, 0, n - 1))
    out.narrow(dim, n - 1, 1).zero_()
    return out


def _diff_t(v: Tensor, dim: int) -> Tensor:
    """Adjoint of ``_diff``: [−v_0; v_i − v_{i+1}, i = 0…n−3; v_{n−2}] (the toolbox's DyT / DxT)."""
    n = v.shape[dim]
    out = torch.empty_like(v)
    torch.neg(v.narrow(dim, 0, 1), out=out.narrow(dim, 0, 1))
    torch.sub(v.narrow(dim, 0, n - 2), v.narrow(dim, 1, n - 2), out=out.narrow(dim, 1, n - 2))
    out.narrow(dim, n - 1, 1).copy_(v.narrow(dim, n - 2, 1))
    return out


def _dx(v: Tensor) -> Tensor:
    """Forward difference along columns, zero last column (the toolbox's ``Dx``)."""
    return _diff(v, -1)


def _dy(v: Tensor) -> Tensor:
    """Forward difference along rows, zero last row (the toolbox's ``Dy``)."""
    return _diff(v, -2)


def _dxt(v: Tensor) -> Tensor:
    """Adjoint of ``_dx`` (the toolbox's ``DxT``)."""
    return _diff_t(v, -1)


def _dyt(v: Tensor) -> Tensor:
    """Adjoint of ``_dy`` (the toolbox's ``DyT``)."""
    return _diff_t(v, -2)


class TV(ClassicalModel):
    """TV: total-variation pan-sharpening (toolbox ``TV_pansharpen``), from the LR MS and the PAN.

    x (C bands) starts at 0, dual z (2C) at 0; each of ``maxiter`` iterations:
    b = α·x + bil↑(y − bil↓(x)) + w_k·(P − Σ_j w_j x_j); W = 2α/λ·|∇x_k| + c;
    z ← (D b + D Dᵀz)/W; x ← (b − Dᵀz)/α. Defaults are the demos' settings for the sensor
    (``TV_DEMO_SETTINGS``; WV3's where the demos have none); 4 bands take w_1…w_4.

    Toolbox quirks reproduced by default (``corrected=False``): the z update uses D Dᵀz where the
    algorithm has c·z − D Dᵀz (the toolbox's helper computes the latter but returns the former),
    and the dual channels are paired z_i / z_{i+4}, right for 4 bands only — so the default
    refuses other band counts. ``corrected=True`` uses c·z − D Dᵀz and pairs z_i / z_{i+C}, for
    any C. λ is in the sensor's digital numbers (the toolbox runs on DN): inputs are converted
    with ``base.dn_factor`` (``input_scale`` DN per input unit; None detects [0, 1] images), so
    [0, 1] and DN inputs give the same image up to the scale.
    """

    needs_ms = True

    def __init__(self, bands: int = 4, sensor: str | Sensor = "generic", ratio: int = 4,
                 weights: Sequence[float] | None = None, alpha: float | None = None,
                 lam: float | None = None, c: float | None = None, maxiter: int | None = None,
                 corrected: bool = False, input_scale: float | None = None) -> None:
        super().__init__(bands, sensor, ratio)
        if not corrected and self.bands != 4:  # refused at build time too, before any data is read
            raise UserError(f"tv: the toolbox's TV is for 4 bands only (it pairs dual channels z_i / "
                            f"z_(i+4)); got bands={self.bands}. Pass corrected=True for the corrected "
                            f"algorithm (any band count), or use 4 bands")
        demo = TV_DEMO_SETTINGS.get(self.sensor.name, TV_DEMO_SETTINGS["wv3"])
        self.weights = tuple(float(v) for v in (demo["weights"] if weights is None else weights))
        self.alpha = float(demo["alpha"] if alpha is None else alpha)
        self.lam = float(demo["lam"] if lam is None else lam)
        self.c = float(demo["c"] if c is None else c)
        self.maxiter = int(demo["maxiter"] if maxiter is None else maxiter)
        self.corrected = bool(corrected)
        self.input_scale = None if input_scale is None else float(input_scale)

    def extra_repr(self) -> str:
        return (f"{super().extra_repr()}, alpha={self.alpha}, lam={self.lam}, c={self.c}, "
                f"maxiter={self.maxiter}, corrected={self.corrected}")

    def check_inputs(self, lms: Tensor, pan: Tensor, ms: Tensor | None) -> None:
        super().check_inputs(lms, pan, ms)
        c = lms.shape[1]
        if not self.corrected and c != 4:
            raise UserError(f"tv: the toolbox's TV pairs its dual channels z_i / z_(i+4), which is right "
                            f"for 4 bands only; got {c} bands. Pass corrected=True for the corrected "
                            f"algorithm (any band count), or use 4 bands")
        if len(self.weights) < c:
            raise UserError(f"tv: {len(self.weights)} PAN weights for {c} bands; pass weights= with "
                            f"at least {c} values")

    tile_exact = ("each of its iterations reaches a few pixels further, so after maxiter iterations a "
                  "pixel depends on most of the image")

    def statistics(self, lms: Tensor, pan: Tensor, ms: Tensor | None) -> dict[str, Tensor]:
        return {"dn": dn_factor(pan, self.sensor, self.input_scale)}

    def apply(self, lms: Tensor, pan: Tensor, ms: Tensor | None, stats: dict[str, Tensor]) -> Tensor:
        k = stats["dn"]
        return self._fuse_dn(ms * k, pan * k) / k

    def _fuse_dn(self, y: Tensor, pan: Tensor) -> Tensor:
        b, c = y.shape[:2]
        h, w = pan.shape[-2:]
        r = float(self.ratio)
        wt = torch.tensor(self.weights[:c], dtype=y.dtype, device=y.device).view(1, c, 1, 1)
        alpha, lam, cc = self.alpha, self.lam, self.c
        x = torch.zeros(b, c, h, w, dtype=y.dtype, device=y.device)
        zx = torch.zeros_like(x)  # z_1..C: the Dx channels
        zy = torch.zeros_like(x)  # z_C+1..2C: the Dy channels
        for _ in range(self.maxiter):
            # b = α·x + (bil↑(y − bil↓(x)) + w_k·(P − Σ w_j x_j)), the toolbox's grouping
            bb = imresize(y - imresize(x, scale=1.0 / r, method="bilinear"), scale=r, method="bilinear")
            bb.add_(wt * (pan - (wt * x).sum(dim=1, keepdim=True))).add_(alpha * x)
            weight = torch.hypot(_dx(x), _dy(x)).mul_(2.0 * alpha / lam).add_(cc)
            u = _dxt(zx).add_(_dyt(zy))  # Dᵀz
            # D is linear: D(b) ± D(Dᵀz) = D(b ± Dᵀz), one difference pass instead of two
            if self.corrected:  # z ← (D b + c·z − D Dᵀz)/W
                u = bb - u
                zx = _dx(u).add_(zx, alpha=cc).div_(weight)
                zy = _dy(u).add_(zy, alpha=cc).div_(weight)
            else:  # the toolbox's z update: (D b + D Dᵀz)/W
                u.add_(bb)
                zx = _dx(u).div_(weight)
                zy = _dy(u).div_(weight)
            x = bb.sub_(_dxt(zx).add_(_dyt(zy))).div_(alpha)
        return x


def tv(bands: int = 4, sensor: str = "generic", ratio: int = 4, weights: Sequence[float] | None = None,
       alpha: float | None = None, lam: float | None = None, c: float | None = None,
       maxiter: int | None = None, corrected: bool = False, input_scale: float | None = None,
       bit_depth: int | None = None) -> TV:
    """TV: total-variation pan-sharpening from the LR MS and the PAN (toolbox TV_pansharpen)."""
    if input_scale is None and bit_depth:  # [0, 1] inputs of bit_depth-bit data (fuse --bits)
        input_scale = float(2 ** int(bit_depth) - 1)
    return TV(bands, sensor, ratio, weights=weights, alpha=alpha, lam=lam, c=c, maxiter=maxiter,
              corrected=corrected, input_scale=input_scale)
