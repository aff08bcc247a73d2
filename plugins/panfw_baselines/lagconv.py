"""LAGConv (Jin et al., "LAGConv: Local-context Adaptive Convolution Kernels with Global Harmonic Bias for
Pansharpening", AAAI 2022), DLPan-Toolbox / PanCollection's LAGNET (148,457 params at 4 bands).

A LAGConv layer modulates a static k x k kernel per pixel: a small branch (conv k x k in -> k², ReLU,
1x1, ReLU, 1x1, sigmoid) gives k² weights per pixel, shared by the input channels, that multiply each
pixel's unfolded neighbourhood before the static (out x in·k²) kernel; a global bias (average pool ->
1x1 in -> out, ReLU, 1x1) is added per image. Net: LAGConv (C+1) -> 32, ReLU, 5 residual blocks of
two LAGConvs, LAGConv 32 -> C, plus ``lms``.

PanCollection's ``train_step`` calls ``self(lms, pan)`` on ``forward(pan, lms)``, so it trained on
``cat(lms, pan)`` and added the PAN as the residual; panfw takes the arguments by name (residual on
``lms``, input ``cat(pan, lms)`` as the forward was written). The unfold costs 9x the feature memory,
as in the reference.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

PAPER = ("Jin, Zhang, Jiang, Deng, LAGConv: Local-context Adaptive Convolution Kernels with Global Harmonic "
         "Bias for Pansharpening, AAAI 2022")
CODE = "DLPan-Toolbox / PanCollection models/LAGConv/model.py"


class LAGConv2d(nn.Module):
    """Static kernel applied to neighbourhoods reweighted per pixel, plus a per-image global bias."""

    def __init__(self, cin: int, cout: int, kernel: int = 3) -> None:
        super().__init__()
        k2 = kernel * kernel
        self.kernel = kernel
        self.attention1 = nn.Sequential(nn.Conv2d(cin, k2, kernel, padding=kernel // 2), nn.ReLU(),
                                        nn.Conv2d(k2, k2, 1), nn.ReLU(), nn.Conv2d(k2, k2, 1), nn.Sigmoid())
        self.attention3 = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Conv2d(cin, cout, 1), nn.ReLU(),
                                        nn.Conv2d(cout, cout, 1))
        self.weight = nn.Parameter(torch.empty(cout, cin, kernel, kernel))
        nn.init.kaiming_uniform_(self.weight, a=5 ** 0.5)  # nn.Conv2d's default, as the reference's

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        k = self.kernel
        att = self.attention1(x).flatten(2)  # (B, k², HW): one weight per neighbour, shared by channels
        cols = F.unfold(x, k, padding=k // 2).unflatten(1, (c, k * k)) * att[:, None]  # (B, C, k², HW)
        y = torch.einsum("bnl,on->bol", cols.flatten(1, 2), self.weight.flatten(1))
        return y.unflatten(-1, (h, w)) + self.attention3(x)


class LACRB(nn.Module):
    """x + LAGConv(ReLU(LAGConv(x)))."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.conv1 = LAGConv2d(dim, dim)
        self.conv2 = LAGConv2d(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv2(torch.relu(self.conv1(x)))


class LAGNet(nn.Module):
    """lms + LAGConv(ResBlocks(ReLU(LAGConv(cat(pan, lms)))))."""

    def __init__(self, bands: int = 4, width: int = 32, blocks: int = 5) -> None:
        super().__init__()
        self.head_conv = LAGConv2d(bands + 1, width)
        self.blocks = nn.Sequential(*[LACRB(width) for _ in range(blocks)])
        self.tail_conv = LAGConv2d(width, bands)

    def forward(self, lms: torch.Tensor, pan: torch.Tensor, ms: torch.Tensor | None = None) -> torch.Tensor:
        x = torch.relu(self.head_conv(torch.cat([pan, lms], 1)))
        return lms + self.tail_conv(self.blocks(x))


def lagconv(bands: int = 4) -> nn.Module:
    """LAGConv/LAGNET (DLPan/PanCollection): per-pixel adaptive kernels, 5 residual blocks, 148.5K params."""
    return LAGNet(bands, width=32, blocks=5)


MODELS = {"lagconv": (lagconv, {"fixed_bands": None, "exportable": True, "family": "lagconv", "paper": PAPER,
                                "code": CODE, "reference_params": 148_457})}
