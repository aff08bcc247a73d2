"""`panfw data check / info / make`: make round-trips a GeoTIFF pair into an h5 the wv3 loader reads."""

import h5py
import numpy as np
import pytest
import torch
from click.testing import CliRunner
from helpers import write_geotiff

from panfw.cli import build_cli
from panfw.errors import DataError
from panfw.ops import simulate_rr
from panfw_datasets.h5 import PanCollectionH5
from panfw_datasets.make import make_h5


@pytest.fixture
def pair(tmp_path):
    rng = np.random.default_rng(0)
    ms = rng.integers(50, 2000, (8, 32, 32)).astype(np.uint16)
    pan = rng.integers(50, 2000, (1, 128, 128)).astype(np.uint16)
    write_geotiff(tmp_path / "ms.tif", ms, 2.0)
    write_geotiff(tmp_path / "pan.tif", pan, 0.5)
    return tmp_path, ms, pan


def test_make_round_trip(pair):
    tmp, ms, pan = pair
    out = tmp / "out" / "train_mine.h5"
    res = CliRunner().invoke(build_cli(), ["data", "make", "--pan", str(tmp / "pan.tif"), "--ms", str(tmp / "ms.tif"),
                                   "--sensor", "wv3", "-o", str(out), "--patch", "16"])
    assert res.exit_code == 0, res.output
    assert "4 patches" in res.output
    with h5py.File(out) as f:
        assert f["gt"].shape == (4, 8, 16, 16) and f["ms"].shape == (4, 8, 4, 4) and f["pan"].shape == (4, 1, 16, 16)
        assert f["gt"].dtype == np.float64
        gt1 = f["gt"][1]
    # patch 1 = rows 0:16, cols 16:32 of the original MS (the RR ground truth)
    np.testing.assert_array_equal(gt1, ms[:, 0:16, 16:32].astype(np.float64))
    ref = simulate_rr(torch.from_numpy(ms.astype(np.float64))[None], torch.from_numpy(pan.astype(np.float64))[None],
                      "wv3")
    ds = PanCollectionH5(out, "wv3", "train")
    item = ds[1]
    torch.testing.assert_close(item["pan"], (ref["pan"][0, :, 0:16, 16:32] / 2047).float())
    torch.testing.assert_close(item["ms"], (ref["ms"][0, :, 0:4, 4:8] / 2047).float())
    assert item["sensor"] == "wv3" and ds.bands == 8


def test_make_offset_overlap(tmp_path):
    rng = np.random.default_rng(1)
    ms = rng.integers(50, 2000, (4, 24, 24)).astype(np.uint16)
    pan = rng.integers(50, 2000, (1, 96, 96)).astype(np.uint16)
    write_geotiff(tmp_path / "ms.tif", ms, 2.0, x0=500008.0)  # MS starts 4 MS pixels right of the PAN
    write_geotiff(tmp_path / "pan.tif", pan, 0.5)
    res = make_h5(tmp_path / "pan.tif", tmp_path / "ms.tif", "qb", tmp_path / "o.h5", patch=8)
    assert res["overlap_ms"] == (24, 20) and res["n"] == 6
    with h5py.File(tmp_path / "o.h5") as f:
        np.testing.assert_array_equal(f["gt"][0], ms[:, 0:8, 0:8])


def test_make_errors(tmp_path):
    rng = np.random.default_rng(2)
    ms = rng.integers(0, 2000, (4, 16, 16)).astype(np.uint16)
    write_geotiff(tmp_path / "ms.tif", ms, 2.0)
    write_geotiff(tmp_path / "pan3.tif", rng.integers(0, 2000, (1, 48, 48)).astype(np.uint16), 0.75)
    with pytest.raises(DataError, match="integer"):
        make_h5(tmp_path / "pan3.tif", tmp_path / "ms.tif", "qb", tmp_path / "a.h5", patch=8)
    write_geotiff(tmp_path / "far.tif", rng.integers(0, 2000, (1, 64, 64)).astype(np.uint16), 0.5, x0=0.0)
    with pytest.raises(DataError, match="do not overlap"):
        make_h5(tmp_path / "far.tif", tmp_path / "ms.tif", "qb", tmp_path / "b.h5", patch=8)
    write_geotiff(tmp_path / "pan.tif", rng.integers(0, 2000, (1, 64, 64)).astype(np.uint16), 0.5)
    with pytest.raises(DataError, match="sensor 'wv3' has 8"):
        make_h5(tmp_path / "pan.tif", tmp_path / "ms.tif", "wv3", tmp_path / "c.h5", patch=8)
    write_geotiff(tmp_path / "shift.tif", rng.integers(0, 2000, (1, 64, 64)).astype(np.uint16), 0.5, x0=500000.2)
    with pytest.raises(DataError, match="not aligned"):
        make_h5(tmp_path / "shift.tif", tmp_path / "ms.tif", "qb", tmp_path / "d.h5", patch=8)
    res = CliRunner().invoke(build_cli(), ["data", "make", "--pan", str(tmp_path / "pan3.tif"), "--ms",
                                   str(tmp_path / "ms.tif"), "--sensor", "qb", "-o", str(tmp_path / "e.h5")])
    assert res.exit_code == 2 and "error:" in res.output


def test_check_and_info_commands(pair):
    tmp, _, _ = pair
    make_h5(tmp / "pan.tif", tmp / "ms.tif", "wv3", tmp / "train_wv3.h5", patch=16)
    runner = CliRunner()
    res = runner.invoke(build_cli(), ["data", "check", str(tmp)])
    assert res.exit_code == 0, res.output
    assert "ok wv3  train" in res.output and "missing" in res.output and "huggingface" in res.output
    res = runner.invoke(build_cli(), ["data", "info", str(tmp / "train_wv3.h5")])
    assert res.exit_code == 0, res.output
    assert "gt   4x8x16x16" in res.output and "sensor guess: wv3" in res.output
    res = runner.invoke(build_cli(), ["data", "info", str(tmp / "nope.h5")])
    assert res.exit_code == 2 and "does not exist" in res.output
