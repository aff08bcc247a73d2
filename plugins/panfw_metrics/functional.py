"""Pan-sharpening quality indices as Vivone's toolbox computes them, on tensors in digital numbers.

Every function takes batched (B,C,H,W) tensors (or one unbatched (C,H,W) image) and returns a
float64 tensor with one value per image, shape (B,) (a 0-d tensor for unbatched input). The
arguments are always ``fused`` first, then the reference or the inputs (the toolbox's own functions
take the reference first). Computations run in float64 on the inputs' device; nothing here loops
over pixels or blocks: windows and blocks are pooled, reshaped or unfolded.

Units: the toolbox works in digital numbers (DN). Q2n (and D_lambda_K, through it) casts both images
to uint16, so it must be fed DN, never [0,1] values; the others are scale-free but for the
thresholding option. SAM is in degrees unless ``units="rad"``. See docs/metrics.md.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F

from panfw.errors import UserError

__all__ = [
    "EPS", "cut_bounds", "to_uint16", "threshold_dn", "psnr", "sam", "ergas", "q_avg", "q2n", "scc",
    "uqi_blocks", "d_lambda", "d_s", "qnr", "d_lambda_k", "hqnr", "pan_lowpass", "rr_indices",
    "fr_indices",
]

EPS = torch.finfo(torch.float64).eps  # MATLAB's eps, used by the toolbox's norm_blocco


# ---- shared helpers ----------------------------------------------------------------------------

def _batched(x: torch.Tensor, what: str) -> tuple[torch.Tensor, bool]:
    """(B,C,H,W) float64 and whether the input was one unbatched (C,H,W) image."""
    if not isinstance(x, torch.Tensor):
        x = torch.as_tensor(x)
    if x.dim() == 3:
        x, single = x[None], True
    elif x.dim() == 4:
        single = False
    else:
        raise UserError(f"{what}: expected a (B,C,H,W) or (C,H,W) tensor, got shape {tuple(x.shape)}")
    if x.device.type == "mps":  # no float64 there
        x = x.cpu()
    return x.to(torch.float64), single


def _pair(fused: torch.Tensor, ref: torch.Tensor, what: str) -> tuple[torch.Tensor, torch.Tensor, bool]:
    f, single = _batched(fused, what)
    r, _ = _batched(ref, what)
    if f.shape != r.shape:
        raise UserError(f"{what}: fused {tuple(fused.shape)} and reference {tuple(ref.shape)} must have "
                        "the same shape")
    return f, r.to(f.device), single


def _out(v: torch.Tensor, single: bool) -> torch.Tensor:
    return v[0] if single else v


def _check_blocks(x: torch.Tensor, block: int, what: str) -> None:
    h, w = x.shape[-2:]
    if h % block or w % block:
        raise UserError(f"{what}: height and width must be multiples of the block size {block} (as in the "
                        f"toolbox), got {h}x{w}; crop the images or pass another block_size")


def cut_bounds(x: torch.Tensor, cut: int) -> torch.Tensor:
    """The toolbox's ``flag_cut_bounds`` crop: MATLAB ``x(cut:end-cut, cut:end-cut)``, i.e. 0-based
    ``[cut-1 : n-cut]`` on both axes (cut 21: 20 pixels off the top/left, 21 off the bottom/right).
    ``cut <= 0`` keeps the image."""
    cut = int(cut)
    if cut <= 0:
        return x
    h, w = x.shape[-2:]
    if h - 2 * cut + 1 < 1 or w - 2 * cut + 1 < 1:
        raise UserError(f"cut={cut} removes the whole {h}x{w} image; use a smaller cut (0 disables it)")
    return x[..., cut - 1:h - cut, cut - 1:w - cut]


def to_uint16(x: torch.Tensor) -> torch.Tensor:
    """MATLAB ``uint16(x)`` as float64 values: round half away from zero, saturate to [0, 65535],
    NaN to 0 (``torch.round`` rounds ties to even and would change Q2n).

    floor(x + (0.5 - 2^-54)) is exactly round-half-away for every x >= 0: a tie n + 0.5 sums to
    within 2^-54 of n + 1 and rounds up to it, while no x below a tie can reach n + 1 (adding 0.5
    itself would send 0.49999999999999994 to 1)."""
    return _to_uint16_(x + 0.0)


def _to_uint16_(x: torch.Tensor) -> torch.Tensor:
    """``to_uint16`` in place (x must be a tensor the caller owns)."""
    return x.add_(0.49999999999999994).floor_().clamp_(0, 65535).nan_to_num_(nan=0.0)


def threshold_dn(x: torch.Tensor, bit_depth: int) -> torch.Tensor:
    """The toolbox's ``thvalues`` option: clip a fused DN image to [0, 2^L]."""
    return x.clamp(0, 2.0 ** bit_depth)


