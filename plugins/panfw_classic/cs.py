"""Component-substitution methods of Vivone's toolbox: BT-H, GS, GSA, C-GSA, BDSD, BDSD-PC, PRACS.

Each class computes what the toolbox computes (README §7 of the test vectors, docs/models.md
"Classical methods"); the registered factories at the end take ``bands``, ``sensor``, ``ratio`` and
the method's options. Images are (B, C, H, W) float64 inside; statistics are per image.
"""

from __future__ import annotations

import itertools

import torch
from torch import Tensor

from panfw.errors import DataError
from panfw.ops import decimate, imresize, lowpass_gauss, lowpass_wavelet, mtf_filter, mtf_filter_pan
from panfw.sensors import Sensor

from .base import (
    ClassicalModel,
    columns,
    combine,
    corr2,
    cov_hw,
    haze_values,
    kmeans_segments,
    lstsq,
    match_pan,
    mean_hw,
    scaled_eps,
    segment_gains,
    std_hw,
    var_hw,
)


def _restore_means(fused: Tensor, ms_up: Tensor) -> Tensor:
    """Shift each fused band to the mean of the matching upsampled MS band (GS, GSA)."""
    return fused - mean_hw(fused) + mean_hw(ms_up)


class BTH(ClassicalModel):
    """BT-H: Brovey transform with haze correction and regression intensity (``BroveyRegHazeMin``)."""

    def fuse(self, lms: Tensor, pan: Tensor, ms: Tensor | None) -> Tensor:
        haze = haze_values(lms)
        pan_lp = lowpass_gauss(pan, self.ratio)
        h = lstsq(columns(lms), columns(pan_lp))  # no intercept, on the hazy bands
        intensity = combine(h, lms - haze)
        pan_eq = match_pan(pan, intensity, ref_for_std=pan_lp, ref_for_mean=pan_lp)
        ratio = pan_eq / (intensity + scaled_eps(lms))
        return (lms - haze).clamp_min(0) * ratio + haze


class GS(ClassicalModel):
    """GS: Gram-Schmidt spectral sharpening, intensity = band mean (toolbox ``GS``)."""

    def fuse(self, lms: Tensor, pan: Tensor, ms: Tensor | None) -> Tensor:
        centred = lms - mean_hw(lms)
        i0 = lms.mean(dim=1, keepdim=True)
        i0 = i0 - mean_hw(i0)
        pan_eq = match_pan(pan, i0)
        g = cov_hw(i0, lms) / var_hw(i0)
        return _restore_means(centred + g * (pan_eq - i0), lms)


class GSA(ClassicalModel):
    """GSA: Gram-Schmidt adaptive, intensity weights fitted at low resolution (toolbox ``GSA``)."""

    needs_ms = True

    def fuse(self, lms: Tensor, pan: Tensor, ms: Tensor | None) -> Tensor:
        centred = lms - mean_hw(lms)
        ms0 = ms - mean_hw(ms)
        pan0 = pan - mean_hw(pan)
        pan_lr = decimate(lowpass_wavelet(pan0, self.ratio), self.ratio)
        w = lstsq(columns(ms0, intercept="last"), columns(pan_lr))
        i = combine(w, centred, intercept="last")
        i0 = i - mean_hw(i)
        g = cov_hw(i0, centred) / var_hw(i0)
        return _restore_means(centred + g * (pan0 - i0), lms)


