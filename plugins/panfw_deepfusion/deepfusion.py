"""DeepFusion: the Pan-Mamba style multi-layer PAN fusion that PanTiny's Table 7 ablates.

Each layer is a channel cross-attention: queries from the features (1x1 then a full 3x3 conv), keys
and values from the PAN (1x1 to 2 x dim, then 3x3 depth-wise), Restormer's transposed attention with
a learnable temperature, a 1x1 projection; the layer adds the layer-normalised result to the running
features. Five layers at dim 28 hold 46,210 parameters (PanTiny Big with it: 113,590).
"""

from __future__ import annotations

import torch
from torch import nn

from panfw.layers import LayerNorm2d, channel_attention, conv1x1, conv3x3, resize_to


class CrossAttention(nn.Module):
    """One DeepFusion layer: feat + LN(proj(attention(q(feat), k(PAN), v(PAN))))."""

    # FP16 only: the L2 norm over H*W pixels overflows FP16 on large images (as in ChannelAttention)
    keep_fp32 = ("fp16",)

    def __init__(self, dim: int, pan_channels: int = 1, heads: int = 2) -> None:
        super().__init__()
        self.heads = heads
        self.temperature = nn.Parameter(torch.ones(heads, 1, 1))
        self.q = nn.Sequential(conv1x1(dim, dim), conv3x3(dim, dim))
        self.kv = nn.Sequential(conv1x1(pan_channels, 2 * dim), conv3x3(2 * dim, 2 * dim, groups=2 * dim))
        self.project_out = conv1x1(dim, dim)
        self.norm = LayerNorm2d(dim, eps=1e-5)

    def forward(self, feat: torch.Tensor, pan: torch.Tensor) -> torch.Tensor:
        k, v = self.kv(pan).chunk(2, dim=1)
        cross = channel_attention(self.q(feat), k, v, self.heads, self.temperature)
        return feat + self.norm(self.project_out(cross))


class DeepFusion(nn.Module):
    """A stack of PAN cross-attention layers."""

    def __init__(self, dim: int, pan_channels: int = 1, layers: int = 5, heads: int = 2) -> None:
        super().__init__()
        self.layers = nn.ModuleList(CrossAttention(dim, pan_channels, heads) for _ in range(layers))

    def forward(self, feat: torch.Tensor, pan: torch.Tensor) -> torch.Tensor:
        pan = resize_to(pan, feat)
        for layer in self.layers:
            feat = layer(feat, pan)
        return feat


def deepfusion(dim: int, pan_channels: int = 1, layers: int = 5, heads: int = 2) -> nn.Module:
    """DeepFusion (Pan-Mamba style): 5 layers of channel cross-attention from the features to the PAN."""
    return DeepFusion(dim, pan_channels, layers, heads)
