"""Shared base class and statistics helpers of the classical (parameter-free) pan-sharpening methods.

Everything here works on batches: images are (B, C, H, W) tensors and every statistic is taken per
image over the pixels (H, W), keeping dims, so a result is (B, C, 1, 1) and broadcasts back.
Conventions follow Vivone's toolbox (see ``docs/models.md``, "Classical methods"): sample variance
and covariance (N - 1), MATLAB ``prctile`` (Hazen positions), least squares as MATLAB's ``\\`` (QR)
or the normal equations where the toolbox uses them.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from panfw.errors import DataError
from panfw.ops import interp23tap, pad2d
from panfw.sensors import Sensor, get_sensor

# The toolbox adds MATLAB's eps (2^-52) to denominators. A fixed eps is not scale-free, so panfw
# scales it with the data (``scaled_eps``): results are exactly scale-consistent and differ from the
# toolbox's only by ~eps relative (far below the 1e-9 test tolerance) unless a denominator is ~0.
EPS = 2.0 ** -52


class ClassicalModel(nn.Module):
    """Base of the classical methods: no parameters, float64 inside, ``forward(lms, pan, ms)``.

    A method is split in two: ``statistics(lms, pan, ms)`` returns the image-wide quantities it
    estimates (means, standard deviations, regression weights, injection gains, k-means centres,
    ...) as a dict of (1 or B, ...) tensors, and ``apply(lms, pan, ms, stats)`` makes the image from
    them with per-pixel and local operations only. A whole-image call is ``apply(statistics(x))``.

    Scenes (``panfw fuse``): ``fit_scene(lms, pan, ms)`` computes the statistics once on the whole
    scene (or the part of it the caller reads) and keeps them; every later ``forward`` (a tile)
    uses them, so tiles get the scene's coefficients, not their own. ``scene_halo`` is the context
    in PAN pixels each output pixel needs around it (the reach of the local filters); a tile read
    with that margin and cropped back equals the whole-image result. ``tile_exact`` is True, or a
    string saying why tiles cannot reproduce the whole image (SR-D's image-wide dictionary, TV's
    iterations). In a scene the internal filters mirror at the borders (the toolbox's circular
    borders need the whole image at once), as the scene loop's own upsampling does.

    ``floor_ms`` (the ratio-based methods only): floor ``lms`` at zero before fusing, so the
    interpolator's undershoots in dark areas cannot make a denominator vanish; off by default
    (toolbox-exact).
    """

    needs_ms: bool = False  # whether fuse() reads the low-resolution MS
    tile_exact: bool | str = True
    ratio_rule: str = "any"  # "any" or "pow2": the ratios the method can run at

    def __init__(self, bands: int = 4, sensor: str | Sensor = "generic", ratio: int = 4,
                 floor_ms: bool = False) -> None:
        super().__init__()
        self.bands = int(bands)
        self.sensor = get_sensor(sensor)
        self.ratio = int(ratio)
        self.floor_ms = bool(floor_ms)
        name = type(self).__name__
        if self.ratio < 2:
            raise DataError(f"{name}: ratio must be an integer >= 2 (the PAN/MS pixel-size ratio), got {ratio!r}")
        if self.ratio_rule == "pow2" and self.ratio & (self.ratio - 1):
            raise DataError(f"{name}: cannot run at ratio {self.ratio}: its MTF-GLP pyramid upsamples with "
                            f"the 23-tap interpolator, which needs a power-of-two ratio (2, 4, 8); use a method "
                            f"that takes any ratio (e.g. gsa, bdsd, pracs, awlp, sfim, brovey)")
        self._scene: dict[str, Tensor] | None = None

    def gains(self, n_bands: int) -> tuple[float, ...]:
        """The sensor's MS MTF Nyquist gains for ``n_bands`` bands (toolbox rule: the first n)."""
        return self.sensor.gains(n_bands)

    def extra_repr(self) -> str:
        floor = ", floor_ms=True" if self.floor_ms else ""
        return f"bands={self.bands}, sensor={self.sensor.name!r}, ratio={self.ratio}{floor}"

    @property
    def in_scene(self) -> bool:
        """Whether ``fit_scene`` statistics are in use (filters mirror at the borders)."""
        return self._scene is not None

    @property
    def scene_halo(self) -> int:
        """PAN pixels of context each output pixel needs around it (0: per-pixel given the statistics)."""
        return 0

    def check_inputs(self, lms: Tensor, pan: Tensor, ms: Tensor | None) -> None:
        """Refuse inputs that break the model contract, naming the tensor and the accepted shape."""
        name = type(self).__name__
        if lms.dim() != 4:
            raise DataError(f"{name}: lms must be (B, C, H, W), got shape {tuple(lms.shape)}")
        b, c, h, w = lms.shape
        if pan.dim() != 4 or pan.shape[0] != b or pan.shape[1] != 1 or pan.shape[-2:] != lms.shape[-2:]:
            raise DataError(f"{name}: pan must be (B, 1, H, W) = ({b}, 1, {h}, {w}) to match lms, "
                            f"got shape {tuple(pan.shape)}")
        if h % self.ratio or w % self.ratio:
            raise DataError(f"{name}: the PAN grid {h}x{w} must be divisible by the ratio {self.ratio}; "
                            f"crop the scene or pass ratio= for this data")
        if self.needs_ms:
            if ms is None or ms.dim() != 4 or ms.shape[:2] != lms.shape[:2]:
                raise DataError(f"{name}: ms must be (B, C, H/r, W/r) with B, C = {b}, {c} as lms, "
                                f"got {None if ms is None else tuple(ms.shape)}")
            if ms.shape[-2] * self.ratio != h or ms.shape[-1] * self.ratio != w:
                raise DataError(f"{name}: ms {tuple(ms.shape)} times ratio {self.ratio} must give the "
                                f"PAN grid {h}x{w}; pass ratio= for this data")

    def _prepare(self, lms: Tensor, pan: Tensor, ms: Tensor | None) -> tuple[Tensor, Tensor, Tensor | None]:
        f64 = torch.float32 if lms.device.type == "mps" else torch.float64  # MPS has no float64
        lms, pan = lms.to(f64), pan.to(f64)
        ms = None if ms is None else ms.to(f64)
        if self.floor_ms:
            lms = lms.clamp_min(0)
            ms = None if ms is None else ms.clamp_min(0)
        return lms, pan, ms

    def forward(self, lms: Tensor, pan: Tensor, ms: Tensor | None = None) -> Tensor:
        self.check_inputs(lms, pan, ms)
        dtype = lms.dtype if lms.is_floating_point() else torch.float64
        x = self._prepare(lms, pan, ms)
        if self._scene is None:
            out = self.fuse(*x)
        else:
            stats = {k: v.to(device=x[0].device, dtype=x[0].dtype) if v.is_floating_point() else v.to(x[0].device)
                     for k, v in self._scene.items()}
            out = self.apply(*x, stats)
        return out.to(dtype)

    def fit_scene(self, lms: Tensor, pan: Tensor, ms: Tensor | None = None) -> dict[str, Tensor]:
        """Estimate the statistics on a whole scene (batch 1) and keep them for every later forward.

        Returns the statistics (float64 tensors). ``clear_scene`` goes back to per-call statistics.
        """
        self.check_inputs(lms, pan, ms)
        if lms.shape[0] != 1:
            raise DataError(f"{type(self).__name__}.fit_scene: one scene at a time (batch 1), got batch "
                            f"{lms.shape[0]}")
        self._scene = {}  # scene borders (mirrored filters) already while estimating
        try:
            stats = self.statistics(*self._prepare(lms, pan, ms))
        except BaseException:
            self._scene = None
            raise
        self._scene = {k: v.detach() for k, v in stats.items()}
        return self._scene

    def clear_scene(self) -> None:
        """Forget the ``fit_scene`` statistics: each forward estimates its own again."""
        self._scene = None

    def statistics(self, lms: Tensor, pan: Tensor, ms: Tensor | None) -> dict[str, Tensor]:
        """The image-wide quantities the method estimates (float64 inputs, already prepared)."""
        return {}

    def apply(self, lms: Tensor, pan: Tensor, ms: Tensor | None, stats: dict[str, Tensor]) -> Tensor:
        """The fused image from the inputs and ``statistics`` (per-pixel and local operations only)."""
        raise NotImplementedError  # pragma: no cover

    def fuse(self, lms: Tensor, pan: Tensor, ms: Tensor | None) -> Tensor:
        """Whole-image fusion: ``apply`` with the image's own statistics."""
        return self.apply(lms, pan, ms, self.statistics(lms, pan, ms))


