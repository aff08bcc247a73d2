"""Wald's protocol: degrade MS and PAN by the ratio to simulate reduced-resolution data
(toolbox ``resize_images``; PAN by bicubic imresize, or by its MTF filter and decimation)."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from panfw.ops.mtf import mtf_filter, mtf_filter_pan
from panfw.ops.resample import decimate, imresize, interp23tap

__all__ = ["wald_degrade", "simulate_rr", "PAN_MODES"]

PAN_MODES = ("bicubic", "mtf")


def wald_degrade(ms_hr: torch.Tensor, pan: torch.Tensor, sensor, ratio: int = 4,
                 pan_mode: str = "bicubic", band_indices: Sequence[int] | None = None
                 ) -> tuple[torch.Tensor, torch.Tensor]:
    """Degrade (B,C,H,W) MS and (B,1,H',W') PAN by ``ratio``: MS = per-band MTF filter then
    decimation on the ratio*i + ratio//2 grid; PAN = MATLAB bicubic ``imresize(pan, 1/ratio)``
    ("bicubic", as resize_images) or MTF_PAN filter then decimation ("mtf").

    ``sensor`` is a name or a Sensor; ``band_indices`` picks the gains of a band selection of an
    8-band sensor (else the first C gains, as the toolbox does)."""
    from panfw.sensors import get_sensor

    s = get_sensor(sensor)
    c = ms_hr.shape[-3]
    idx = tuple(band_indices) if band_indices is not None else None
    if idx is not None and len(idx) != c:
        raise ValueError(f"{len(idx)} band indices for an MS image of {c} bands")
    gains = s.gains(c, idx)
    ms_lr = decimate(mtf_filter(ms_hr, gains, ratio), ratio)
    if pan_mode == "bicubic":
        pan_lr = imresize(pan, scale=1.0 / ratio, method="bicubic", antialias=True)
    elif pan_mode == "mtf":
        pan_lr = decimate(mtf_filter_pan(pan, s.mtf_pan, ratio), ratio)
    else:
        raise ValueError(f"unknown pan_mode {pan_mode!r}; accepted: {', '.join(PAN_MODES)}")
    return ms_lr, pan_lr


def simulate_rr(ms_hr: torch.Tensor, pan: torch.Tensor, sensor, ratio: int = 4,
                pan_mode: str = "bicubic", band_indices: Sequence[int] | None = None
                ) -> dict[str, torch.Tensor]:
    """A reduced-resolution sample from an MS image (C,h,w) and its PAN (1,ratio*h,ratio*w) (batched
    too): gt = ms_hr, ms = degraded MS (h/ratio), lms = interp23tap(ms), pan = degraded PAN (h)."""
    h, w = ms_hr.shape[-2:]
    if tuple(pan.shape[-2:]) != (h * ratio, w * ratio):
        raise ValueError(f"PAN of size {tuple(pan.shape[-2:])} does not match MS {h}x{w} at ratio {ratio} "
                         f"(expected {h * ratio}x{w * ratio})")
    if h % ratio or w % ratio:
        raise ValueError(f"MS size {h}x{w} is not divisible by the ratio {ratio}")
    ms_lr, pan_lr = wald_degrade(ms_hr, pan, sensor, ratio, pan_mode, band_indices)
    return {"gt": ms_hr, "ms": ms_lr, "lms": interp23tap(ms_lr, ratio), "pan": pan_lr}
