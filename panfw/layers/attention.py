"""Restormer's channel ("transposed") attention: the function and the MDTA module."""

from __future__ import annotations

import torch
from torch import nn

from panfw.layers.conv import conv1x1, conv3x3


def channel_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, heads: int,
                      temperature: torch.Tensor) -> torch.Tensor:
    """Per head, a (C/heads x C/heads) softmax map between the channels of q and k (each L2-normalised
    over the pixels, scaled by ``temperature`` of shape (heads, 1, 1), no 1/sqrt(d)), applied to v."""
    hw = v.shape[-2:]
    q, k, v = (t.flatten(2).unflatten(1, (heads, -1)) for t in (q, k, v))  # (B, heads, C/heads, HW)
    # normalise the small (C/heads x C/heads) product instead of q and k themselves: the same map as
    # F.normalize first (max(|x|, 1e-12)), two fewer passes over (B, C, HW) forward and backward
    # (10% of a PanTiny Big training step on CPU, docs/benchmarks.md)
    nq = torch.linalg.vector_norm(q, dim=-1, keepdim=True).clamp_min(1e-12)
    nk = torch.linalg.vector_norm(k, dim=-1, keepdim=True).clamp_min(1e-12)
    attn = ((q @ k.transpose(-2, -1)) / (nq * nk.transpose(-2, -1)) * temperature).softmax(dim=-1)
    return (attn @ v).flatten(1, 2).unflatten(-1, hw)


class ChannelAttention(nn.Module):
    """MDTA: 1x1 to q,k,v, 3x3 depth-wise, channel attention with a learnable temperature, 1x1 out."""

    # FP16 only: the L2 norm sums H*W squares, beyond FP16's range (65504) on large images
    keep_fp32 = ("fp16",)

    def __init__(self, dim: int, heads: int, in_dim: int | None = None, bias: bool = False) -> None:
        super().__init__()
        self.heads = heads
        self.temperature = nn.Parameter(torch.ones(heads, 1, 1))
        self.qkv = conv1x1(in_dim or dim, 3 * dim, bias=bias)
        self.qkv_dwconv = conv3x3(3 * dim, 3 * dim, bias=bias, groups=3 * dim)
        self.project_out = conv1x1(dim, dim, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        q, k, v = self.qkv_dwconv(self.qkv(x)).chunk(3, dim=1)
        return self.project_out(channel_attention(q, k, v, self.heads, self.temperature))
