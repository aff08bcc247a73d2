"""FusionNet (Deng et al., "Detail Injection-Based Deep Convolutional Neural Networks for Pansharpening",
IEEE TGRS 2021), DLPan-Toolbox / PanCollection code (76,324 params at 4 bands).

The input is the PAN repeated over the C bands minus ``lms`` (the detail still missing); conv 3x3 -> 32,
ReLU, 4 residual blocks (conv-ReLU-conv + identity), conv 3x3 -> C; output ``lms + details``. PyTorch's
default initialisation (the reference's custom one is commented out).
"""

from __future__ import annotations

import torch
from torch import nn

from panfw.layers import ResBlock

PAPER = "Deng, Vivone, Jin, Zhou, Zhang, Zhao, Chanussot, Detail Injection-Based Deep CNNs for Pansharpening, TGRS 2021"
CODE = "DLPan-Toolbox / PanCollection models/FusionNet/model_fusionnet.py"


class FusionNet(nn.Module):
    """lms + conv(ResBlocks(conv(pan - lms)))."""

    def __init__(self, bands: int = 4, width: int = 32, blocks: int = 4) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(bands, width, 3, padding=1)
        self.backbone = nn.Sequential(*[ResBlock(width, bias=True) for _ in range(blocks)])
        self.conv3 = nn.Conv2d(width, bands, 3, padding=1)

    def forward(self, lms: torch.Tensor, pan: torch.Tensor, ms: torch.Tensor | None = None) -> torch.Tensor:
        x = torch.relu(self.conv1(pan - lms))  # PAN broadcast over the bands: the reference's repeat
        return lms + self.conv3(self.backbone(x))


def fusionnet(bands: int = 4) -> nn.Module:
    """FusionNet (DLPan/PanCollection): PAN minus lms, 4 ResBlocks, residual on lms, 76.3K params."""
    return FusionNet(bands, width=32, blocks=4)


MODELS = {"fusionnet": (fusionnet, {"fixed_bands": None, "exportable": True, "family": "fusionnet",
                                    "paper": PAPER, "code": CODE, "reference_params": 76_324})}
