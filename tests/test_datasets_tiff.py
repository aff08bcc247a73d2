"""tiff_folder: 8-bit tiles paired by name, LR made on the fly (bicubic as the paper, or MTF)."""


import numpy as np
import pytest
import torch
from helpers import make_tiff_folder

import panfw
from panfw.errors import DataError
from panfw.ops import decimate, downsample_bicubic, imresize, interp23tap, mtf_filter
from panfw.sensors import get_sensor
from panfw_datasets.tiff import read_tiff


def test_paper_layout_bicubic(tmp_path):
    make_tiff_folder(tmp_path / "train128")
    ds = panfw.create_dataset("tiff_folder", "train", path=str(tmp_path), sensor="gf2")
    assert len(ds) == 3 and ds.bands == 4 and ds.ratio == 4 and ds.sensor == "gf2"
    item = ds[0]
    gt = torch.from_numpy(read_tiff(tmp_path / "train128" / "ms" / "tile_0.tif").astype(np.float64) / 255)
    torch.testing.assert_close(item["gt"], gt.float())
    assert item["ms"].shape == (4, 8, 8) and item["lms"].shape == (4, 32, 32) and item["pan"].shape == (1, 32, 32)
    ref = (downsample_bicubic(gt[None], 4)[0] * 255).round().clamp(0, 255) / 255  # re-quantised to uint8
    torch.testing.assert_close(item["ms"], ref.float())
    assert ((item["lms"] * 255) - (item["lms"] * 255).round()).abs().max() < 1e-3


def test_mtf_mode_and_bgrn(tmp_path):
    """lr = "mtf": the MS is the toolbox MTF filter of the tile (the sensor's gains of the picked bands)
    decimated on the 4i+2 grid, lms its interp23tap; gt the tile itself, the PAN as stored."""
    make_tiff_folder(tmp_path, c=8)
    ds = panfw.create_dataset("tiff_folder", "test_rr", path=str(tmp_path), sensor="wv3", lr="mtf", bands="bgrn")
    item = ds[1]
    assert ds.bands == 4 and item["gt"].shape == (4, 32, 32) and item["ms"].shape == (4, 8, 8)
    bgrn = [1, 2, 4, 6]
    tile = torch.from_numpy(read_tiff(tmp_path / "ms" / "tile_1.tif").astype(np.float64) / 255)[bgrn]
    pan = torch.from_numpy(read_tiff(tmp_path / "pan" / "tile_1.tif").astype(np.float64) / 255)
    gains = get_sensor("wv3").gains(band_indices=bgrn)
    # computed independently: the full-grid filter (not the strided one), then decimation
    ms = decimate(mtf_filter(tile[None], gains, 4), 4)
    torch.testing.assert_close(item["gt"], tile.float())
    torch.testing.assert_close(item["ms"], ms[0].float(), rtol=0, atol=1e-6)
    torch.testing.assert_close(item["lms"], interp23tap(ms, 4)[0].float(), rtol=0, atol=1e-6)
    torch.testing.assert_close(item["pan"], pan.float())
    # the bicubic mode of the same tile differs (the option is not ignored)
    bic = panfw.create_dataset("tiff_folder", "test_rr", path=str(tmp_path), sensor="wv3", bands="bgrn")[1]
    assert (bic["ms"] - item["ms"]).abs().max() > 1e-3


def test_mtf_mode_on_full_resolution_pairs_is_walds_protocol(tmp_path):
    make_tiff_folder(tmp_path, n=1, c=4, size=16, pan_size=64)
    item = panfw.create_dataset("tiff_folder", "train", path=str(tmp_path), sensor="qb", lr="mtf")[0]
    ms = torch.from_numpy(read_tiff(tmp_path / "ms" / "tile_0.tif").astype(np.float64) / 255)
    pan = torch.from_numpy(read_tiff(tmp_path / "pan" / "tile_0.tif").astype(np.float64) / 255)
    ms_lr = decimate(mtf_filter(ms[None], get_sensor("qb").gains(4), 4), 4)
    pan_lr = imresize(pan[None], scale=0.25, method="bicubic", antialias=True)
    torch.testing.assert_close(item["gt"], ms.float())
    torch.testing.assert_close(item["ms"], ms_lr[0].float(), rtol=0, atol=1e-6)
    torch.testing.assert_close(item["pan"], pan_lr[0].float(), rtol=0, atol=1e-6)
    assert item["pan"].shape == (1, 16, 16) and item["ms"].shape == (4, 4, 4)


def test_full_resolution_pairs(tmp_path):
    make_tiff_folder(tmp_path, size=16, pan_size=64)
    fr = panfw.create_dataset("tiff_folder", "test_fr", path=str(tmp_path), sensor="qb")
    item = fr[0]
    assert "gt" not in item and item["ms"].shape == (4, 16, 16) and item["pan"].shape == (1, 64, 64)
    rr = panfw.create_dataset("tiff_folder", "train", path=str(tmp_path), sensor="qb", lr="mtf")
    item = rr[0]
    assert item["gt"].shape == (4, 16, 16) and item["ms"].shape == (4, 4, 4) and item["pan"].shape == (1, 16, 16)


def test_errors(tmp_path):
    make_tiff_folder(tmp_path)
    (tmp_path / "pan" / "tile_1.tif").rename(tmp_path / "pan" / "other.tif")
    with pytest.raises(DataError, match="without a partner.*other"):
        panfw.create_dataset("tiff_folder", "train", path=str(tmp_path))
    with pytest.raises(DataError, match="no ms/ and pan/"):
        panfw.create_dataset("tiff_folder", "train", path=str(tmp_path / "pan"))
    bad = make_tiff_folder(tmp_path / "bad", size=32, pan_size=48)
    with pytest.raises(DataError, match="PAN 48x48"):
        panfw.create_dataset("tiff_folder", "train", path=str(bad))
    same = make_tiff_folder(tmp_path / "same")
    with pytest.raises(DataError, match="test_fr needs full-resolution pairs"):
        panfw.create_dataset("tiff_folder", "test_fr", path=str(same))
