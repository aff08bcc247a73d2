"""DiCNN (He et al., "Pansharpening via Detail Injection Based Convolutional Neural Networks", IEEE JSTARS
2019), DLPan-Toolbox / PanCollection's DiCNN1 (42,180 params at 4 bands).

``cat(lms, pan)`` -> conv 3x3 -> 64, ReLU -> conv 3x3 -> 64, ReLU -> conv 3x3 -> C, plus ``lms``.
Variance-scaling weights, zero biases, as the reference.
"""

from __future__ import annotations

import torch
from torch import nn

from panfw_baselines._common import init_convs

PAPER = ("He, Rao, Xu, Wang, Yang, Xiang, Pansharpening via Detail Injection Based Convolutional Neural Networks, "
         "JSTARS 2019")
CODE = "DLPan-Toolbox / PanCollection models/DiCNN/model_dicnn.py"


class DiCNN(nn.Module):
    """lms + conv-ReLU-conv-ReLU-conv(cat(lms, pan))."""

    def __init__(self, bands: int = 4, width: int = 64) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(bands + 1, width, 3, padding=1)
        self.conv2 = nn.Conv2d(width, width, 3, padding=1)
        self.conv3 = nn.Conv2d(width, bands, 3, padding=1)
        init_convs(self, "variance_scaling")

    def forward(self, lms: torch.Tensor, pan: torch.Tensor, ms: torch.Tensor | None = None) -> torch.Tensor:
        x = torch.relu(self.conv1(torch.cat([lms, pan], 1)))
        return lms + self.conv3(torch.relu(self.conv2(x)))


def dicnn(bands: int = 4) -> nn.Module:
    """DiCNN (DLPan/PanCollection): three 3x3 convs on [lms, pan], residual on lms, 42.2K params."""
    return DiCNN(bands, width=64)


MODELS = {"dicnn": (dicnn, {"fixed_bands": None, "exportable": True, "family": "dicnn", "paper": PAPER,
                            "code": CODE, "reference_params": 42_180})}