def round_up(n: float, ratio: int) -> int:
    """The smallest multiple of ``ratio`` >= n (halos must keep MS windows on the MS grid)."""
    return int(math.ceil(n / ratio)) * ratio


def upsample23(x: Tensor, ratio: int, mirror: bool, margin: int = 12) -> Tensor:
    """interp23tap onto the grid ``ratio`` times finer: circular borders (the toolbox) or, with
    ``mirror``, the LR image mirrored by ``margin`` pixels first (what the scene loop does; tiles
    then match the whole scene)."""
    if not mirror:
        return interp23tap(x, ratio)
    m = min(margin, x.shape[-2], x.shape[-1])
    up = interp23tap(pad2d(x, m, m, "symmetric"), ratio)
    return up[..., m * ratio:up.shape[-2] - m * ratio, m * ratio:up.shape[-1] - m * ratio]


# --- per-image statistics over pixels -------------------------------------------------------------

def mean_hw(x: Tensor) -> Tensor:
    """Mean over the pixels of each band: (B, C, H, W) -> (B, C, 1, 1)."""
    return x.mean(dim=(-2, -1), keepdim=True)


def var_hw(x: Tensor) -> Tensor:
    """Sample variance (N - 1) over the pixels of each band (MATLAB ``var(x(:))``)."""
    return x.var(dim=(-2, -1), keepdim=True, unbiased=True)


