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
    apply_match,
    columns,
    combine,
    corr2,
    cov_hw,
    gather_segments,
    haze_values,
    kmeans_fit,
    kmeans_labels,
    kmeans_segments,
    lstsq,
    match_coefs,
    mean_hw,
    scaled_eps,
    segment_gains,
    segment_table,
    std_hw,
    var_hw,
)


class BTH(ClassicalModel):
    """BT-H: Brovey transform with haze correction and regression intensity (``BroveyRegHazeMin``)."""

    def statistics(self, lms: Tensor, pan: Tensor, ms: Tensor | None) -> dict[str, Tensor]:
        haze = haze_values(lms)
        pan_lp = lowpass_gauss(pan, self.ratio)
        h = lstsq(columns(lms), columns(pan_lp))  # no intercept, on the hazy bands
        intensity = combine(h, lms - haze)
        return {"haze": haze, "h": h, "match": match_coefs(pan, intensity, pan_lp, pan_lp),
                "eps": scaled_eps(lms)}

    def apply(self, lms: Tensor, pan: Tensor, ms: Tensor | None, stats: dict[str, Tensor]) -> Tensor:
        haze = stats["haze"]
        intensity = combine(stats["h"], lms - haze)
        ratio = apply_match(pan, stats["match"]) / (intensity + stats["eps"])
        return (lms - haze).clamp_min(0) * ratio + haze


class GS(ClassicalModel):
    """GS: Gram-Schmidt spectral sharpening, intensity = band mean (toolbox ``GS``)."""

    def _fused(self, lms: Tensor, pan: Tensor, st: dict[str, Tensor]) -> Tensor:
        i0 = lms.mean(dim=1, keepdim=True) - st["i_mean"]
        return (lms - st["mean"]) + st["g"] * (apply_match(pan, st["match"]) - i0)

    def statistics(self, lms: Tensor, pan: Tensor, ms: Tensor | None) -> dict[str, Tensor]:
        i0 = lms.mean(dim=1, keepdim=True)
        i_mean = mean_hw(i0)
        i0 = i0 - i_mean
        st = {"mean": mean_hw(lms), "i_mean": i_mean, "match": match_coefs(pan, i0),
              "g": cov_hw(i0, lms) / var_hw(i0)}
        st["fmean"] = mean_hw(self._fused(lms, pan, st))
        return st

    def apply(self, lms: Tensor, pan: Tensor, ms: Tensor | None, stats: dict[str, Tensor]) -> Tensor:
        return self._fused(lms, pan, stats) - stats["fmean"] + stats["mean"]  # band means restored


class GSA(ClassicalModel):
    """GSA: Gram-Schmidt adaptive, intensity weights fitted at low resolution (toolbox ``GSA``)."""

    needs_ms = True

    def _fused(self, lms: Tensor, pan: Tensor, st: dict[str, Tensor]) -> Tensor:
        centred = lms - st["mean"]
        i0 = combine(st["w"], centred, intercept="last") - st["i_mean"]
        return centred + st["g"] * ((pan - st["pan_mean"]) - i0)

    def statistics(self, lms: Tensor, pan: Tensor, ms: Tensor | None) -> dict[str, Tensor]:
        mean, pan_mean = mean_hw(lms), mean_hw(pan)
        centred = lms - mean
        ms0 = ms - mean_hw(ms)
        pan_lr = decimate(lowpass_wavelet(pan - pan_mean, self.ratio), self.ratio)
        w = lstsq(columns(ms0, intercept="last"), columns(pan_lr))
        i = combine(w, centred, intercept="last")
        i_mean = mean_hw(i)
        i0 = i - i_mean
        st = {"mean": mean, "pan_mean": pan_mean, "w": w, "i_mean": i_mean,
              "g": cov_hw(i0, centred) / var_hw(i0)}
        st["fmean"] = mean_hw(self._fused(lms, pan, st))
        return st

    def apply(self, lms: Tensor, pan: Tensor, ms: Tensor | None, stats: dict[str, Tensor]) -> Tensor:
        return self._fused(lms, pan, stats) - stats["fmean"] + stats["mean"]  # band means restored


