"""Multiresolution-analysis methods of Vivone's toolbox: AWLP, the MTF-GLP family, MF and SR-D.

Each class computes what the toolbox computes (README §7 of the test vectors, docs/models.md
"Classical methods"); the registered factories at the end take ``bands``, ``sensor``, ``ratio`` and
the method's options. Images are (B, C, H, W) float64 inside; statistics are per image. The MTF
gains are the sensor's first C (``Sensor.gains``), as the toolbox's ``genMTF`` gives them.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

from panfw.errors import DataError
from panfw.ops import decimate, imresize, lowpass_gauss, lowpass_wavelet, mtf_filter
from panfw.sensors import Sensor

from .base import (
    ClassicalModel,
    apply_match,
    columns,
    cov_hw,
    dn_factor,
    gather_segments,
    haze_values,
    kmeans_fit,
    kmeans_labels,
    kmeans_segments,
    lstsq,
    match_coefs,
    match_pan,
    mean_hw,
    round_up,
    scaled_eps,
    segment_gains,
    segment_table,
    upsample23,
    var_hw,
)


class _GLP(ClassicalModel):
    """MTF-GLP low-pass: GLP_k(X) = interp23tap(dec(MTF_k(X))), X one image per band (or the PAN)."""

    ratio_rule = "pow2"

    @property
    def scene_halo(self) -> int:
        # the 41-tap MTF filter (20 px), the 23-tap interpolator's passes (11 px on each finer grid:
        # 11·(r − 1) PAN px in all) and the decimation phase (2r)
        return round_up(20 + 11 * (self.ratio - 1) + 2 * self.ratio, self.ratio)

    def glp(self, x: Tensor, bands: int) -> Tensor:
        x = x.expand(-1, bands, -1, -1)
        low = mtf_filter(x, self.gains(bands), self.ratio)
        return upsample23(decimate(low, self.ratio), self.ratio, mirror=self.in_scene)

    def check_inputs(self, lms: Tensor, pan: Tensor, ms: Tensor | None) -> None:
        super().check_inputs(lms, pan, ms)
        r = self.ratio
        if r & (r - 1) or lms.shape[-2] % r or lms.shape[-1] % r:
            raise DataError(f"{type(self).__name__}: interp23tap needs a power-of-two ratio dividing "
                            f"H and W; got ratio {r} for {tuple(lms.shape[-2:])}")


class AWLP(ClassicalModel):
    """AWLP: additive wavelet luminance proportional (toolbox ``AWLP``).

    P_k = PAN matched to M_k with s = std(bic↑(bic↓(P))); F_k = M_k + M_k/mean_c(M)·(P_k − LPW(P_k)),
    LPW the toolbox's undecimated-wavelet low-pass (``panfw.ops.lowpass_wavelet``). The eps of the
    ratio is scale-aware.
    """

    @property
    def scene_halo(self) -> int:
        levels = max(1, math.ceil(math.log2(self.ratio)))
        return round_up(2 * (2 ** levels - 1) + 2, self.ratio)  # the à-trous B3 spline's reach

    def statistics(self, lms: Tensor, pan: Tensor, ms: Tensor | None) -> dict[str, Tensor]:
        pan_lr = imresize(imresize(pan, scale=1.0 / self.ratio), scale=float(self.ratio))
        return {"match": match_coefs(pan, lms, ref_for_std=pan_lr), "eps": scaled_eps(lms)}

    def apply(self, lms: Tensor, pan: Tensor, ms: Tensor | None, stats: dict[str, Tensor]) -> Tensor:
        pan_k = apply_match(pan, stats["match"])
        ratio = lms / (lms.mean(dim=1, keepdim=True) + stats["eps"])
        return lms + ratio * (pan_k - lowpass_wavelet(pan_k, self.ratio))


class MTFGLP(_GLP):
    """MTF-GLP: F_k = M_k + P_k − GLP_k(P_k), P_k the PAN matched to M_k with s = std(LPG(P))."""

    def statistics(self, lms: Tensor, pan: Tensor, ms: Tensor | None) -> dict[str, Tensor]:
        return {"match": match_coefs(pan, lms, ref_for_std=lowpass_gauss(pan, self.ratio))}

    def apply(self, lms: Tensor, pan: Tensor, ms: Tensor | None, stats: dict[str, Tensor]) -> Tensor:
        pan_k = apply_match(pan, stats["match"])
        return lms + pan_k - self.glp(pan_k, lms.shape[1])


class MTFGLPHPM(_GLP):
    """MTF-GLP-HPM: F_k = M_k·P_k/(GLP_k(P_k) + eps), P_k as in MTF-GLP; eps scale-aware."""

    def statistics(self, lms: Tensor, pan: Tensor, ms: Tensor | None) -> dict[str, Tensor]:
        return {"match": match_coefs(pan, lms, ref_for_std=lowpass_gauss(pan, self.ratio)),
                "eps": scaled_eps(pan)}

    def apply(self, lms: Tensor, pan: Tensor, ms: Tensor | None, stats: dict[str, Tensor]) -> Tensor:
        pan_k = apply_match(pan, stats["match"])
        return lms * (pan_k / (self.glp(pan_k, lms.shape[1]) + stats["eps"]))


class MTFGLPHPMH(_GLP):
    """MTF-GLP-HPM-H: HPM with haze correction (toolbox ``MTF_GLP_HPM_Haze_min``).

    Haze m_k as the toolbox: 4 bands are taken as B, G, R, NIR and get (0.95, 0.45, 0.40, 0.05) ×
    the 1st percentile (MATLAB ``prctile``); any other band count the band minimum (so an 8-band
    image gets minima, not the 4-band rule on its B, G, R, NIR). PAN haze p_h = [1, m]·w with
    w = LS([1, M]; LPG(P)). F_k = (M_k − m_k)·(P − p_h)/(L_k − p_h + eps) + m_k with the raw PAN
    (no matching, no clipping). ``decimation`` True (the toolbox benchmark's flag 1):
    L_k = GLP_k(P); False: L_k = MTF_k(P), no decimation.
    """

    def __init__(self, bands: int = 4, sensor: str | Sensor = "generic", ratio: int = 4,
                 decimation: bool = True, floor_ms: bool = False) -> None:
        super().__init__(bands, sensor, ratio, floor_ms=floor_ms)
        self.decimation = bool(decimation)

    def statistics(self, lms: Tensor, pan: Tensor, ms: Tensor | None) -> dict[str, Tensor]:
        haze = haze_values(lms)  # (B, C, 1, 1)
        w = lstsq(columns(lms, intercept="first"), columns(lowpass_gauss(pan, self.ratio)))  # (B, 1+C, 1)
        pan_haze = (w[:, :1, 0] + (w[:, 1:, 0] * haze.flatten(1)).sum(1, keepdim=True)).view(-1, 1, 1, 1)
        return {"haze": haze, "pan_haze": pan_haze, "eps": scaled_eps(pan)}

    def apply(self, lms: Tensor, pan: Tensor, ms: Tensor | None, stats: dict[str, Tensor]) -> Tensor:
        c = lms.shape[1]
        haze, pan_haze = stats["haze"], stats["pan_haze"]
        if self.decimation:
            low = self.glp(pan, c)
        else:
            low = mtf_filter(pan.expand(-1, c, -1, -1), self.gains(c), self.ratio)
        return (lms - haze) * ((pan - pan_haze) / (low - pan_haze + stats["eps"])) + haze


class MTFGLPHPMR(_GLP):
    """MTF-GLP-HPM-R: regression-based HPM (toolbox ``MTF_GLP_HPM_R``, global version).

    L_k = GLP_k(P) (raw PAN); g = cov(M_k, L_k)/var(L_k); c_k = mean(M_k)/g − mean(P);
    F_k = M_k·(P + c_k)/(L_k + c_k + eps), eps scale-aware.
    """

    def statistics(self, lms: Tensor, pan: Tensor, ms: Tensor | None) -> dict[str, Tensor]:
        low = self.glp(pan, lms.shape[1])
        g = cov_hw(lms, low) / var_hw(low)
        return {"cb": mean_hw(lms) / g - mean_hw(pan), "eps": scaled_eps(pan)}

    def apply(self, lms: Tensor, pan: Tensor, ms: Tensor | None, stats: dict[str, Tensor]) -> Tensor:
        low = self.glp(pan, lms.shape[1])
        cb = stats["cb"]
        return lms * (pan + cb) / (low + cb + stats["eps"])


class MTFGLPFS(_GLP):
    """MTF-GLP-FS: full-scale regression gains (toolbox ``MTF_GLP_FS``).

    L_k = GLP_k(P); g_k = cov(M_k, P)/cov(L_k, P); F_k = M_k + g_k·(P − L_k).
    """

    def statistics(self, lms: Tensor, pan: Tensor, ms: Tensor | None) -> dict[str, Tensor]:
        low = self.glp(pan, lms.shape[1])
        return {"g": cov_hw(lms, pan) / cov_hw(low, pan)}

    def apply(self, lms: Tensor, pan: Tensor, ms: Tensor | None, stats: dict[str, Tensor]) -> Tensor:
        return lms + stats["g"] * (pan - self.glp(pan, lms.shape[1]))


class MTFGLPCBD(_GLP):
    """MTF-GLP-CBD: GLP with GS2 (regression) gains (toolbox ``GS2_GLP``).

    L_k = GLP_k(P); g_k = cov(L_k, M_k)/var(L_k); F_k = M_k + g_k·(P − L_k).
    """

    def statistics(self, lms: Tensor, pan: Tensor, ms: Tensor | None) -> dict[str, Tensor]:
        low = self.glp(pan, lms.shape[1])
        return {"g": cov_hw(low, lms) / var_hw(low)}

    def apply(self, lms: Tensor, pan: Tensor, ms: Tensor | None, stats: dict[str, Tensor]) -> Tensor:
        return lms + stats["g"] * (pan - self.glp(pan, lms.shape[1]))


class CMTFGLPCBD(_GLP):
    """C-MTF-GLP-CBD: MTF-GLP-CBD with gains per k-means segment (toolbox ``GS_Segm`` on ``GS2GLP``).

    g_{k,s} = cov(L_k, M_k)/var(L_k) over the pixels of segment s, L_k = GLP_k(P);
    F_k = M_k + g_{k,S}·(P − L_k). ``segments``: a segment map (H, W), (1, H, W) or (B, 1, H, W)
    with any label values, or None to cluster the max-normalised ``lms`` pixels into
    ``n_segments`` groups by k-means from ``seed`` (the toolbox's k-means start is random, so its
    partition cannot be reproduced). With 4 bands the toolbox itself stops with an error
    (``genMTF(4, 'WV3', 4)`` returns all eight WV3 kernels); panfw uses the first C gains, as
    every other MTF method does, so any band count works. In a scene the k-means centres and the
    per-segment gains are the scene's.
    """

    def __init__(self, bands: int = 4, sensor: str | Sensor = "generic", ratio: int = 4,
                 segments: Tensor | None = None, n_segments: int = 5, seed: int = 0) -> None:
        super().__init__(bands, sensor, ratio)
        self.segments = None if segments is None else torch.as_tensor(segments)
        self.n_segments = int(n_segments)
        self.seed = int(seed)

    @property
    def tile_exact(self) -> bool | str:  # type: ignore[override]
        return True if self.segments is None else "a given segments= map is for one image, not for tiles"

    def labels(self, lms: Tensor) -> Tensor:
        if self.segments is not None:
            return self.segments
        return kmeans_segments(lms, self.n_segments, seed=self.seed)

    def statistics(self, lms: Tensor, pan: Tensor, ms: Tensor | None) -> dict[str, Tensor]:
        if self.segments is not None:
            return {}
        low = self.glp(pan, lms.shape[1])
        centres, scale = kmeans_fit(lms, self.n_segments, seed=self.seed)
        labels = kmeans_labels(lms, centres, scale)
        table = segment_table(low, lms, labels.reshape(lms.shape[0], 1, -1), self.n_segments)
        return {"centres": centres, "scale": scale, "gains": table}

    def apply(self, lms: Tensor, pan: Tensor, ms: Tensor | None, stats: dict[str, Tensor]) -> Tensor:
        low = self.glp(pan, lms.shape[1])
        if self.segments is not None:
            g = segment_gains(low, lms, self.segments)
        else:
            g = gather_segments(stats["gains"], kmeans_labels(lms, stats["centres"], stats["scale"]))
        return lms + g * (pan - low)


# --- MF: morphological half-gradient pyramid -------------------------------------------------------

def _cross_extreme(x: Tensor, fn) -> Tensor:
    """max / min over the flat 3x3 cross (centre and 4 neighbours), out-of-image pixels ignored."""
    fill = -math.inf if fn is torch.maximum else math.inf
    p = F.pad(x, (1, 1, 1, 1), value=fill)
    out = fn(x, p[..., :-2, 1:-1])
    out = fn(out, p[..., 2:, 1:-1])
    out = fn(out, p[..., 1:-1, :-2])
    return fn(out, p[..., 1:-1, 2:])


def dilate_cross(x: Tensor) -> Tensor:
    """Grey dilation with the flat 3x3 cross (MATLAB ``imdilate(x, [0 1 0; 1 1 1; 0 1 0])``)."""
    return _cross_extreme(x, torch.maximum)


def erode_cross(x: Tensor) -> Tensor:
    """Grey erosion with the flat 3x3 cross (MATLAB ``imerode``), out-of-image pixels ignored."""
    return _cross_extreme(x, torch.minimum)


class MF(ClassicalModel):
    """MF: morphological half-gradient pyramid, HPM injection (toolbox ``MF_HG_Pansharpen``).

    P_k = PAN matched to M_k (s = std(P)). ceil(log2 r) + 1 levels of T(X) = (dilate + erode)/2
    with a 3x3 cross, decimated by 2 (0-based rows/cols 1, 3, … first, then 0, 2, …); the last
    level is brought back by successive bilinear ``imresize`` to each finer level's size.
    F_k = M_k·P_k/(P_L,k + eps), eps scale-aware. Difference from the toolbox, on purpose: the
    toolbox records each level's size as (rows, rows), which only matters for non-square images;
    panfw uses (rows, cols).
    """

    @property
    def tile_exact(self) -> bool | str:  # type: ignore[override]
        if self.ratio & (self.ratio - 1):
            return (f"its pyramid decimates by 2 per level, which tiles on a ratio-{self.ratio} grid do not "
                    "keep in phase")
        return True

    @property
    def scene_halo(self) -> int:
        return 4 * self.ratio  # cross 3x3 per level, bilinear back up: ~2 px per level and grid

    def _low(self, pan_k: Tensor) -> Tensor:
        levels = math.ceil(math.log2(self.ratio)) + 1 if self.ratio > 1 else 1
        sizes = [tuple(pan_k.shape[-2:])]
        x = pan_k
        for lev in range(1, levels):
            d, e = dilate_cross(x), erode_cross(x)
            smooth = x - 0.5 * ((x - e) - (d - x))  # the toolbox's half-gradient form of (d + e)/2
            x = smooth[..., 1::2, 1::2] if lev == 1 else smooth[..., 0::2, 0::2]
            sizes.append(tuple(x.shape[-2:]))
        low = x
        for size in reversed(sizes[:-1]):
            low = imresize(low, size=size, method="bilinear")
        return low

    def statistics(self, lms: Tensor, pan: Tensor, ms: Tensor | None) -> dict[str, Tensor]:
        coefs = match_coefs(pan, lms)
        low = self._low(apply_match(pan, coefs))
        finite = torch.isfinite(low).flatten(1).all(dim=1).view(-1, 1, 1, 1)
        return {"match": coefs, "finite": finite, "eps": scaled_eps(pan)}

    def apply(self, lms: Tensor, pan: Tensor, ms: Tensor | None, stats: dict[str, Tensor]) -> Tensor:
        pan_k = apply_match(pan, stats["match"])
        low = torch.where(stats["finite"], self._low(pan_k), pan_k)  # the toolbox falls back to P_k
        return lms * (pan_k / (low + stats["eps"]))


# --- SR-D: sparse representation of injected details ----------------------------------------------

def _patch_starts(n: int, size: int, overlap: int) -> list[int]:
    """Top-left offsets of the toolbox's patches along one axis (last one moved back to fit)."""
    step = size - overlap
    count = math.ceil((n - overlap) / step)
    starts = [i * step for i in range(count)]
    if (n - overlap) % step:
        starts[-1] -= step - (n - overlap) % step
    return starts


def _patch_index(h: int, w: int, size: int, overlap: int, scale: int, device) -> Tensor:
    """(N, C-order flat pixel index) of every patch, patches row by row, pixels column by column
    (MATLAB ``X(:)``), on the grid scaled by ``scale`` (patch side size·scale)."""
    rs = torch.tensor(_patch_starts(h, size, overlap), device=device) * scale
    cs = torch.tensor(_patch_starts(w, size, overlap), device=device) * scale
    side = torch.arange(size * scale, device=device)
    rows = (rs[:, None] + side)[:, None, None, :]  # (nr, 1, 1, side): rows vary fastest
    cols = (cs[:, None] + side)[None, :, :, None]  # (1, nc, side, 1)
    full_w = w * scale
    return (rows * full_w + cols).reshape(len(rs) * len(cs), -1)


class SRD(ClassicalModel):
    """SR-D: sparse representation of the injected details (toolbox ``CS``, Vicinanza et al. 2015).

    P_k = PAN matched to M_k (s = std(P)); HR details D_k = P_k − bic↑(dec(MTF_k(P_k))); LR
    dictionary d_k = dec(MTF_k(D_k)); LR MS details y_k = dec(M_k − MTF_k(M_k)). Patches of
    ``patch`` x ``patch`` LR pixels overlapping by ``overlap`` (HR patches ratio times larger) are
    atoms; each patch is coded by a joint-support OMP over all patches (own atom first, at most
    ``n_atoms``; per band a = (BᵀB)⁻¹Bᵀy where det(BᵀB) > ``det_threshold`` DN^(2j), else 0), and the
    HR details coded with the same coefficients are averaged over overlaps and added to M.

    The det threshold is in the sensor's digital numbers (the toolbox runs on DN): inputs are
    converted with ``base.dn_factor`` (``input_scale`` DN per input unit; None detects [0, 1]
    images and uses the sensor's maximum DN), so [0, 1] and DN inputs give the same image. The
    OMP runs batched over patches in chunks of ``chunk`` patches (memory ~ chunk × patches).
    """

    def __init__(self, bands: int = 4, sensor: str | Sensor = "generic", ratio: int = 4,
                 patch: int = 7, overlap: int = 4, n_atoms: int = 10, det_threshold: float = 0.1,
                 input_scale: float | None = None, chunk: int = 1024) -> None:
        super().__init__(bands, sensor, ratio)
        if not 0 <= overlap < patch:
            raise DataError(f"SR-D: overlap must be in [0, patch) = [0, {patch}), got {overlap}")
        if n_atoms < 1:
            raise DataError(f"SR-D: n_atoms must be at least 1, got {n_atoms}")
        self.patch, self.overlap, self.n_atoms = int(patch), int(overlap), int(n_atoms)
        self.det_threshold = float(det_threshold)
        self.input_scale = None if input_scale is None else float(input_scale)
        self.chunk = max(1, int(chunk))

    tile_exact = ("its dictionary is made of every patch of the image, so a tile is coded with its own "
                  "patches")

    def extra_repr(self) -> str:
        return (f"{super().extra_repr()}, patch={self.patch}, overlap={self.overlap}, "
                f"n_atoms={self.n_atoms}")

    def check_inputs(self, lms: Tensor, pan: Tensor, ms: Tensor | None) -> None:
        super().check_inputs(lms, pan, ms)
        h, w = lms.shape[-2:]
        if h % self.ratio or w % self.ratio or min(h, w) // self.ratio < self.patch:
            raise DataError(f"SR-D: the image {h}x{w} must be divisible by the ratio {self.ratio} and "
                            f"at least {self.patch * self.ratio} pixels a side (patch {self.patch})")

    def statistics(self, lms: Tensor, pan: Tensor, ms: Tensor | None) -> dict[str, Tensor]:
        return {"dn": dn_factor(pan, self.sensor, self.input_scale)}

    def apply(self, lms: Tensor, pan: Tensor, ms: Tensor | None, stats: dict[str, Tensor]) -> Tensor:
        k = stats["dn"]
        return self._fuse_dn(lms * k, pan * k) / k

    def _fuse_dn(self, lms: Tensor, pan: Tensor) -> Tensor:
        b, c, h, w = lms.shape
        r = self.ratio
        gains = self.gains(c)
        pan_k = match_pan(pan, lms)
        pan_low = imresize(decimate(mtf_filter(pan_k, gains, r), r), scale=float(r))
        det_hr = pan_k - pan_low  # D
        det_lr = decimate(mtf_filter(det_hr, gains, r), r)  # d
        ms_det = decimate(lms - mtf_filter(lms, gains, r), r)  # y
        hl, wl = h // r, w // r
        idx_l = _patch_index(hl, wl, self.patch, self.overlap, 1, lms.device)  # (N, p²)
        idx_h = _patch_index(hl, wl, self.patch, self.overlap, r, lms.device)  # (N, (p r)²)
        n = idx_l.shape[0]

        def patches(x: Tensor, idx: Tensor) -> Tensor:  # (B, C, H, W) -> (B, N, C, P)
            flat = x.flatten(2)[:, :, idx]  # (B, C, N, P)
            return flat.transpose(1, 2)

        dl = patches(det_lr, idx_l)  # atoms (B, N, C, p²)
        hr_flat = det_hr.flatten(2)  # HR atoms are gathered from D on demand (no (N, C, (p r)²) copy)
        y = patches(ms_det, idx_l)
        acc = torch.zeros(b, c, h * w, dtype=lms.dtype, device=lms.device)
        for start in range(0, n, self.chunk):
            sel = torch.arange(start, min(n, start + self.chunk), device=lms.device)
            support, coef = self._omp(dl, y[:, sel], sel)  # (B, n, j), (B, n, C, j)
            bi = torch.arange(b, device=lms.device).view(b, 1, 1, 1)
            atoms = hr_flat[bi, :, idx_h[support]]  # (B, n, j, P, C)
            rec = torch.einsum("bnjpc,bncj->bcnp", atoms, coef)
            acc.index_add_(2, idx_h[sel].flatten(), rec.reshape(b, c, -1))
        count = torch.zeros(h * w, dtype=lms.dtype, device=lms.device)
        count.index_add_(0, idx_h.flatten(), torch.ones_like(idx_h.flatten(), dtype=lms.dtype))
        return lms + (acc / count).view(b, c, h, w)

    def _omp(self, dl: Tensor, y: Tensor, own: Tensor) -> tuple[Tensor, Tensor]:
        """Joint-support OMP of the toolbox for a chunk of patches, batched.

        dl (B, N, C, P) all atoms; y (B, n, C, P) the chunk's signals; own (n,) their own atoms.
        Returns the support (B, n, j) and per-band coefficients (B, n, C, j); a patch whose
        residual reaches exactly 0 stops growing (its later entries repeat an atom with
        coefficient 0).
        """
        b, n_all, c, p = dl.shape
        n = y.shape[1]
        bi = torch.arange(b, device=dl.device)[:, None, None]
        flat_atoms = dl.reshape(b, n_all, c * p)
        support = own.view(1, n, 1).expand(b, n, 1)
        active = torch.ones(b, n, dtype=torch.bool, device=dl.device)
        coef = res = None
        for j in range(1, self.n_atoms + 1):
            if j > 1:
                proj = torch.einsum("bap,bnp->bna", flat_atoms, res.reshape(b, n, c * p))
                best = proj.abs_().argmax(dim=-1, keepdim=True)  # first maximum, as MATLAB's max
                best = torch.where(active[..., None], best, support[..., -1:])
                support = torch.cat([support, best], dim=-1)
            atoms = dl[bi, support]  # (B, n, j, C, P)
            bmat = atoms.permute(0, 1, 3, 4, 2)  # (B, n, C, P, j)
            gram = bmat.transpose(-2, -1) @ bmat  # (B, n, C, j, j)
            ok = torch.linalg.det(gram) > self.det_threshold
            eye = torch.eye(j, dtype=gram.dtype, device=gram.device)
            safe = torch.where(ok[..., None, None], gram, eye)
            a = (torch.linalg.solve(safe, bmat.transpose(-2, -1)) @ y.unsqueeze(-1))[..., 0]
            a = torch.where(ok[..., None], a, torch.zeros_like(a))  # (B, n, C, j)
            if coef is not None:  # a stopped patch keeps its coefficients (its new atom gets 0)
                kept = torch.cat([coef, torch.zeros_like(coef[..., :1])], dim=-1)
                a = torch.where(active[..., None, None], a, kept)
            coef = a
            res = y - (bmat @ a.unsqueeze(-1))[..., 0]
            active = active & ((res * res).sum(dim=(-2, -1)) > 0)
            if not bool(active.any()):
                break
        return support, coef


# --- registered factories ----------------------------------------------------------------------

def awlp(bands: int = 4, sensor: str = "generic", ratio: int = 4, floor_ms: bool = False) -> AWLP:
    """AWLP: additive wavelet luminance proportional (toolbox AWLP)."""
    return AWLP(bands, sensor, ratio, floor_ms=floor_ms)


def mtf_glp(bands: int = 4, sensor: str = "generic", ratio: int = 4) -> MTFGLP:
    """MTF-GLP: additive injection of MTF-matched PAN details (toolbox MTF_GLP)."""
    return MTFGLP(bands, sensor, ratio)


def mtf_glp_fs(bands: int = 4, sensor: str = "generic", ratio: int = 4) -> MTFGLPFS:
    """MTF-GLP-FS: MTF-GLP with full-scale regression gains (toolbox MTF_GLP_FS)."""
    return MTFGLPFS(bands, sensor, ratio)


def mtf_glp_hpm(bands: int = 4, sensor: str = "generic", ratio: int = 4, floor_ms: bool = False) -> MTFGLPHPM:
    """MTF-GLP-HPM: MTF-GLP with high-pass modulation (toolbox MTF_GLP_HPM)."""
    return MTFGLPHPM(bands, sensor, ratio, floor_ms=floor_ms)


def mtf_glp_hpm_h(bands: int = 4, sensor: str = "generic", ratio: int = 4,
                  decimation: bool = True, floor_ms: bool = False) -> MTFGLPHPMH:
    """MTF-GLP-HPM-H: haze-corrected MTF-GLP-HPM (toolbox MTF_GLP_HPM_Haze_min)."""
    return MTFGLPHPMH(bands, sensor, ratio, decimation=decimation, floor_ms=floor_ms)


def mtf_glp_hpm_r(bands: int = 4, sensor: str = "generic", ratio: int = 4, floor_ms: bool = False) -> MTFGLPHPMR:
    """MTF-GLP-HPM-R: regression-based high-pass modulation (toolbox MTF_GLP_HPM_R)."""
    return MTFGLPHPMR(bands, sensor, ratio, floor_ms=floor_ms)


def mtf_glp_cbd(bands: int = 4, sensor: str = "generic", ratio: int = 4) -> MTFGLPCBD:
    """MTF-GLP-CBD: MTF-GLP with regression (GS2) gains (toolbox GS2_GLP)."""
    return MTFGLPCBD(bands, sensor, ratio)


def c_mtf_glp_cbd(bands: int = 4, sensor: str = "generic", ratio: int = 4, segments=None,
                  n_segments: int = 5, seed: int = 0) -> CMTFGLPCBD:
    """C-MTF-GLP-CBD: MTF-GLP-CBD with gains per k-means segment (toolbox GS_Segm on GS2GLP)."""
    return CMTFGLPCBD(bands, sensor, ratio, segments=segments, n_segments=n_segments, seed=seed)


def mf(bands: int = 4, sensor: str = "generic", ratio: int = 4, floor_ms: bool = False) -> MF:
    """MF: morphological half-gradient pyramid with HPM injection (toolbox MF_HG_Pansharpen)."""
    return MF(bands, sensor, ratio, floor_ms=floor_ms)


def sr_d(bands: int = 4, sensor: str = "generic", ratio: int = 4, patch: int = 7, overlap: int = 4,
         n_atoms: int = 10, det_threshold: float = 0.1, input_scale: float | None = None,
         chunk: int = 1024, bit_depth: int | None = None) -> SRD:
    """SR-D: sparse representation of injected details, joint-support OMP (toolbox CS)."""
    if input_scale is None and bit_depth:  # [0, 1] inputs of bit_depth-bit data (fuse --bits)
        input_scale = float(2 ** int(bit_depth) - 1)
    return SRD(bands, sensor, ratio, patch=patch, overlap=overlap, n_atoms=n_atoms,
               det_threshold=det_threshold, input_scale=input_scale, chunk=chunk)
