"""MTF-matched filters as Vivone's toolbox builds them (genMTF, MTF_PAN, LPfilterGauss) and
depthwise 2-D filtering with the toolbox's border rules.

The kernels follow ``genMTF``: a Gaussian frequency response whose value at the MS Nyquist frequency
is the sensor's gain, peak-normalised, turned into a 41x41 FIR filter by MATLAB's ``fwind1`` window
method with a rotated Kaiser window (beta 0.5). Like the toolbox, the kernel is **not**
renormalised to unit sum (it sums to 0.99874 for a gain of 0.30).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from functools import lru_cache

import numpy as np
import torch
import torch.nn.functional as F

__all__ = ["mtf_kernel", "mtf_kernels", "filter2d", "pad2d", "mtf_filter", "mtf_filter_pan", "lowpass_gauss"]

BORDERS = ("replicate", "symmetric", "circular", "zero")


@lru_cache(maxsize=256)
def _mtf_kernel_np(gnyq: float, ratio: int, size: int, span: float) -> np.ndarray:
    if not 0.0 < gnyq < 1.0:
        raise ValueError(f"MTF Nyquist gain must lie in (0, 1), got {gnyq}")
    alpha = math.sqrt((span * (1.0 / ratio) / 2.0) ** 2 / (-2.0 * math.log(gnyq)))
    # fspecial('gaussian', size, alpha), peak-normalised (the frequency response Hd)
    t = np.arange(size, dtype=np.float64) - (size - 1) / 2.0
    g = np.exp(-(t[:, None] ** 2 + t[None, :] ** 2) / (2.0 * alpha**2))
    hd = g / g.max()
    # fwind1(Hd, kaiser(size)): ideal impulse response times the rotated 1-D window
    h = np.fft.fftshift(np.fft.ifft2(np.fft.ifftshift(hd))).real
    w1 = np.kaiser(size, 0.5)
    tw = np.linspace(-1.0, 1.0, size)
    r = np.sqrt(tw[:, None] ** 2 + tw[None, :] ** 2)
    w = np.where(r <= 1.0, np.interp(np.minimum(r, 1.0), tw, w1), 0.0)
    k = h * w
    k.setflags(write=False)
    return k


def mtf_kernel(gnyq: float, ratio: int = 4, size: int = 41, *, span: float | None = None) -> torch.Tensor:
    """The toolbox's MTF-matched kernel (size, size) in float64 for one Nyquist gain (not renormalised).

    ``span`` is the frequency-grid width in the Gaussian's alpha: ``size - 1`` (genMTF, default) or
    ``size`` (the toolbox's LPfilterGauss)."""
    span = float(size - 1 if span is None else span)
    return torch.from_numpy(_mtf_kernel_np(float(gnyq), int(ratio), int(size), span).copy())


def mtf_kernels(gains: Sequence[float], ratio: int = 4, size: int = 41) -> torch.Tensor:
    """Stack of genMTF kernels (C, size, size), float64, one per band gain."""
    return torch.stack([mtf_kernel(g, ratio, size) for g in gains])


def _pad_indices(n: int, p: int, border: str) -> torch.Tensor:
    idx = torch.arange(-p, n + p)
    if border == "circular":
        return idx % n
    if border == "symmetric":  # mirror with the edge sample repeated (MATLAB 'symmetric')
        idx = idx % (2 * n)
        return torch.where(idx < n, idx, 2 * n - 1 - idx)
    return idx.clamp(0, n - 1)  # replicate


def pad2d(x: torch.Tensor, ph: int, pw: int, border: str = "replicate") -> torch.Tensor:
    """Pad the last two dims by (ph, pw) on each side, any pad size; border replicate, symmetric,
    circular or zero."""
    if border not in BORDERS:
        raise ValueError(f"unknown border {border!r}; accepted: {', '.join(BORDERS)}")
    if ph == 0 and pw == 0:
        return x
    if border == "zero":
        return F.pad(x, (pw, pw, ph, ph))
    if border == "replicate" and x.dim() in (3, 4) and x.is_floating_point():
        return F.pad(x, (pw, pw, ph, ph), mode="replicate")
    h, w = x.shape[-2:]
    x = x.index_select(-2, _pad_indices(h, ph, border).to(x.device))
    return x.index_select(-1, _pad_indices(w, pw, border).to(x.device))


def _as_bchw(x: torch.Tensor) -> tuple[torch.Tensor, tuple[int, ...]]:
    if x.dim() < 2:
        raise ValueError(f"expected an image tensor (..., H, W), got shape {tuple(x.shape)}")
    shape = tuple(x.shape)
    if x.dim() == 2:
        return x[None, None], shape
    if x.dim() == 3:
        return x[None], shape
    return x.reshape(-1, *shape[-3:]), shape


def _good_size(n: int) -> int:
    """The smallest 2^a 3^b 5^c >= n (fast FFT lengths)."""
    best = 1 << max(0, (n - 1).bit_length())
    f5 = 1
    while f5 < best:
        f3 = f5
        while f3 < best:
            f2 = f3
            while f2 < n:
                f2 *= 2
            best = min(best, f2)
            f3 *= 3
        f5 *= 5
    return best


_KFFT_CACHE: dict = {}


def _fft_correlate(xp: torch.Tensor, k: torch.Tensor, key=None) -> torch.Tensor:
    """Valid-mode depthwise correlation of padded xp (B,C,H+kh-1,W+kw-1) with k (C,kh,kw) via FFT."""
    hp, wp = xp.shape[-2:]
    kh, kw = k.shape[-2:]
    s = (_good_size(hp), _good_size(wp))
    ck = None if key is None else (key, s, xp.dtype, str(xp.device))
    kf = _KFFT_CACHE.get(ck) if ck is not None else None
    if kf is None:
        kf = torch.fft.rfft2(torch.flip(k, (-2, -1)), s=s)
        if ck is not None:
            if len(_KFFT_CACHE) > 64:
                _KFFT_CACHE.clear()
            _KFFT_CACHE[ck] = kf
    if xp.device.type != "cpu" or xp.dim() != 4 or kf.shape[0] != xp.shape[1]:
        y = torch.fft.irfft2(torch.fft.rfft2(xp, s=s) * kf, s=s)
        return y[..., kh - 1:hp, kw - 1:wp]
    # on the CPU one plane at a time: its spectrum stays in cache (1.5-1.8x faster than the batch)
    out = xp.new_empty(*xp.shape[:2], hp - kh + 1, wp - kw + 1)
    for i in range(xp.shape[0]):
        for j in range(xp.shape[1]):
            out[i, j] = torch.fft.irfft2(torch.fft.rfft2(xp[i, j], s=s).mul_(kf[j]), s=s)[kh - 1:hp, kw - 1:wp]
    return out


def filter2d(x: torch.Tensor, kernels: torch.Tensor, border: str = "replicate",
             method: str = "auto", *, stride: int = 1, _key=None) -> torch.Tensor:
    """Depthwise 2-D correlation (MATLAB ``imfilter``) of (B,C,H,W) with (C,k,k) or (k,k) kernels,
    same output size; ``border`` replicate (toolbox), symmetric, circular or zero.

    ``stride`` s > 1 returns only the outputs at rows/cols s//2 + s*i (the filtered image decimated
    on the 4i+2 grid; "direct" then computes only those). ``method`` "direct" (conv2d), "fft" or
    "auto" (FFT for kernels of 15x15 and more: faster on CPU even when strided); all agree to
    round-off (about 1e-14 relative in float64)."""
    x4, shape = _as_bchw(x)
    c = x4.shape[1]
    k = kernels.to(dtype=x4.dtype, device=x4.device)
    if k.dim() == 2:
        k = k.expand(c, *k.shape)
    if k.shape[0] != c:
        raise ValueError(f"{k.shape[0]} kernels for {c} channels")
    kh, kw = k.shape[-2:]
    if kh % 2 == 0 or kw % 2 == 0:
        raise ValueError(f"kernel size must be odd, got {kh}x{kw}")
    xp = pad2d(x4, kh // 2, kw // 2, border)
    s = int(stride)
    if method == "auto":  # direct depthwise conv with 41x41 kernels is ~40x slower on CPU
        method = "fft" if kh * kw >= 225 else "direct"
    if s > 1 and method == "direct":
        off = s // 2
        return F.conv2d(xp[..., off:, off:], k[:, None], groups=c, stride=s).reshape(
            *shape[:-2], *((n - 1 - off) // s + 1 for n in shape[-2:]))
    if method == "fft":
        if xp.dtype in (torch.float16, torch.bfloat16):
            y = _fft_correlate(xp.float(), k.float(), _key).to(xp.dtype)
        else:
            y = _fft_correlate(xp, k, _key)
    elif method == "direct":
        y = F.conv2d(xp, k[:, None], groups=c)
    else:
        raise ValueError(f"unknown method {method!r}; accepted: auto, direct, fft")
    y = y.reshape(shape)
    return y[..., s // 2::s, s // 2::s] if s > 1 else y


def _gains_for(gains, n: int) -> list[float]:
    if isinstance(gains, str) or hasattr(gains, "mtf_ms"):
        from panfw.sensors import get_sensor

        return list(get_sensor(gains).gains(n))
    if isinstance(gains, (int, float)):
        return [float(gains)] * n
    gains = [float(g) for g in gains]
    if len(gains) != n:
        raise ValueError(f"{len(gains)} MTF gains for {n} bands")
    return gains


def mtf_filter(x: torch.Tensor, gains, ratio: int = 4, *, decimate: bool = False) -> torch.Tensor:
    """Per-band MTF filtering (toolbox ``MTF``): genMTF kernel per band, replicate borders, no decimation.

    ``gains`` is one gain per band (or a single float, or a sensor / sensor name: its first C gains).
    ``decimate=True`` returns the result on the ratio*i + ratio//2 grid (computed only there)."""
    c = x.shape[-3] if x.dim() >= 3 else 1
    g = tuple(_gains_for(gains, c))
    return filter2d(x, mtf_kernels(g, ratio), border="replicate", stride=int(ratio) if decimate else 1,
                    _key=("mtf", g, int(ratio)))


def mtf_filter_pan(pan: torch.Tensor, gnyq, ratio: int = 4, *, decimate: bool = False) -> torch.Tensor:
    """PAN MTF filtering (toolbox ``MTF_PAN``): one genMTF kernel for the PAN gain, replicate borders
    (``decimate=True``: only on the ratio*i + ratio//2 grid)."""
    if isinstance(gnyq, str) or hasattr(gnyq, "mtf_pan"):
        from panfw.sensors import get_sensor

        gnyq = get_sensor(gnyq).mtf_pan
    return filter2d(pan, mtf_kernel(float(gnyq), ratio), border="replicate",
                    stride=int(ratio) if decimate else 1, _key=("mtf", (float(gnyq),), int(ratio)))


def lowpass_gauss(x: torch.Tensor, ratio: int = 4) -> torch.Tensor:
    """The toolbox's ``LPfilterGauss`` (LPG): GNyq 0.3 with span = size, replicate borders, all channels."""
    return filter2d(x, mtf_kernel(0.3, ratio, 41, span=41), border="replicate", _key=("lpg", int(ratio)))
