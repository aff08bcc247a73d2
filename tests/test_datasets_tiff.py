"""tiff_folder: 8-bit tiles paired by name, LR made on the fly (bicubic as the paper, or MTF)."""

import warnings

import numpy as np
import pytest
import rasterio
import torch

import panfw
from panfw.errors import DataError
from panfw.ops import downsample_bicubic


def write_tif(path, arr):
    arr = np.asarray(arr)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with rasterio.open(path, "w", driver="GTiff", width=arr.shape[2], height=arr.shape[1], count=arr.shape[0],
                           dtype=arr.dtype) as dst:
            dst.write(arr)


def make_folder(base, n=3, c=4, size=32, pan_size=None, dtype=np.uint8, top=255):
    rng = np.random.default_rng(0)
    for sub in ("ms", "pan"):
        (base / sub).mkdir(parents=True, exist_ok=True)
    for i in range(n):
        write_tif(base / "ms" / f"tile_{i}.tif", rng.integers(0, top, (c, size, size)).astype(dtype))
        p = pan_size or size
        write_tif(base / "pan" / f"tile_{i}.tif", rng.integers(0, top, (1, p, p)).astype(dtype))
    return base


def test_paper_layout_bicubic(tmp_path):
    make_folder(tmp_path / "train128")
    ds = panfw.create_dataset("tiff_folder", "train", path=str(tmp_path), sensor="gf2")
    assert len(ds) == 3 and ds.bands == 4 and ds.ratio == 4 and ds.sensor == "gf2"
    item = ds[0]
    from panfw_datasets.tiff import read_tiff

    gt = torch.from_numpy(read_tiff(tmp_path / "train128" / "ms" / "tile_0.tif").astype(np.float64) / 255)
    torch.testing.assert_close(item["gt"], gt.float())
    assert item["ms"].shape == (4, 8, 8) and item["lms"].shape == (4, 32, 32) and item["pan"].shape == (1, 32, 32)
    ref = (downsample_bicubic(gt[None], 4)[0] * 255).round().clamp(0, 255) / 255  # re-quantised to uint8
    torch.testing.assert_close(item["ms"], ref.float())
    assert ((item["lms"] * 255) - (item["lms"] * 255).round()).abs().max() < 1e-3


def test_mtf_mode_and_bgrn(tmp_path):
    make_folder(tmp_path, c=8)
    ds = panfw.create_dataset("tiff_folder", "test_rr", path=str(tmp_path), sensor="wv3", lr="mtf", bands="bgrn")
    item = ds[1]
    assert ds.bands == 4 and item["gt"].shape == (4, 32, 32) and item["ms"].shape == (4, 8, 8)


def test_full_resolution_pairs(tmp_path):
    make_folder(tmp_path, size=16, pan_size=64)
    fr = panfw.create_dataset("tiff_folder", "test_fr", path=str(tmp_path), sensor="qb")
    item = fr[0]
    assert "gt" not in item and item["ms"].shape == (4, 16, 16) and item["pan"].shape == (1, 64, 64)
    rr = panfw.create_dataset("tiff_folder", "train", path=str(tmp_path), sensor="qb", lr="mtf")
    item = rr[0]
    assert item["gt"].shape == (4, 16, 16) and item["ms"].shape == (4, 4, 4) and item["pan"].shape == (1, 16, 16)


def test_errors(tmp_path):
    make_folder(tmp_path)
    (tmp_path / "pan" / "tile_1.tif").rename(tmp_path / "pan" / "other.tif")
    with pytest.raises(DataError, match="without a partner.*other"):
        panfw.create_dataset("tiff_folder", "train", path=str(tmp_path))
    with pytest.raises(DataError, match="no ms/ and pan/"):
        panfw.create_dataset("tiff_folder", "train", path=str(tmp_path / "pan"))
    bad = make_folder(tmp_path / "bad", size=32, pan_size=48)
    with pytest.raises(DataError, match="PAN 48x48"):
        panfw.create_dataset("tiff_folder", "train", path=str(bad))
    same = make_folder(tmp_path / "same")
    with pytest.raises(DataError, match="test_fr needs full-resolution pairs"):
        panfw.create_dataset("tiff_folder", "test_fr", path=str(same))
