"""Contract of every registered dataset: the documented sample dict, on tiny data (docs/data.md).

Samples are dicts of float32 tensors in [0, 1]: ``ms`` (C, h, w), ``lms`` (C, H, W), ``pan``
(1, H, W), ``gt`` (C, H, W) where a reference exists (every split but test_fr), and ``sensor`` (str);
H = ratio h. The dataset has ``sensor``, ``bands`` and ``ratio`` attributes agreeing with its samples.
"""

from __future__ import annotations

import pytest
import torch
from helpers import TINY_DATASETS

import panfw
from panfw.data import collate

TENSOR_KEYS = ("ms", "lms", "pan", "gt")
NAMES = panfw.registry("datasets").names()
CASES = [(n, s) for n in NAMES for s in (TINY_DATASETS[n][1] if n in TINY_DATASETS else ("train",))]


def test_every_dataset_has_tiny_data():
    missing = [n for n in NAMES if n not in TINY_DATASETS]
    assert not missing, f"add tiny data for {missing} to TINY_DATASETS in tests/helpers.py"


@pytest.mark.parametrize(("name", "split"), CASES, ids=[f"{n}-{s}" for n, s in CASES])
def test_yields_the_documented_sample(name, split, tmp_path):
    if name not in TINY_DATASETS:
        pytest.fail(f"dataset {name!r} has no tiny data (TINY_DATASETS in tests/helpers.py)")
    options = TINY_DATASETS[name][0](tmp_path)
    ds = panfw.registry("datasets").build(name, split, **options)
    assert len(ds) > 0
    assert isinstance(ds.sensor, str) and ds.sensor
    assert isinstance(ds.bands, int) and isinstance(ds.ratio, int) and ds.ratio >= 2
    items = [ds[0], ds[len(ds) - 1]]
    for item in items:
        need = {"ms", "lms", "pan", "sensor"} | ({"gt"} if split != "test_fr" else set())
        assert need <= set(item), f"missing {need - set(item)}"
        assert set(item) <= {*TENSOR_KEYS, "sensor"}, f"undocumented keys {set(item) - {*TENSOR_KEYS, 'sensor'}}"
        assert item["sensor"] == ds.sensor and isinstance(item["sensor"], str)
        for key in TENSOR_KEYS:
            if key not in item:
                continue
            t = item[key]
            assert isinstance(t, torch.Tensor) and t.dtype == torch.float32, key
            assert t.dim() == 3 and torch.isfinite(t).all(), key
            assert float(t.min()) >= 0.0 and float(t.max()) <= 1.0, (key, float(t.min()), float(t.max()))
        c, h, w = item["ms"].shape
        big = (h * ds.ratio, w * ds.ratio)
        assert c == ds.bands
        assert tuple(item["lms"].shape) == (c, *big) and tuple(item["pan"].shape) == (1, *big)
        if "gt" in item:
            assert tuple(item["gt"].shape) == (c, *big)
    if items[0]["pan"].shape == items[1]["pan"].shape:
        batch = collate(items)
        assert batch["sensor"] == [ds.sensor] * 2 and batch["ms"].shape[0] == 2