class CGSA(ClassicalModel):
    """C-GSA: context-based GSA, injection gains per k-means segment (toolbox ``GS_Segm``).

    ``segments``: a segment map (H, W), (1, H, W) or (B, 1, H, W) with any label values, or None to
    cluster the max-normalised ``lms`` pixels into ``n_segments`` groups by k-means from ``seed``
    (the toolbox's k-means start is random, so its partition cannot be reproduced). In a scene the
    k-means centres and the per-segment gains are the scene's; a given ``segments`` map covers one
    image and cannot be tiled.
    """

    needs_ms = True

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
        pan_lr = decimate(lowpass_gauss(pan, self.ratio), self.ratio)
        w = lstsq(columns(ms, intercept="last"), columns(pan_lr))
        i_low = combine(w, lms, intercept="last")
        st = {"w": w}
        if self.segments is None:
            centres, scale = kmeans_fit(lms, self.n_segments, seed=self.seed)
            labels = kmeans_labels(lms, centres, scale)
            st.update(centres=centres, scale=scale)
            st["gains"] = segment_table(i_low, lms, labels.reshape(lms.shape[0], 1, -1), self.n_segments)
        return st

    def apply(self, lms: Tensor, pan: Tensor, ms: Tensor | None, stats: dict[str, Tensor]) -> Tensor:
        i_low = combine(stats["w"], lms, intercept="last")
        if self.segments is not None:
            g = segment_gains(i_low, lms, self.segments)
        else:
            g = gather_segments(stats["gains"], kmeans_labels(lms, stats["centres"], stats["scale"]))
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

    @property
    def tile_exact(self) -> bool | str:  # type: ignore[override]
        return True if self.block is None else (f"block={self.block} estimates coefficients per block of the "
                                                "image, which tiles do not line up with")

    def statistics(self, lms: Tensor, pan: Tensor, ms: Tensor | None) -> dict[str, Tensor]:
        h, w = lms.shape[-2:]
        if self.block is not None and (self.block < h or self.block < w):
            if self.in_scene:
                raise DataError(f"{type(self).__name__}: block={self.block} estimates one set of "
                                f"coefficients per {self.block}x{self.block} block of the image; a scene of "
                                f"{h}x{w} is fused with block=None (one set for the scene) or as one tile")
            return {}
        return {"gammas": self.gammas(*self.lowres(lms, pan))}

    def apply(self, lms: Tensor, pan: Tensor, ms: Tensor | None, stats: dict[str, Tensor]) -> Tensor:
        if "gammas" in stats:
            return lms + combine(stats["gammas"], pan, lms)
        b, c, h, w = lms.shape
        g, g_low, p_low = self.lowres(lms, pan)
        s = self.block
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

    @property
    def scene_halo(self) -> int:
        # imresize down by r (antialiased cubic: 4r taps) then up (4 LR taps), plus their mirrored borders
        return 6 * self.ratio

    def _lowpass(self, x: Tensor) -> Tensor:
        small = imresize(x, scale=1.0 / self.ratio)
        return imresize(small, size=x.shape[-2:])

    def _hm(self, lms: Tensor, st: dict[str, Tensor]) -> Tensor:
        return ((lms - st["mean"]) * st["pan_std"] / st["std"] + st["pan_mean"]).clamp_min(0)

    @staticmethod
    def _fit(design: Tensor, coef: Tensor, like: Tensor) -> Tensor:  # [1, H]·coef on the grid of ``like``
        b, _, h, w = like.shape
        return (design @ coef).transpose(1, 2).reshape(b, coef.shape[-1], h, w)

    def statistics(self, lms: Tensor, pan: Tensor, ms: Tensor | None) -> dict[str, Tensor]:
        st = {"mean": mean_hw(lms), "std": std_hw(lms), "pan_mean": mean_hw(pan), "pan_std": std_hw(pan)}
        hm = self._hm(lms, st)
        design = columns(hm, intercept="first")
        low_pan = self._lowpass(pan)
        st["coef_l"] = lstsq(design, columns(low_pan))
        i_l = self._fit(design, st["coef_l"], low_pan)
        st["cc"] = corr2(i_l, hm)
        pan_h = st["cc"] * pan + (1 - st["cc"]) * hm
        low_h = self._lowpass(pan_h)
        st["coef_h"] = lstsq(design, columns(low_h))
        i_low = self._fit(design, st["coef_h"], low_h)
        st["shift"] = mean_hw(pan_h) - mean_hw(i_low)
        std_ms = st["std"]
        st["w_k"] = self.beta * corr2(i_low, lms) * std_ms / std_ms.mean(dim=1, keepdim=True)
        st["cc_l"] = corr2(i_l, lms)
        return st

    def apply(self, lms: Tensor, pan: Tensor, ms: Tensor | None, stats: dict[str, Tensor]) -> Tensor:
        hm = self._hm(lms, stats)
        design = columns(hm, intercept="first")
        pan_h = stats["cc"] * pan + (1 - stats["cc"]) * hm
        low_h = self._lowpass(pan_h)
        i_low = self._fit(design, stats["coef_h"], low_h)
        details = pan_h - i_low - stats["shift"]
        local = 1 - (1 - stats["cc_l"] * lms / i_low).abs()
        return lms + stats["w_k"] * local * details


# --- registered factories ----------------------------------------------------------------------

def bt_h(bands: int = 4, sensor: str = "generic", ratio: int = 4, floor_ms: bool = False) -> BTH:
    """BT-H: haze-corrected Brovey with regression intensity (toolbox BroveyRegHazeMin)."""
    return BTH(bands, sensor, ratio, floor_ms=floor_ms)


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
