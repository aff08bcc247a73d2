"""MSDCNN (Yuan et al., "A Multiscale and Multidepth Convolutional Neural Network for Remote Sensing
Imagery Pan-Sharpening", IEEE JSTARS 2018): a shallow 3-conv branch beside a deep branch of two
multi-scale blocks (3x3, 5x5 and 7x7 convolutions side by side, concatenated, plus a skip).

Two codes of it, both registered:

- ``msdcnn``: the wjm framework's MSDCNN that the PanTiny paper trains (239,004 params at 4 bands).
  Shallow: conv 9x9 -> 64, ReLU, conv 5x5 -> 32, ReLU, conv 5x5 -> C, ReLU. Deep: conv 7x7 -> 60, ReLU,
  [3/5/7 -> 20 each, ReLU each] concatenated + skip, conv 3x3 -> 30, ReLU, [3/5/7 -> 10 each, ReLU
  each] concatenated + skip, conv 5x5 -> C, ReLU. Output shallow + deep.
- ``msdcnn_dlpan``: DLPan-Toolbox / PanCollection's (189,852 params): ReLU after each concatenation
  plus skip (not per convolution), the deep branch ends linear, the shallow middle conv is 1x1 and its
  last conv linear; output ReLU(deep + shallow).

Both take ``cat(lms, pan)`` and keep PyTorch's default initialisation (DLPan's custom one is commented
out in the reference).
"""

from __future__ import annotations

import torch
from torch import nn

PAPER = ("Yuan, Wei, Meng, Shen, Zhang, A Multiscale and Multidepth Convolutional Neural Network for Remote "
         "Sensing Imagery Pan-Sharpening, JSTARS 2018")
CODE_WJM = "wjm framework MSDCNN, as used by PanTiny (its copy is not public; architecture from the counts)"
CODE_DLPAN = "DLPan-Toolbox / PanCollection models/MSDCNN/model_msdcnn.py"


def _conv(cin: int, cout: int, k: int) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, k, padding=k // 2)


class MultiScale(nn.Module):
    """Three convolutions (3x3, 5x5, 7x7) of dim -> dim/3 side by side, concatenated, plus the input.

    ``act_each``: ReLU after each convolution (wjm); otherwise after the sum (DLPan)."""

    def __init__(self, dim: int, act_each: bool) -> None:
        super().__init__()
        self.branches = nn.ModuleList([_conv(dim, dim // 3, k) for k in (3, 5, 7)])
        self.act_each = act_each

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        outs = [b(x) for b in self.branches]
        if self.act_each:
            return torch.cat([torch.relu(o) for o in outs], 1) + x
        return torch.relu(torch.cat(outs, 1) + x)


class MSDCNN(nn.Module):
    """shallow(cat(lms, pan)) + deep(cat(lms, pan)); ``variant`` "wjm" or "dlpan" (see the module doc)."""

    def __init__(self, bands: int = 4, variant: str = "wjm") -> None:
        super().__init__()
        wjm = variant == "wjm"
        cin = bands + 1
        self.wjm = wjm
        self.deep = nn.Sequential(
            _conv(cin, 60, 7), nn.ReLU(), MultiScale(60, act_each=wjm),
            _conv(60, 30, 3), nn.ReLU(), MultiScale(30, act_each=wjm),
            _conv(30, bands, 5), *([nn.ReLU()] if wjm else []))
        self.shallow = nn.Sequential(
            _conv(cin, 64, 9), nn.ReLU(), _conv(64, 32, 5 if wjm else 1), nn.ReLU(),
            _conv(32, bands, 5), *([nn.ReLU()] if wjm else []))

    def forward(self, lms: torch.Tensor, pan: torch.Tensor, ms: torch.Tensor | None = None) -> torch.Tensor:
        x = torch.cat([lms, pan], 1)
        out = self.deep(x) + self.shallow(x)
        return out if self.wjm else torch.relu(out)


def msdcnn(bands: int = 4) -> nn.Module:
    """MSDCNN as PanTiny trains it (wjm code): shallow + multi-scale deep branch, 239.0K params."""
    return MSDCNN(bands, variant="wjm")


def msdcnn_dlpan(bands: int = 4) -> nn.Module:
    """MSDCNN as DLPan-Toolbox/PanCollection (1x1 shallow middle conv, ReLU on the sum), 189.9K params."""
    return MSDCNN(bands, variant="dlpan")


_META = {"fixed_bands": None, "exportable": True, "family": "msdcnn", "paper": PAPER}
MODELS = {
    "msdcnn": (msdcnn, {**_META, "code": CODE_WJM, "reference_params": 239_004}),
    "msdcnn_dlpan": (msdcnn_dlpan, {**_META, "code": CODE_DLPAN, "reference_params": 189_852}),
}
