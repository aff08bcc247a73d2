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

from .base import ClassicalModel, match_pan, mean_hw, scaled_eps


class EXP(ClassicalModel):
    """EXP: the upsampled MS (``lms``) itself, no PAN detail (the toolbox's reference row)."""

    def forward(self, lms: Tensor, pan: Tensor, ms: Tensor | None = None) -> Tensor:
        self.check_inputs(lms, pan, ms)
        return lms.clone()


class Brovey(ClassicalModel):
    """Brovey: F_k = M_k·P'/I, I the band mean, P' the PAN mean/std-matched to I."""

    def fuse(self, lms: Tensor, pan: Tensor, ms: Tensor | None) -> Tensor:
        intensity = lms.mean(dim=1, keepdim=True)
        return lms * match_pan(pan, intensity) / (intensity + scaled_eps(lms))


class GIHS(ClassicalModel):
    """Fast generalised IHS: F_k = M_k + (P' - I), I the band mean, P' the PAN matched to I."""

    def fuse(self, lms: Tensor, pan: Tensor, ms: Tensor | None) -> Tensor:
        intensity = lms.mean(dim=1, keepdim=True)
        return lms + (match_pan(pan, intensity) - intensity)


class PCA(ClassicalModel):
    """PCA: the first principal component of the pixels is replaced by the PAN matched to it.

    ``global_mean=True`` copies py_pansharpening's final "equalisation", which shifts every band to
    the mean over all bands of ``lms`` (its quirk); by default each band keeps its own mean.
    """

    def __init__(self, bands: int = 4, sensor: str | Sensor = "generic", ratio: int = 4,
                 global_mean: bool = False) -> None:
        super().__init__(bands, sensor, ratio)
        self.global_mean = bool(global_mean)

    def fuse(self, lms: Tensor, pan: Tensor, ms: Tensor | None) -> Tensor:
        b, c, h, w = lms.shape
        centred = (lms - mean_hw(lms)).flatten(2)  # (B, C, N)
        cov = centred @ centred.transpose(1, 2) / (h * w - 1)
        _, vecs = torch.linalg.eigh(cov)
        v1 = vecs[..., -1:]  # (B, C, 1): eigenvector of the largest eigenvalue
        v1 = v1 * torch.where(v1.sum(dim=1, keepdim=True) < 0, -1.0, 1.0)
        pc1 = (v1.transpose(1, 2) @ centred).reshape(b, 1, h, w)
        fused = lms + v1.reshape(b, c, 1, 1) * (match_pan(pan, pc1) - pc1)
        if self.global_mean:
            fused = fused - mean_hw(fused) + lms.mean(dim=(1, 2, 3), keepdim=True)
        return fused


class SFIM(ClassicalModel):
    """SFIM: F_k = M_k·P_k/box(P_k), P_k the PAN matched to band k, box = (r+1 if r even)² mean, wrap."""

    def fuse(self, lms: Tensor, pan: Tensor, ms: Tensor | None) -> Tensor:
        size = self.ratio + 1 if self.ratio % 2 == 0 else self.ratio
        pan_k = match_pan(pan, lms)  # (B, C, H, W)
        row = torch.full((1, size), 1.0 / size, dtype=lms.dtype, device=lms.device)
        pan_low = filter2d(filter2d(pan_k, row, border="circular"), row.T, border="circular")  # separable box
        return lms * pan_k / (pan_low + scaled_eps(lms))


# --- registered factories ----------------------------------------------------------------------

def exp(bands: int = 4, sensor: str = "generic", ratio: int = 4) -> EXP:
    """EXP: the upsampled MS (lms) as the output, the no-fusion baseline."""
    return EXP(bands, sensor, ratio)


def brovey(bands: int = 4, sensor: str = "generic", ratio: int = 4) -> Brovey:
    """Brovey transform: each band scaled by the matched PAN over the band-mean intensity."""
    return Brovey(bands, sensor, ratio)


def gihs(bands: int = 4, sensor: str = "generic", ratio: int = 4) -> GIHS:
    """Fast generalised IHS: the same PAN detail (matched PAN minus band mean) added to every band."""
    return GIHS(bands, sensor, ratio)


def pca(bands: int = 4, sensor: str = "generic", ratio: int = 4, global_mean: bool = False) -> PCA:
    """PCA substitution: the first principal component replaced by the matched PAN."""
    return PCA(bands, sensor, ratio, global_mean=global_mean)


def sfim(bands: int = 4, sensor: str = "generic", ratio: int = 4) -> SFIM:
    """SFIM: smoothing-filter-based intensity modulation with a box low-pass of the matched PAN."""
    return SFIM(bands, sensor, ratio)
