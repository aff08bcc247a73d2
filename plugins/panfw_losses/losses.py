"""Reference pixel losses: ``forward(pred, target)``; the core composes a recipe's weighted terms
(``panfw.engine.objective``).

PanTiny's paper loss (Eq. 5-8) is ``1.5 charbonnier + 4 ssim + 1.5 focal``; the released training
code actually ran ``3 l1 + 4 ssim`` (its ``focal`` key fell back to a second L1). Both are recipes.
Inputs are predictions and targets in [0,1]; every loss returns a scalar mean.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from panfw.errors import UserError
from panfw.ops.ssim import PADDINGS, ssim


class L1Loss(nn.Module):
    """Mean absolute error."""

    def forward(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return F.l1_loss(pred, target)


class CharbonnierLoss(nn.Module):
    """Charbonnier (paper Eq. 6): mean(sqrt(d^2 + eps^2)), a smooth L1."""

    def __init__(self, eps: float = 1e-6) -> None:
        super().__init__()
        self.eps = eps

    def forward(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return torch.sqrt((pred - target) ** 2 + self.eps**2).mean()


class SSIMLoss(nn.Module):
    """1 - SSIM (paper Eq. 7), Gaussian window, per channel, mean over batch, bands and pixels."""

    def __init__(self, window_size: int = 11, sigma: float = 1.5, data_range: float = 1.0,
                 padding: str = "zero", k1: float = 0.01, k2: float = 0.03) -> None:
        super().__init__()
        if padding not in PADDINGS:
            raise UserError(f"loss 'ssim': padding {padding!r} is not accepted; accepted: {', '.join(PADDINGS)}")
        self.kwargs = dict(data_range=data_range, window_size=window_size, sigma=sigma, padding=padding,
                           k1=k1, k2=k2)

    def forward(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return 1 - ssim(pred, target, **self.kwargs)


class FocalLoss(nn.Module):
    """Focal-inspired regression loss (paper Eq. 8): mean((scale d)^r1 / scale * d), d = |pred - target|.

    With r1 > 1 large errors weigh more; ``scale`` 255 takes the [0,1] error to 8-bit levels before
    the power. d is clamped to at least 1e-8 (the reference class does) so the power's gradient is finite.
    """

    def __init__(self, r1: float = 1.1, scale: float = 255.0) -> None:
        super().__init__()
        self.r1, self.scale = r1, scale

    def forward(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        d = (pred - target).abs().clamp_min(1e-8)
        return ((self.scale * d) ** self.r1 / self.scale * d).mean()


def l1() -> nn.Module:
    """L1: mean absolute error."""
    return L1Loss()


def charbonnier(eps: float = 1e-6) -> nn.Module:
    """Charbonnier: mean(sqrt(d^2 + eps^2)) (PanTiny paper Eq. 6, eps 1e-6)."""
    return CharbonnierLoss(eps)


def ssim_loss(window_size: int = 11, sigma: float = 1.5, data_range: float = 1.0, padding: str = "zero",
              k1: float = 0.01, k2: float = 0.03) -> nn.Module:
    """SSIM loss 1 - SSIM: 11x11 Gaussian (sigma 1.5), C1 = 0.01^2, C2 = 0.03^2, zero padding."""
    return SSIMLoss(window_size, sigma, data_range, padding, k1, k2)


def focal(r1: float = 1.1, scale: float = 255.0) -> nn.Module:
    """Focal regression loss: mean((255 d)^r1 / 255 * d), r1 1.1 (PanTiny paper Eq. 8)."""
    return FocalLoss(r1, scale)


LOSSES = {"l1": l1, "charbonnier": charbonnier, "ssim": ssim_loss, "focal": focal}
