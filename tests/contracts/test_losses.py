"""Contract of every registered loss term: finite, and zero or minimal at a perfect prediction.

Reference terms (``forward(pred, target)``): pred == target gives zero, or the term's floor (e.g.
Charbonnier's eps), and any error raises the value. No-reference terms (``forward(pred, ms, pan,
sensor=..., ratio=...)``) get an image consistent with its MS and PAN: the MS is its MTF filtering and
decimation by panfw.ops, the PAN the mean of its bands (a linear spectral response). The PAN's MTF
is not the MS's, so a term comparing the PAN through a fitted response is near zero on that image,
not exactly zero; any inconsistency (noise, a brightness error) raises it. A term may register a
``consistent_floor`` (what a consistent image may still score, e.g. D_s's cross-scale gap) and the
errors it is ``blind_to`` by design (a D_s-like term does not see a global gain).
"""

from __future__ import annotations

import pytest
import torch
from helpers import consistent_triple, smooth_image

import panfw

REGISTRY = panfw.registry("losses")
NAMES = REGISTRY.names()
KINDS = ("reference", "no_reference")
BY_KIND = {k: [n for n in NAMES if REGISTRY.get(n).meta.get("kind", "reference") == k] for k in KINDS}


def _noisy(x: torch.Tensor, std: float, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return (x + std * torch.randn(x.shape, generator=g, dtype=x.dtype)).clamp(0, 1)


@pytest.mark.parametrize("name", NAMES)
def test_kind_is_registered(name):
    assert REGISTRY.get(name).meta.get("kind") in KINDS


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("name", BY_KIND["reference"])
def test_reference_term_is_minimal_at_a_perfect_prediction(name, dtype):
    loss = REGISTRY.build(name)
    target = _noisy(smooth_image(2, 4, 32, 32, seed=0, dtype=dtype), 0.02, 1)
    pred = target.clone().requires_grad_(True)
    perfect = loss(pred, target)
    assert perfect.dim() == 0 and torch.isfinite(perfect)
    assert abs(perfect.item()) < 1e-5, perfect.item()
    perfect.backward()
    assert torch.isfinite(pred.grad).all()
    for worse in (_noisy(target, 0.05, 2), target * 0.9, target.roll(3, -1)):
        value = loss(worse, target)
        assert torch.isfinite(value) and value.item() > perfect.item(), (name, float(value))


@pytest.mark.parametrize("sensor,bands", [("generic", 4), ("wv3", 8)])
@pytest.mark.parametrize("name", BY_KIND["no_reference"])
def test_no_reference_term_is_minimal_for_a_consistent_image(name, sensor, bands):
    loss = REGISTRY.build(name)
    t = consistent_triple(sensor, bands=bands, size=64, seed=2)
    kw = {"sensor": t["sensor"], "ratio": t["ratio"]}
    pred = t["fused"].clone().requires_grad_(True)
    consistent = loss(pred, t["ms"], t["pan"], **kw)
    assert consistent.dim() == 0 and torch.isfinite(consistent)
    meta = REGISTRY.get(name).meta
    assert 0 <= consistent.item() < meta.get("consistent_floor", 2e-3), consistent.item()
    consistent.backward()
    assert torch.isfinite(pred.grad).all()
    errors = {"noise": _noisy(t["fused"], 0.05, 3), "gain": t["fused"] * 0.9}
    for what, worse in errors.items():
        if what in meta.get("blind_to", ()):
            continue
        value = loss(worse, t["ms"], t["pan"], **kw)
        assert torch.isfinite(value) and value.item() > 2 * consistent.item(), (name, float(value))
