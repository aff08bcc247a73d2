"""The contracts between the core and plugins (documentation as code; see docs/plugins.md).

Model
    ``nn.Module`` with ``forward(lms, pan, ms) -> hrms``: ``lms`` (B,C,H,W) the MS upsampled onto the
    PAN grid, ``pan`` (B,1,H,W), ``ms`` (B,C,H/r,W/r); output (B,C,H,W) in the same [0,1] scale.
    Factories accept ``bands`` (C); they may accept ``sensor`` and ``ratio`` (the engine passes them
    when the factory has those options). A model with no trainable parameters needs no checkpoint.

Fusion block
    ``factory(dim, pan_channels=1, **options)``; ``forward(feat, pan) -> feat``.

Refine block
    ``factory(dim, **options)``; ``forward(feat) -> feat``.

Loss
    ``factory(**options)``; ``forward(pred, target) -> scalar``.

Dataset
    ``factory(split, root=None, **options)`` with split one of ``SPLITS``; returns a
    ``torch.utils.data.Dataset`` whose items are dicts with float32 tensors in [0,1]:
    ``ms`` (C,h,w), ``lms`` (C,H,W), ``pan`` (1,H,W), ``gt`` (C,H,W) when a reference exists
    (reduced-resolution sets; full-resolution sets of synthetic data), and ``sensor`` (str).
    The dataset object has attributes ``sensor`` (str), ``bands`` (int) and ``ratio`` (int).

Metric
    ``factory(**options)`` returns an object with ``name``, ``kind`` ("reference" or
    "no_reference"), ``higher_is_better`` (bool), and ``__call__`` returning one float64 value per
    image (a tensor of shape (B,)):
    reference: ``metric(fused, reference, sensor=...)``; no-reference:
    ``metric(fused, ms, pan, sensor=..., lms=None)``. Inputs are in [0,1]; metrics that the toolbox
    computes in digital numbers scale by the sensor's maximum DN themselves.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import torch

SPLITS = ("train", "valid", "test_rr", "test_fr")
SAMPLE_KEYS = ("ms", "lms", "pan", "gt", "sensor")


@runtime_checkable
class Metric(Protocol):
    name: str
    kind: str
    higher_is_better: bool

    def __call__(self, fused: torch.Tensor, *args: torch.Tensor, **kwargs) -> torch.Tensor: ...
