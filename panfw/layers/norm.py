"""Normalisation over the channels of (B, C, H, W) tensors."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class LayerNorm2d(nn.LayerNorm):
    """LayerNorm over the C channels of each pixel (Restormer's "WithBias" norm, biased variance).

    Normalises a channels-last view in place of Restormer's (B, HW, C) round trip; the same numbers
    as timm's ``LayerNorm2d`` and the same state_dict keys (``weight``, ``bias``)."""

    # low-precision variance after attention can overflow: exports keep it in FP32
    keep_fp32 = True

    def __init__(self, num_channels: int, eps: float = 1e-5, affine: bool = True) -> None:
        super().__init__(num_channels, eps=eps, elementwise_affine=affine)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.layer_norm(x.permute(0, 2, 3, 1), self.normalized_shape, self.weight, self.bias, self.eps)
        return x.permute(0, 3, 1, 2)


class HalfInstanceNorm(nn.InstanceNorm2d):
    """Affine InstanceNorm on the first half of the channels, the rest passed through (HINet's
    half-instance norm, in Pan-Mamba's and PanFlowNet's blocks); the state_dict keys of a plain
    ``InstanceNorm2d(channels // 2, affine=True)`` (``weight``, ``bias``)."""

    def __init__(self, channels: int) -> None:
        super().__init__(channels // 2, affine=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        normed, rest = x.split([self.num_features, x.shape[1] - self.num_features], dim=1)
        return torch.cat([super().forward(normed), rest], 1)
