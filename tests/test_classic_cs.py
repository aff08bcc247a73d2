"""Component-substitution methods against the toolbox vectors (classical.npz, README §7):
outputs, their band statistics, intermediates and the toolbox's indices of each output."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import panfw
from panfw.errors import DataError

CS_METHODS = ["bt_h", "gs", "gsa", "c_gsa", "bdsd", "bdsd_pc", "pracs"]
CASES = {"fr4": ("scene4_wv3.npz", "fr_lms", "pan", "wald_ms_lr", slice(80, 176)),
         "fr8": ("scene8_wv3.npz", "fr_lms", "fr_pan", "fr_ms", slice(16, 48))}


@pytest.fixture(scope="module")
def vectors(classical_vectors):
    return classical_vectors


def fused(vectors, method: str, case: str) -> torch.Tensor:
    """The method's full output for a case (computed once per module)."""
    key = (method, case)
    if key not in vectors["cache"]:
        inp = vectors["inputs"][case]
        opts = {"segments": inp["labels"]} if method == "c_gsa" else {}
        model = panfw.create_model(method, bands=inp["lms"].shape[1], sensor="wv3", ratio=4, **opts)
        vectors["cache"][key] = model(inp["lms"], inp["pan"], inp["ms"])
    return vectors["cache"][key]


def _rtol(method: str, case: str) -> float:
    # BDSD solves the normal equations like the toolbox (cond(H) = 2.3e3 on fr8): README suggests 1e-7
    return 1e-7 if (method, case) == ("bdsd", "fr8") else 1e-9


@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("method", CS_METHODS)
def test_output_matches_toolbox(vectors, method, case):
    out = fused(vectors, method, case)[0].numpy()
    crop = vectors["inputs"][case]["crop"]
    ref = vectors["npz"][f"{method}_{case}"]
    np.testing.assert_allclose(out[:, crop, crop], ref, rtol=_rtol(method, case), atol=1e-8)
    full = vectors["meta"]["methods"][method]["cases"][case]["full_output"]
    assert list(out.shape) == full["shape"]
    np.testing.assert_allclose(out.mean(axis=(1, 2)), full["band_means"], rtol=_rtol(method, case))
    np.testing.assert_allclose([out.min(), out.max()], [full["min"], full["max"]], rtol=_rtol(method, case))


@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("method", CS_METHODS + ["exp"])
def test_indices_match_toolbox(vectors, method, case):
    functional = pytest.importorskip("panfw_metrics.functional",
                                     reason="metrics plugin (panfw_metrics.functional) not available")
    meta = vectors["meta"]
    if method == "exp":
        out, ref = vectors["inputs"][case]["lms"], meta["exp_reference"][case]
    else:
        out, ref = fused(vectors, method, case), meta["methods"][method]["cases"][case]
    inp = vectors["inputs"][case]
    fr = functional.fr_indices(out, inp["ms"], inp["pan"], "wv3", ratio=4, lms=inp["lms"])
    for key in ("D_lambda", "D_S", "QNR", "D_lambda_K", "HQNR"):
        assert float(fr[key]) == pytest.approx(ref["fr_WV3"][key], abs=1e-10), key
    if case == "fr4":
        rr = functional.rr_indices(out, vectors["gt4"], ratio=4)
        for key, ref_key in (("Q2n", "Q2n"), ("Q_avg", "Q_avg"), ("SAM", "SAM_deg"), ("ERGAS", "ERGAS"),
                             ("SCC", "SCC")):
            assert float(rr[key]) == pytest.approx(ref["rr"][ref_key], abs=1e-10), key


@pytest.mark.parametrize("case", list(CASES))
def test_bdsd_pc_coefficients_and_active_bounds(vectors, case):
    inp = vectors["inputs"][case]
    model = panfw.create_model("bdsd_pc", bands=inp["lms"].shape[1], sensor="wv3")
    gam = model.gammas(*model.lowres(inp["lms"].double(), inp["pan"].double()))[0].T.numpy()  # (C, 1 + C)
    ref = vectors["meta"]["intermediates"][case]["bdsd_pc_gamma"]
    np.testing.assert_allclose(gam, ref["values"], rtol=1e-9, atol=1e-12)
    at_bound = [list(np.flatnonzero(g == 0)) for g in gam]
    assert at_bound == ref["coefficients_at_their_bound_per_band"]


@pytest.mark.parametrize("case", list(CASES))
def test_haze_values(vectors, case):
    from panfw_classic.base import haze_values

    m = haze_values(vectors["inputs"][case]["lms"])[0, :, 0, 0].numpy()
    ref = vectors["meta"]["intermediates"][case]["haze_values_bt_h_and_mtf_glp_hpm_h"]
    np.testing.assert_allclose(m, ref, rtol=1e-12)


