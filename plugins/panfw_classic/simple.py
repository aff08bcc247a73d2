"""No-fusion baseline (EXP) and the plain methods of the PanTiny paper's Table 1: Brovey, fast GIHS,
PCA and SFIM, as ``py_pansharpening`` (vendored in Pan-Mamba) computes them.

Differences from that code, on purpose: no clipping to [0, 1] and no uint8 quantisation (a model
returns its raw estimate in the input's scale; the engine evaluates it), and the 1e-8 added to
denominators is replaced by the scale-aware eps of ``base.scaled_eps``. PCA orients its first
component so that it grows with the bands (sklearn's sign depends on the data).
"""

from __future__ import annotations

import torch
from torch import Tensor

from panfw.ops import filter2d
from panfw.sensors import Sensor

from .base import ClassicalModel, apply_match, match_coefs, mean_hw, round_up, scaled_eps


class EXP(ClassicalModel):
    """EXP: the upsampled MS (``lms``) itself, no PAN detail (the toolbox's reference row)."""

    def forward(self, lms: Tensor, pan: Tensor, ms: Tensor | None = None) -> Tensor:
        self.check_inputs(lms, pan, ms)
        return lms.clamp_min(0) if self.floor_ms else lms.clone()

    def apply(self, lms: Tensor, pan: Tensor, ms: Tensor | None, stats: dict[str, Tensor]) -> Tensor:
        return lms


class _Intensity(ClassicalModel):
    """Statistics shared by Brovey and GIHS: I = band mean, P' = PAN mean/std-matched to I."""

    def statistics(self, lms: Tensor, pan: Tensor, ms: Tensor | None) -> dict[str, Tensor]:
        return {"match": match_coefs(pan, lms.mean(dim=1, keepdim=True)), "eps": scaled_eps(lms)}


class Brovey(_Intensity):
    """Brovey: F_k = M_k·P'/I, I the band mean, P' the PAN mean/std-matched to I."""

    def apply(self, lms: Tensor, pan: Tensor, ms: Tensor | None, stats: dict[str, Tensor]) -> Tensor:
        intensity = lms.mean(dim=1, keepdim=True)
        return lms * apply_match(pan, stats["match"]) / (intensity + stats["eps"])


class GIHS(_Intensity):
    """Fast generalised IHS: F_k = M_k + (P' - I), I the band mean, P' the PAN matched to I."""

    def apply(self, lms: Tensor, pan: Tensor, ms: Tensor | None, stats: dict[str, Tensor]) -> Tensor:
        intensity = lms.mean(dim=1, keepdim=True)
        return lms + (apply_match(pan, stats["match"]) - intensity)


class PCA(ClassicalModel):
    """PCA: the first principal component of the pixels is replaced by the PAN matched to it.

    ``global_mean=True`` copies py_pansharpening's final "equalisation", which shifts every band to
    the mean over all bands of ``lms`` (its quirk); by default each band keeps its own mean.
    """

    def __init__(self, bands: int = 4, sensor: str | Sensor = "generic", ratio: int = 4,
                 global_mean: bool = False) -> None:
        super().__init__(bands, sensor, ratio)
        self.global_mean = bool(global_mean)

    def _fused(self, lms: Tensor, pan: Tensor, st: dict[str, Tensor]) -> Tensor:
        b, c, h, w = lms.shape
        centred = (lms - st["mean"]).flatten(2)  # (B, C, N)
        pc1 = (st["v1"].transpose(1, 2) @ centred).reshape(b, 1, h, w)
        return lms + st["v1"].reshape(-1, c, 1, 1) * (apply_match(pan, st["match"]) - pc1)

    def statistics(self, lms: Tensor, pan: Tensor, ms: Tensor | None) -> dict[str, Tensor]:
        b, c, h, w = lms.shape
        mean = mean_hw(lms)
        centred = (lms - mean).flatten(2)  # (B, C, N)
        cov = centred @ centred.transpose(1, 2) / (h * w - 1)
        _, vecs = torch.linalg.eigh(cov)
        v1 = vecs[..., -1:]  # (B, C, 1): eigenvector of the largest eigenvalue
        v1 = v1 * torch.where(v1.sum(dim=1, keepdim=True) < 0, -1.0, 1.0)
        pc1 = (v1.transpose(1, 2) @ centred).reshape(b, 1, h, w)
        st = {"mean": mean, "v1": v1, "match": match_coefs(pan, pc1)}
        if self.global_mean:
            st["fmean"] = mean_hw(self._fused(lms, pan, st))
            st["gmean"] = lms.mean(dim=(1, 2, 3), keepdim=True)
        return st

    def apply(self, lms: Tensor, pan: Tensor, ms: Tensor | None, stats: dict[str, Tensor]) -> Tensor:
        fused = self._fused(lms, pan, stats)
        if self.global_mean:
            fused = fused - stats["fmean"] + stats["gmean"]
        return fused


class SFIM(ClassicalModel):
    """SFIM: F_k = M_k·P_k/box(P_k), P_k the PAN matched to band k, box = (r+1 if r even)² mean, wrap."""

    @property
    def box(self) -> int:
        return self.ratio + 1 if self.ratio % 2 == 0 else self.ratio

    @property
    def scene_halo(self) -> int:
        return round_up(self.box // 2, self.ratio)

    def statistics(self, lms: Tensor, pan: Tensor, ms: Tensor | None) -> dict[str, Tensor]:
        return {"match": match_coefs(pan, lms), "eps": scaled_eps(lms)}

    def apply(self, lms: Tensor, pan: Tensor, ms: Tensor | None, stats: dict[str, Tensor]) -> Tensor:
        size = self.box
        pan_k = apply_match(pan, stats["match"])  # (B, C, H, W)
        row = torch.full((1, size), 1.0 / size, dtype=lms.dtype, device=lms.device)
        border = "symmetric" if self.in_scene else "circular"
        pan_low = filter2d(filter2d(pan_k, row, border=border), row.T, border=border)  # separable box
        return lms * pan_k / (pan_low + stats["eps"])


# --- registered factories ----------------------------------------------------------------------

def exp(bands: int = 4, sensor: str = "generic", ratio: int = 4) -> EXP:
    """EXP: the upsampled MS (lms) as the output, the no-fusion baseline."""
    return EXP(bands, sensor, ratio)


def brovey(bands: int = 4, sensor: str = "generic", ratio: int = 4, floor_ms: bool = False) -> Brovey:
    """Brovey transform: each band scaled by the matched PAN over the band-mean intensity."""
    return Brovey(bands, sensor, ratio, floor_ms=floor_ms)


def gihs(bands: int = 4, sensor: str = "generic", ratio: int = 4) -> GIHS:
    """Fast generalised IHS: the same PAN detail (matched PAN minus band mean) added to every band."""
    return GIHS(bands, sensor, ratio)


def pca(bands: int = 4, sensor: str = "generic", ratio: int = 4, global_mean: bool = False) -> PCA:
    """PCA substitution: the first principal component replaced by the matched PAN."""
    return PCA(bands, sensor, ratio, global_mean=global_mean)


def sfim(bands: int = 4, sensor: str = "generic", ratio: int = 4, floor_ms: bool = False) -> SFIM:
    """SFIM: smoothing-filter-based intensity modulation with a box low-pass of the matched PAN."""
    return SFIM(bands, sensor, ratio, floor_ms=floor_ms)
