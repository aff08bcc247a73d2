"""TV (toolbox ``TV_pansharpen``) against the toolbox vectors (classical.npz ``tv_fr4``, README §7),
its quirks (4-band pairing, D Dᵀz update) and the corrected general version."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

import panfw
from panfw.errors import UserError
from panfw.ops import imresize


@pytest.fixture(scope="module", autouse=True)
def _one_thread(one_thread):
    """One thread for this module (see conftest)."""


@pytest.fixture(scope="module")
def data(testdata_dir):
    s4, s8 = np.load(testdata_dir / "scene4_wv3.npz"), np.load(testdata_dir / "scene8_wv3.npz")
    meta = json.loads((testdata_dir / "toolbox_vectors.json").read_text())["classical"]

    def t(a):
        return torch.from_numpy(np.ascontiguousarray(a))[None]

    fr4 = {"lms": t(s4["fr_lms"]), "pan": t(s4["pan"]), "ms": t(s4["wald_ms_lr"])}
    fr8 = {"lms": t(s8["fr_lms"]), "pan": t(s8["fr_pan"]), "ms": t(s8["fr_ms"])}
    model = panfw.create_model("tv", bands=4, sensor="wv3", ratio=4)
    return {"fr4": fr4, "fr8": fr8, "gt4": t(s4["ms_hr"]), "meta": meta["methods"]["tv"]["cases"]["fr4"],
            "ref": np.load(testdata_dir / "classical.npz")["tv_fr4"],
            "out": model(fr4["lms"], fr4["pan"], fr4["ms"])}


def test_output_matches_toolbox(data):
    out = data["out"][0].numpy()
    np.testing.assert_allclose(out[:, 80:176, 80:176], data["ref"], rtol=1e-9, atol=1e-8)
    full = data["meta"]["full_output"]
    assert list(out.shape) == full["shape"]
    np.testing.assert_allclose(out.mean(axis=(1, 2)), full["band_means"], rtol=1e-9)
    np.testing.assert_allclose([out.min(), out.max()], [full["min"], full["max"]], rtol=1e-9)


def test_indices_match_toolbox(data):
    functional = pytest.importorskip("panfw_metrics.functional",
                                     reason="metrics plugin (panfw_metrics.functional) not available")
    inp, ref = data["fr4"], data["meta"]
    fr = functional.fr_indices(data["out"], inp["ms"], inp["pan"], "wv3", ratio=4, lms=inp["lms"])
    for key in ("D_lambda", "D_S", "QNR", "D_lambda_K", "HQNR"):
        assert float(fr[key]) == pytest.approx(ref["fr_WV3"][key], abs=1e-10), key
    rr = functional.rr_indices(data["out"], data["gt4"], ratio=4)
    for key, ref_key in (("Q2n", "Q2n"), ("Q_avg", "Q_avg"), ("SAM", "SAM_deg"), ("ERGAS", "ERGAS"),
                         ("SCC", "SCC")):
        assert float(rr[key]) == pytest.approx(ref["rr"][ref_key], abs=1e-10), key


def test_eight_bands_need_corrected(data):
    inp = data["fr8"]
    with pytest.raises(UserError, match="corrected=True"):
        panfw.create_model("tv", bands=8, sensor="wv3")(inp["lms"], inp["pan"], inp["ms"])
    model = panfw.create_model("tv", bands=8, sensor="wv3", corrected=True)
    out = model(inp["lms"], inp["pan"], inp["ms"])
    assert out.shape == inp["lms"].shape and torch.isfinite(out).all()
    # the solution honours both observations: the reduced bands and the weighted PAN
    reduced = imresize(out, scale=0.25, method="bilinear")
    assert (reduced - inp["ms"]).norm() / inp["ms"].norm() < 0.01
    w = torch.tensor(model.weights, dtype=out.dtype).view(1, 8, 1, 1)
    assert ((w * out).sum(1, keepdim=True) - inp["pan"]).norm() / inp["pan"].norm() < 0.05


def test_corrected_update_differs_where_tv_acts(data):
    """With the demo's lambda (1e-3 DN) the TV term barely acts; a larger lambda shows the fix."""
    inp = {k: v[..., :128, :128] if k != "ms" else v[..., :32, :32] for k, v in data["fr4"].items()}
    opts = dict(bands=4, sensor="wv3", lam=50.0, maxiter=10)
    quirk = panfw.create_model("tv", **opts)(inp["lms"], inp["pan"], inp["ms"])
    fixed = panfw.create_model("tv", corrected=True, **opts)(inp["lms"], inp["pan"], inp["ms"])
    assert torch.isfinite(quirk).all() and torch.isfinite(fixed).all()
    assert (quirk - fixed).abs().max() > 1.0


def test_scale_consistent_batched_float32(data):
    inp = {k: v[..., :64, :64] if k != "ms" else v[..., :16, :16] for k, v in data["fr4"].items()}
    model = panfw.create_model("tv", bands=4, sensor="wv3", maxiter=10)
    dn = model(inp["lms"], inp["pan"], inp["ms"])
    k = 2047.0
    unit = model(inp["lms"] / k, inp["pan"] / k, inp["ms"] / k)
    torch.testing.assert_close(unit * k, dn, rtol=1e-9, atol=1e-8)
    flip = {n: v.flip(-2) for n, v in inp.items()}
    both = model(*(torch.cat([inp[n], flip[n]]) for n in ("lms", "pan", "ms")))
    torch.testing.assert_close(both[:1], dn, rtol=1e-12, atol=1e-9)
    torch.testing.assert_close(both[1:], model(flip["lms"], flip["pan"], flip["ms"]), rtol=1e-12, atol=1e-9)
    out32 = model(*(inp[n].float() / k for n in ("lms", "pan", "ms")))
    assert out32.dtype == torch.float32
    torch.testing.assert_close(out32, unit.float(), rtol=1e-4, atol=1e-5)


def test_settings_and_errors(data):
    assert panfw.create_model("tv").maxiter == 50  # generic sensor: the WV3 demo settings
    ik = panfw.create_model("tv", sensor="ikonos")
    assert (ik.maxiter, ik.alpha, ik.lam) == (10, 1.064, 0.47106)
    assert not list(ik.parameters())
    inp = data["fr4"]
    with pytest.raises(UserError, match="weights"):
        panfw.create_model("tv", weights=[0.3, 0.3])(inp["lms"], inp["pan"], inp["ms"])


def test_difference_operators_are_adjoint():
    from panfw_classic.variational import _dx, _dxt, _dy, _dyt

    gen = torch.Generator().manual_seed(0)
    u, v = (torch.randn(2, 3, 7, 9, generator=gen, dtype=torch.float64) for _ in range(2))
    for d, dt in ((_dx, _dxt), (_dy, _dyt)):
        torch.testing.assert_close((d(u) * v).sum(), (u * dt(v)).sum(), rtol=1e-12, atol=1e-12)