def std_hw(x: Tensor) -> Tensor:
    """Sample standard deviation (N - 1) over the pixels of each band (MATLAB ``std2``)."""
    return x.std(dim=(-2, -1), keepdim=True, unbiased=True)


def cov_hw(x: Tensor, y: Tensor) -> Tensor:
    """Sample covariance (N - 1) over pixels of broadcast bands: MATLAB ``cov(x(:), y(:))(1, 2)``."""
    x, y = torch.broadcast_tensors(x, y)
    n = x.shape[-2] * x.shape[-1]
    return ((x - mean_hw(x)) * (y - mean_hw(y))).sum(dim=(-2, -1), keepdim=True) / (n - 1)


def corr2(x: Tensor, y: Tensor) -> Tensor:
    """Pearson correlation over pixels (MATLAB ``corr2``), per image and broadcast band."""
    x, y = torch.broadcast_tensors(x, y)
    xc, yc = x - mean_hw(x), y - mean_hw(y)
    def s(v: Tensor) -> Tensor:
        return v.sum(dim=(-2, -1), keepdim=True)

    return s(xc * yc) / torch.sqrt(s(xc * xc) * s(yc * yc))


def scaled_eps(x: Tensor) -> Tensor:
    """The toolbox's eps made scale-aware: 2^-52 times the mean absolute value of each image.

    (B, ...) -> (B, 1, 1, 1); never exactly 0, so an all-zero image still gives finite ratios.
    """
    s = x.abs().flatten(1).mean(dim=1).clamp_min(torch.finfo(x.dtype).tiny)
    return (EPS * s).view(-1, 1, 1, 1)


def dn_factor(x: Tensor, sensor: Sensor, input_scale: float | None = None) -> Tensor:
    """Per-image factor (B, 1, 1, 1) taking the inputs to the sensor's digital numbers.

    For the few toolbox constants that are not scale-free (TV's lambda, SR-D's det threshold), which
    methods then apply in DN. ``input_scale`` given: that factor (DN per input unit). None: an image
    whose largest absolute value is at most 2 is on the contract's [0, 1] scale (factor
    ``sensor.max_dn``), any other image is taken to be in DN already (factor 1).
    """
    if input_scale is not None:
        return torch.full((x.shape[0], 1, 1, 1), float(input_scale), dtype=x.dtype, device=x.device)
    unit = x.abs().flatten(1).amax(dim=1) <= 2.0
    f = torch.where(unit, torch.full_like(unit, sensor.max_dn, dtype=x.dtype), torch.ones_like(unit, dtype=x.dtype))
    return f.view(-1, 1, 1, 1)


