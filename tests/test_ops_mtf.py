"""MTF kernels and filtering reproduce Vivone's toolbox (genMTF, MTF, MTF_PAN)."""

import math

import numpy as np
import pytest
import torch

from panfw.ops import filter2d, lowpass_gauss, mtf_filter, mtf_filter_pan, mtf_kernel, mtf_kernels
from panfw.ops.mtf import pad2d
from panfw.sensors import get_sensor


def test_kernels_match_toolbox(testdata_dir):
    d = np.load(testdata_dir / "mtf_kernels.npz")
    for g, ref in zip(d["gnyq"], d["kernels"]):
        k = mtf_kernel(float(g))
        assert k.dtype == torch.float64 and k.shape == (41, 41)
        np.testing.assert_allclose(k.numpy(), ref, rtol=0, atol=1e-12)


def test_kernel_not_renormalised():
    assert mtf_kernel(0.30).sum().item() == pytest.approx(0.998740, abs=5e-7)
    assert mtf_kernel(0.35).sum().item() == pytest.approx(0.998899, abs=5e-7)
    assert mtf_kernel(0.14).sum().item() == pytest.approx(0.997953, abs=5e-7)


@pytest.mark.parametrize("sensor", ["wv3", "wv2", "qb", "gf2"])
def test_nyquist_response_close_to_gain(sensor):
    s = get_sensor(sensor)
    f = 1.0 / (2 * s.ratio)  # MS Nyquist in PAN-pixel cycles
    n = torch.arange(41, dtype=torch.float64) - 20
    def response(g):
        return (mtf_kernel(g, s.ratio).sum(0) * torch.cos(2 * math.pi * f * n)).sum().item()

    for g in s.mtf_ms:  # the windowing puts the realised response 5-8 % below the nominal gain
        assert 0.90 * g <= response(g) <= g, (sensor, g, response(g))
    # the PAN kernel is built the same way; its low gains lose a little more (0.11 -> 0.0987)
    assert 0.88 * s.mtf_pan <= response(s.mtf_pan) <= s.mtf_pan


def test_lowpass_gauss_span():
    k_lpg = mtf_kernel(0.3, span=41)
    assert not torch.allclose(k_lpg, mtf_kernel(0.3))
    x = torch.rand(1, 2, 20, 20, dtype=torch.float64)
    torch.testing.assert_close(lowpass_gauss(x), filter2d(x, k_lpg))


def test_mtf_filter_matches_toolbox(testdata_dir):
    s = np.load(testdata_dir / "scene4_wv3.npz")
    ms = torch.from_numpy(s["ms_hr"])
    out = mtf_filter(ms[None], get_sensor("wv3").gains(4), 4)[0]
    np.testing.assert_allclose(out.numpy(), s["wald_ms_mtf"], rtol=0, atol=1e-9)
    # a sensor name picks its first C gains
    torch.testing.assert_close(mtf_filter(ms, "wv3"), out)


def test_filter2d_direct_equals_fft_and_replicate_border():
    torch.manual_seed(0)
    x = torch.rand(2, 3, 30, 26, dtype=torch.float64)
    k = mtf_kernels([0.3, 0.35, 0.2])
    a = filter2d(x, k, method="direct")
    b = filter2d(x, k, method="fft")
    torch.testing.assert_close(a, b, rtol=0, atol=1e-12)
    # replicate border: a constant image stays constant times the DC gain
    c = torch.full((1, 1, 12, 12), 7.0, dtype=torch.float64)
    torch.testing.assert_close(filter2d(c, k[0]), 7.0 * k[0].sum() * torch.ones_like(c))


def test_filter2d_shapes_dtypes_grad():
    k = mtf_kernel(0.3)
    x = torch.rand(3, 16, 16, requires_grad=True)  # (C,H,W), float32
    y = filter2d(x, k)
    assert y.shape == x.shape and y.dtype == torch.float32
    y.sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()
    assert mtf_filter_pan(torch.rand(16, 16), "wv3").shape == (16, 16)


@pytest.mark.parametrize("border", ["replicate", "symmetric", "circular", "zero"])
def test_pad2d_borders(border):
    x = torch.arange(12.0).view(1, 1, 3, 4)
    p = pad2d(x, 5, 6, border)  # pads larger than the image
    mode = {"replicate": "edge", "symmetric": "symmetric", "circular": "wrap", "zero": "constant"}[border]
    ref = np.pad(x.numpy(), ((0, 0), (0, 0), (5, 5), (6, 6)), mode=mode)
    np.testing.assert_array_equal(p.numpy(), ref)


def test_decimated_filtering_matches_filter_then_decimate():
    from panfw.ops import decimate

    x = torch.rand(2, 3, 40, 36, dtype=torch.float64)
    ref = decimate(mtf_filter(x, [0.3, 0.25, 0.35]), 4)
    for method in ("direct", "fft"):
        got = filter2d(x, mtf_kernels([0.3, 0.25, 0.35]), stride=4, method=method)
        torch.testing.assert_close(got, ref, rtol=0, atol=1e-12)
    torch.testing.assert_close(mtf_filter(x, [0.3, 0.25, 0.35], decimate=True), ref, rtol=0, atol=1e-12)
    torch.testing.assert_close(mtf_filter_pan(x[:, :1], 0.14, decimate=True),
                               decimate(mtf_filter_pan(x[:, :1], 0.14), 4), rtol=0, atol=1e-12)
