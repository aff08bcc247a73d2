"""The built-in synthetic dataset: deterministic, contract-shaped, Wald-consistent."""

import pytest
import torch

import panfw
from panfw.data import collate, mix
from panfw.errors import UserError
from panfw.ops import interp23tap
from panfw_datasets.synthetic import SYNTH_SENSORS, SyntheticDataset


def test_registered_and_contract():
    ds = panfw.create_dataset("synthetic", "train", sensor="wv3", n=5, size=32)
    assert (ds.sensor, ds.bands, ds.ratio, len(ds)) == ("wv3", 8, 4, 5)
    item = ds[4]
    assert item["sensor"] == "wv3"
    assert item["gt"].shape == (8, 32, 32) and item["lms"].shape == (8, 32, 32)
    assert item["ms"].shape == (8, 8, 8) and item["pan"].shape == (1, 32, 32)
    for k in ("gt", "ms", "lms", "pan"):
        assert item[k].dtype == torch.float32
    for k in ("gt", "ms", "pan"):
        assert 0.0 <= float(item[k].min()) and float(item[k].max()) <= 1.0
    # lms is interp23tap of the tile's ms: inside a patch it matches interp23tap of the patch's ms
    up = interp23tap(item["ms"][None].double(), 4)[0].float()
    assert (up[:, 12:-12, 12:-12] - item["lms"][:, 12:-12, 12:-12]).abs().max() < 0.05


def test_deterministic_per_seed():
    a = SyntheticDataset("train", sensor="gf2", n=6, size=32, seed=3)
    b = SyntheticDataset("train", sensor="gf2", n=6, size=32, seed=3, cache=False)
    for i in (5, 0, 3):  # any access order
        for k in ("gt", "ms", "lms", "pan"):
            torch.testing.assert_close(a[i][k], b[i][k], rtol=0, atol=0)
    c = SyntheticDataset("train", sensor="gf2", n=6, size=32, seed=4)
    assert not torch.equal(a[0]["gt"], c[0]["gt"])
    assert not torch.equal(a[0]["gt"], a[1]["gt"])


def test_sensors_differ_and_bit_depth():
    gf2 = SyntheticDataset("test_fr", sensor="gf2", n=1, size=32)[0]
    wv2 = SyntheticDataset("test_fr", sensor="wv2", n=1, size=32)[0]
    assert gf2["gt"].shape[0] == 4 and wv2["gt"].shape[0] == 8
    # integer DN of the sensor's bit depth
    for item, top in ((gf2, 1023), (wv2, 2047)):
        dn = item["ms"].double() * top
        assert (dn - dn.round()).abs().max() < 1e-3
    assert set(SYNTH_SENSORS) >= {"wv3", "wv2", "gf2"}


def test_full_resolution_keeps_true_hr():
    fr = SyntheticDataset("test_fr", sensor="wv3", n=2, size=64)
    item = fr[1]
    assert item["gt"].shape == (8, 64, 64) and item["ms"].shape == (8, 16, 16) and item["pan"].shape == (1, 64, 64)
    # the acquired MS is the MTF-blurred, decimated true scene: close to it, not equal
    from panfw.ops import mtf_filter

    ref = mtf_filter(item["gt"][None].double(), "wv3", 4, decimate=True)[0].float()
    diff = item["ms"] - ref
    # the acquired MS is panfw.ops's MTF filter and decimation of the true scene plus the sensor's
    # noise (std 0.0015 of the range) and rounding: zero mean (3 standard errors), noise-sized spread
    noise = SYNTH_SENSORS["wv3"].noise_ms
    assert abs(float(diff.mean())) < 3 * noise / diff.numel() ** 0.5
    assert 0.8 * noise < float(diff.std()) < 1.2 * noise


def test_generation_leaves_torch_threads_alone(monkeypatch):
    # the thread count is process-wide: a dataset changing it, even briefly, slows the training loop
    def refuse(n):
        raise AssertionError(f"dataset code called torch.set_num_threads({n})")

    monkeypatch.setattr(torch, "set_num_threads", refuse)
    SyntheticDataset("test_fr", sensor="gf2", n=1, size=32)[0]
    SyntheticDataset("train", sensor="gf2", n=1, size=32)[0]


def test_bands_and_mixing():
    wv3 = SyntheticDataset("train", sensor="wv3", n=4, size=32, bands="bgrn")
    gf2 = SyntheticDataset("train", sensor="gf2", n=8, size=32)
    assert wv3.bands == 4
    full = SyntheticDataset("train", sensor="wv3", n=4, size=32)
    torch.testing.assert_close(wv3[1]["gt"], full[1]["gt"][[1, 2, 4, 6]])
    bal = mix([wv3, gf2], "balanced", seed=1)
    assert bal.counts() == {"wv3": 8, "gf2": 8}
    batch = collate([bal[i] for i in range(4)])
    assert batch["lms"].shape == (4, 4, 32, 32) and len(batch["sensor"]) == 4


def test_options_checked():
    with pytest.raises(UserError, match="multiple of the ratio"):
        SyntheticDataset("train", size=30)
    with pytest.raises(UserError, match="no simulated sensor"):
        SyntheticDataset("train", sensor="ikonos")
    assert len(SyntheticDataset("test_rr")) == 8 and SyntheticDataset("test_rr").size == 128