def test_bdsd_and_bdsd_pc_agree_where_no_bound_is_active(vectors):
    a, b = fused(vectors, "bdsd", "fr4"), fused(vectors, "bdsd_pc", "fr4")
    torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-8)


def test_c_gsa_ignores_label_numbering(vectors):
    inp = vectors["inputs"]["fr8"]
    relabelled = 10 * (6 - inp["labels"]) + 3  # another numbering of the same partition
    model = panfw.create_model("c_gsa", bands=8, sensor="wv3", segments=relabelled)
    torch.testing.assert_close(model(inp["lms"], inp["pan"], inp["ms"]), fused(vectors, "c_gsa", "fr8"),
                               rtol=1e-12, atol=1e-9)


def test_c_gsa_kmeans_default_is_deterministic(vectors):
    inp = vectors["inputs"]["fr8"]
    model = panfw.create_model("c_gsa", bands=8)
    a, b = model(inp["lms"], inp["pan"], inp["ms"]), model(inp["lms"], inp["pan"], inp["ms"])
    assert torch.equal(a, b) and torch.isfinite(a).all()
    # a fused image close to the toolbox's (another k-means partition, same method)
    rel = (a - fused(vectors, "c_gsa", "fr8")).abs().mean() / a.abs().mean()
    assert rel < 0.02


def test_bdsd_blocks(vectors):
    inp = vectors["inputs"]["fr8"]
    whole = panfw.create_model("bdsd", bands=8, sensor="wv3", block=64)(inp["lms"], inp["pan"], inp["ms"])
    torch.testing.assert_close(whole, fused(vectors, "bdsd", "fr8"), rtol=0, atol=0)
    blocks = panfw.create_model("bdsd", bands=8, sensor="wv3", block=32)(inp["lms"], inp["pan"], inp["ms"])
    assert blocks.shape == whole.shape and torch.isfinite(blocks).all() and not torch.equal(blocks, whole)
    with pytest.raises(DataError, match="block 30"):
        panfw.create_model("bdsd", bands=8, block=30)(inp["lms"], inp["pan"], inp["ms"])


def test_nnls_is_exact():
    from panfw_classic.cs import nnls

    scipy_optimize = pytest.importorskip("scipy.optimize")
    gen = torch.Generator().manual_seed(0)
    a = torch.randn(12, 60, 6, generator=gen, dtype=torch.float64)
    y = torch.randn(12, 60, 1, generator=gen, dtype=torch.float64)
    x_enum = nnls(a, y)
    x_lh = nnls(a, y, max_enumerate=0)  # Lawson-Hanson path
    x_ref = np.stack([scipy_optimize.nnls(a[i].numpy(), y[i, :, 0].numpy())[0] for i in range(12)])
    np.testing.assert_allclose(x_enum.numpy(), x_ref, atol=1e-12)
    np.testing.assert_allclose(x_lh.numpy(), x_ref, atol=1e-12)
    assert (x_enum == 0).any() and (x_enum > 0).any()


def test_gsa_needs_ms():
    model = panfw.create_model("gsa", bands=4)
    lms, pan = torch.rand(1, 4, 16, 16), torch.rand(1, 1, 16, 16)
    with pytest.raises(DataError, match="ms"):
        model(lms, pan, None)
    with pytest.raises(DataError, match="ratio"):
        model(lms, pan, torch.rand(1, 4, 8, 8))
    with pytest.raises(DataError, match="pan"):
        model(lms, torch.rand(1, 2, 16, 16), torch.rand(1, 4, 4, 4))
    with pytest.raises(DataError, match="divisible by the ratio 4"):
        panfw.create_model("bdsd", bands=4)(torch.rand(1, 4, 18, 16), torch.rand(1, 1, 18, 16), None)


@pytest.mark.parametrize("ratio", [2, 4, 8])
def test_lowpass_wavelet_matches_pad_valid_definition(ratio):
    from panfw.ops import lowpass_wavelet

    b = np.array([1, 4, 6, 4, 1]) / 16
    levels = int(np.ceil(np.log2(ratio)))

    def axis(v):  # README §7: levels x valid(pad(.)), then levels x valid(.)
        for _ in range(levels):
            v = np.correlate(np.pad(v, 4, mode="symmetric"), b, mode="valid")
        for _ in range(levels):
            v = np.correlate(v, b, mode="valid")
        return v

    x = np.random.default_rng(0).random((21, 18))
    ref = np.apply_along_axis(axis, 0, np.apply_along_axis(axis, 1, x))
    out = lowpass_wavelet(torch.from_numpy(x)[None, None], ratio)[0, 0].numpy()
    np.testing.assert_allclose(out, ref, rtol=1e-13, atol=1e-13)
    const = lowpass_wavelet(torch.full((1, 2, 9, 9), 3.5, dtype=torch.float64), ratio)
    torch.testing.assert_close(const, torch.full_like(const, 3.5), rtol=1e-14, atol=0)
