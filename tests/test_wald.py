"""Wald's protocol reproduces the toolbox's resize_images (scene4_wv3.npz)."""

import numpy as np
import pytest
import torch

from panfw.ops import decimate, interp23tap, simulate_rr, wald_degrade


@pytest.fixture(scope="module")
def scene(testdata_dir):
    return dict(np.load(testdata_dir / "scene4_wv3.npz"))


def test_wald_degrade_bicubic_pan(scene):
    ms, pan = torch.from_numpy(scene["ms_hr"])[None], torch.from_numpy(scene["pan"])[None]
    ms_lr, pan_lr = wald_degrade(ms, pan, "wv3", 4)
    assert ms_lr.dtype == torch.float64
    np.testing.assert_allclose(ms_lr[0].numpy(), scene["wald_ms_lr"], rtol=0, atol=1e-9)
    np.testing.assert_allclose(pan_lr[0].numpy(), scene["wald_pan_lr"], rtol=0, atol=1e-9)
    np.testing.assert_array_equal(scene["wald_ms_lr"], scene["wald_ms_mtf"][:, 2::4, 2::4])


def test_wald_degrade_mtf_pan(scene):
    ms, pan = torch.from_numpy(scene["ms_hr"]), torch.from_numpy(scene["pan"])
    _, pan_lr = wald_degrade(ms, pan, "wv3", 4, pan_mode="mtf")
    np.testing.assert_allclose(pan_lr.numpy(), scene["wald_pan_mtf_lr"], rtol=0, atol=1e-9)
    with pytest.raises(ValueError, match="pan_mode"):
        wald_degrade(ms, pan, "wv3", pan_mode="gauss")


def test_band_indices_pick_gains():
    torch.manual_seed(0)
    ms = torch.rand(1, 4, 32, 32, dtype=torch.float64)
    pan = torch.rand(1, 1, 32, 32, dtype=torch.float64)
    a, _ = wald_degrade(ms, pan, "wv3", band_indices=(1, 2, 4, 6))
    from panfw.ops import mtf_filter
    ref = decimate(mtf_filter(ms, [0.355, 0.360, 0.365, 0.335]), 4)
    torch.testing.assert_close(a, ref)


def test_simulate_rr_shapes():
    ms = torch.rand(2, 8, 32, 32, dtype=torch.float64)
    pan = torch.rand(2, 1, 128, 128, dtype=torch.float64)
    s = simulate_rr(ms, pan, "wv3")
    assert s["gt"].shape == (2, 8, 32, 32) and s["ms"].shape == (2, 8, 8, 8)
    assert s["lms"].shape == (2, 8, 32, 32) and s["pan"].shape == (2, 1, 32, 32)
    torch.testing.assert_close(s["lms"], interp23tap(s["ms"], 4))
    with pytest.raises(ValueError, match="does not match"):
        simulate_rr(ms, pan[..., :64, :64], "wv3")