class CGSA(ClassicalModel):
    """C-GSA: context-based GSA, injection gains per k-means segment (toolbox ``GS_Segm``).

    ``segments``: a segment map (H, W), (1, H, W) or (B, 1, H, W) with any label values, or None to
    cluster the max-normalised ``lms`` pixels into ``n_segments`` groups by k-means from ``seed``
    (the toolbox's k-means start is random, so its partition cannot be reproduced).
    """

    needs_ms = True

    def __init__(self, bands: int = 4, sensor: str | Sensor = "generic", ratio: int = 4,
                 segments: Tensor | None = None, n_segments: int = 5, seed: int = 0) -> None:
        super().__init__(bands, sensor, ratio)
        self.segments = None if segments is None else torch.as_tensor(segments)
        self.n_segments = int(n_segments)
        self.seed = int(seed)

    def labels(self, lms: Tensor) -> Tensor:
        if self.segments is not None:
            return self.segments
        return kmeans_segments(lms, self.n_segments, seed=self.seed)

    def fuse(self, lms: Tensor, pan: Tensor, ms: Tensor | None) -> Tensor:
        pan_lr = decimate(lowpass_gauss(pan, self.ratio), self.ratio)
        w = lstsq(columns(ms, intercept="last"), columns(pan_lr))
        i_low = combine(w, lms, intercept="last")
        g = segment_gains(i_low, lms, self.labels(lms))
        return lms + g * (pan - i_low)


