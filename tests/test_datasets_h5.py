"""PanCollection h5 datasets: discovery, scaling, band selection, validation errors, mixing."""

import h5py
import numpy as np
import pytest
import torch
from helpers import write_h5

import panfw
from panfw.data import collate, mix
from panfw.errors import DataError, UserError
from panfw_datasets.h5 import PanCollectionH5, check_root, inspect_file


@pytest.fixture
def root(tmp_path):
    write_h5(tmp_path / "train_wv3_9714.h5", n=4)
    sub = tmp_path / "test_data" / "WV3"
    sub.mkdir(parents=True)
    write_h5(sub / "test_wv3_multiExm1.h5", n=2, size=32)
    write_h5(sub / "test_wv3_OrigScale_multiExm1.h5", n=2, size=32, with_gt=False)
    write_h5(tmp_path / "train_gf2.h5", n=5, c=4, top=1023.0)
    return tmp_path


def test_reads_scaled_float32(root):
    ds = panfw.create_dataset("wv3", "train", root=str(root))
    assert len(ds) == 4 and ds.sensor == "wv3" and ds.bands == 8 and ds.ratio == 4
    item = ds[1]
    with h5py.File(root / "train_wv3_9714.h5") as f:
        ref = f["gt"][1] / 2047.0
    assert item["gt"].dtype == torch.float32 and item["sensor"] == "wv3"
    np.testing.assert_allclose(item["gt"].numpy(), ref, rtol=1e-6)
    assert item["ms"].shape == (8, 4, 4) and item["pan"].shape == (1, 16, 16)
    gf2 = panfw.create_dataset("gf2", "train", root=str(root))
    assert float(gf2[0]["pan"].max()) <= 1.0 and gf2.bands == 4


def test_env_root_and_test_splits(root, monkeypatch):
    monkeypatch.setenv("PANFW_DATA", str(root))
    rr = panfw.create_dataset("wv3", "test_rr")
    fr = panfw.create_dataset("wv3", "test_fr")
    assert "gt" in rr[0] and "gt" not in fr[0]
    assert fr[0]["lms"].shape == (8, 32, 32)


def test_band_selection(root):
    full = panfw.create_dataset("wv3", "train", root=str(root))[0]
    bgrn = panfw.create_dataset("wv3", "train", root=str(root), bands="bgrn")
    assert bgrn.bands == 4 and bgrn.band_indices == (1, 2, 4, 6)
    torch.testing.assert_close(bgrn[0]["gt"], full["gt"][[1, 2, 4, 6]])
    torch.testing.assert_close(bgrn[0]["pan"], full["pan"])
    picked = panfw.create_dataset("wv3", "train", root=str(root), bands=[0, 7])
    assert picked[0]["ms"].shape == (2, 4, 4)
    gf2 = panfw.create_dataset("gf2", "train", root=str(root), bands="bgrn")
    assert gf2.bands == 4 and gf2.band_indices is None  # a no-op for 4-band data
    with pytest.raises(UserError, match=r"\[9\] out of range.*0-based band indices 0\.\.7"):
        panfw.create_dataset("wv3", "train", root=str(root), bands=[9])


def test_cache_equals_lazy(root):
    lazy = panfw.create_dataset("wv3", "train", root=str(root), bands="bgrn")
    cached = panfw.create_dataset("wv3", "train", root=str(root), bands="bgrn", cache=True)
    for i in range(len(lazy)):
        for k in ("gt", "ms", "lms", "pan"):
            torch.testing.assert_close(lazy[i][k], cached[i][k])


def test_pickles_for_workers(root):
    import pickle

    ds = panfw.create_dataset("wv3", "train", root=str(root))
    ds[0]
    clone = pickle.loads(pickle.dumps(ds))
    torch.testing.assert_close(clone[2]["gt"], ds[2]["gt"])


