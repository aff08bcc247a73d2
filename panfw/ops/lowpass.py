"""The toolbox's wavelet low-pass (LPW): the approximation of its undecimated wavelet transform.

Vivone's toolbox (``LPfilterPlusDec`` for GSA, ``AWLP``) decomposes with ``ndwt2_working`` into
ceil(log2 ratio) levels, sets every detail sub-band to zero and reconstructs with
``indwt2_working``. With those details zeroed the result is separable: along each axis the
B3-spline filter b = [1 4 6 4 1]/16 is applied 2·levels times — ``levels`` times as "pad by 4
samples (half-sample symmetric, edge repeated) then keep the valid part" (each grows the signal
by 4) and ``levels`` times as a plain valid correlation (each shrinks it by 4). The filter is not
dilated between levels (this is not an à-trous transform) and the DC gain is 1.
"""

from __future__ import annotations

import math

import torch

from panfw.ops.mtf import pad2d

__all__ = ["lowpass_wavelet"]

_B3 = (1 / 16, 4 / 16, 6 / 16, 4 / 16, 1 / 16)


def _valid_w(x: torch.Tensor) -> torch.Tensor:
    """Valid correlation with b along the last axis (length n -> n - 4)."""
    n = x.shape[-1]
    out = _B3[0] * x[..., 0:n - 4]
    for t in range(1, 5):
        out = out + _B3[t] * x[..., t:n - 4 + t]
    return out


def _lowpass_last_axis(x: torch.Tensor, levels: int) -> torch.Tensor:
    for _ in range(levels):
        x = _valid_w(pad2d(x, 0, 4, "symmetric"))
    for _ in range(levels):
        x = _valid_w(x)
    return x


def lowpass_wavelet(x: torch.Tensor, ratio: int = 4) -> torch.Tensor:
    """LPW: the toolbox's undecimated-wavelet low-pass of (..., H, W) images, same size, every channel.

    ceil(log2(ratio)) levels (2 for ratio 4), B3-spline filter, symmetric borders; differentiable,
    device- and dtype-agnostic.
    """
    if ratio < 2:
        raise ValueError(f"lowpass_wavelet: ratio must be at least 2, got {ratio}")
    levels = math.ceil(math.log2(ratio))
    y = _lowpass_last_axis(x, levels)
    return _lowpass_last_axis(y.transpose(-2, -1), levels).transpose(-2, -1)
