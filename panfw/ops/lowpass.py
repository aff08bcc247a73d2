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


def _valid(x: torch.Tensor, dim: int) -> torch.Tensor:
    """Valid correlation with b along ``dim`` (length n -> n - 4)."""
    n = x.shape[dim] - 4
    out = x.narrow(dim, 0, n) * _B3[0]
    for t in range(1, 5):
        out.add_(x.narrow(dim, t, n), alpha=_B3[t])  # in place: no temporaries (memory-bound)
    return out


def _lowpass_axis(x: torch.Tensor, levels: int, dim: int) -> torch.Tensor:
    for _ in range(levels):
        x = _valid(pad2d(x, 4, 0, "symmetric") if dim == -2 else pad2d(x, 0, 4, "symmetric"), dim)
    for _ in range(levels):
        x = _valid(x, dim)
    return x


def lowpass_wavelet(x: torch.Tensor, ratio: int = 4) -> torch.Tensor:
    """LPW: the toolbox's undecimated-wavelet low-pass of (..., H, W) images, same size, every channel.

    ceil(log2(ratio)) levels (2 for ratio 4), B3-spline filter, symmetric borders; differentiable,
    device- and dtype-agnostic.
    """
    if ratio < 2:
        raise ValueError(f"lowpass_wavelet: ratio must be at least 2, got {ratio}")
    levels = math.ceil(math.log2(ratio))
    return _lowpass_axis(_lowpass_axis(x, levels, -1), levels, -2)
