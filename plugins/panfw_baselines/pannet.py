"""PanNet (Yang et al., "PanNet: A Deep Network Architecture for Pan-Sharpening", ICCV 2017), as
DLPan-Toolbox / PanCollection code it (77,640 params at 4 bands, 83,024 at 8).

The network sees only high-pass details: ``x - box5x5(x)`` (OpenCV's blur, reflect-101 borders;
``panfw.ops.highpass_box``) of the LR MS and of the PAN. A transposed convolution (kernel 2r, stride r,
padding r/2: 8/4/2 at ratio 4) lifts the MS details onto the PAN grid; with the PAN details,
conv 3x3 -> 32, ReLU, 4 residual blocks (conv-ReLU-conv + identity), conv 3x3 -> C; the output is
``lms + details``. Conv2d weights by DLPan's variance scaling, zero biases (the transposed convolution
keeps PyTorch's default, as in the reference).

The PanTiny paper lists 80.3K parameters for its PanNet, a variant whose code is not public; this is
the public one. panfw computes the high-pass inside the model (DLPan's loaders precompute ``ms_hp`` and
``pan_hp``), so the model takes the standard inputs.
"""

from __future__ import annotations

import torch
from torch import nn

from panfw.errors import UserError
from panfw.layers import ResBlock, resize_to
from panfw.ops import highpass_box
from panfw_baselines._common import init_convs

PAPER = "Yang, Fu, Hu, Huang, Ding, Paisley, PanNet: A Deep Network Architecture for Pan-Sharpening, ICCV 2017"
CODE = "DLPan-Toolbox / PanCollection models/PanNet/model_pannet.py"


class PanNet(nn.Module):
    """lms + conv(ResBlocks(conv([deconv(hp(ms)), hp(pan)]))): detail injection learnt on high-passes."""

    def __init__(self, bands: int = 4, ratio: int = 4, width: int = 32, blocks: int = 4, box: int = 5) -> None:
        super().__init__()
        if ratio < 2 or ratio % 2:
            raise UserError(f"pannet: ratio={ratio} is not accepted; the transposed convolution (kernel 2r, "
                            "stride r, padding r/2) needs an even ratio >= 2")
        self.box = box
        self.deconv = nn.ConvTranspose2d(bands, bands, 2 * ratio, stride=ratio, padding=ratio // 2)
        self.conv1 = nn.Conv2d(bands + 1, width, 3, padding=1)
        self.backbone = nn.Sequential(*[ResBlock(width, bias=True) for _ in range(blocks)])
        self.conv3 = nn.Conv2d(width, bands, 3, padding=1)
        init_convs(self, "variance_scaling")

    def forward(self, lms: torch.Tensor, pan: torch.Tensor, ms: torch.Tensor | None = None) -> torch.Tensor:
        if ms is None:
            raise UserError("pannet needs the LR MS (ms) as well as lms and pan")
        up = resize_to(self.deconv(highpass_box(ms, self.box)), pan)  # no-op when pan is ratio x ms
        x = torch.relu(self.conv1(torch.cat([up, highpass_box(pan, self.box)], 1)))
        return lms + self.conv3(self.backbone(x))


def pannet(bands: int = 4, ratio: int = 4) -> nn.Module:
    """PanNet (DLPan/PanCollection): high-pass inputs, transposed conv, 4 ResBlocks, 77.6K params."""
    return PanNet(bands, ratio=ratio, width=32, blocks=4, box=5)


MODELS = {"pannet": (pannet, {"fixed_bands": None, "exportable": True, "family": "pannet", "paper": PAPER,
                              "code": CODE, "reference_params": 77_640})}
