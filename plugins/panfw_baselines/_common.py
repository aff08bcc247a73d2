"""Helpers the baseline files share: the reference codes' initialisers and MS upsampling onto the PAN grid."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from panfw.errors import UserError

UPSAMPLERS = ("lms", "nearest", "bilinear", "bicubic")


def variance_scaling_(weight: torch.Tensor) -> torch.Tensor:
    """DLPan-Toolbox's ``variance_scaling_initializer``: truncated normal (±2 std), std sqrt(2.6 / fan_in).

    TensorFlow's variance scaling (scale 2, fan-in) as the toolbox ports it; fan_in = in x kh x kw."""
    fan_in = weight.shape[1] * math.prod(weight.shape[2:])
    std = math.sqrt(1.3 * 2.0 / fan_in)
    with torch.no_grad():
        return nn.init.trunc_normal_(weight, std=std, a=-2 * std, b=2 * std)


def init_convs(module: nn.Module, how: str) -> None:
    """Initialise every Conv2d (not ConvTranspose2d, as in the reference codes) and zero its bias.

    ``how``: "variance_scaling" (DLPan-Toolbox) or "xavier_uniform" (the wjm framework's PNN)."""
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            if how == "variance_scaling":
                variance_scaling_(m.weight)
            elif how == "xavier_uniform":
                nn.init.xavier_uniform_(m.weight)
            else:
                raise ValueError(f"unknown initialiser {how!r}")
            if m.bias is not None:
                nn.init.zeros_(m.bias)


def check_upsample(mode: str, model: str) -> str:
    """``mode`` when it is one of UPSAMPLERS, else a UserError naming the model and the accepted ones."""
    if mode not in UPSAMPLERS:
        raise UserError(f"{model}: upsample={mode!r} is not accepted; use one of {', '.join(UPSAMPLERS)} "
                         "('lms' takes the data's upsampled MS as it is)")
    return mode


def upsample(lms: torch.Tensor, ms: torch.Tensor | None, ref: torch.Tensor, mode: str) -> torch.Tensor:
    """The MS on ``ref``'s grid: the given ``lms`` ("lms", or when no LR ``ms`` is passed), else ``ms``
    resized by ``mode`` onto ref's H x W (sized by the input, never by a fixed scale factor)."""
    if mode == "lms" or ms is None:
        return lms
    if ms.shape[-2:] == ref.shape[-2:]:
        return ms
    if mode == "nearest":
        return F.interpolate(ms, size=ref.shape[-2:], mode="nearest")
    return F.interpolate(ms, size=ref.shape[-2:], mode=mode, align_corners=False)