class BDSD(ClassicalModel):
    """BDSD: band-dependent spatial detail, coefficients by least squares at low resolution.

    ``block`` None (default) estimates one set of coefficients for the whole image, as the
    toolbox's demos call it; an integer S (a multiple of the ratio dividing H and W) estimates
    one set per S x S block, as ``BDSD(I_MS, I_PAN, ratio, S, sensor)``.
    """

    constrained = False

    def __init__(self, bands: int = 4, sensor: str | Sensor = "generic", ratio: int = 4,
                 block: int | None = None) -> None:
        super().__init__(bands, sensor, ratio)
        self.block = None if block is None else int(block)

    def lowres(self, lms: Tensor, pan: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """(G, G_L, P_L): bicubic-reduced MS, its MTF low-pass, the MTF-reduced PAN."""
        g = imresize(lms, scale=1.0 / self.ratio)
        g_low = mtf_filter(g, self.gains(lms.shape[1]), self.ratio)
        p_low = decimate(mtf_filter_pan(pan, self.sensor.mtf_pan, self.ratio), self.ratio)
        return g, g_low, p_low

    def gammas(self, g: Tensor, g_low: Tensor, p_low: Tensor) -> Tensor:
        """Coefficients (B, 1 + C, C): row 0 the PAN, rows 1..C the MS bands; column k band k."""
        a = columns(g_low, p_low)
        gam = torch.linalg.inv(a.transpose(1, 2) @ a) @ (a.transpose(1, 2) @ columns(g - g_low))
        return torch.cat([gam[:, -1:], gam[:, :-1]], dim=1)  # toolbox columns: [G_L..., P_L]

    def fuse(self, lms: Tensor, pan: Tensor, ms: Tensor | None) -> Tensor:
        b, c, h, w = lms.shape
        g, g_low, p_low = self.lowres(lms, pan)
        s = self.block
        if s is None or (s >= h and s >= w):
            gam = self.gammas(g, g_low, p_low)
            return lms + combine(gam, pan, lms)
        if s % self.ratio or h % s or w % s:
            raise DataError(f"{type(self).__name__}: block {s} must be a multiple of the ratio "
                            f"{self.ratio} dividing the image size {h}x{w}")
        nb_h, nb_w, sl = h // s, w // s, s // self.ratio

        def blocks(x: Tensor, size: int) -> Tensor:  # (B, C, nh*size, nw*size) -> (B*nh*nw, C, size, size)
            bc = x.shape[1]
            x = x.reshape(b, bc, nb_h, size, nb_w, size).permute(0, 2, 4, 1, 3, 5)
            return x.reshape(b * nb_h * nb_w, bc, size, size)

        gam = self.gammas(blocks(g, sl), blocks(g_low, sl), blocks(p_low, sl))
        fused = blocks(lms, s) + combine(gam, blocks(pan, s), blocks(lms, s))
        fused = fused.reshape(b, nb_h, nb_w, c, s, s).permute(0, 3, 1, 4, 2, 5)
        return fused.reshape(b, c, h, w)


class BDSDPC(BDSD):
    """BDSD-PC: BDSD with physical constraints (PAN coefficient >= 0, MS coefficients <= 0)."""

    def __init__(self, bands: int = 4, sensor: str | Sensor = "generic", ratio: int = 4) -> None:
        super().__init__(bands, sensor, ratio, block=None)

    def gammas(self, g: Tensor, g_low: Tensor, p_low: Tensor) -> Tensor:
        b, c = g.shape[:2]
        a = columns(p_low, g_low)  # (B, N, 1 + C): the toolbox's order [P_L, G_L...]
        y = columns(g - g_low)  # (B, N, C)
        signs = torch.ones(c + 1, dtype=a.dtype, device=a.device)
        signs[1:] = -1.0  # x = signs * gamma >= 0
        a = a * signs
        # one problem per (image, band): min ||a x - y_k|| subject to x >= 0
        a_rep = a.unsqueeze(1).expand(b, c, *a.shape[1:]).reshape(b * c, *a.shape[1:])
        y_rep = y.transpose(1, 2).reshape(b * c, -1, 1)
        x = nnls(a_rep, y_rep)
        return (x.reshape(b, c, c + 1) * signs).transpose(1, 2)


def nnls(a: Tensor, y: Tensor, max_enumerate: int = 12) -> Tensor:
    """Exact non-negative least squares min ||a x - y||, x >= 0, batched: a (B, N, K), y (B, N, 1).

    The problem is first reduced by a QR of ``a`` (so the conditioning is that of ``a``, not of
    aᵀa) to min ||R x - z||. For K <= ``max_enumerate`` every support S is solved by least squares
    (batched over the problems) and the feasible candidate with the smallest residual is the
    optimum, since the optimum is the unconstrained solution on its own support. Larger K use the
    Lawson-Hanson active-set algorithm per problem. Returns x (B, K).
    """
    q, r = torch.linalg.qr(a, mode="reduced")
    z = q.transpose(1, 2) @ y  # (B, K, 1)
    bsz, k = r.shape[0], r.shape[-1]
    if k > max_enumerate:
        return torch.stack([_lawson_hanson(r[i], z[i, :, 0]) for i in range(bsz)])
    best = torch.zeros(bsz, k, dtype=a.dtype, device=a.device)
    best_res = (z[:, :, 0] ** 2).sum(-1)  # x = 0 is always feasible
    for size in range(1, k + 1):  # all supports of one size in one batched solve
        supports = torch.tensor(list(itertools.combinations(range(k), size)), device=a.device)
        n_sup = supports.shape[0]
        rs = r[:, :, supports].permute(2, 0, 1, 3)  # (n_sup, B, K, size)
        zs = z.expand(n_sup, *z.shape)
        xs = lstsq(rs.reshape(-1, k, size), zs.reshape(-1, k, 1)).reshape(n_sup, bsz, size, 1)
        res = ((zs - rs @ xs) ** 2).sum(dim=(-2, -1))  # (n_sup, B)
        res = torch.where((xs >= 0).all(dim=-2)[..., 0], res, torch.inf)
        j = res.argmin(dim=0)  # best feasible support of this size, per problem
        res_j = res.gather(0, j[None])[0]
        better = res_j < best_res
        if better.any():
            cand = torch.zeros_like(best)
            cand.scatter_(1, supports[j], xs[j, torch.arange(bsz, device=a.device), :, 0])
            best = torch.where(better[:, None], cand, best)
            best_res = torch.where(better, res_j, best_res)
    return best


def _lawson_hanson(r: Tensor, z: Tensor, max_iter: int | None = None) -> Tensor:
    """Lawson-Hanson NNLS for one small problem min ||r x - z||, x >= 0."""
    k = r.shape[1]
    x = torch.zeros(k, dtype=r.dtype, device=r.device)
    passive = torch.zeros(k, dtype=torch.bool, device=r.device)
    tol = 10 * torch.finfo(r.dtype).eps * torch.linalg.matrix_norm(r, 1) * max(r.shape)
    for _ in range(max_iter or 3 * k):
        grad = r.T @ (z - r @ x)
        grad[passive] = -torch.inf
        if passive.all() or grad.max() <= tol:
            break
        passive[int(grad.argmax())] = True
        while True:
            idx = passive.nonzero()[:, 0]
            s = torch.zeros_like(x)
            s[idx] = torch.linalg.lstsq(r[:, idx], z[:, None]).solution[:, 0]
            if (s[idx] > 0).all():
                x = s
                break
            neg = passive & (s <= 0)
            alpha = (x[neg] / (x[neg] - s[neg])).min()
            x = x + alpha * (s - x)
            passive &= x > tol
            x[~passive] = 0.0
    return x


class PRACS(ClassicalModel):
    """PRACS: partial replacement adaptive component substitution (toolbox ``PRACS``, beta 0.95)."""

    def __init__(self, bands: int = 4, sensor: str | Sensor = "generic", ratio: int = 4,
                 beta: float = 0.95) -> None:
        super().__init__(bands, sensor, ratio)
        self.beta = float(beta)

    def _lowpass(self, x: Tensor) -> Tensor:
        small = imresize(x, scale=1.0 / self.ratio)
        return imresize(small, size=x.shape[-2:])

    def fuse(self, lms: Tensor, pan: Tensor, ms: Tensor | None) -> Tensor:
        hm = ((lms - mean_hw(lms)) * std_hw(pan) / std_hw(lms) + mean_hw(pan)).clamp_min(0)
        design = columns(hm, intercept="first")
        b, c, h, w = lms.shape

        def fit(target: Tensor) -> Tensor:  # (B, T, H, W) -> [1, H]·LS([1, H]; target)
            coef = lstsq(design, columns(target))
            return (design @ coef).transpose(1, 2).reshape(b, target.shape[1], h, w)

        i_l = fit(self._lowpass(pan))
        cc = corr2(i_l, hm)
        pan_h = cc * pan + (1 - cc) * hm
        i_low = fit(self._lowpass(pan_h))
        details = pan_h - i_low - (mean_hw(pan_h) - mean_hw(i_low))
        std_ms = std_hw(lms)
        w_k = self.beta * corr2(i_low, lms) * std_ms / std_ms.mean(dim=1, keepdim=True)
        local = 1 - (1 - corr2(i_l, lms) * lms / i_low).abs()
        return lms + w_k * local * details


# --- registered factories ----------------------------------------------------------------------

def bt_h(bands: int = 4, sensor: str = "generic", ratio: int = 4) -> BTH:
    """BT-H: haze-corrected Brovey with regression intensity (toolbox BroveyRegHazeMin)."""
    return BTH(bands, sensor, ratio)


def gs(bands: int = 4, sensor: str = "generic", ratio: int = 4) -> GS:
    """GS: Gram-Schmidt spectral sharpening (toolbox GS, mode 'GS')."""
    return GS(bands, sensor, ratio)


def gsa(bands: int = 4, sensor: str = "generic", ratio: int = 4) -> GSA:
    """GSA: adaptive Gram-Schmidt, intensity weights by regression at low resolution (toolbox GSA)."""
    return GSA(bands, sensor, ratio)


def c_gsa(bands: int = 4, sensor: str = "generic", ratio: int = 4, segments=None,
          n_segments: int = 5, seed: int = 0) -> CGSA:
    """C-GSA: GSA with injection gains per k-means segment (toolbox GS_Segm on gen_LP_image 'GSA')."""
    return CGSA(bands, sensor, ratio, segments=segments, n_segments=n_segments, seed=seed)


def bdsd(bands: int = 4, sensor: str = "generic", ratio: int = 4, block: int | None = None) -> BDSD:
    """BDSD: band-dependent spatial detail by least squares at low resolution (toolbox BDSD)."""
    return BDSD(bands, sensor, ratio, block=block)


def bdsd_pc(bands: int = 4, sensor: str = "generic", ratio: int = 4) -> BDSDPC:
    """BDSD-PC: BDSD with physical constraints, exact bound-constrained least squares (toolbox BDSD_PC)."""
    return BDSDPC(bands, sensor, ratio)


def pracs(bands: int = 4, sensor: str = "generic", ratio: int = 4, beta: float = 0.95) -> PRACS:
    """PRACS: partial replacement adaptive component substitution (toolbox PRACS)."""
    return PRACS(bands, sensor, ratio, beta=beta)
