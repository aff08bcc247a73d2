"""MRA methods (AWLP, MTF-GLP family, C-MTF-GLP-CBD, MF, SR-D) against the toolbox vectors
(classical.npz, README §7): outputs, their full-image statistics and the toolbox's indices; plus
scale consistency, batching, dtype and the options."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import panfw
from panfw.errors import DataError

MRA_METHODS = ["awlp", "mtf_glp", "mtf_glp_fs", "mtf_glp_hpm", "mtf_glp_hpm_h", "mtf_glp_hpm_r",
               "mtf_glp_cbd", "c_mtf_glp_cbd", "mf", "sr_d"]
CASES = {"fr4": ("scene4_wv3.npz", "fr_lms", "pan", "wald_ms_lr", slice(80, 176)),
         "fr8": ("scene8_wv3.npz", "fr_lms", "fr_pan", "fr_ms", slice(16, 48))}
PAIRS = [(m, c) for m in MRA_METHODS for c in CASES if (m, c) != ("c_mtf_glp_cbd", "fr4")]


@pytest.fixture(scope="module", autouse=True)
def _one_thread(one_thread):
    """One thread for this module (see conftest)."""


@pytest.fixture(scope="module")
def vectors(classical_vectors):
    return classical_vectors


def _model(method: str, inp: dict, **opts):
    if method == "c_mtf_glp_cbd" and "segments" not in opts:
        opts["segments"] = inp["labels"]
    return panfw.create_model(method, bands=inp["lms"].shape[1], sensor="wv3", ratio=4, **opts)


def fused(vectors, method: str, case: str) -> torch.Tensor:
    """The method's full output for a case (computed once per module)."""
    key = (method, case)
    if key not in vectors["cache"]:
        inp = vectors["inputs"][case]
        vectors["cache"][key] = _model(method, inp)(inp["lms"], inp["pan"], inp["ms"])
    return vectors["cache"][key]


@pytest.mark.parametrize(("method", "case"), PAIRS)
def test_output_matches_toolbox(vectors, method, case):
    out = fused(vectors, method, case)[0].numpy()
    crop = vectors["inputs"][case]["crop"]
    np.testing.assert_allclose(out[:, crop, crop], vectors["npz"][f"{method}_{case}"], rtol=1e-9, atol=1e-8)
    full = vectors["meta"]["methods"][method]["cases"][case]["full_output"]
    assert list(out.shape) == full["shape"]
    np.testing.assert_allclose(out.mean(axis=(1, 2)), full["band_means"], rtol=1e-9)
    np.testing.assert_allclose([out.min(), out.max()], [full["min"], full["max"]], rtol=1e-9)


@pytest.mark.parametrize(("method", "case"), PAIRS)
def test_indices_match_toolbox(vectors, method, case):
    functional = pytest.importorskip("panfw_metrics.functional",
                                     reason="metrics plugin (panfw_metrics.functional) not available")
    out, inp = fused(vectors, method, case), vectors["inputs"][case]
    ref = vectors["meta"]["methods"][method]["cases"][case]
    fr = functional.fr_indices(out, inp["ms"], inp["pan"], "wv3", ratio=4, lms=inp["lms"])
    for key in ("D_lambda", "D_S", "QNR", "D_lambda_K", "HQNR"):
        assert float(fr[key]) == pytest.approx(ref["fr_WV3"][key], abs=1e-10), key
    if case == "fr4":
        rr = functional.rr_indices(out, vectors["gt4"], ratio=4)
        for key, ref_key in (("Q2n", "Q2n"), ("Q_avg", "Q_avg"), ("SAM", "SAM_deg"), ("ERGAS", "ERGAS"),
                             ("SCC", "SCC")):
            assert float(rr[key]) == pytest.approx(ref["rr"][ref_key], abs=1e-10), key


