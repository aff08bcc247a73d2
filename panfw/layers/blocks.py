"""Composite blocks: squeeze-excitation, residual conv block, Restormer transformer block."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from panfw.layers import cpu as _cpu
from panfw.layers.attention import ChannelAttention
from panfw.layers.conv import conv1x1
from panfw.layers.mlp import GatedFeedForward
from panfw.layers.norm import LayerNorm2d


class SqueezeExcite(nn.Sequential):
    """x * sigmoid(1x1(act(1x1(mean over H, W)))): a per-channel gate from the global average.

    The gate's layers are the Sequential's items (keys ``1.*`` and ``3.*``) so checkpoints of blocks
    that wrote the gate as a plain Sequential load unchanged."""

    def __init__(self, dim: int, reduction: int = 4, bias: bool = True,
                 act: Callable[[], nn.Module] = nn.ReLU) -> None:
        hidden = dim // reduction
        super().__init__(nn.AdaptiveAvgPool2d(1), conv1x1(dim, hidden, bias=bias), act(),
                         conv1x1(hidden, dim, bias=bias), nn.Sigmoid())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * super().forward(x)


class ResBlock(nn.Module):
    """x + gate(conv-act-conv(x)): a residual conv block, optionally with a squeeze-excitation gate.

    ``kernel`` 1 or 3 (odd sizes keep the grid), ``act`` a module factory, ``se_reduction`` adds
    ``SqueezeExcite`` on the branch, ``res_scale`` scales the branch (EDSR-style)."""

    def __init__(self, dim: int, kernel: int = 3, bias: bool = False,
                 act: Callable[[], nn.Module] = nn.ReLU, se_reduction: int | None = None,
                 res_scale: float = 1.0) -> None:
        super().__init__()
        pad = kernel // 2
        self.res = nn.Sequential(nn.Conv2d(dim, dim, kernel, padding=pad, bias=bias), act(),
                                 nn.Conv2d(dim, dim, kernel, padding=pad, bias=bias))
        self.gate = SqueezeExcite(dim, se_reduction) if se_reduction else nn.Identity()
        self.res_scale = res_scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        r = self.gate(self.res(x))
        return x + (r if self.res_scale == 1.0 else r * self.res_scale)


class TransformerBlock(nn.Module):
    """Pre-norm Restormer block: x + Attn(LN(x)), then x + FFN(LN(x)); FFN hidden int(dim * factor)."""

    def __init__(self, dim: int, heads: int, ffn_factor: float = 2.0, bias: bool = False) -> None:
        super().__init__()
        self.norm1 = LayerNorm2d(dim, eps=1e-5)
        self.attn = ChannelAttention(dim, heads, bias=bias)
        self.norm2 = LayerNorm2d(dim, eps=1e-5)
        self.ffn = GatedFeedForward(dim, int(dim * ffn_factor), bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if _cpu.applies(self, x):  # CPU inference: the same numbers, stripe by stripe (layers/cpu.py)
            return _cpu.transformer_block(self, x)
        x = x + self.attn(self.norm1(x))
        return x + self.ffn(self.norm2(x))
