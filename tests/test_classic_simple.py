"""EXP and the plain Brovey, GIHS, PCA and SFIM methods, tested by their defining properties and
against an independent numpy transcription of the formulas of py_pansharpening (PanTiny Table 1)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import panfw


def scene(b: int = 2, c: int = 4, h: int = 32, seed: int = 0):
    """Smooth positive synthetic scenes (B, C, H, W), the PAN and the LR MS, in DN."""
    gen = torch.Generator().manual_seed(seed)
    base = torch.rand(b, 1, h // 4, h // 4, generator=gen, dtype=torch.float64)
    base = torch.nn.functional.interpolate(base, size=(h, h), mode="bicubic", align_corners=False)
    spectra = 0.5 + torch.rand(b, c, 1, 1, generator=gen, dtype=torch.float64)
    lms = 300 + 1200 * spectra * (0.6 * base + 0.4 * torch.rand(b, c, h, h, generator=gen, dtype=torch.float64))
    pan = lms.mean(dim=1, keepdim=True) + 40 * torch.randn(b, 1, h, h, generator=gen, dtype=torch.float64)
    ms = lms[..., 2::4, 2::4].clone()
    return lms, pan, ms


def run(name: str, lms, pan, ms, **opts) -> torch.Tensor:
    return panfw.create_model(name, bands=lms.shape[1], **opts)(lms, pan, ms)


def matched(pan, target):
    return (pan - pan.mean(dim=(-2, -1), keepdim=True)) * (
        target.std(dim=(-2, -1), keepdim=True) / pan.std(dim=(-2, -1), keepdim=True)) + target.mean(
        dim=(-2, -1), keepdim=True)


@pytest.mark.parametrize("name", ["exp", "lms"])
def test_exp_returns_lms(name):
    lms, pan, ms = scene()
    for dtype in (torch.float64, torch.float32):
        out = run(name, lms.to(dtype), pan.to(dtype), ms.to(dtype))
        assert out.dtype == dtype and torch.equal(out, lms.to(dtype))


def test_brovey_keeps_band_ratios():
    lms, pan, ms = scene()
    out = run("brovey", lms, pan, ms)
    torch.testing.assert_close(out / out[:, :1], lms / lms[:, :1], rtol=1e-12, atol=0)
    # every band is scaled by the same per-pixel factor: matched PAN over the band mean
    factor = matched(pan, lms.mean(1, keepdim=True)) / lms.mean(1, keepdim=True)
    torch.testing.assert_close(out, lms * factor, rtol=1e-12, atol=1e-9)


def test_gihs_adds_same_detail_to_every_band():
    lms, pan, ms = scene()
    detail = run("gihs", lms, pan, ms) - lms
    torch.testing.assert_close(detail, detail[:, :1].expand_as(detail), rtol=0, atol=1e-9)
    intensity = lms.mean(1, keepdim=True)
    torch.testing.assert_close(detail[:, :1], matched(pan, intensity) - intensity, rtol=1e-12, atol=1e-9)


@pytest.mark.parametrize("name", ["brovey", "gihs"])
def test_pan_equal_to_intensity_returns_lms(name):
    lms, _, ms = scene()
    intensity = lms.mean(1, keepdim=True)
    for pan in (intensity, 0.25 * intensity + 7.0):  # mean/std matching undoes any positive affine map
        torch.testing.assert_close(run(name, lms, pan, ms), lms, rtol=1e-12, atol=1e-9)


def _pc1(lms: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    b, c, h, w = lms.shape
    x = (lms - lms.mean(dim=(-2, -1), keepdim=True)).flatten(2)
    _, _, vt = np.linalg.svd(x.transpose(1, 2).numpy(), full_matrices=False)
    v1 = torch.from_numpy(vt[:, 0, :].copy())  # (B, C)
    v1 = v1 * torch.sign(v1.sum(dim=1, keepdim=True))
    return v1, (v1[:, None, :] @ x).reshape(b, 1, h, w)


def test_pca_substitutes_the_first_component():
    lms, pan, ms = scene()
    out = run("pca", lms, pan, ms)
    v1, pc1 = _pc1(lms)
    # inverse PCA with PC1 replaced: the detail is the first eigenvector times (matched PAN - PC1)
    expected = lms + v1[:, :, None, None] * (matched(pan, pc1) - pc1)
    torch.testing.assert_close(out, expected, rtol=1e-10, atol=1e-8)
    torch.testing.assert_close(out.mean(dim=(-2, -1)), lms.mean(dim=(-2, -1)), rtol=1e-12, atol=1e-9)
    # a PAN equal to PC1 (up to a positive affine map) returns lms
    torch.testing.assert_close(run("pca", lms, 3.0 * pc1 + 500.0, ms), lms, rtol=1e-12, atol=1e-8)


def test_pca_global_mean_quirk():
    lms, pan, ms = scene()
    out = run("pca", lms, pan, ms, global_mean=True)
    means = out.mean(dim=(-2, -1))
    torch.testing.assert_close(means, lms.mean(dim=(1, 2, 3))[:, None].expand_as(means), rtol=1e-12, atol=1e-9)
    torch.testing.assert_close(out - out.mean(dim=(-2, -1), keepdim=True),
                               run("pca", lms, pan, ms) - lms.mean(dim=(-2, -1), keepdim=True),
                               rtol=1e-12, atol=1e-8)


@pytest.mark.parametrize("ratio, size", [(4, 5), (3, 3), (2, 3)])
def test_sfim_matches_box_filter_modulation(ratio, size):
    signal = pytest.importorskip("scipy.signal")
    lms, pan, ms = scene(b=1, h=24)
    out = run("sfim", lms, pan, None, ratio=ratio)
    kernel = np.full((size, size), 1.0 / size**2)
    for k in range(lms.shape[1]):
        pk = matched(pan[0, 0], lms[0, k]).numpy()
        low = signal.convolve2d(pk, kernel, mode="same", boundary="wrap")
        np.testing.assert_allclose(out[0, k].numpy(), lms[0, k].numpy() * pk / low, rtol=1e-12)


def test_sfim_modulation_averages_to_one_for_a_period_of_the_box():
    # a PAN of period 5 on a 20x20 torus: its 5x5 wrapped box mean is its global mean, so the
    # modulation P_k / box(P_k) of every band averages to exactly one
    lms, _, ms = scene(b=1, h=20)
    pan = torch.zeros(1, 1, 20, 20, dtype=torch.float64)
    pan[..., ::5, :] = 1.0
    pan = pan + pan.transpose(-2, -1) + 0.1 * torch.arange(5.0, dtype=torch.float64).repeat(4)
    ratio = (run("sfim", lms, pan, ms) / lms).mean(dim=(-2, -1))
    torch.testing.assert_close(ratio, torch.ones_like(ratio), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("name", ["brovey", "gihs", "pca", "sfim"])
def test_batch_is_per_image(name):
    lms, pan, ms = scene(b=3)
    out = run(name, lms, pan, ms)
    for i in range(3):
        torch.testing.assert_close(out[i:i + 1], run(name, lms[i:i + 1], pan[i:i + 1], ms[i:i + 1]),
                                   rtol=1e-12, atol=1e-9)