# --- least squares ---------------------------------------------------------------------------------

def columns(*images: Tensor, intercept: str | None = None) -> Tensor:
    """Design matrix (B, H*W, K) whose columns are the bands of ``images`` in order.

    ``intercept`` = "first" or "last" adds a column of ones there.
    """
    cols = [im.flatten(2).transpose(1, 2) for im in images]  # (B, N, C_i)
    if intercept is not None:
        ones = torch.ones_like(cols[0][..., :1])
        cols = [ones, *cols] if intercept == "first" else [*cols, ones]
    return torch.cat(cols, dim=-1)


def lstsq(a: Tensor, y: Tensor, method: str = "qr") -> Tensor:
    """Batched least squares min ||a x - y||: a (B, N, K), y (B, N, M) -> x (B, K, M).

    ``method="qr"`` is MATLAB's ``\\`` (Householder QR); ``"normal"`` solves (AᵀA) x = Aᵀy as the
    toolbox does where it writes ``inv(H'*H)*H'*y`` (BDSD).
    """
    if y.dim() == a.dim() - 1:
        y = y.unsqueeze(-1)
    if method == "normal":
        ata = a.transpose(-2, -1) @ a
        return torch.linalg.solve(ata, a.transpose(-2, -1) @ y)
    if method != "qr":
        raise ValueError(f"lstsq: method must be 'qr' or 'normal', got {method!r}")
    q, r = torch.linalg.qr(a, mode="reduced")
    return torch.linalg.solve_triangular(r, q.transpose(-2, -1) @ y, upper=True)


def combine(weights: Tensor, *images: Tensor, intercept: str | None = None) -> Tensor:
    """Σ_j w_j·band_j (+ intercept): the inverse of ``columns`` for a weight vector (B, K[, 1])."""
    a = columns(*images, intercept=intercept)
    if weights.dim() == 2:
        weights = weights.unsqueeze(-1)
    b, _, h, w = images[0].shape
    return (a @ weights).transpose(1, 2).reshape(b, weights.shape[-1], h, w)


# --- percentiles, haze and PAN matching -------------------------------------------------------------

def prctile(x: Tensor, p: float) -> Tensor:
    """MATLAB ``prctile(x(:), p)`` per image and band (Hazen positions, numpy method='hazen')."""
    flat = x.flatten(-2)
    n = flat.shape[-1]
    pos = (p / 100.0) * n - 0.5  # 0-based position of the p-th percentile
    pos = min(max(pos, 0.0), n - 1.0)
    lo = int(pos)
    hi = min(lo + 1, n - 1)
    frac = pos - lo
    v_lo = flat.kthvalue(lo + 1, dim=-1).values  # order statistics without a full sort
    v_hi = flat.kthvalue(hi + 1, dim=-1).values if hi != lo else v_lo
    return (v_lo + frac * (v_hi - v_lo))[..., None, None]


HAZE_FACTORS_BGRN = (0.95, 0.45, 0.40, 0.05)


def haze_values(ms: Tensor) -> Tensor:
    """The toolbox's haze estimates m_k (BT-H, MTF-GLP-HPM-H): (B, C, 1, 1).

    Four bands are taken as B, G, R, NIR: m_k = f_k·prctile(M_k, 1), f = (0.95, 0.45, 0.40, 0.05);
    any other band count uses the band minima.
    """
    if ms.shape[1] == 4:
        f = torch.tensor(HAZE_FACTORS_BGRN, dtype=ms.dtype, device=ms.device).view(1, 4, 1, 1)
        return f * prctile(ms, 1.0)
    return ms.amin(dim=(-2, -1), keepdim=True)


