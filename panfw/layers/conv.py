"""Convolution helpers and PAN resizing onto a feature grid."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def conv1x1(cin: int, cout: int, bias: bool = False) -> nn.Conv2d:
    """A 1x1 convolution, bias-free unless asked (the PanTiny/Restormer convention)."""
    return nn.Conv2d(cin, cout, 1, bias=bias)


def conv3x3(cin: int, cout: int, bias: bool = False, groups: int = 1) -> nn.Conv2d:
    """A 3x3 convolution with padding 1 (size kept); ``groups=cin`` makes it depth-wise."""
    return nn.Conv2d(cin, cout, 3, padding=1, bias=bias, groups=groups)


def resize_to(x: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
    """``x`` bilinearly resized (align_corners=False) onto ``ref``'s H x W; ``x`` itself when equal.

    The test compares the shapes' symbols, so torch.export keeps H and W dynamic."""
    if x.shape[-2:] == ref.shape[-2:]:
        return x
    return F.interpolate(x, size=ref.shape[-2:], mode="bilinear", align_corners=False)