def _pad_symmetric_end(x: torch.Tensor, extra: int, dim: int) -> torch.Tensor:
    """Extend ``dim`` at the end by ``extra`` samples mirrored with the edge sample repeated
    (MATLAB ``x(n:-1:n-extra+1)``; numpy ``mode='symmetric'``), any ``extra``."""
    n = x.shape[dim]
    if extra <= 0:
        return x
    if extra <= n:
        return torch.cat([x, x.narrow(dim, n - extra, extra).flip(dim)], dim)
    i = torch.arange(n + extra, device=x.device) % (2 * n)
    return x.index_select(dim, torch.where(i < n, i, 2 * n - 1 - i))


CHUNK_BLOCKS = 64  # blocks per step of the block indices: 64 x 8 bands x 32x32 float64 = 4 MiB


def _block_chunks(x: torch.Tensor, block: int, shift: int | None = None, chunk: int = CHUNK_BLOCKS):
    """``_blocks(x)`` in pieces of whole block rows (about ``chunk`` blocks each), in block order;
    each piece a new tensor."""
    shift = shift or block
    nh = (x.shape[-2] - block) // shift + 1
    nw = (x.shape[-1] - block) // shift + 1
    rows = max(1, chunk // nw)
    for j in range(0, nh, rows):
        n = min(rows, nh - j)
        yield _blocks(x[..., j * shift:(j + n - 1) * shift + block, :], block, shift)


def _blocks(x: torch.Tensor, block: int, shift: int | None = None) -> torch.Tensor:
    """(B,C,H,W) -> (B,K,C,block*block): the blocks in row-major block order, pixels flattened;
    always a new tensor (never a view of x), so callers may modify it in place."""
    shift = shift or block
    b, c = x.shape[:2]
    u = x.unfold(2, block, shift).unfold(3, block, shift)  # (B,C,nH,nW,block,block)
    nh, nw = u.shape[2:4]
    out = x.new_empty(b, nh, nw, c, block, block)
    out.copy_(u.permute(0, 2, 3, 1, 4, 5))
    return out.view(b, nh * nw, c, block * block)


# ---- reduced resolution (with a reference) -----------------------------------------------------

def psnr(fused: torch.Tensor, ref: torch.Tensor, data_range: float = 1.0) -> torch.Tensor:
    """PSNR in dB over all bands and pixels: 10 log10(data_range^2 / MSE) (inf when identical)."""
    f, r, single = _pair(fused, ref, "psnr")
    mse = (f - r).square().flatten(1).mean(1)
    return _out(10 * torch.log10(float(data_range) ** 2 / mse), single)


def sam(fused: torch.Tensor, ref: torch.Tensor, units: str = "deg") -> torch.Tensor:
    """Spectral angle mapper: the mean per-pixel angle between the spectra, pixels where a norm is
    zero excluded (toolbox ``SAM``); degrees (``units="deg"``) or radians (``"rad"``)."""
    if units not in ("deg", "rad"):
        raise UserError(f"sam: units {units!r} is not accepted; accepted: deg, rad")
    f, r, single = _pair(fused, ref, "sam")
    dot = (r * f).sum(1)
    prod_norm = torch.sqrt((r * r).sum(1) * (f * f).sum(1))
    valid = prod_norm != 0
    cos = dot / torch.where(valid, prod_norm, torch.ones_like(prod_norm))
    # real(acos(c)) is 0 above 1 and pi below -1, i.e. acos of the clamped value
    angle = torch.where(valid, torch.acos(cos.clamp(-1.0, 1.0)), torch.zeros_like(cos))
    mean = angle.flatten(1).sum(1) / valid.flatten(1).sum(1)
    if units == "deg":
        mean = mean * 180 / math.pi
    return _out(mean, single)


def ergas(fused: torch.Tensor, ref: torch.Tensor, ratio: float = 4) -> torch.Tensor:
    """ERGAS = (100/ratio) sqrt(mean_k(MSE_k / mean(ref_k)^2)) (toolbox ``ERGAS``)."""
    f, r, single = _pair(fused, ref, "ergas")
    mse = (r - f).square().flatten(2).mean(2)
    mu = r.flatten(2).mean(2)
    acc = (mse / mu.square()).sum(1)
    return _out((100 / ratio) * torch.sqrt(acc / f.shape[1]), single)


def _window_sums(x: torch.Tensor, n: int, dim: int) -> torch.Tensor:
    """Sums of every n consecutive samples along ``dim`` ('valid'), by doubling: windows of 2p are
    two windows of p, so n = 32 costs 5 shifted additions instead of 31 (a pairwise summation
    order, no less accurate than the sequential one)."""
    length = x.shape[dim] - n + 1
    out, offset, p, s = None, 0, 1, x
    while n:
        if n & 1:
            part = s.narrow(dim, offset, length)
            out = part if out is None else out + part
            offset += p
        n >>= 1
        if n:
            s = s.narrow(dim, 0, s.shape[dim] - p) + s.narrow(dim, p, s.shape[dim] - p)
            p *= 2
    return out


def _box_sums(x: torch.Tensor, block: int) -> torch.Tensor:
    """Sums over every block x block window ('valid'), separable (rows, then columns); meant for one
    (H, W) plane at a time, whose doubling passes stay in cache."""
    return _window_sums(_window_sums(x, block, -1), block, -2)


def q_avg(fused: torch.Tensor, ref: torch.Tensor, block: int = 32) -> torch.Tensor:
    """Q_avg: UIQI per band with a block x block sliding window (stride 1, valid region), mean over
    windows and bands (toolbox ``Q`` / Wang's ``img_qi``, including its special cases)."""
    f, r, single = _pair(fused, ref, "q")
    if min(f.shape[-2:]) < block:
        raise UserError(f"q: images of {f.shape[-2]}x{f.shape[-1]} are smaller than the {block}x{block} window")
    n = block * block
    b, c = f.shape[:2]
    per_band = f.new_empty(b, c)
    # one band of one image at a time: its five window-sum maps fit in cache (2x faster than whole
    # batches, whose intermediates go to memory)
    for i in range(b):
        for k in range(c):
            rp, fp = r[i, k], f[i, k]
            s1, s2 = _box_sums(rp, block), _box_sums(fp, block)
            s11, s22, s12 = (_box_sums(t, block) for t in (rp * rp, fp * fp, rp * fp))
            mul = s1 * s2
            sq_mul = s1 * s1 + s2 * s2
            num = 4 * (n * s12 - mul) * mul
            den1 = n * (s11 + s22) - sq_mul
            den = den1 * sq_mul
            qmap = torch.ones_like(den)
            special = (den1 == 0) & (sq_mul != 0)
            qmap = torch.where(special, 2 * mul / torch.where(special, sq_mul, 1.0), qmap)
            nz = den != 0
            qmap = torch.where(nz, num / torch.where(nz, den, 1.0), qmap)
            per_band[i, k] = qmap.mean()
    return _out(per_band.mean(1), single)


def _conj(x: torch.Tensor, dim: int) -> torch.Tensor:
    """Hypercomplex conjugate along ``dim``: keep the first component, negate the others."""
    n = x.shape[dim]
    if n == 1:
        return x
    sign = torch.full((n,), -1.0, dtype=x.dtype, device=x.device)
    sign[0] = 1.0
    return x * sign.view([n] + [1] * (-1 - dim if dim < 0 else x.dim() - 1 - dim))


def _onion_mult(x: torch.Tensor, y: torch.Tensor, dim: int) -> torch.Tensor:
    """The toolbox's Cayley-Dickson product (``onion_mult`` / ``onion_mult2D``) along ``dim``,
    component count a power of two; written as the toolbox recurses, so rounding matches."""
    n = x.shape[dim]
    if n == 1:
        return x * y
    h = n // 2
    a, b = x.narrow(dim, 0, h), _conj(x.narrow(dim, h, h), dim)
    c, d = y.narrow(dim, 0, h), _conj(y.narrow(dim, h, h), dim)
    if n == 2:
        return torch.cat([a * c - d * b, a * d + c * b], dim)
    r1 = _onion_mult(a, c, dim)
    r2 = _onion_mult(d, _conj(b, dim), dim)
    r3 = _onion_mult(_conj(a, dim), d, dim)
    r4 = _onion_mult(c, b, dim)
    return torch.cat([r1 - r2, r3 + r4], dim)


@functools.lru_cache(maxsize=16)
def _onion_table(n: int, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """Structure constants T (n, n, n) of the toolbox's product: e_i * e_j = sum_k T[i, j, k] e_k
    (cached: q2n asks for it once per chunk of blocks)."""
    eye = torch.eye(n, dtype=dtype, device=device)
    return _onion_mult(eye[:, None, :].expand(n, n, n), eye[None, :, :].expand(n, n, n), -1)


def _onions_quality(ref: torch.Tensor, fus: torch.Tensor) -> torch.Tensor:
    """Hypercomplex block quality (toolbox ``onions_quality``) of (..., N3, P) uint16-valued blocks:
    (..., N3) components of q per block. Overwrites ``ref`` and ``fus`` (q2n's own copies): the
    normalisations below run in place, the same arithmetic in the same order."""
    p = ref.shape[-1]
    w = p / (p - 1)
    # norm_blocco: per block and band, (x - mean) / std + 1, std (N-1) replaced by eps when 0
    s = ref.mean(-1, keepdim=True)
    centred = ref.sub_(s)
    t = torch.sqrt(centred.square().sum(-1, keepdim=True) / (p - 1))
    t = torch.where(t == 0, torch.full_like(t, EPS), t)
    dat1 = centred.div_(t).add_(1)
    # the fused block gets the reference's map, without the division where the reference mean is 0
    # (dividing by 1 is exact), then is conjugated: -(a / t + 1) == a / (-t) - 1 exactly
    n3 = ref.shape[-2]
    sign = torch.ones(n3, 1, dtype=ref.dtype, device=ref.device)
    sign[1:] = -1
    dat2 = fus.sub_(s).div_(torch.where(s == 0, torch.ones_like(t), t) * sign).add_(sign)
    m1, m2 = dat1.mean(-1), dat2.mean(-1)  # (..., N3)
    mod_q1m = torch.sqrt(m1.square().sum(-1))
    mod_q2m = torch.sqrt(m2.square().sum(-1))
    mod_q1 = torch.sqrt(dat1.square().sum(-2))  # (..., P)
    mod_q2 = torch.sqrt(dat2.square().sum(-2))
    termine2 = mod_q1m * mod_q2m
    termine4 = mod_q1m**2 + mod_q2m**2
    int1 = w * (mod_q1**2).mean(-1)
    int2 = w * (mod_q2**2).mean(-1)
    termine3 = int1 + int2 - w * (mod_q1m**2 + mod_q2m**2)
    mean_bias = 2 * termine2 / termine4
    # the block mean of the pixel-wise product dat1 * dat2 (toolbox: onion_mult2D, then mean2), by
    # bilinearity = the structure constants applied to the band-by-band mean products: one batched
    # matrix product instead of n^2 passes over the pixels
    pair_means = dat1 @ dat2.transpose(-1, -2) / p  # (..., N3, N3)
    qu_mean = torch.einsum("...ij,ijk->...k", pair_means, _onion_table(ref.shape[-2], ref.dtype, ref.device))
    qm = _onion_mult(m1, m2, -1)
    qv = w * qu_mean
    flat = termine3 == 0
    cbm = 2 / torch.where(flat, torch.ones_like(termine3), termine3)
    q = (qv - w * qm) * mean_bias[..., None] * cbm[..., None]
    # a block with no variation: q = [0, ..., 0, mean_bias]
    q_flat = torch.zeros_like(q)
    q_flat[..., -1] = mean_bias
    return torch.where(flat[..., None], q_flat, q)


def q2n(fused: torch.Tensor, ref: torch.Tensor, block: int = 32, shift: int | None = None) -> torch.Tensor:
    """Q2^n (Q4 for 4 bands, Q8 for 8): hypercomplex UIQI on block x block blocks (toolbox ``q2n``):
    images mirror-padded at the end to whole blocks, cast to uint16 (half away from zero), bands
    zero-padded to a power of two, modulus of the block quality averaged over blocks. Feed DN."""
    f, r, single = _pair(fused, ref, "q2n")
    shift = block if shift is None else int(shift)
    if not 0 < shift <= block:
        raise UserError(f"q2n: shift must be in 1..block ({block}), got {shift}")
    b, c, h, w = f.shape
    nh, nw = math.ceil(h / shift), math.ceil(w / shift)
    eh, ew = (nh - 1) * shift + block - h, (nw - 1) * shift + block - w
    n3 = 1 << max(0, (c - 1).bit_length())
    out = f.new_empty(b)
    # one image at a time, a few block rows at a time: every intermediate of the block quality then
    # stays in cache (about 2.5x faster than whole batches; the same values)
    for i in range(b):
        ri, fi = (_pad_symmetric_end(_pad_symmetric_end(t[i:i + 1], eh, 2), ew, 3) for t in (r, f))
        qmap = []
        for rb, fb in zip(_block_chunks(ri, block, shift), _block_chunks(fi, block, shift)):
            rb, fb = _to_uint16_(rb[0]), _to_uint16_(fb[0])  # (K', C, P) copies: cast in place
            if n3 != c:
                rb, fb = (torch.cat([t, t.new_zeros(t.shape[0], n3 - c, t.shape[-1])], 1) for t in (rb, fb))
            q = _onions_quality(rb, fb)  # (K', N3)
            qmap.append(torch.sqrt(q.square().sum(-1)))
        out[i] = torch.cat(qmap).mean()
    return _out(out, single)


def _sobel_magnitude(x: torch.Tensor) -> torch.Tensor:
    """Per band, the Sobel gradient magnitude of the image without its 1-pixel frame (toolbox
    ``SCC``: ``imfilter`` correlation with [1 2 1; 0 0 0; -1 -2 -1] and its transpose, zero padding),
    written as separable shifted sums."""
    xp = F.pad(x[..., 1:-1, 1:-1], (1, 1, 1, 1))
    smooth_w = xp[..., :, :-2] + 2 * xp[..., :, 1:-1] + xp[..., :, 2:]
    smooth_h = xp[..., :-2, :] + 2 * xp[..., 1:-1, :] + xp[..., 2:, :]
    gy = smooth_w[..., :-2, :] - smooth_w[..., 2:, :]
    gx = smooth_h[..., :, :-2] - smooth_h[..., :, 2:]
    return torch.sqrt(gy.square() + gx.square())


def scc(fused: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
    """Spatial correlation coefficient (toolbox ``SCC``): Sobel magnitudes of both images,
    sum(G_f G_r) / sqrt(sum G_f^2) / sqrt(sum G_r^2) over all bands and pixels, no mean removal."""
    f, r, single = _pair(fused, ref, "scc")
    gf, gr = _sobel_magnitude(f).flatten(1), _sobel_magnitude(r).flatten(1)
    v = (gf * gr).sum(1) / torch.sqrt(gf.square().sum(1)) / torch.sqrt(gr.square().sum(1))
    return _out(v, single)


def rr_indices(fused: torch.Tensor, ref: torch.Tensor, ratio: float = 4, block: int = 32, cut: int = 21,
               bit_depth: int | None = None) -> dict[str, torch.Tensor]:
    """The toolbox's ``indexes_evaluation`` on DN images: Q2n, Q_avg, SAM (deg), ERGAS, SCC after the
    ``cut`` crop; ``bit_depth`` given = thresholding on (fused clipped to [0, 2^L])."""
    f, r, single = _pair(fused, ref, "rr_indices")
    f, r = cut_bounds(f, cut), cut_bounds(r, cut)
    if bit_depth is not None:
        f = threshold_dn(f, bit_depth)
    out = {"Q2n": q2n(f, r, block), "Q_avg": q_avg(f, r, block), "SAM": sam(f, r), "ERGAS": ergas(f, r, ratio),
           "SCC": scc(f, r)}
    return {k: _out(v, single) for k, v in out.items()}


# ---- full resolution (no reference) ------------------------------------------------------------

def uqi_blocks(x: torch.Tensor, y: torch.Tensor, block: int = 32) -> torch.Tensor:
    """UIQI of every distinct block x block block, per band (toolbox ``uqi`` through ``blockproc``):
    4 cov(x,y) mean(x) mean(y) / (var x + var y) / (mean(x)^2 + mean(y)^2), covariances with N-1.
    x (B,C,H,W), y (B,C,H,W) or (B,1,H,W) (broadcast); returns (B,C,H/block,W/block)."""
    _check_blocks(x, block, "uqi_blocks")
    b, c, h, w = x.shape
    nh, nw = h // block, w // block
    rows = max(1, CHUNK_BLOCKS // nw)
    out = x.new_empty(b, c, nh, nw)
    # one image and a few block rows at a time, so the centred copies stay in cache
    for i in range(b):
        iy = i if y.shape[0] == b else 0
        for j in range(0, nh, rows):
            sl = slice(j * block, (j + rows) * block)
            out[i, :, j:j + rows] = _uqi_blocks(x[i:i + 1, :, sl], y[iy:iy + 1, :, sl], block)[0]
    return out


def _uqi_blocks(x: torch.Tensor, y: torch.Tensor, block: int) -> torch.Tensor:
    """uqi_blocks on whole tensors."""
    b, c, h, w = x.shape
    nh, nw, n = h // block, w // block, block * block
    # (B, C, nH, block, nW, block) views: block statistics are reductions over dims 3 and 5, no copy;
    # a one-band y (the PAN) is centred once and broadcast over the bands
    x6 = x.reshape(b, c, nh, block, nw, block)
    y6 = y.reshape(y.shape[0], y.shape[1], nh, block, nw, block)
    mx, my = x6.mean((3, 5), keepdim=True), y6.mean((3, 5), keepdim=True)
    xc, yc = x6 - mx, y6 - my
    cxy = (xc * yc).sum((3, 5)) / (n - 1)
    cxx = xc.square().sum((3, 5)) / (n - 1)
    cyy = yc.square().sum((3, 5)) / (n - 1)
    mx, my = mx[:, :, :, 0, :, 0], my[:, :, :, 0, :, 0]
    return 4 * cxy * mx * my / (cxx + cyy) / (mx**2 + my**2)


def _band_pair_q(x: torch.Tensor, block: int) -> torch.Tensor:
    """(B,C,C): for every band pair, the mean over distinct blocks of their UIQI (one batched
    matrix product per block gives all the covariances at once)."""
    n = block * block
    out = x.new_empty(x.shape[0], x.shape[1], x.shape[1])
    for i in range(x.shape[0]):  # one image, a few block rows at a time: the blocks stay in cache
        qs = []
        for xb in _block_chunks(x[i:i + 1], block):  # (1,K',C,P) copies
            xb = xb[0]
            m = xb.mean(-1)
            xc = xb.sub_(m[..., None])
            cov = xc @ xc.transpose(-1, -2) / (n - 1)  # (K',C,C)
            var = cov.diagonal(dim1=-2, dim2=-1)
            mi, mj = m[..., :, None], m[..., None, :]
            qs.append(4 * cov * mi * mj / (var[..., :, None] + var[..., None, :]) / (mi**2 + mj**2))
        out[i] = torch.cat(qs).mean(0)
    return out


def d_lambda(fused: torch.Tensor, lms: torch.Tensor, block: int = 32, p: float = 1) -> torch.Tensor:
    """Spectral distortion D_lambda (toolbox 1.0 option of ``D_lambda``): for band pairs i < j,
    |Q(F_i,F_j) - Q(lms_i,lms_j)|^p with Q the mean UIQI over distinct blocks, averaged over pairs,
    ^(1/p). ``lms`` is the MS upsampled to the fused grid (I_MS)."""
    f, m, single = _pair(fused, lms, "d_lambda")
    _check_blocks(f, block, "d_lambda")
    c = f.shape[1]
    if c < 2:
        raise UserError("d_lambda needs at least 2 bands")
    i, j = torch.triu_indices(c, c, 1, device=f.device)
    qf, qm = _band_pair_q(f, block), _band_pair_q(m, block)
    diff = (qf[:, i, j] - qm[:, i, j]).abs() ** p
    return _out((diff.sum(1) / i.numel()) ** (1 / p), single)


def pan_lowpass(pan: torch.Tensor, ratio: int = 4) -> torch.Tensor:
    """D_S's low-pass PAN (toolbox 1.0): interp23tap(imresize(PAN, 1/ratio), ratio), MATLAB bicubic
    with antialiasing."""
    from panfw.ops.resample import imresize, interp23tap

    return interp23tap(imresize(pan, scale=1 / ratio, method="bicubic", antialias=True), ratio)


def _pan_batched(pan: torch.Tensor, like: torch.Tensor, what: str) -> torch.Tensor:
    p = pan if isinstance(pan, torch.Tensor) else torch.as_tensor(pan)
    if p.dim() == 2:
        p = p[None]
    p, _ = _batched(p, what)
    if p.shape[1] != 1 or p.shape[0] != like.shape[0] or p.shape[-2:] != like.shape[-2:]:
        raise UserError(f"{what}: pan {tuple(pan.shape)} must be one band on the fused grid "
                        f"({like.shape[0]}, 1, {like.shape[2]}, {like.shape[3]})")
    return p.to(like.device)


def d_s(fused: torch.Tensor, lms: torch.Tensor, pan: torch.Tensor, ratio: int = 4, block: int = 32,
        q: float = 1, pan_low: torch.Tensor | None = None) -> torch.Tensor:
    """Spatial distortion D_S (toolbox 1.0 option of ``D_s``): per band |Q(F_k, PAN) - Q(lms_k, P~)|^q
    averaged over bands, ^(1/q), Q the mean UIQI over distinct blocks at PAN scale,
    P~ = ``pan_low`` if given, else interp23tap(imresize(PAN, 1/ratio), ratio) (``pan_lowpass``)."""
    f, m, single = _pair(fused, lms, "d_s")
    _check_blocks(f, block, "d_s")
    p = _pan_batched(pan, f, "d_s")
    p_low = pan_lowpass(p, ratio) if pan_low is None else _pan_batched(pan_low, f, "d_s pan_low")
    q_high = uqi_blocks(f, p, block).flatten(2).mean(2)
    q_low = uqi_blocks(m, p_low, block).flatten(2).mean(2)
    return _out(((q_high - q_low).abs() ** q).mean(1) ** (1 / q), single)


def qnr(fused: torch.Tensor, lms: torch.Tensor, pan: torch.Tensor, ratio: int = 4, block: int = 32,
        p: float = 1, q: float = 1, alpha: float = 1, beta: float = 1) -> torch.Tensor:
    """QNR = (1 - D_lambda)^alpha (1 - D_S)^beta (toolbox 1.0 options)."""
    dl = d_lambda(fused, lms, block, p)
    ds = d_s(fused, lms, pan, ratio, block, q)
    return (1 - dl) ** alpha * (1 - ds) ** beta


def d_lambda_k(fused: torch.Tensor, lms: torch.Tensor, gains: Sequence[float] | str, ratio: int = 4,
               block: int = 32) -> torch.Tensor:
    """Khan's spectral distortion D_lambda^K = 1 - Q2n(lms, MTF(fused)): the fused image filtered by
    the MS MTF bank (``gains``: one per band, or a sensor name), not decimated (toolbox
    ``D_lambda_K``). Feed DN."""
    from panfw.ops.mtf import mtf_filter

    f, m, single = _pair(fused, lms, "d_lambda_k")
    _check_blocks(f, block, "d_lambda_k")
    return _out(1 - q2n(mtf_filter(f, gains, ratio), m, block), single)


def hqnr(fused: torch.Tensor, lms: torch.Tensor, pan: torch.Tensor, gains: Sequence[float] | str,
         ratio: int = 4, block: int = 32) -> torch.Tensor:
    """Hybrid QNR = (1 - D_lambda^K)(1 - D_S) (toolbox ``HQNR``). Feed DN."""
    return (1 - d_lambda_k(fused, lms, gains, ratio, block)) * (1 - d_s(fused, lms, pan, ratio, block))


def fr_indices(fused: torch.Tensor, ms: torch.Tensor, pan: torch.Tensor, gains: Sequence[float] | str,
               ratio: int = 4, lms: torch.Tensor | None = None, block: int = 32,
               bit_depth: int | None = None) -> dict[str, torch.Tensor]:
    """The toolbox's ``indexes_evaluation_FS`` (both flagQNR calls) on DN images: D_lambda, D_S, QNR,
    D_lambda_K, HQNR; ``lms`` = interp23tap(ms, ratio) when not given; ``bit_depth`` given =
    thresholding on."""
    from panfw.ops.resample import interp23tap

    f, single = _batched(fused, "fr_indices")
    if bit_depth is not None:
        f = threshold_dn(f, bit_depth)
    if lms is None:
        m, _ = _batched(ms, "fr_indices ms")
        lms = interp23tap(m.to(f.device), ratio)
    m, _ = _batched(lms, "fr_indices lms")
    dl = d_lambda(f, m, block)
    ds = d_s(f, m, pan, ratio, block)
    dk = d_lambda_k(f, m, gains, ratio, block)
    out = {"D_lambda": dl, "D_S": ds, "QNR": (1 - dl) * (1 - ds), "D_lambda_K": dk, "HQNR": (1 - dk) * (1 - ds)}
    return {k: _out(v, single) for k, v in out.items()}
