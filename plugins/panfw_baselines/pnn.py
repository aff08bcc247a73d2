"""PNN (Masi et al., "Pansharpening by Convolutional Neural Networks", Remote Sensing 2016).

Two codes of it, both registered:

- ``pnn``: the wjm framework's PNN that the PanTiny paper trains (68,900 params at 4 bands). Input
  ``cat(lms, pan, NDVI, NDWI)``, the two indices computed on the LR MS and bicubically upsampled;
  conv 9x9 -> 48, ReLU, conv 5x5 -> 32, ReLU, conv 5x5 -> C, ReLU; no residual; Xavier-uniform
  weights, zero biases. panfw adds an epsilon to the index denominators (the reference divides by
  G + NIR and NIR + R as they are, so a black pixel gives NaN) and takes the green/red/NIR bands from
  the sensor instead of hard-coding 1, 2, 3.
- ``pnn_dlpan``: DLPan-Toolbox / PanCollection's PNN (80,420 params): ``cat(lms, pan)``, three
  *valid* convolutions (9 -> 64, 5 -> 32, 5 -> C), the last linear. Its output is 16 px smaller than
  the input: DLPan crops the target by 8 px per side to train and pads the input by replication at
  test time; panfw pads (replicate, 8 px) in the forward pass for both, so the output keeps the
  input's size and training sees the same borders as inference.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from panfw.errors import UserError
from panfw.sensors import Sensor, get_sensor
from panfw_baselines._common import init_convs

PAPER = "Masi, Cozzolino, Verdoliva, Scarpa, Pansharpening by Convolutional Neural Networks, Remote Sensing 2016"
CODE_WJM = "wjm framework model/pnn.py (github.com/manman1995/pansharpening), as used by PanTiny"
CODE_DLPAN = "DLPan-Toolbox / PanCollection models/PNN/model_pnn.py (github.com/liangjiandeng/DLPan-Toolbox)"


def _gr_nir(s: Sensor) -> tuple[int, int, int] | None:
    names = list(s.bands)
    nir = "nir" if "nir" in names else "nir1"
    if not all(n in names for n in ("green", "red", nir)):
        return None
    return names.index("green"), names.index("red"), names.index(nir)


def index_bands(bands: int, sensor: str | Sensor | None = None,
                band_indices: tuple[int, int, int] | list[int] | None = None) -> tuple[int, int, int]:
    """0-based (green, red, NIR) positions for NDVI/NDWI: explicit, else from the sensor's band names.

    4-band data is B, G, R, NIR (every 4-band sensor panfw knows, and every 'bgrn' selection): (1, 2, 3)
    whatever the sensor. Without a sensor, a band count every known sensor of that size orders alike
    (8: WorldView-2/3, green 2, red 4, NIR1 6) is taken from panfw.sensors."""
    if band_indices is not None:
        idx = tuple(int(i) for i in band_indices)
        if len(idx) != 3 or any(not 0 <= i < bands for i in idx):
            raise UserError(f"pnn: band_indices={list(band_indices)!r} must be three 0-based band positions "
                            f"(green, red, NIR) within the {bands} bands")
        return idx  # type: ignore[return-value]
    if bands == 4:
        return (1, 2, 3)
    if sensor:
        s = get_sensor(sensor)
        found = _gr_nir(s) if s.n_bands == bands else None
        if found is None:
            raise UserError(f"pnn: the NDVI/NDWI inputs need the green, red and NIR bands; sensor {s.name!r} "
                            f"({s.n_bands} bands) does not name them for {bands}-band data; give "
                            "band_indices=(green, red, nir)")
        return found
    from panfw.sensors import SENSORS

    orders = {_gr_nir(s) for s in SENSORS.values() if s.n_bands == bands}
    if len(orders) == 1 and None not in orders:
        return orders.pop()
    raise UserError(f"pnn: the NDVI/NDWI inputs need the green, red and NIR bands of the {bands}-band data; "
                    "name the sensor (sensor=...) or give band_indices=(green, red, nir)")


def spectral_indices(ms: torch.Tensor, green: int, red: int, nir: int,
                     eps: float = 1e-6) -> tuple[torch.Tensor, torch.Tensor]:
    """(NDVI, NDWI) of each pixel: (NIR - R) / (NIR + R + eps) and (G - NIR) / (G + NIR + eps)."""
    g, r, n = ms[:, green:green + 1], ms[:, red:red + 1], ms[:, nir:nir + 1]
    return (n - r) / (n + r + eps), (g - n) / (g + n + eps)


class PNN(nn.Module):
    """The wjm/PanTiny PNN: 3 convolutions (9x9, 5x5, 5x5, 'same' padding), ReLU after each."""

    def __init__(self, bands: int = 4, widths: tuple[int, int] = (48, 32), kernels: tuple[int, int, int] = (9, 5, 5),
                 indices: tuple[int, int, int] = (1, 2, 3), eps: float = 1e-6) -> None:
        super().__init__()
        self.indices, self.eps = indices, eps
        chans = (bands + 3, *widths, bands)
        self.head = nn.Conv2d(chans[0], chans[1], kernels[0], padding=kernels[0] // 2)
        self.body = nn.Conv2d(chans[1], chans[2], kernels[1], padding=kernels[1] // 2)
        self.output_conv = nn.Conv2d(chans[2], chans[3], kernels[2], padding=kernels[2] // 2)
        init_convs(self, "xavier_uniform")

    def forward(self, lms: torch.Tensor, pan: torch.Tensor, ms: torch.Tensor | None = None) -> torch.Tensor:
        # indices on the LR MS, then bicubic onto the PAN grid, as the reference; on lms without an LR MS
        src = lms if ms is None else ms
        ndvi, ndwi = spectral_indices(src, *self.indices, eps=self.eps)
        if src.shape[-2:] != pan.shape[-2:]:
            both = F.interpolate(torch.cat([ndvi, ndwi], 1), size=pan.shape[-2:], mode="bicubic",
                                 align_corners=False)
            ndvi, ndwi = both[:, :1], both[:, 1:]
        x = torch.relu(self.head(torch.cat([lms, pan, ndvi, ndwi], 1)))
        x = torch.relu(self.body(x))
        return torch.relu(self.output_conv(x))


class PNNValid(nn.Module):
    """DLPan's PNN: valid 9x9 -> 64, 5x5 -> 32, 5x5 -> C on cat(lms, pan), input replicate-padded."""

    def __init__(self, bands: int = 4, widths: tuple[int, int] = (64, 32), kernels: tuple[int, int, int] = (9, 5, 5)
                 ) -> None:
        super().__init__()
        self.pad = sum(k // 2 for k in kernels)  # 8: what the three valid convolutions take off per side
        self.conv1 = nn.Conv2d(bands + 1, widths[0], kernels[0])
        self.conv2 = nn.Conv2d(widths[0], widths[1], kernels[1])
        self.conv3 = nn.Conv2d(widths[1], bands, kernels[2])

    def forward(self, lms: torch.Tensor, pan: torch.Tensor, ms: torch.Tensor | None = None) -> torch.Tensor:
        p = self.pad
        x = F.pad(torch.cat([lms, pan], 1), (p, p, p, p), mode="replicate")
        x = torch.relu(self.conv1(x))
        x = torch.relu(self.conv2(x))
        return self.conv3(x)


def pnn(bands: int = 4, sensor: str | None = None, band_indices: list[int] | None = None,
        eps: float = 1e-6) -> nn.Module:
    """PNN as PanTiny trains it (wjm code): PAN, MS and NDVI/NDWI inputs, 3 convs, 68.9K params."""
    return PNN(bands, widths=(48, 32), kernels=(9, 5, 5), indices=index_bands(bands, sensor, band_indices),
               eps=eps)


def pnn_dlpan(bands: int = 4) -> nn.Module:
    """PNN as DLPan-Toolbox/PanCollection (valid convs, replicate-padded input), 80.4K params."""
    return PNNValid(bands, widths=(64, 32), kernels=(9, 5, 5))


_META = {"fixed_bands": None, "exportable": True, "family": "pnn", "paper": PAPER}
MODELS = {
    "pnn": (pnn, {**_META, "code": CODE_WJM, "reference_params": 68_900}),
    "pnn_dlpan": (pnn_dlpan, {**_META, "code": CODE_DLPAN, "reference_params": 80_420}),
}
