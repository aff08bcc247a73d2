"""Contract of every registered metric: registry metadata, and a perfect fusion scores the ideal.

Reference metrics get fused == reference and must return their registered ``ideal`` exactly (to
round-off). No-reference metrics have no exactly perfect input: they compare the fused image with
degraded stand-ins of a reference (the low-passed PAN, the MTF-filtered fused image against
interp23tap(ms)), which no image matches exactly. They are scored on a fused image consistent with
its MS and PAN (the MS is its MTF decimation by panfw.ops, the PAN a linear mix of its bands) and must
come out finite, near the ideal, and nearer to it than a noisy fusion of the same scene.
"""

from __future__ import annotations

import math

import pytest
import torch
from helpers import consistent_triple, smooth_image

import panfw

REGISTRY = panfw.registry("metrics")
NAMES = REGISTRY.names()
BY_KIND = {k: [n for n in NAMES if REGISTRY.get(n).meta.get("kind") == k] for k in ("reference", "no_reference")}
SENSOR = "wv3"  # 8 bands: Q2n and D_lambda^K take 2^n bands


def _noisy(x: torch.Tensor, std: float, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return (x + std * torch.randn(x.shape, generator=g, dtype=x.dtype)).clamp(0, 1)


def _close(value: float, ideal: float) -> bool:
    return value == ideal if math.isinf(ideal) else math.isclose(value, ideal, rel_tol=1e-9, abs_tol=1e-9)


@pytest.mark.parametrize("name", NAMES)
def test_metadata(name):
    meta = REGISTRY.get(name).meta
    assert meta.get("kind") in ("reference", "no_reference")
    assert isinstance(meta.get("higher_is_better"), bool)
    assert isinstance(meta.get("title"), str) and meta["title"]
    assert isinstance(meta.get("decimals"), int) and 0 <= meta["decimals"] <= 8
    assert isinstance(meta.get("ideal"), float)
    assert isinstance(meta.get("unit"), str)


@pytest.fixture(scope="module")
def reference_image():
    # smooth structure plus fine texture: every metric (SCC's gradients, Q's blocks) has signal
    return _noisy(smooth_image(2, 8, 128, 128, seed=3), 0.03, 1)


@pytest.mark.parametrize("name", BY_KIND["reference"])
def test_reference_metric_scores_a_perfect_fusion_at_its_ideal(name, reference_image):
    meta = REGISTRY.get(name).meta
    metric = REGISTRY.build(name)
    for x in (reference_image, reference_image.float()):
        values = metric(x, x.clone(), sensor=SENSOR)
        assert values.shape == (2,)
        for v in values.tolist():
            assert _close(v, meta["ideal"]), (name, v, meta["ideal"])
    # the better direction agrees with the ideal: an imperfect fusion scores on the worse side
    worse = metric(_noisy(reference_image, 0.05, 2), reference_image, sensor=SENSOR)
    assert torch.isfinite(worse).all()
    for v in worse.tolist():
        assert (v < meta["ideal"]) if meta["higher_is_better"] else (v > meta["ideal"]), (name, v)


@pytest.fixture(scope="module")
def triple():
    # structure at every 32x32 block (cell 8): the block-wise UIQI indices need local variance
    return consistent_triple(SENSOR, bands=8, size=128, cell=8)


@pytest.mark.parametrize("name", BY_KIND["no_reference"])
def test_no_reference_metric_is_near_its_ideal_on_a_consistent_fusion(name, triple):
    meta = REGISTRY.get(name).meta
    metric = REGISTRY.build(name)
    t = triple
    good = metric(t["fused"], t["ms"], t["pan"], sensor=t["sensor"], lms=t["lms"])
    bad = metric(_noisy(t["fused"], 0.05, 4), t["ms"], t["pan"], sensor=t["sensor"], lms=t["lms"])
    assert good.shape == (2,) and torch.isfinite(good).all() and torch.isfinite(bad).all()
    gap_good, gap_bad = (good - meta["ideal"]).abs(), (bad - meta["ideal"]).abs()
    assert (gap_good < 0.05).all(), (name, good.tolist())
    assert (gap_good < gap_bad).all(), (name, good.tolist(), bad.tolist())
    # on the ideal's side of every value: no value beyond the ideal
    assert ((good <= meta["ideal"]) if meta["higher_is_better"] else (good >= meta["ideal"])).all()
    # ms given instead of lms: the metric upsamples it itself (interp23tap), same values
    torch.testing.assert_close(metric(t["fused"], t["ms"], t["pan"], sensor=t["sensor"]), good)
