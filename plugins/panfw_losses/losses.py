"""Pixel losses and their weighted composition.

PanTiny's paper loss (Eq. 5-8) is ``1.5 charbonnier + 4 ssim + 1.5 focal``; the released training
code actually ran ``3 l1 + 4 ssim`` (its ``focal`` key fell back to a second L1). Both are recipes.
Inputs are predictions and targets in [0,1]; every loss returns a scalar mean.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

import panfw
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


class WeightedLoss(nn.Module):
    """Sum of weight x term; after each call ``last_terms`` maps term names to their (detached) values."""

    def __init__(self, terms: list[tuple[str, float, nn.Module]]) -> None:
        super().__init__()
        if not terms:
            raise UserError("loss.terms: a weighted loss needs at least one term with a non-zero weight")
        self.names = [name for name, _, _ in terms]
        self.weights = [float(w) for _, w, _ in terms]
        self.terms = nn.ModuleList(term for _, _, term in terms)
        self.last_terms: dict[str, torch.Tensor] = {}

    def forward(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        total, values = 0.0, {}
        for name, weight, term in zip(self.names, self.weights, self.terms):
            value = term(pred, target)
            values[name] = value.detach()
            total = total + weight * value
        self.last_terms = values
        return total

    def extra_repr(self) -> str:
        return " + ".join(f"{w:g}*{n}" for n, w in zip(self.names, self.weights))


def _term_fields(term: Any) -> tuple[str, float, dict]:
    """(name, weight, options) of a tuple, a recipe LossTerm, or a TOML-style table."""
    if isinstance(term, Mapping):
        options = {k: v for k, v in term.items() if k not in ("name", "weight")}
        return term["name"], term.get("weight", 1.0), options
    if isinstance(term, tuple | list):
        name, weight, *options = term
        return name, weight, dict(options[0]) if options else {}
    return term.name, term.weight, dict(term.options)


def build_loss(terms: Iterable[Any]) -> WeightedLoss:
    """The weighted sum of registered losses: terms are (name, weight, options) tuples, recipe
    ``LossTerm`` objects or {"name", "weight", ...options} tables. Zero-weight terms are left out."""
    built, seen = [], set()
    for i, term in enumerate(terms):
        name, weight, options = _term_fields(term)
        if weight == 0:
            continue
        try:
            module = panfw.create_loss(name, **options)
        except UserError as exc:
            raise UserError(f"loss.terms[{i}]: {exc}") from None
        key = name if name not in seen else f"{name}_{i}"
        seen.add(key)
        built.append((key, weight, module))
    return WeightedLoss(built)


def weighted(terms: list) -> nn.Module:
    """Weighted sum of registered losses: terms = [{name = "l1", weight = 3.0}, {name = "ssim", ...}]."""
    return build_loss(terms)


LOSSES = {"l1": l1, "charbonnier": charbonnier, "ssim": ssim_loss, "focal": focal, "weighted": weighted}
