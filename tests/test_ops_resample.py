"""decimate, interp23tap and imresize reproduce the toolbox; torch-style bicubic helpers."""

import numpy as np
import pytest
import torch

from panfw.ops import decimate, downsample_bicubic, imresize, interp23tap, mtf_filter, upsample_bicubic


@pytest.mark.parametrize("key_in,key_out,ratio", [
    ("in_4x32x32", "out_4x32x32_ratio4", 4),
    ("in_4x32x32", "out_4x32x32_ratio2", 2),
    ("in_8x16x16", "out_8x16x16_ratio4", 4),
])
def test_interp23tap_matches_toolbox(testdata_dir, key_in, key_out, ratio):
    d = np.load(testdata_dir / "interp23tap.npz")
    out = interp23tap(torch.from_numpy(d[key_in])[None], ratio)[0]
    np.testing.assert_allclose(out.numpy(), d[key_out], rtol=0, atol=1e-9)


def test_interp23tap_rejects_non_power_of_two():
    with pytest.raises(ValueError, match="power-of-two"):
        interp23tap(torch.zeros(1, 1, 4, 4), 3)


def test_decimate_grid():
    x = torch.arange(64.0).view(8, 8)
    assert decimate(x, 4).tolist() == [[18.0, 22.0], [50.0, 54.0]]
    assert decimate(x, 2)[0, 0].item() == 9.0


def test_imresize_matches_toolbox_bicubic_antialias(testdata_dir):
    s = np.load(testdata_dir / "scene4_wv3.npz")
    out = imresize(torch.from_numpy(s["pan"]), 0.25)
    np.testing.assert_allclose(out.numpy(), s["wald_pan_lr"], rtol=0, atol=1e-9)


def test_imresize_nearest_is_decimate():
    x = torch.rand(2, 3, 32, 24, dtype=torch.float64)
    torch.testing.assert_close(imresize(x, 0.25, method="nearest"), decimate(x, 4))


def _matlab_bilinear_reference(v: np.ndarray, out_len: int) -> np.ndarray:
    """Hand-written 1-D MATLAB bilinear enlargement (no antialias when enlarging)."""
    n, s = len(v), out_len / len(v)
    out = []
    for i in range(1, out_len + 1):
        u = i / s + 0.5 * (1 - 1 / s)
        lo = int(np.floor(u))
        t = u - lo
        a, b = min(max(lo, 1), n), min(max(lo + 1, 1), n)  # symmetric border = edge for 1 px
        out.append((1 - t) * v[a - 1] + t * v[b - 1])
    return np.array(out)


def test_imresize_bilinear_enlarge_and_size():
    v = np.array([1.0, 4.0, 2.0, 8.0, 5.0])
    x = torch.from_numpy(np.tile(v, (3, 1)))  # 3x5, constant along rows
    y = imresize(x, size=(3, 10), method="bilinear")
    np.testing.assert_allclose(y[0].numpy(), _matlab_bilinear_reference(v, 10), atol=1e-12)


def test_imresize_properties():
    x = torch.full((1, 2, 20, 28), 3.0, dtype=torch.float64)
    for method in ("bicubic", "bilinear", "nearest"):
        y = imresize(x, 0.5, method=method)
        assert y.shape == (1, 2, 10, 14)
        torch.testing.assert_close(y, torch.full_like(y, 3.0))
    assert imresize(x, size=(7, 9)).shape == (1, 2, 7, 9)
    assert imresize(torch.rand(5, 5), 1 / 3).shape == (2, 2)  # ceil
    z = torch.rand(1, 1, 16, 16, requires_grad=True)
    imresize(z, 0.25).sum().backward()
    assert z.grad is not None
    with pytest.raises(ValueError):
        imresize(x, method="lanczos", scale=0.5)


def test_torch_style_bicubic():
    x = torch.rand(2, 4, 16, 16)
    up = upsample_bicubic(x, 4)
    assert up.shape == (2, 4, 64, 64)
    down = downsample_bicubic(up, 4)
    assert down.shape == x.shape
    c = torch.full((1, 1, 8, 8), 0.5)
    torch.testing.assert_close(downsample_bicubic(upsample_bicubic(c, 4), 4), c)


def test_degrade_then_interp_keeps_constants():
    c = torch.full((1, 4, 64, 64), 100.0, dtype=torch.float64)
    lr = decimate(mtf_filter(c, [0.3, 0.35, 0.3, 0.22]), 4)
    up = interp23tap(lr, 4)
    assert up.shape == c.shape
    # each band stays constant: the band's MTF DC gain (not renormalised) times the interpolator's
    # (1 up to the 12-digit coefficients: 1e-9 relative)
    spread = up.amax((-2, -1)) - up.amin((-2, -1))
    assert spread.max().item() < 100 * 1e-8
    assert up[0, 0, 5, 7].item() == pytest.approx(100.0 * 0.9987399482656552, rel=1e-8)


def test_degrade_then_interp_is_shift_free():
    # a smooth periodic pattern: after MTF + 4i+2 decimation + interp23tap its peak stays in place
    n = 64
    t = torch.arange(n, dtype=torch.float64)
    pattern = torch.cos(2 * torch.pi * (t - 21.0) / 32.0)
    img = (pattern[:, None] + pattern[None, :])[None, None]
    up = interp23tap(decimate(mtf_filter(img, 0.3), 4), 4)
    ref = mtf_filter(img, 0.3)
    # correlation with the reference is maximal at zero shift
    scores = {s: float((torch.roll(up, (s, s), (-2, -1)) * ref)[..., 8:-8, 8:-8].sum()) for s in range(-3, 4)}
    assert max(scores, key=scores.get) == 0
    torch.testing.assert_close(up[..., 8:-8, 8:-8], ref[..., 8:-8, 8:-8], atol=0.05, rtol=0)


def test_imresize_long_axis_gather_path_matches_dense():
    from panfw.ops.resample import _dense_weights

    x = torch.rand(1, 2, 3000, dtype=torch.float64)  # 3000 x 750 weights: above the dense-matrix limit
    y = imresize(x, size=(2, 750))
    m = torch.from_numpy(_dense_weights(3000, 750, 0.25, "bicubic", True))
    torch.testing.assert_close(y, x @ m.T)