def match_coefs(pan: Tensor, target: Tensor, ref_for_std: Tensor | None = None,
                ref_for_mean: Tensor | None = None) -> Tensor:
    """The (offset, gain, mean) of ``match_pan`` stacked on a last dim: (B, C, 1, 1, 3)."""
    ref_s = pan if ref_for_std is None else ref_for_std
    ref_m = pan if ref_for_mean is None else ref_for_mean
    a, g, m = torch.broadcast_tensors(mean_hw(ref_m), std_hw(target) / std_hw(ref_s), mean_hw(target))
    return torch.stack([a, g, m], dim=-1)


def apply_match(pan: Tensor, coefs: Tensor) -> Tensor:
    """(P - offset)·gain + mean with the coefficients of ``match_coefs``."""
    return (pan - coefs[..., 0]) * coefs[..., 1] + coefs[..., 2]


def match_pan(pan: Tensor, target: Tensor, ref_for_std: Tensor | None = None,
              ref_for_mean: Tensor | None = None) -> Tensor:
    """PAN matched to ``target``: (P - mean(ref_for_mean))·std(target)/std(ref_for_std) + mean(target).

    Both references default to the PAN itself (plain mean/std matching). ``target`` may have C
    bands, giving one matched PAN per band.
    """
    return apply_match(pan, match_coefs(pan, target, ref_for_std, ref_for_mean))


# --- segment-wise regression (GS_Segm) and k-means segments -------------------------------------

def _label_index(labels: Tensor, like: Tensor) -> tuple[Tensor, int]:
    """Labels (B, 1, H, W) or (H, W) with arbitrary values -> int64 indices 0..S-1 (B, 1, H*W), S."""
    if labels.dim() == 2:
        labels = labels[None, None]
    elif labels.dim() == 3:
        labels = labels[:, None]
    if labels.shape[-2:] != like.shape[-2:]:
        raise DataError(f"segment labels of shape {tuple(labels.shape)} do not match the image "
                        f"grid {tuple(like.shape[-2:])}")
    labels = labels.to(like.device).expand(like.shape[0], 1, *like.shape[-2:])
    _, idx = torch.unique(labels, return_inverse=True)
    return idx.reshape(like.shape[0], 1, -1).long(), int(idx.max().item()) + 1


def segment_table(low: Tensor, bands: Tensor, idx: Tensor, n_seg: int) -> Tensor:
    """Per band k and segment s, cov(L_k, M_k)/var(L_k) over s's pixels: (B, C, S).

    ``idx`` (B, 1, H*W) int64 segment indices 0..S-1. Two-pass (centred) sums for accuracy; a
    segment of one pixel or with a constant low-pass gets gain 0.
    """
    low, bands = torch.broadcast_tensors(low, bands)
    b, c, h, w = bands.shape
    idx = idx.expand(b, c, h * w)
    lf, mf = low.reshape(b, c, -1), bands.reshape(b, c, -1)

    def seg_sum(v: Tensor) -> Tensor:
        return torch.zeros(b, c, n_seg, dtype=v.dtype, device=v.device).scatter_add_(2, idx, v)

    count = seg_sum(torch.ones_like(lf))
    safe = count.clamp_min(1)
    lc = lf - torch.gather(seg_sum(lf) / safe, 2, idx)
    mc = mf - torch.gather(seg_sum(mf) / safe, 2, idx)
    cov = seg_sum(lc * mc)
    var = seg_sum(lc * lc)
    ok = (count > 1) & (var > 0)
    return torch.where(ok, cov / torch.where(ok, var, torch.ones_like(var)), torch.zeros_like(var))


def gather_segments(table: Tensor, labels: Tensor) -> Tensor:
    """Per-pixel values (B, C, H, W) of a (B or 1, C, S) table at labels (B, 1, H, W) in 0..S-1."""
    b, _, h, w = labels.shape
    c = table.shape[1]
    idx = labels.reshape(b, 1, -1).long().expand(b, c, h * w)
    return torch.gather(table.expand(b, -1, -1), 2, idx).reshape(b, c, h, w)