def test_missing_files_and_wv2_train(tmp_path):
    with pytest.raises(DataError, match="test_qb_multiExm1.h5"):
        panfw.create_dataset("qb", "test_rr", root=str(tmp_path))
    with pytest.raises(DataError, match="test-only"):
        panfw.create_dataset("wv2", "train", root=str(tmp_path))
    with pytest.raises(UserError, match="unknown split"):
        panfw.create_dataset("wv3", "testing", root=str(tmp_path))


@pytest.mark.parametrize("override,split,match", [
    ({"gt": None}, "train", r"missing key 'gt'"),
    ({"ms": np.zeros((3, 8, 5, 5))}, "train", r"key 'ms' is 5x5 and 'pan' 16x16: PAN/MS ratio"),
    ({"lms": np.zeros((3, 8, 12, 12))}, "train", r"key 'lms' is 12x12"),
    ({"pan": np.zeros((2, 1, 16, 16))}, "train", r"key 'pan' has 2 samples|'gt' has 3 samples"),
    ({"gt": np.zeros((3, 4, 16, 16))}, "train", r"key 'gt' has 4 band"),
])
def test_corruptions_name_file_and_key(tmp_path, override, split, match):
    path = tmp_path / "bad.h5"
    write_h5(path, **override)
    with pytest.raises(DataError, match=match) as err:
        PanCollectionH5(path, "wv3", split)
    assert "bad.h5" in str(err.value)


def test_nan_names_file_key_and_index(tmp_path):
    path = tmp_path / "nan.h5"
    arrays = write_h5(path)
    lms = arrays["lms"].copy()
    lms[2, 3, 1, 1] = np.nan
    with h5py.File(path, "r+") as f:
        f["lms"][...] = lms
    ds = PanCollectionH5(path, "wv3", "train")  # sample 0 is fine
    with pytest.raises(DataError, match=r"nan.h5.*key 'lms', sample 2"):
        ds[2]
    with pytest.raises(DataError, match=r"key 'lms', sample 2"):
        PanCollectionH5(path, "wv3", "train", cache=True)


def test_mix_concat_balanced_and_band_error(root):
    wv3 = panfw.create_dataset("wv3", "train", root=str(root), bands="bgrn")
    gf2 = panfw.create_dataset("gf2", "train", root=str(root))
    cat = mix([wv3, gf2], "concat", seed=0)
    assert len(cat) == 9 and cat.bands == 4 and cat.counts() == {"wv3": 4, "gf2": 5}
    bal = mix([wv3, gf2], "balanced", seed=0)
    assert bal.counts() == {"wv3": 5, "gf2": 5}
    assert mix([wv3, gf2], "balanced", seed=0).index.tolist() == bal.index.tolist()
    batch = collate([bal[i] for i in range(len(bal))])
    assert batch["gt"].shape == (10, 4, 16, 16)
    assert sorted(set(batch["sensor"])) == ["gf2", "wv3"] and isinstance(batch["sensor"], list)
    wv3_all = panfw.create_dataset("wv3", "train", root=str(root))
    with pytest.raises(DataError, match=r"different band counts.*bands = \"bgrn\""):
        mix([wv3_all, gf2], "concat")
    with pytest.raises(UserError, match="mixing mode"):
        mix([gf2], "random")


def test_check_root_and_info(root):
    rows = {(r["sensor"], r["split"]): r for r in check_root(root)}
    assert rows[("wv3", "train")]["status"] == "ok"
    assert rows[("wv3", "test_fr")]["status"] == "ok"
    assert rows[("qb", "train")]["status"] == "missing" and "train_qb_17139.h5" in rows[("qb", "train")]["detail"]
    assert rows[("wv2", "train")]["status"] == "n/a"
    info = inspect_file(root / "train_gf2.h5")
    assert info["keys"]["gt"]["shape"] == (5, 4, 16, 16) and info["sensor_guess"] == "gf2"
    assert info["keys"]["pan"]["max"] <= 1023.0
