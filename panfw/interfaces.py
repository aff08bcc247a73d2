"""The contracts between the core and plugins (documentation as code; see docs/plugins.md).

Every factory is registered by name through a ``register_<kind>`` hook (``panfw/hookspecs.py``) and
built by ``Registry.build(name, *args, context=None, **options)``: ``options`` are checked against the
factory's, ``context`` values (``bands``, ``sensor``, ``ratio``, ``root``, ``device``, ...) reach a
factory only where it declares that keyword. Images are float32 in [0, 1].

Model (``models``)
    ``factory(bands=4, **options) -> nn.Module`` (it may also declare ``sensor`` and ``ratio``);
    ``forward(lms, pan, ms) -> hrms`` with ``lms`` (B,C,H,W) the MS upsampled onto the PAN grid,
    ``pan`` (B,1,H,W), ``ms`` (B,C,H/r,W/r); output (B,C,H,W) in the same scale. It works for any band
    count C (or registers ``fixed_bands=C``) and any H, W divisible by the ratio, and exports with
    dynamic H, W (or registers ``exportable="why not"``). A model with no trainable parameters needs
    no checkpoint. A model MAY define ``objective(batch, loss) -> scalar`` (``batch`` has ``lms``,
    ``pan``, ``ms`` and ``gt`` when present; ``loss`` the recipe's composed loss or None): the
    training procedure minimises it instead of ``loss(model(lms, pan, ms), batch)`` (a flow model's
    negative log-likelihood). A model whose output depends on image-wide statistics (the classical
    GS, GSA, BDSD, PRACS, k-means variants, ...) MAY define ``fit_scene(lms, pan, ms) -> stats``
    (batch 1, the whole scene or the part of it the caller can hold): every later ``forward`` uses
    those statistics instead of the tile's own until ``clear_scene()``; with it, ``scene_halo``
    (int, PAN pixels of context each output pixel needs, a multiple of the ratio) and ``tile_exact``
    (True, or a str saying why tiles cannot give the whole-image result). The scene loop calls
    ``fit_scene`` once, then reads each tile with ``scene_halo`` pixels around it and crops.
    Meta: ``reference_params``, ``fixed_bands``, ``exportable``, ``family``, ``paper``, ``code``.

Fusion block (``fusions``)
    ``factory(dim, pan_channels=1, **options)``; ``forward(feat, pan) -> feat`` with ``feat``
    (B,dim,H,W) and ``pan`` (B,pan_channels,H,W); shape kept.

Refine block (``refines``)
    ``factory(dim, **options)``; ``forward(feat) -> feat``; shape kept.

Loss term (``losses``)
    ``factory(**options) -> nn.Module``. Reference terms (meta ``kind="reference"``, the default):
    ``forward(pred, target) -> scalar``. No-reference terms (meta ``kind="no_reference"``):
    ``forward(pred, ms, pan, sensor=None, ratio=None) -> scalar``, a full-resolution consistency
    that needs no ground truth. A recipe's ``loss.terms`` are weighted and composed by the core
    (``panfw/engine/objective.py``), which routes each term to its inputs. Each term is finite and
    minimal (zero for reference terms) at a perfect prediction.

Dataset (``datasets``)
    ``factory(split, root=None, **options)`` with split one of ``SPLITS``; returns a
    ``torch.utils.data.Dataset`` whose items are dicts: ``ms`` (C,h,w), ``lms`` (C,H,W), ``pan``
    (1,H,W), ``gt`` (C,H,W) where a reference exists (reduced-resolution sets; full-resolution sets
    of synthetic data), and ``sensor`` (str). The dataset has attributes ``sensor`` (str), ``bands``
    (int) and ``ratio`` (int). Collation and all-in-one mixing are core services (``panfw.data``).

Metric (``metrics``)
    ``factory(**options)`` returns a ``Metric``: ``name``, ``kind`` ("reference" or "no_reference"),
    ``higher_is_better``, and ``__call__`` returning one float64 value per image (shape (B,)):
    reference ``metric(fused, reference, sensor=...)``; no-reference ``metric(fused, ms, pan,
    sensor=..., lms=None)``. Values are in the units the field reports (SAM in degrees; metrics the
    toolbox computes in digital numbers scale by the sensor's maximum DN themselves). Meta: ``kind``,
    ``higher_is_better``, ``title``, ``decimals``, ``ideal`` (the value of a perfect fusion), ``unit``.

Runtime (``runtimes``)
    ``factory(model_or_path, device="cpu", **options)`` returns a ``Runtime``:
    ``runtime(lms, pan, ms) -> hrms`` with attributes ``name`` and ``device``; ``model_or_path`` is an
    ``nn.Module`` or an exported file. Meta: ``available`` (callable ``(device) -> ""`` or why not),
    ``devices``, ``files`` (suffixes it runs), ``tolerance`` (largest difference from eager PyTorch).
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import torch

SPLITS = ("train", "valid", "test_rr", "test_fr")


@runtime_checkable
class Metric(Protocol):
    """What a metric factory returns."""

    name: str
    kind: str
    higher_is_better: bool

    def __call__(self, fused: torch.Tensor, *args: torch.Tensor, **kwargs) -> torch.Tensor: ...


@runtime_checkable
class Runtime(Protocol):
    """What a runtime factory returns."""

    name: str
    device: str

    def __call__(self, lms: torch.Tensor, pan: torch.Tensor, ms: torch.Tensor) -> torch.Tensor: ...
