"""SSIM with a Gaussian window: the one implementation shared by the SSIM loss and the SSIM metric.

Statistics follow Wang et al. (2004): local means, variances and covariance under a normalised
Gaussian window (default 11x11, sigma 1.5), ``C1 = (k1 L)^2``, ``C2 = (k2 L)^2`` with ``L`` the data
range. The window is separable, so it is applied as two 1-D depth-wise convolutions (the same result
as the 2-D window, at a fraction of the cost).
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
    # one filtering pass over the five statistics' inputs
    stats = _blur(torch.cat([x, y, x * x, y * y, x * y], dim=1), g, padding)
    mu_x, mu_y, xx, yy, xy = stats.split(c, dim=1)
    mu_xx, mu_yy, mu_xy = mu_x * mu_x, mu_y * mu_y, mu_x * mu_y
    c1, c2 = (k1 * data_range) ** 2, (k2 * data_range) ** 2
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
