"""Feed-forward blocks on (B, C, H, W) features."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from panfw.layers.conv import conv1x1, conv3x3


class GatedFeedForward(nn.Module):
    """GDFN: 1x1 to 2 x hidden, 3x3 depth-wise, GELU(x1) * x2 (exact GELU), 1x1 to ``out_dim``."""

    def __init__(self, dim: int, hidden: int, out_dim: int | None = None, bias: bool = False) -> None:
        super().__init__()
        self.project_in = conv1x1(dim, 2 * hidden, bias=bias)
        self.dwconv = conv3x3(2 * hidden, 2 * hidden, bias=bias, groups=2 * hidden)
        self.project_out = conv1x1(hidden, out_dim or dim, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x1, x2 = self.dwconv(self.project_in(x)).chunk(2, dim=1)
        return self.project_out(F.gelu(x1) * x2)
