"""Every model of the classic plugin: scale consistency (the same scene in DN and in [0, 1] gives the
same fused image up to the scale), per-image batching, dtype round trip and the model contract."""

from __future__ import annotations

import pytest
import torch

import panfw
from panfw.ops import interp23tap


def _classic_models() -> list[str]:
    return [e.name for e in panfw.registry("models") if e.plugin == "classic"]


CLASSIC = _classic_models()
MAX_DN = 2047.0  # wv3, 11 bits


def scene(b: int = 2, c: int = 4, h: int = 32, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Synthetic DN scenes: an HR MS with shared structure, its PAN, the LR MS and lms = interp23tap(ms)."""
    gen = torch.Generator().manual_seed(seed)
    coarse = torch.rand(b, 1, h // 4, h // 4, generator=gen, dtype=torch.float64)
    structure = torch.nn.functional.interpolate(coarse, size=(h, h), mode="bicubic", align_corners=False)
    spectra = 0.4 + 0.6 * torch.rand(b, c, 1, 1, generator=gen, dtype=torch.float64)
    hr = 150 + 1500 * spectra * (0.7 * structure + 0.3 * torch.rand(b, c, h, h, generator=gen, dtype=torch.float64))
    pan = hr.mean(dim=1, keepdim=True) + 5 * torch.randn(b, 1, h, h, generator=gen, dtype=torch.float64)
    ms = torch.nn.functional.avg_pool2d(hr, 4)
    return interp23tap(ms, 4), pan, ms


def build(name: str, bands: int = 4):
    return panfw.create_model(name, bands=bands, sensor="wv3", ratio=4)


def test_all_classic_models_registered():
    expected = {"exp", "lms", "brovey", "gihs", "pca", "sfim", "bt_h", "gs", "gsa", "c_gsa", "bdsd", "bdsd_pc",
                "pracs"}
    assert expected <= set(CLASSIC)


@pytest.mark.parametrize("name", CLASSIC)
def test_scale_consistent(name):
    lms, pan, ms = scene()
    model = build(name)
    assert sum(p.numel() for p in model.parameters()) == 0
    out_dn = model(lms, pan, ms)
    out_unit = model(lms / MAX_DN, pan / MAX_DN, ms / MAX_DN)
    assert out_dn.shape == lms.shape and torch.isfinite(out_dn).all()
    torch.testing.assert_close(out_unit * MAX_DN, out_dn, rtol=1e-9, atol=1e-9 * float(out_dn.abs().max()))


@pytest.mark.parametrize("name", CLASSIC)
def test_batch_is_per_image_and_dtype_round_trips(name):
    lms, pan, ms = scene()
    model = build(name)
    out = model(lms, pan, ms)
    for i in range(lms.shape[0]):
        one = model(lms[i:i + 1], pan[i:i + 1], ms[i:i + 1])
        torch.testing.assert_close(out[i:i + 1], one, rtol=1e-10, atol=1e-8)
    out32 = model(lms.float() / MAX_DN, pan.float() / MAX_DN, ms.float() / MAX_DN)
    assert out32.dtype == torch.float32
    torch.testing.assert_close(out32.double() * MAX_DN, out, rtol=1e-4, atol=1e-2)
