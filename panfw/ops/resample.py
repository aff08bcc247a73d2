"""Resampling as the toolbox does it: decimation on the 4i+2 grid, the 23-tap interpolator,
MATLAB-exact ``imresize`` (bicubic / bilinear / nearest), plus torch/PIL-style bicubic up/down
sampling for data making (the PanTiny paper's TIFF pipeline)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from functools import lru_cache

import numpy as np
import torch
import torch.nn.functional as F

__all__ = ["decimate", "interp23tap", "imresize", "upsample_bicubic", "downsample_bicubic",
           "INTERP23TAP_HALF"]

# Half of the 23-tap kernel, centre first (Aiazzi et al.); the full kernel is 2x this, mirrored.
INTERP23TAP_HALF = (0.5, 0.305334091185, 0.0, -0.072698593239, 0.0, 0.021809577942, 0.0,
                    -0.005192756653, 0.0, 0.000807762146, 0.0, -0.000060081482)


def decimate(x: torch.Tensor, ratio: int = 4) -> torch.Tensor:
    """Keep rows/cols ``ratio//2 + ratio*i`` (MATLAB ``imresize(x, 1/ratio, 'nearest')``: 4i+2 for 4)."""
    r = int(ratio)
    return x[..., r // 2::r, r // 2::r]


def _interp23_odd_taps() -> tuple[tuple[int, float], ...]:
    """(shift, weight) pairs of the 23-tap kernel's non-zero off-centre taps, for the polyphase form."""
    full = [2.0 * v for v in INTERP23TAP_HALF]  # taps 0..11; the kernel is symmetric
    # a sample between two LR samples i and i+1 sees tap j (odd) applied to LR sample i + (1 - j) / 2
    return tuple(((1 - j) // 2, full[abs(j)]) for j in range(-11, 12, 2))


def _upsample2_axis(x: torch.Tensor, dim: int, odd: bool) -> torch.Tensor:
    """One x2 stage of interp23tap along ``dim`` in polyphase form: the LR samples are kept, the
    samples between them are the 12 odd taps applied to circularly shifted LR samples. This equals
    filtering the zero-stuffed signal with the 23-tap kernel (circular borders) at a quarter of the cost."""
    between = None
    for shift, weight in _interp23_odd_taps():
        term = weight * x.roll(-shift, dims=dim)
        between = term if between is None else between + term
    if odd:  # LR sample i at 2i+1: the new sample at 2i lies between LR samples i-1 and i
        pair = (between.roll(1, dims=dim), x)
    else:  # LR sample i at 2i, the new one at 2i+1
        pair = (x, between)
    dim = dim % x.dim()
    return torch.stack(pair, dim=dim + 1).flatten(dim, dim + 1)


def interp23tap(x: torch.Tensor, ratio: int = 4) -> torch.Tensor:
    """Upsample (..., C, h, w) by a power-of-two ratio with the toolbox's 23-tap interpolator
    (circular borders; LR pixel i lands at ratio*i + ratio//2, so decimate() inverts it)."""
    r = int(ratio)
    if r < 1 or r & (r - 1):
        raise ValueError(f"interp23tap needs a power-of-two ratio, got {ratio}")
    if r == 1:
        return x
    shape = tuple(x.shape)
    if x.dim() < 2:
        raise ValueError(f"expected an image tensor (..., H, W), got shape {shape}")
    y = x
    for stage in range(int(math.log2(r))):
        y = _upsample2_axis(_upsample2_axis(y, -1, odd=stage == 0), -2, odd=stage == 0)
    return y


# ---- MATLAB imresize -------------------------------------------------------------------------

def _cubic(x: np.ndarray) -> np.ndarray:
    ax = np.abs(x)
    ax2, ax3 = ax * ax, ax * ax * ax
    return ((1.5 * ax3 - 2.5 * ax2 + 1.0) * (ax <= 1)
            + (-0.5 * ax3 + 2.5 * ax2 - 4.0 * ax + 2.0) * ((ax > 1) & (ax <= 2)))


def _triangle(x: np.ndarray) -> np.ndarray:
    return (x + 1.0) * ((x >= -1) & (x < 0)) + (1.0 - x) * ((x >= 0) & (x <= 1))


def _box(x: np.ndarray) -> np.ndarray:
    return ((x >= -0.5) & (x < 0.5)).astype(np.float64)


_KERNELS = {"bicubic": (_cubic, 4.0), "bilinear": (_triangle, 2.0), "nearest": (_box, 1.0)}


@lru_cache(maxsize=128)
def _contributions(in_len: int, out_len: int, scale: float, method: str, antialias: bool):
    """MATLAB imresize's contributions(): (out_len, P) input indices (0-based, symmetric borders)
    and normalised weights."""
    kernel, width = _KERNELS[method]
    if scale < 1 and antialias:
        def h(v):
            return scale * kernel(scale * v)
        width = width / scale
    else:
        h = kernel
    x = np.arange(1, out_len + 1, dtype=np.float64)
    u = x / scale + 0.5 * (1.0 - 1.0 / scale)
    left = np.floor(u - width / 2.0)
    p = int(math.ceil(width)) + 2
    ind = left[:, None] + np.arange(p)[None, :]
    w = h(u[:, None] - ind)
    w = w / w.sum(axis=1, keepdims=True)
    aux = np.concatenate([np.arange(in_len), np.arange(in_len - 1, -1, -1)])
    ind = aux[np.mod(ind.astype(np.int64) - 1, 2 * in_len)]
    keep = np.any(w != 0, axis=0)
    return ind[:, keep], w[:, keep]


@lru_cache(maxsize=64)
def _dense_weights(in_len: int, out_len: int, scale: float, method: str, antialias: bool) -> np.ndarray:
    ind, w = _contributions(in_len, out_len, scale, method, antialias)
    m = np.zeros((out_len, in_len))
    np.add.at(m, (np.repeat(np.arange(out_len), ind.shape[1]), ind.ravel()), w.ravel())
    return m


def _resize_dim(x: torch.Tensor, dim: int, out_len: int, scale: float, method: str,
                antialias: bool) -> torch.Tensor:
    in_len = x.shape[dim]
    if in_len * out_len <= 1 << 21:  # small: one matrix product
        m = torch.as_tensor(_dense_weights(in_len, out_len, scale, method, antialias), dtype=x.dtype,
                            device=x.device)
        return m @ x if dim == -2 else x @ m.T
    ind, w = _contributions(in_len, out_len, scale, method, antialias)
    ind_t = torch.from_numpy(ind).to(x.device)
    w_t = torch.from_numpy(w).to(dtype=x.dtype, device=x.device)
    shape = [1] * x.dim()
    shape[dim] = out_len
    out = None
    for j in range(ind.shape[1]):
        term = x.index_select(dim, ind_t[:, j]) * w_t[:, j].view(shape)
        out = term if out is None else out + term
    return out


def imresize(x: torch.Tensor, scale: float | Sequence[float] | None = None,
             size: Sequence[int] | None = None, method: str = "bicubic",
             antialias: bool = True) -> torch.Tensor:
    """MATLAB-exact ``imresize`` of the last two dims: Keys cubic (a = -0.5), triangle or box
    kernel, widened by 1/scale when shrinking with ``antialias`` (MATLAB's default; never for
    "nearest", as in MATLAB), symmetric borders. Give ``scale`` (output = ceil(scale * size)) or
    ``size`` (H, W)."""
    if method not in _KERNELS:
        raise ValueError(f"unknown imresize method {method!r}; accepted: {', '.join(_KERNELS)}")
    if x.dim() < 2:
        raise ValueError(f"expected an image tensor (..., H, W), got shape {tuple(x.shape)}")
    if not x.is_floating_point():
        x = x.to(torch.float64)
    h, w = x.shape[-2:]
    if (scale is None) == (size is None):
        raise ValueError("give exactly one of scale or size")
    if size is not None:
        oh, ow = int(size[0]), int(size[1])
        sh, sw = oh / h, ow / w
    else:
        sh, sw = (float(scale), float(scale)) if np.isscalar(scale) else (float(scale[0]), float(scale[1]))
        oh, ow = int(math.ceil(sh * h)), int(math.ceil(sw * w))
    aa = bool(antialias) and method != "nearest"
    # MATLAB resizes the dimension with the smaller scale first
    order = [(-2, oh, sh), (-1, ow, sw)] if sh <= sw else [(-1, ow, sw), (-2, oh, sh)]
    for dim, n, s in order:
        x = _resize_dim(x, dim, n, s, method, aa)
    return x


# ---- torch / PIL-style bicubic ---------------------------------------------------------------

def _interp(x: torch.Tensor, scale: float) -> torch.Tensor:
    shape = tuple(x.shape)
    x4 = x.reshape(-1, 1, *shape[-2:]) if x.dim() == 2 else x.reshape(-1, *shape[-3:])
    y = F.interpolate(x4, scale_factor=scale, mode="bicubic", align_corners=False, antialias=True)
    return y.reshape(*shape[:-2], *y.shape[-2:])


def upsample_bicubic(x: torch.Tensor, ratio: int = 4) -> torch.Tensor:
    """PIL-style bicubic upsampling (a = -0.5, edge-clamped), as the PanTiny paper's ``bms``."""
    return _interp(x, float(ratio))


def downsample_bicubic(x: torch.Tensor, ratio: int = 4) -> torch.Tensor:
    """PIL-style antialiased bicubic downsampling (a = -0.5, support widened by the ratio)."""
    return _interp(x, 1.0 / float(ratio))