def segment_gains(low: Tensor, bands: Tensor, labels: Tensor) -> Tensor:
    """GS_Segm's injection gains: per band k and segment s, cov(L_k, M_k)/var(L_k) over s's pixels.

    ``low`` (B, 1 or C, H, W), ``bands`` (B, C, H, W), ``labels`` (B, 1, H, W), (H, W) or
    (B, H, W) segment ids (any values). Returns the per-pixel gain map (B, C, H, W).
    """
    low, bands = torch.broadcast_tensors(low, bands)
    idx, n_seg = _label_index(labels, bands)
    table = segment_table(low, bands, idx, n_seg)
    return gather_segments(table, idx.reshape(bands.shape[0], 1, *bands.shape[-2:]))


def _nearest(f: Tensor, centres: Tensor) -> Tensor:
    """Index of the nearest centre (squared Euclidean) of each row of f (N, C); |f|² is common."""
    return ((centres * centres).sum(dim=1) - 2.0 * f @ centres.T).argmin(dim=1)


def kmeans_fit(x: Tensor, k: int = 5, seed: int = 0, max_iter: int = 100,
               max_fit: int = 65536) -> tuple[Tensor, Tensor]:
    """k-means of the max-normalised pixels of each image: (centres (B, k, C), band maxima (B, C, 1, 1)).

    k-means++ start from a fixed seed (``torch.Generator``, per image), squared Euclidean
    distance, at most ``max_iter`` Lloyd iterations on at most ``max_fit`` pixels (an evenly
    strided subset of larger images, for speed).
    """
    scale = x.amax(dim=(-2, -1), keepdim=True)
    feats = (x / scale).flatten(2).transpose(1, 2)  # (B, N, C)
    out = []
    for f_all in feats:
        gen = torch.Generator(device="cpu").manual_seed(seed)  # per image: batching changes nothing
        f = f_all[::max(1, -(-f_all.shape[0] // max_fit))]
        n = f.shape[0]
        centres = [f[int(torch.randint(n, (1,), generator=gen))]]
        d2 = ((f - centres[0]) ** 2).sum(-1)
        for _ in range(1, k):
            probs = (d2 / d2.sum()).cpu() if d2.sum() > 0 else torch.full((n,), 1.0 / n)
            j = int(torch.multinomial(probs, 1, generator=gen))
            centres.append(f[j])
            d2 = torch.minimum(d2, ((f - f[j]) ** 2).sum(-1))
        cen = torch.stack(centres)
        lab = _nearest(f, cen)
        ones = torch.ones_like(f[:, 0])
        for _ in range(max_iter):
            sums = torch.zeros_like(cen).index_add_(0, lab, f)
            cnt = torch.zeros(k, dtype=f.dtype, device=f.device).index_add_(0, lab, ones)
            cen = torch.where(cnt[:, None] > 0, sums / cnt.clamp_min(1)[:, None], cen)
            new = _nearest(f, cen)
            if torch.equal(new, lab):
                break
            lab = new
        out.append(cen)
    return torch.stack(out), scale


def kmeans_labels(x: Tensor, centres: Tensor, scale: Tensor) -> Tensor:
    """Every pixel's nearest centre (``kmeans_fit``'s centres and band maxima): (B, 1, H, W) int64."""
    b, c, h, w = x.shape
    feats = (x / scale).flatten(2).transpose(1, 2)
    cen = centres.expand(b, -1, -1)
    return torch.stack([_nearest(f, cn).view(1, h, w) for f, cn in zip(feats, cen)])


def kmeans_segments(x: Tensor, k: int = 5, seed: int = 0, max_iter: int = 100, max_fit: int = 65536) -> Tensor:
    """The toolbox's ``k_means_clustering``: pixels of the max-normalised bands in k clusters.

    ``kmeans_fit`` then every pixel takes its nearest centre. Deterministic for a seed, but not the
    toolbox's (random) partition. Returns labels (B, 1, H, W) int64 in 0..k-1.
    """
    return kmeans_labels(x, *kmeans_fit(x, k, seed, max_iter, max_fit))
