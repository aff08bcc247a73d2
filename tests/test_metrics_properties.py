"""Metrics on small arrays where the answer is known, options, errors, torchmetrics agreement."""

from __future__ import annotations

import math

import pytest
import torch

import panfw
from panfw.errors import UserError
from panfw.interfaces import Metric
from panfw_metrics import functional as Fm

ALL = ["psnr", "ssim", "sam", "ergas", "q", "q2n", "scc", "d_lambda", "d_s", "qnr", "d_lambda_k", "hqnr"]


def _rand(*shape, seed=0, lo=0.1, hi=0.9):
    g = torch.Generator().manual_seed(seed)
    return lo + (hi - lo) * torch.rand(*shape, generator=g, dtype=torch.float64)


def _smooth(x: torch.Tensor, k: int = 5) -> torch.Tensor:
    """A little spatial correlation, so the random images look a bit like images."""
    return torch.nn.functional.avg_pool2d(x, k, stride=1, padding=k // 2, count_include_pad=False)


def test_registered_with_contract():
    reg = panfw.registry("metrics")
    for name in ALL:
        m = panfw.create_metric(name)
        assert isinstance(m, Metric)
        assert m.name == name and m.kind in ("reference", "no_reference")
        assert reg.get(name).meta["kind"] == m.kind
    kinds = {n: panfw.create_metric(n).kind for n in ALL}
    assert [n for n in ALL if kinds[n] == "no_reference"] == ["d_lambda", "d_s", "qnr", "d_lambda_k", "hqnr"]
    lower = {n for n in ALL if not panfw.create_metric(n).higher_is_better}
    assert lower == {"sam", "ergas", "d_lambda", "d_s", "d_lambda_k"}


@pytest.mark.parametrize("bands", [3, 4, 8])
def test_identical_images(bands):
    x = _smooth(_rand(2, bands, 96, 80, seed=bands))
    kw = {"sensor": "wv3"}
    assert torch.equal(panfw.create_metric("sam")(x, x, **kw), torch.zeros(2, dtype=torch.float64))
    assert torch.equal(panfw.create_metric("ergas")(x, x, **kw), torch.zeros(2, dtype=torch.float64))
    for name in ("q", "q2n", "scc", "ssim"):
        v = panfw.create_metric(name)(x, x, **kw)
        assert torch.allclose(v, torch.ones(2, dtype=torch.float64), rtol=0, atol=1e-12), (name, v)
    assert torch.isinf(panfw.create_metric("psnr")(x, x)).all()


def test_known_spectral_rotation():
    """Spectra rotated by theta in the plane of bands 1-2 are theta apart at every pixel."""
    theta = 7.0
    phi = _rand(1, 1, 40, 40, seed=1, lo=0.1, hi=1.2)
    amp = _rand(1, 1, 40, 40, seed=2, lo=100, hi=1500)
    t = math.radians(theta)
    ref = torch.cat([amp * torch.cos(phi), amp * torch.sin(phi), torch.zeros_like(phi)], 1)
    fused = torch.cat([amp * torch.cos(phi + t), amp * torch.sin(phi + t), torch.zeros_like(phi)], 1)
    assert float(Fm.sam(fused, ref)) == pytest.approx(theta, rel=1e-10)
    assert float(Fm.sam(fused, ref, units="rad")) == pytest.approx(t, rel=1e-10)
    m = panfw.create_metric("sam", units="rad", cut=0)
    assert float(m(fused / 2047, ref / 2047)[0]) == pytest.approx(t, rel=1e-10)
    # pixels with a zero spectrum are left out of the mean, not counted as 0
    ref0, fused0 = ref.clone(), fused.clone()
    ref0[..., :5, :] = 0
    assert float(Fm.sam(fused0, ref0)) == pytest.approx(theta, rel=1e-10)


def test_constant_gain_ergas():
    """Constant bands scaled by g: every band has RMSE/mean = |g - 1|, so ERGAS = 100/ratio |g - 1|."""
    levels = torch.tensor([300.0, 700.0, 1100.0, 1500.0], dtype=torch.float64)
    ref = levels.view(1, 4, 1, 1).expand(2, 4, 64, 64).clone()
    g = 1.08
    assert torch.allclose(Fm.ergas(g * ref, ref, ratio=4), torch.full((2,), 25 * 0.08, dtype=torch.float64))
    assert float(Fm.ergas(g * ref, ref, ratio=2)[0]) == pytest.approx(50 * 0.08, rel=1e-12)
    # non-constant bands: (100/ratio) |g-1| sqrt(mean_k mean(r^2)/mean(r)^2)
    r = _rand(1, 4, 48, 48, seed=3, lo=100, hi=2000)
    expected = 25 * 0.08 * math.sqrt(float((r.square().mean((2, 3)) / r.mean((2, 3)).square()).mean()))
    assert float(Fm.ergas(g * r, r)) == pytest.approx(expected, rel=1e-12)
    # the registered metric takes the ratio from the sensor (4) or its option
    assert float(panfw.create_metric("ergas", cut=0)(g * r / 2047, r / 2047, sensor="qb")[0]) == pytest.approx(
        expected, rel=1e-12)
    assert float(panfw.create_metric("ergas", cut=0, ratio=2)(g * r, r)[0]) == pytest.approx(2 * expected, rel=1e-12)


def _checker(n: int) -> torch.Tensor:
    i = torch.arange(n)
    return ((i[:, None] + i[None, :]) % 2 * 2 - 1).to(torch.float64)  # +-1, zero mean on even blocks


@pytest.mark.parametrize("bands", [3, 4, 8])
def test_q2n_hand_built(bands):
    """Reference band k = mu_k + d_k * checker; fused = mu_k + gamma_k d_k * checker + c_k (integers,
    so the uint16 cast is exact). Per block the normalised bands are 1 + sqrt((N-1)/N) * checker, so
    the hypercomplex correlation is 1 and Q2n = contrast * mean term with
    contrast = 2 sz sf / (sz^2 + sf^2), sz^2 = bands, sf^2 = sum gamma_k^2 (unbiased variances), and
    mean term = 2 |m1| |m2| / (|m1|^2 + |m2|^2), m1 = (1, ..., 1) over the padded power of two,
    m2_k = 1 + c_k / std_k (1 for the zero bands padding to a power of two)."""
    n_pad = 1 << (bands - 1).bit_length()
    f64 = torch.float64
    mu = torch.tensor([1000.0, 1100, 1200, 1300, 900, 800, 1400, 1500], dtype=f64)[:bands]
    d = torch.tensor([40.0, 50, 60, 80, 20, 30, 10, 70], dtype=f64)[:bands]
    gamma = torch.tensor([1.5, 0.5, 1.25, 2.0, 1.0, 0.8, 3.0, 1.0], dtype=f64)[:bands]
    c = torch.tensor([10.0, -20, 30, 0, 5, -5, 0, 12], dtype=f64)[:bands]
    ch = _checker(64)
    ref = mu.view(-1, 1, 1) + d.view(-1, 1, 1) * ch
    fused = mu.view(-1, 1, 1) + (gamma * d).view(-1, 1, 1) * ch + c.view(-1, 1, 1)
    npx = 32 * 32
    std = d * math.sqrt(npx / (npx - 1))
    sz, sf = math.sqrt(bands), float(gamma.square().sum().sqrt())
    contrast = 2 * sz * sf / (sz**2 + sf**2)
    m1 = math.sqrt(n_pad)
    m2 = math.sqrt(float((1 + c / std).square().sum()) + (n_pad - bands))
    expected = contrast * 2 * m1 * m2 / (m1**2 + m2**2)
    assert float(Fm.q2n(fused, ref)) == pytest.approx(expected, rel=1e-12)
    assert float(Fm.q2n(ref, ref)) == pytest.approx(1.0, abs=1e-14)


@pytest.mark.parametrize("bands", [3, 4, 8])
def test_q2n_flat_blocks(bands):
    """Constant blocks take the toolbox's flat-block branch: identical flat images score 1."""
    x = torch.full((1, bands, 64, 64), 700.0, dtype=torch.float64)
    x[:, :, :32] = 300.0
    assert float(Fm.q2n(x, x)) == pytest.approx(1.0, abs=1e-15)
    assert float(Fm.q2n(x + 1, x)) < 1e-6  # a flat reference block normalises by eps


def test_q2n_casts_to_uint16():
    """Q2n sees uint16 images: below half a DN of change it cannot see, and [0,1] inputs without a
    scale collapse (which is why the metric scales by the sensor's max DN)."""
    ref = 200 + 1500 * _smooth(_rand(1, 4, 64, 64, seed=4))
    ref = ref.round()
    assert float(Fm.q2n(ref + 0.4, ref)) == pytest.approx(1.0, abs=1e-14)
    assert float(Fm.q2n(ref + 0.6, ref)) < 1 - 1e-6
    x = ref / 2047
    y = (ref + 20) / 2047
    assert float(Fm.q2n(y, x)) != pytest.approx(float(panfw.create_metric("q2n", cut=0)(y, x, sensor="wv3")[0]))


def test_uint16_rounding():
    x = torch.tensor([-3.0, -0.5, 0.49999999999999994, 0.5, 1.5, 2.5, 2.4999, 70000.0, float("nan")],
                     dtype=torch.float64)
    assert Fm.to_uint16(x).tolist() == [0, 0, 0, 1, 2, 3, 2, 65535, 0]


def test_cut_bounds_matches_matlab_indexing():
    x = torch.arange(256.0).view(1, 1, 1, 256).expand(1, 1, 256, 256)
    y = Fm.cut_bounds(x, 21)
    assert y.shape[-2:] == (215, 215) and y[0, 0, 0, 0] == 20 and y[0, 0, 0, -1] == 234
    assert Fm.cut_bounds(x, 0) is x
    with pytest.raises(UserError, match="cut"):
        Fm.cut_bounds(x[..., :40, :40], 21)


def _fr_inputs(seed=0, bands=4, size=64):
    gt = 0.15 + 0.6 * _smooth(_rand(1, bands, size, size, seed=seed), 7)
    pan = gt.mean(1, keepdim=True)
    from panfw.ops import decimate, interp23tap, mtf_filter

    ms = decimate(mtf_filter(gt, "wv3"), 4)
    lms = interp23tap(ms, 4)
    fused = (lms + 0.5 * (pan - interp23tap(decimate(pan, 4), 4))).clamp(0, 1)
    return fused, ms, lms, pan


def test_qnr_is_product_of_distortions():
    fused, ms, lms, pan = _fr_inputs()
    kw = {"sensor": "wv3", "lms": lms}
    dl = panfw.create_metric("d_lambda")(fused, ms, pan, **kw)
    ds = panfw.create_metric("d_s")(fused, ms, pan, **kw)
    dk = panfw.create_metric("d_lambda_k")(fused, ms, pan, **kw)
    assert 0 < float(dl) < 1 and 0 < float(ds) < 1 and 0 < float(dk) < 1
    assert torch.allclose(panfw.create_metric("qnr")(fused, ms, pan, **kw), (1 - dl) * (1 - ds), rtol=0, atol=1e-15)
    assert torch.allclose(panfw.create_metric("hqnr")(fused, ms, pan, **kw), (1 - dk) * (1 - ds), rtol=0, atol=1e-15)
    # exponents of the toolbox's QNR
    q2 = panfw.create_metric("qnr", alpha=2, beta=0.5)(fused, ms, pan, **kw)
    assert torch.allclose(q2, (1 - dl) ** 2 * (1 - ds) ** 0.5, rtol=1e-14)


def test_fused_equal_lms_has_no_spectral_distortion():
    _, ms, lms, pan = _fr_inputs(seed=1)
    assert float(panfw.create_metric("d_lambda")(lms, ms, pan, sensor="wv3", lms=lms)[0]) == pytest.approx(0, abs=1e-15)
    # lms left out: computed as interp23tap(ms), the same array
    assert float(panfw.create_metric("d_lambda")(lms, ms, pan, sensor="wv3")[0]) == pytest.approx(0, abs=1e-15)
    assert float(Fm.d_lambda(lms, lms)) == 0.0


def test_no_reference_cache_is_shared_and_consistent():
    fused, ms, lms, pan = _fr_inputs(seed=2)
    cache: dict = {}
    ds = panfw.create_metric("d_s")(fused, ms, pan, sensor="wv3", cache=cache)
    assert any(k[0] == "d_s" for state in cache.values() for k in state)
    h1 = panfw.create_metric("hqnr")(fused, ms, pan, sensor="wv3", cache=cache)
    h2 = panfw.create_metric("hqnr")(fused, ms, pan, sensor="wv3")
    assert torch.equal(h1, h2)
    assert torch.equal(ds, panfw.create_metric("d_s")(fused, ms, pan, sensor="wv3"))


def test_mixed_sensor_batch_equals_separate_calls():
    x = _smooth(_rand(3, 4, 64, 64, seed=5))
    y = (x + 0.02 * _rand(3, 4, 64, 64, seed=6, lo=-1, hi=1)).clamp(0, 1)
    m = panfw.create_metric("q2n", cut=0)
    mixed = m(y, x, sensor=["wv3", "gf2", "wv3"])
    assert float(mixed[1]) == float(m(y[1:2], x[1:2], sensor="gf2")[0])
    assert torch.equal(mixed[[0, 2]], m(y[[0, 2]], x[[0, 2]], sensor="wv3"))
    assert float(mixed[1]) != float(m(y[1:2], x[1:2], sensor="wv3")[0])  # 10-bit vs 11-bit DN scale


def test_scale_free_metrics_do_not_need_the_sensor():
    x = _smooth(_rand(2, 4, 80, 80, seed=7))
    y = (x * 1.02 + 0.01).clamp(0, 1)
    for name in ("sam", "ergas", "q", "scc"):
        kw = {"ratio": 4} if name == "ergas" else {}
        a = panfw.create_metric(name, **kw)(y, x)
        b = panfw.create_metric(name, **kw)(y, x, sensor="wv3")
        assert torch.allclose(a, b, rtol=1e-12), name
    with pytest.raises(UserError, match="needs the sensor"):
        panfw.create_metric("q2n")(y, x)
    with pytest.raises(UserError, match="ratio"):
        panfw.create_metric("ergas")(y, x)


def test_thresholding_clips_fused_to_bit_range():
    x = _smooth(_rand(1, 4, 64, 64, seed=8))
    y = x.clone()
    y[..., :10, :] = 1.5  # above 2^11 DN once scaled
    m_on = panfw.create_metric("q2n", cut=0, threshold=True)
    clipped = y.clamp(max=2048 / 2047)
    assert float(m_on(y, x, sensor="wv3")[0]) == float(panfw.create_metric("q2n", cut=0)(clipped, x, sensor="wv3")[0])
    assert float(m_on(y, x, sensor="wv3")[0]) != float(panfw.create_metric("q2n", cut=0)(y, x, sensor="wv3")[0])


def test_option_and_input_errors():
    with pytest.raises(UserError, match="units"):
        panfw.create_metric("sam", units="grad")
    with pytest.raises(UserError, match="scale"):
        panfw.create_metric("q2n", scale="dn")
    with pytest.raises(UserError, match="cut"):
        panfw.create_metric("q", cut=-1)
    with pytest.raises(UserError, match="padding"):
        panfw.create_metric("ssim", padding="circular")
    with pytest.raises(panfw.errors.RegistryError, match="block_size"):
        panfw.create_metric("q2n", blocksize=16)
    x = _rand(1, 4, 48, 48)
    with pytest.raises(UserError, match="same shape"):
        panfw.create_metric("sam")(x, x[..., :40])
    with pytest.raises(UserError, match="multiples of the block size"):
        Fm.d_lambda(x, x)
    with pytest.raises(UserError, match="pass cut=0"):
        panfw.create_metric("q")(_rand(1, 4, 64, 64), _rand(1, 4, 64, 64))  # 64 - 41 = 23 < 32
    with pytest.raises(UserError, match="unknown sensor"):
        panfw.create_metric("q2n", cut=0)(x, x, sensor="wv9")
    with pytest.raises(UserError, match="pan"):
        Fm.d_s(_rand(1, 4, 64, 64), _rand(1, 4, 64, 64), _rand(1, 1, 32, 32))


def test_block_and_window_options():
    x = 200 + 1500 * _smooth(_rand(1, 4, 64, 64, seed=9))
    y = x + 30 * _rand(1, 4, 64, 64, seed=10, lo=-1, hi=1)
    assert float(Fm.q2n(y, x, block=16)) != float(Fm.q2n(y, x, block=32))
    assert float(Fm.q_avg(y, x, block=8)) != float(Fm.q_avg(y, x, block=32))
    # q with a block covering the whole image = one UIQI over the image
    q_full = float(Fm.q_avg(y[..., :32, :32], x[..., :32, :32], block=32))
    ub = Fm.uqi_blocks(y[..., :32, :32], x[..., :32, :32], 32).mean()
    assert q_full == pytest.approx(float(ub), rel=1e-12)


def test_unbatched_inputs_give_scalars():
    x = 200 + 1500 * _smooth(_rand(1, 4, 64, 64, seed=11))[0]
    y = x + 5
    for fn in (Fm.sam, Fm.ergas, Fm.q_avg, Fm.q2n, Fm.scc, Fm.psnr):
        assert fn(y, x).dim() == 0


def test_float32_and_float64_agree():
    fused, ms, lms, pan = _fr_inputs(seed=3)
    for name in ("d_lambda", "d_s", "hqnr"):
        m = panfw.create_metric(name)
        a = m(fused, ms, pan, sensor="wv3", lms=lms)
        b = m(fused.float(), ms.float(), pan.float(), sensor="wv3", lms=lms.float())
        assert b.dtype == torch.float64
        assert torch.allclose(a, b, rtol=0, atol=1e-5), name


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_matches_cpu():
    fused, ms, lms, pan = _fr_inputs(seed=4)
    for name in ("d_lambda", "d_s", "qnr", "d_lambda_k", "hqnr"):
        m = panfw.create_metric(name)
        a = m(fused, ms, pan, sensor="wv3", lms=lms)
        b = m(fused.cuda(), ms.cuda(), pan.cuda(), sensor="wv3", lms=lms.cuda())
        assert b.device.type == "cuda"
        assert torch.allclose(a, b.cpu(), rtol=1e-10, atol=1e-12), name
    x = _smooth(_rand(2, 4, 96, 96, seed=12))
    y = (x + 0.01).clamp(0, 1)
    for name in ("psnr", "ssim", "sam", "ergas", "q", "q2n", "scc"):
        m = panfw.create_metric(name)
        assert torch.allclose(m(y, x, sensor="wv3"), m(y.cuda(), x.cuda(), sensor="wv3").cpu(), rtol=1e-10), name


# ---- torchmetrics, where the definitions coincide ------------------------------------------------

def test_agrees_with_torchmetrics():
    tm = pytest.importorskip("torchmetrics.functional.image")
    x = _smooth(_rand(3, 4, 48, 40, seed=13))
    y = (x + 0.05 * _rand(3, 4, 48, 40, seed=14, lo=-1, hi=1)).clamp(0, 1)
    ours = panfw.create_metric("psnr")(y, x)
    theirs = tm.peak_signal_noise_ratio(y, x, data_range=1.0, reduction="none", dim=(1, 2, 3))
    assert torch.allclose(ours, theirs.double(), rtol=1e-5)
    ours = panfw.create_metric("ssim")(y, x)  # reflect padding, as torchmetrics 1.x
    theirs = tm.structural_similarity_index_measure(y, x, data_range=1.0, reduction="none")
    assert torch.allclose(ours, theirs.double(), rtol=1e-5)
    ours = panfw.create_metric("sam", units="rad", cut=0)(y, x)
    theirs = tm.spectral_angle_mapper(y, x, reduction="none").flatten(1).mean(1)
    assert torch.allclose(ours, theirs.double(), rtol=1e-5)
    ours = panfw.create_metric("ergas", cut=0)(y, x, sensor="wv3")
    theirs = tm.error_relative_global_dimensionless_synthesis(y, x, ratio=4, reduction="none")
    assert torch.allclose(ours, theirs.double(), rtol=1e-5)


def test_ssim_metric_options():
    from panfw.ops.ssim import ssim

    x = _smooth(_rand(2, 4, 40, 40, seed=15))
    y = (x + 0.1 * _rand(2, 4, 40, 40, seed=16, lo=-1, hi=1)).clamp(0, 1)
    for padding in ("zero", "reflect", "valid"):
        m = panfw.create_metric("ssim", padding=padding)
        assert torch.allclose(m(y, x), ssim(y, x, padding=padding, reduction="none"), rtol=1e-14)
    assert torch.all(panfw.create_metric("ssim", clamp=True)(y, x) >= panfw.create_metric("ssim")(y, x))
    assert panfw.create_metric("ssim", cut=5)(y, x).shape == (2,)
