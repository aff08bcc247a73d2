"""The model contract, over every registered model (timm's tests/test_models.py is the model).

A model registers with metadata (``reference_params``, ``fixed_bands``, ``exportable``, ...) and is
tested the moment it registers: it builds at its default and at 8 bands (or refuses another band
count clearly), runs on odd non-square sizes, backpropagates to every parameter, stays finite and
exports with dynamic H, W (or says why not, and then really does not). Heavy models (over
``HEAVY_PARAMS`` parameters) and exports beyond ``EXPORT_DEFAULT`` run with ``-m slow``.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.export import Dim

import panfw
from panfw.errors import RegistryError, UserError

RATIO = 4
PAN_HW = (36, 52)  # odd multiples of the ratio in MS pixels: MS 9 x 13, neither square nor a power of 2
HEAVY_PARAMS = 150_000  # forward/backward of bigger models (PanTiny Large/Huge, most baselines): slow
EXPORT_DEFAULT = {"pantiny_small", "gs"}  # one network and one classical method in the default run
META_KEYS = ("reference_params", "fixed_bands", "exportable", "family", "paper", "code")

REGISTRY = panfw.registry("models")
NAMES = REGISTRY.names()


def _meta(name: str) -> dict:
    return REGISTRY.get(name).meta


def _heavy(name: str) -> bool:
    return (_meta(name).get("reference_params") or 0) > HEAVY_PARAMS


def _params(names, heavy=_heavy):
    return [pytest.param(n, marks=pytest.mark.slow) if heavy(n) else n for n in names]


def _bands(name: str) -> int:
    return _meta(name).get("fixed_bands") or 4


def _build(name: str, bands: int | None = None) -> nn.Module:
    """Build as the procedures do: band count and ratio as context, passed where declared."""
    return REGISTRY.build(name, context={"bands": bands or _bands(name), "ratio": RATIO})


def _inputs(bands: int, hw: tuple[int, int] = PAN_HW, batch: int = 2, seed: int = 0):
    """(lms, pan, ms) like real data: ms in [0.1, 0.9], lms its bilinear upsampling, pan their mean
    plus detail, so the statistics classical methods estimate are well conditioned."""
    g = torch.Generator().manual_seed(seed)
    h, w = hw
    ms = 0.1 + 0.8 * torch.rand(batch, bands, h // RATIO, w // RATIO, generator=g)
    lms = F.interpolate(ms, size=(h, w), mode="bilinear", align_corners=False)
    pan = (0.9 * lms.mean(1, keepdim=True) + 0.1 * torch.rand(batch, 1, h, w, generator=g)).clamp(0, 1)
    return lms, pan, ms


def _objective(model: nn.Module, lms, pan, ms) -> torch.Tensor:
    """The scalar a training step minimises: the model's own objective when it has one, else an
    L2 loss against a target (the procedure's default)."""
    gt = (lms + 0.05 * (pan - lms.mean(1, keepdim=True))).detach()
    if callable(getattr(model, "objective", None)):
        batch = {"lms": lms, "pan": pan, "ms": ms, "gt": gt}
        return model.objective(batch, lambda pred, b: F.mse_loss(pred, b["gt"]))
    return F.mse_loss(model(lms, pan, ms), gt)


def test_every_model_has_registration_metadata():
    missing = {n: [k for k in META_KEYS if k not in _meta(n)] for n in NAMES}
    assert not {n: m for n, m in missing.items() if m}, "models registered without metadata keys"
    for n in NAMES:
        meta = _meta(n)
        assert isinstance(meta["reference_params"], int) and meta["reference_params"] >= 0, n
        assert meta["fixed_bands"] is None or (isinstance(meta["fixed_bands"], int) and meta["fixed_bands"] > 0), n
        assert meta["exportable"] is True or (isinstance(meta["exportable"], str) and len(meta["exportable"]) > 20), n
        assert REGISTRY.get(n).summary, n


@pytest.mark.parametrize("name", NAMES)
def test_builds_at_default_with_the_reference_parameter_count(name):
    torch.manual_seed(0)
    model = REGISTRY.build(name)
    assert isinstance(model, nn.Module)
    n_params = sum(p.numel() for p in model.parameters())
    assert n_params == _meta(name)["reference_params"], f"{name}: {n_params:,} parameters at default"


@pytest.mark.parametrize("name", _params(NAMES))
def test_builds_and_runs_at_eight_bands_or_refuses_clearly(name):
    fixed = _meta(name)["fixed_bands"]
    if fixed is not None:
        other = 8 if fixed != 8 else 4
        with pytest.raises((UserError, RegistryError)) as info:
            _build(name, bands=other)
        text = str(info.value)
        assert str(fixed) in text and str(other) in text, f"{name}: the error should name {fixed} and {other}: {text}"
        return
    torch.manual_seed(0)
    model = _build(name, bands=8).eval()
    lms, pan, ms = _inputs(8, batch=1)
    with torch.no_grad():
        out = model(lms, pan, ms)
    assert out.shape == lms.shape and torch.isfinite(out).all()


@pytest.mark.parametrize("name", _params(NAMES))
def test_forward_on_odd_non_square_sizes(name):
    torch.manual_seed(0)
    bands = _bands(name)
    model = _build(name).eval()
    lms, pan, ms = _inputs(bands)
    with torch.no_grad():
        out = model(lms, pan, ms)
    assert out.shape == (2, bands, *PAN_HW), f"{name}: output {tuple(out.shape)}"
    assert out.dtype == torch.float32 and torch.isfinite(out).all(), name


@pytest.mark.parametrize("name", _params(NAMES))
def test_backward_reaches_every_parameter(name):
    torch.manual_seed(0)
    model = _build(name).train()
    params = dict(model.named_parameters())
    if _meta(name)["reference_params"] == 0:
        # parameter-free (classical): nothing to train, the same output for the same input
        assert not params, f"{name}: a parameter-free model has parameters {sorted(params)[:5]}"
        x = _inputs(_bands(name))
        with torch.no_grad():
            assert torch.equal(model(*x), model(*x)), f"{name}: two runs on one input differ"
        return
    loss = _objective(model, *_inputs(_bands(name), batch=1))
    assert loss.dim() == 0 and torch.isfinite(loss), f"{name}: objective {loss}"
    loss.backward()
    missing = [n for n, p in params.items() if p.requires_grad and p.grad is None]
    assert not missing, f"{name}: some parameters are missing gradients: {missing}"
    bad = [n for n, p in params.items() if p.grad is not None and not torch.isfinite(p.grad).all()]
    assert not bad, f"{name}: non-finite gradients: {bad}"
    assert any(p.grad.abs().sum() > 0 for p in params.values() if p.grad is not None), name


def _export(model: nn.Module, bands: int) -> torch.export.ExportedProgram:
    # the MS-grid range of `panfw export`'s defaults (PAN 32..2048): a model may need a few MS pixels
    h, w = Dim("h", min=32 // RATIO, max=2048 // RATIO), Dim("w", min=32 // RATIO, max=2048 // RATIO)
    dynamic = ({2: RATIO * h, 3: RATIO * w}, {2: RATIO * h, 3: RATIO * w}, {2: h, 3: w})
    return torch.export.export(model.eval(), _inputs(bands, (32, 40), batch=1), dynamic_shapes=dynamic,
                               strict=False)


@pytest.mark.parametrize("name", _params(NAMES, heavy=lambda n: n not in EXPORT_DEFAULT))
def test_exports_with_dynamic_height_and_width(name):
    reason = _meta(name)["exportable"]
    torch.manual_seed(0)
    bands = _bands(name)
    model = _build(name)
    if reason is not True:
        # the registered reason must still hold: a method that became exportable should say so
        with pytest.raises(Exception):  # noqa: B017, PT011 - torch.export raises many kinds
            _export(model, bands)
        return
    program = _export(model, bands)
    x = _inputs(bands, PAN_HW, batch=1, seed=1)  # another, non-square size than the one traced
    with torch.no_grad():
        torch.testing.assert_close(program.module()(*x), model(*x), rtol=1e-4, atol=1e-5)