def test_registered_with_summaries():
    """Each MRA method is the classic plugin's, with its factory's one-line docstring as summary
    (naming the method) and the registration metadata of a parameter-free model."""
    reg = panfw.registry("models")
    for name in MRA_METHODS:
        entry = reg.get(name)
        assert entry.plugin == "classic", name
        first_line = entry.factory.__doc__.strip().splitlines()[0]
        assert entry.summary == first_line and len(entry.summary) > 20, name
        head = entry.summary.split(":")[0].lower().replace("-", "_").replace(" ", "_")
        assert head == name, (name, entry.summary)
        assert entry.meta["reference_params"] == 0 and entry.meta["family"] == "classic", name
        exportable = entry.meta["exportable"]
        assert exportable is True or (isinstance(exportable, str) and "torch.export" in exportable), name
        assert not list(panfw.create_model(name, bands=4).parameters()), name


@pytest.mark.parametrize("method", MRA_METHODS)
def test_scale_consistent_and_float32(vectors, method):
    """[0, 1] inputs give the DN result divided by the maximum DN; float32 in, float32 out."""
    inp = vectors["inputs"]["fr8"]
    k = 2047.0
    model = _model(method, inp)
    unit = model(inp["lms"] / k, inp["pan"] / k, inp["ms"] / k)
    torch.testing.assert_close(unit * k, fused(vectors, method, "fr8"), rtol=1e-9, atol=1e-8)
    out32 = model(inp["lms"].float() / k, inp["pan"].float() / k, inp["ms"].float() / k)
    assert out32.dtype == torch.float32
    torch.testing.assert_close(out32, unit.float(), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("method", ["mtf_glp_hpm_r", "mf", "sr_d"])
def test_batched_equals_single(vectors, method):
    inp = vectors["inputs"]["fr8"]
    flip = {k: inp[k].flip(-1) for k in ("lms", "pan", "ms")}
    model = _model(method, inp, **({"segments": None} if method == "c_mtf_glp_cbd" else {}))
    both = model(*(torch.cat([inp[k], flip[k]]) for k in ("lms", "pan", "ms")))
    torch.testing.assert_close(both[:1], fused(vectors, method, "fr8"), rtol=1e-12, atol=1e-9)
    torch.testing.assert_close(both[1:], model(flip["lms"], flip["pan"], flip["ms"]), rtol=1e-12, atol=1e-9)


def test_c_mtf_glp_cbd_segments(vectors):
    inp = vectors["inputs"]["fr8"]
    relabelled = 10 * (6 - inp["labels"]) + 3  # another numbering of the same partition
    out = _model("c_mtf_glp_cbd", inp, segments=relabelled)(inp["lms"], inp["pan"], inp["ms"])
    torch.testing.assert_close(out, fused(vectors, "c_mtf_glp_cbd", "fr8"), rtol=1e-12, atol=1e-9)
    # one segment = the global MTF-GLP-CBD
    one = _model("c_mtf_glp_cbd", inp, segments=torch.zeros(64, 64))(inp["lms"], inp["pan"], inp["ms"])
    torch.testing.assert_close(one, fused(vectors, "mtf_glp_cbd", "fr8"), rtol=1e-10, atol=1e-8)
    # k-means default: deterministic, close to the toolbox partition's result
    model = panfw.create_model("c_mtf_glp_cbd", bands=8, sensor="wv3")
    a, b = model(inp["lms"], inp["pan"], inp["ms"]), model(inp["lms"], inp["pan"], inp["ms"])
    assert torch.equal(a, b)
    assert (a - out).abs().mean() / out.abs().mean() < 0.02


def test_c_mtf_glp_cbd_four_bands(vectors):
    """The toolbox stops with 4 bands (8 WV3 kernels); panfw uses the first 4 gains."""
    inp = vectors["inputs"]["fr4"]
    out = _model("c_mtf_glp_cbd", inp, segments=torch.zeros(256, 256))(inp["lms"], inp["pan"], inp["ms"])
    torch.testing.assert_close(out, fused(vectors, "mtf_glp_cbd", "fr4"), rtol=1e-10, atol=1e-8)


def test_mtf_glp_hpm_h_without_decimation(vectors):
    inp = vectors["inputs"]["fr8"]
    out = _model("mtf_glp_hpm_h", inp, decimation=False)(inp["lms"], inp["pan"], inp["ms"])
    ref = fused(vectors, "mtf_glp_hpm_h", "fr8")
    assert torch.isfinite(out).all() and not torch.allclose(out, ref)
    assert (out - ref).abs().mean() / ref.abs().mean() < 0.05


def test_morphology_matches_scipy():
    ndimage = pytest.importorskip("scipy.ndimage")
    from panfw_classic.mra import dilate_cross, erode_cross

    x = torch.rand(2, 3, 9, 13, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    cross = np.array([[0, 1, 0], [1, 1, 1], [0, 1, 0]], bool)
    # out-of-image pixels ignored == edge replication here (the centre is always in the cross)
    d = ndimage.grey_dilation(x.numpy(), footprint=cross[None, None], mode="nearest")
    e = ndimage.grey_erosion(x.numpy(), footprint=cross[None, None], mode="nearest")
    np.testing.assert_array_equal(dilate_cross(x).numpy(), d)
    np.testing.assert_array_equal(erode_cross(x).numpy(), e)


def test_mf_non_square_and_glp_ratio_checks():
    gen = torch.Generator().manual_seed(0)
    lms = 100 + 1000 * torch.rand(1, 4, 32, 48, generator=gen, dtype=torch.float64)
    pan = 100 + 1000 * torch.rand(1, 1, 32, 48, generator=gen, dtype=torch.float64)
    out = panfw.create_model("mf")(lms, pan, None)
    assert out.shape == lms.shape and torch.isfinite(out).all()
    with pytest.raises(DataError, match="power-of-two"):
        panfw.create_model("mtf_glp", ratio=3)(lms[..., :30, :30], pan[..., :30, :30], None)


def test_sr_d_patch_grid_and_chunks(vectors):
    from panfw_classic.mra import _patch_starts

    assert _patch_starts(64, 7, 4)[:3] == [0, 3, 6] and _patch_starts(64, 7, 4)[-1] == 57
    assert _patch_starts(16, 7, 4) == [0, 3, 6, 9]
    assert _patch_starts(17, 7, 4) == [0, 3, 6, 9, 10]  # last one moved back to end at the border
    inp = vectors["inputs"]["fr8"]
    chunked = _model("sr_d", inp, chunk=5)(inp["lms"], inp["pan"], inp["ms"])
    torch.testing.assert_close(chunked, fused(vectors, "sr_d", "fr8"), rtol=1e-12, atol=1e-9)
    # a grid whose patches do not tile exactly (17 LR pixels): every pixel still gets details
    lms, pan = inp["lms"][..., :68, :60], inp["pan"][..., :68, :60]
    lms = torch.nn.functional.pad(lms, (0, 0, 0, 4), mode="replicate")[..., :68, :]
    pan = torch.nn.functional.pad(pan, (0, 0, 0, 4), mode="replicate")[..., :68, :]
    out = _model("sr_d", inp)(lms, pan, None)
    assert out.shape == lms.shape and torch.isfinite(out).all()
    with pytest.raises(DataError, match="at least 28"):
        _model("sr_d", inp)(lms[..., :24, :24], pan[..., :24, :24], None)


def test_sr_d_input_scale_option(vectors):
    inp = vectors["inputs"]["fr8"]
    k = 4.0  # DN data scaled by 4 with the scale declared: the same image up to the scale
    out = _model("sr_d", inp, input_scale=1 / k)(inp["lms"] * k, inp["pan"] * k, None)
    torch.testing.assert_close(out / k, fused(vectors, "sr_d", "fr8"), rtol=1e-9, atol=1e-8)
