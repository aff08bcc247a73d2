"""panfw.ops.ssim: the shared Gaussian window and SSIM against direct computations."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from panfw.ops import gaussian_window, ssim, ssim_map


def _direct_ssim_map(x, y, pad, c1=0.01**2, c2=0.03**2):
    """The textbook form with the 2-D window (pytorch-ssim style): groups=C, zero padding ``pad``."""
    c = x.shape[1]
    w = gaussian_window(11, 1.5, dtype=x.dtype).expand(c, 1, 11, 11)
    mu1, mu2 = F.conv2d(x, w, padding=pad, groups=c), F.conv2d(y, w, padding=pad, groups=c)
    s11 = F.conv2d(x * x, w, padding=pad, groups=c) - mu1**2
    s22 = F.conv2d(y * y, w, padding=pad, groups=c) - mu2**2
    s12 = F.conv2d(x * y, w, padding=pad, groups=c) - mu1 * mu2
    return ((2 * mu1 * mu2 + c1) * (2 * s12 + c2)) / ((mu1**2 + mu2**2 + c1) * (s11 + s22 + c2))


@pytest.fixture
def pair():
    g = torch.Generator().manual_seed(0)
    x = torch.rand(2, 3, 20, 27, generator=g, dtype=torch.float64)
    return x, (x + 0.1 * torch.randn(x.shape, generator=g, dtype=torch.float64)).clamp(0, 1)


def test_gaussian_window():
    w = gaussian_window(11, 1.5, dtype=torch.float64)
    assert w.shape == (11, 11) and w.dtype == torch.float64
    torch.testing.assert_close(w.sum(), torch.tensor(1.0, dtype=torch.float64))
    torch.testing.assert_close(w, w.T)
    torch.testing.assert_close(w, w.flip(0))
    assert w.argmax() == 5 * 11 + 5
    # the Gaussian ratio between the centre and its neighbour
    torch.testing.assert_close(w[5, 5] / w[5, 6], torch.exp(torch.tensor(1 / (2 * 1.5**2), dtype=torch.float64)))


@pytest.mark.parametrize(("padding", "pad"), [("zero", 5), ("valid", 0)])
def test_ssim_map_matches_the_direct_2d_window(pair, padding, pad):
    x, y = pair
    m = ssim_map(x, y, padding=padding)
    torch.testing.assert_close(m, _direct_ssim_map(x, y, pad), rtol=0, atol=1e-12)
    assert m.shape == ((2, 3, 20, 27) if padding == "zero" else (2, 3, 10, 17))


def test_reflect_padding_is_the_direct_form_on_a_reflect_padded_image(pair):
    x, y = pair
    xp, yp = (F.pad(t, (5, 5, 5, 5), mode="reflect") for t in pair)
    torch.testing.assert_close(ssim_map(x, y, padding="reflect"), _direct_ssim_map(xp, yp, 0), rtol=0, atol=1e-12)


def test_reflect_padding_matches_torchmetrics(pair):
    tm = pytest.importorskip("torchmetrics.functional.image")
    x, y = pair
    torch.testing.assert_close(ssim(x, y, padding="reflect"), tm.structural_similarity_index_measure(x, y, data_range=1.0))


def test_identical_images_give_one(pair):
    x, _ = pair
    torch.testing.assert_close(ssim(x, x), torch.tensor(1.0, dtype=torch.float64))


def test_constant_images_give_the_luminance_term():
    a, b = 0.3, 0.5
    x, y = torch.full((1, 2, 16, 16), a, dtype=torch.float64), torch.full((1, 2, 16, 16), b, dtype=torch.float64)
    c1 = 0.01**2
    expected = (2 * a * b + c1) / (a * a + b * b + c1)
    torch.testing.assert_close(ssim(x, y, padding="valid"), torch.tensor(expected, dtype=torch.float64))


def test_reduction_none_is_per_image(pair):
    x, y = pair
    per_image = ssim(x, y, reduction="none")
    assert per_image.shape == (2,)
    torch.testing.assert_close(per_image[1], ssim(x[1:], y[1:]))
    torch.testing.assert_close(per_image.mean(), ssim(x, y))


def test_data_range_scales(pair):
    x, y = pair
    torch.testing.assert_close(ssim(255 * x, 255 * y, data_range=255.0), ssim(x, y))


def test_float32_and_gradients(pair):
    x, y = (t.float() for t in pair)
    x.requires_grad_(True)
    value = ssim(x, y)
    assert value.dtype == torch.float32
    value.backward()
    assert torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0


def test_bad_arguments():
    x = torch.rand(1, 1, 16, 16)
    with pytest.raises(ValueError, match="accepted: zero, reflect, valid"):
        ssim(x, x, padding="same")
    with pytest.raises(ValueError, match="accepted: mean, none"):
        ssim(x, x, reduction="sum")
    with pytest.raises(ValueError, match="same shape"):
        ssim(x, torch.rand(1, 1, 16, 15))


@pytest.mark.parametrize("padding", ["zero", "reflect", "valid"])
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_cpu_plane_path_matches_the_convolution_path(pair, padding, dtype):
    # without gradients the CPU computes plane by plane; with them, by depth-wise convolutions
    x, y = (t.to(dtype) for t in pair)
    with torch.no_grad():
        planes = ssim_map(x, y, padding=padding)
    conv = ssim_map(x.clone().requires_grad_(True), y, padding=padding).detach()
    tol = 1e-13 if dtype == torch.float64 else 1e-5
    torch.testing.assert_close(planes, conv, rtol=0, atol=tol)
