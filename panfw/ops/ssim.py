"""SSIM with a Gaussian window: the one implementation shared by the SSIM loss and the SSIM metric.

Statistics follow Wang et al. (2004): local means, variances and covariance under a normalised
Gaussian window (default 11x11, sigma 1.5), ``C1 = (k1 L)^2``, ``C2 = (k2 L)^2`` with ``L`` the data
range. The window is separable, so it is applied as two 1-D passes (the same result as the 2-D window, at
a fraction of the cost): depth-wise convolutions where gradients are needed or off the CPU, and on
the CPU without gradients (the metric, float64) one image plane at a time as 11 shifted
multiply-adds per direction, the five statistics and the map formed while the plane is in cache —
about 4x faster than the depth-wise ``conv2d``, which has no fast float64 CPU kernel (see
docs/benchmarks.md).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

PADDINGS = ("zero", "reflect", "valid")
REDUCTIONS = ("mean", "none")


def gaussian_window_1d(size: int = 11, sigma: float = 1.5, dtype: torch.dtype = torch.float32,
                       device: torch.device | str | None = None) -> torch.Tensor:
    """The normalised 1-D Gaussian of ``size`` taps (sums to 1), centred on the middle tap."""
    x = torch.arange(size, dtype=torch.float64, device=device) - (size - 1) / 2
    g = torch.exp(-(x**2) / (2 * sigma**2))
    return (g / g.sum()).to(dtype)


def gaussian_window(size: int = 11, sigma: float = 1.5, dtype: torch.dtype = torch.float32,
                    device: torch.device | str | None = None) -> torch.Tensor:
    """The normalised 2-D Gaussian window (size, size), the outer product of the 1-D one."""
    g = gaussian_window_1d(size, sigma, torch.float64, device)
    return torch.outer(g, g).to(dtype)


def _blur(x: torch.Tensor, g: torch.Tensor, padding: str) -> torch.Tensor:
    """Depth-wise separable Gaussian filtering of (B,C,H,W) with the 1-D window ``g``."""
    c, k = x.shape[1], g.numel()
    half = k // 2
    if padding == "reflect":
        x = F.pad(x, (half, half, half, half), mode="reflect")
    pad = half if padding == "zero" else 0
    x = F.conv2d(x, g.view(1, 1, k, 1).expand(c, 1, k, 1), padding=(pad, 0), groups=c)
    return F.conv2d(x, g.view(1, 1, 1, k).expand(c, 1, 1, k), padding=(0, pad), groups=c)


def _filter_rows_(out: torch.Tensor, src: torch.Tensor, taps: list[float], pad: int) -> None:
    """out[..., j] = sum_i taps[i] src[..., j + i - pad], zeros outside ``src`` (a 1-D correlation
    along the last dimension as shifted multiply-adds; works on transposed views too)."""
    w_out, w_src = out.shape[-1], src.shape[-1]
    torch.mul(src[..., :w_out], taps[pad], out=out)  # the unshifted tap covers every output
    for i, t in enumerate(taps):
        d = i - pad
        lo, hi = max(0, -d), min(w_out, w_src - d)
        if d and lo < hi:
            out[..., lo:hi].add_(src[..., lo + d:hi + d], alpha=t)


def _blur_plane(src: torch.Tensor, taps: list[float], pad: int, tmp: torch.Tensor, out: torch.Tensor) -> None:
    """Separable filtering of one (H, W) plane: rows into ``tmp``, then columns (transposed views) into ``out``."""
    _filter_rows_(tmp, src, taps, pad)
    _filter_rows_(out.t(), tmp.t(), taps, pad)


def _ssim_map_planes(x: torch.Tensor, y: torch.Tensor, g: torch.Tensor, padding: str, c1: float,
                     c2: float) -> torch.Tensor:
    """ssim_map without autograd, one (H, W) plane at a time, so the statistics stay in cache."""
    taps = g.tolist()
    half = len(taps) // 2
    b, c, h, w = x.shape
    hs, ws = (h + 2 * half, w + 2 * half) if padding == "reflect" else (h, w)
    pad = half if padding == "zero" else 0
    ho, wo = hs + 2 * pad - 2 * half, ws + 2 * pad - 2 * half
    out = x.new_empty(b, c, ho, wo)
    tmp, stats, prod = x.new_empty(hs, wo), x.new_empty(5, ho, wo), x.new_empty(hs, ws)
    for i in range(b):
        for j in range(c):
            xp, yp = x[i, j], y[i, j]
            if padding == "reflect":
                xp, yp = (F.pad(p[None], (half,) * 4, mode="reflect")[0] for p in (xp, yp))
            _blur_plane(xp, taps, pad, tmp, stats[0])
            _blur_plane(yp, taps, pad, tmp, stats[1])
            for k, (u, v) in enumerate(((xp, xp), (yp, yp), (xp, yp))):
                _blur_plane(torch.mul(u, v, out=prod), taps, pad, tmp, stats[2 + k])
            mu_x, mu_y, xx, yy, xy = stats
            mu_xy, mu_xx, mu_yy = mu_x * mu_y, mu_x * mu_x, mu_y * mu_y
            num = (2 * mu_xy + c1) * (2 * (xy - mu_xy) + c2)
            den = (mu_xx + mu_yy + c1) * ((xx - mu_xx) + (yy - mu_yy) + c2)
            torch.div(num, den, out=out[i, j])
    return out


def ssim_map(x: torch.Tensor, y: torch.Tensor, data_range: float = 1.0, window_size: int = 11,
             sigma: float = 1.5, padding: str = "zero", k1: float = 0.01, k2: float = 0.03) -> torch.Tensor:
    """The per-pixel SSIM map of two (B,C,H,W) images, computed per channel.

    ``padding``: "zero" (pytorch-ssim and the PanTiny loss: same size, zeros outside),
    "reflect" (kornia: same size), "valid" (no padding: the map shrinks by window_size - 1).
    """
    if padding not in PADDINGS:
        raise ValueError(f"ssim padding {padding!r} is not accepted; accepted: {', '.join(PADDINGS)}")
    if x.shape != y.shape or x.dim() != 4:
        raise ValueError(f"ssim needs two (B,C,H,W) tensors of the same shape, got {tuple(x.shape)} "
                         f"and {tuple(y.shape)}")
    c = x.shape[1]
    g = gaussian_window_1d(window_size, sigma, x.dtype, x.device)
    c1, c2 = (k1 * data_range) ** 2, (k2 * data_range) ** 2
    if x.device.type == "cpu" and not (torch.is_grad_enabled() and (x.requires_grad or y.requires_grad)):
        return _ssim_map_planes(x, y.to(x.dtype), g, padding, c1, c2)
    # one filtering pass over the five statistics' inputs
    stats = _blur(torch.cat([x, y, x * x, y * y, x * y], dim=1), g, padding)
    mu_x, mu_y, xx, yy, xy = stats.split(c, dim=1)
    mu_xx, mu_yy, mu_xy = mu_x * mu_x, mu_y * mu_y, mu_x * mu_y
    num = (2 * mu_xy + c1) * (2 * (xy - mu_xy) + c2)
    den = (mu_xx + mu_yy + c1) * ((xx - mu_xx) + (yy - mu_yy) + c2)
    return num / den


def ssim(x: torch.Tensor, y: torch.Tensor, data_range: float = 1.0, window_size: int = 11,
         sigma: float = 1.5, padding: str = "zero", k1: float = 0.01, k2: float = 0.03,
         reduction: str = "mean") -> torch.Tensor:
    """Mean SSIM: a scalar over the batch ("mean") or one value per image, shape (B,) ("none")."""
    if reduction not in REDUCTIONS:
        raise ValueError(f"ssim reduction {reduction!r} is not accepted; accepted: {', '.join(REDUCTIONS)}")
    m = ssim_map(x, y, data_range, window_size, sigma, padding, k1, k2)
    return m.mean() if reduction == "mean" else m.flatten(1).mean(1)
