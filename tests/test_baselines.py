"""The deep baselines (plugins/panfw_baselines): parameter counts, PNN's spectral-index inputs, PanNet's
high-pass, LAGConv against the reference's formulation, and a few engine training steps per model."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import panfw
from panfw.errors import UserError
from panfw.ops import highpass_box

COUNTS = {  # the reference codes' counts at 4 bands (../shared/reference/baselines.md)
    "pnn": 68_900, "pnn_dlpan": 80_420, "pannet": 77_640, "msdcnn": 239_004, "msdcnn_dlpan": 189_852,
    "dicnn": 42_180, "fusionnet": 76_324, "lagconv": 148_457, "panflow": 87_322, "pscinn": 3_321_248,
    "panmamba": 478_444,
}


@pytest.fixture(autouse=True)
def _one_thread(one_thread):
    yield


def _count(model: torch.nn.Module, trainable: bool = False) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable)


@pytest.mark.parametrize("name", sorted(COUNTS))
def test_parameter_counts_match_the_reference_codes(name):
    entry = panfw.registry("models").get(name)
    assert entry.plugin == "baselines" and entry.meta["reference_params"] == COUNTS[name]
    assert _count(panfw.create_model(name, bands=4)) == COUNTS[name]


def test_counts_at_other_band_counts_and_frozen_parameters():
    assert _count(panfw.create_model("pannet", bands=8)) == 83_024  # the DLPan code at 8 bands
    # PSCINN's Haar kernels (320) and Pan-Mamba's never-used layers (6,400) are counted, not trained
    assert _count(panfw.create_model("pscinn"), trainable=True) == 3_321_248 - 320
    assert _count(panfw.create_model("panmamba"), trainable=True) == 478_444 - 6_400
    # PanFlow's T couplings share one set of weights: the count does not depend on T
    assert _count(panfw.create_model("panflow", steps=8)) == COUNTS["panflow"]


# --- PNN: NDVI / NDWI inputs ------------------------------------------------------------------------


def test_spectral_indices_of_a_known_pixel():
    from panfw_baselines.pnn import spectral_indices

    ms = torch.tensor([0.1, 0.3, 0.2, 0.6]).view(1, 4, 1, 1)  # B, G, R, NIR
    ndvi, ndwi = spectral_indices(ms, green=1, red=2, nir=3, eps=0.0)
    assert ndvi.item() == pytest.approx((0.6 - 0.2) / (0.6 + 0.2))  # 0.5
    assert ndwi.item() == pytest.approx((0.3 - 0.6) / (0.3 + 0.6))  # -1/3
    # a black pixel: the reference divides 0 by 0; the epsilon keeps it finite (0)
    ndvi, ndwi = spectral_indices(torch.zeros(1, 4, 1, 1), 1, 2, 3)
    assert ndvi.item() == 0.0 and ndwi.item() == 0.0


def test_pnn_feeds_the_indices_of_the_lr_ms_to_its_first_layer():
    model = panfw.create_model("pnn", bands=4).eval()
    ms = torch.tensor([0.1, 0.3, 0.2, 0.6]).view(1, 4, 1, 1).expand(1, 4, 3, 5).contiguous()
    lms = F.interpolate(ms, size=(12, 20), mode="bicubic", align_corners=False)
    pan = torch.rand(1, 1, 12, 20)
    seen = {}
    model.head.register_forward_pre_hook(lambda m, args: seen.setdefault("x", args[0]))
    with torch.no_grad():
        model(lms, pan, ms)
    x = seen["x"]
    assert x.shape == (1, 7, 12, 20)
    torch.testing.assert_close(x[:, :4], lms)
    torch.testing.assert_close(x[:, 4:5], pan)
    # a constant LR image: the bicubically upsampled indices are the pixel's, everywhere
    torch.testing.assert_close(x[:, 5], torch.full((1, 12, 20), 0.5), atol=1e-5, rtol=0)
    torch.testing.assert_close(x[:, 6], torch.full((1, 12, 20), -1 / 3), atol=1e-5, rtol=0)


def test_pnn_band_positions_come_from_the_sensor():
    from panfw_baselines.pnn import index_bands

    assert index_bands(4) == (1, 2, 3)  # B, G, R, NIR for every 4-band sensor
    assert index_bands(4, sensor="wv3") == (1, 2, 3)  # wv3 data reduced to 'bgrn'
    assert index_bands(8, sensor="wv3") == (2, 4, 6)  # green, red, NIR1 of the 8 WorldView bands
    assert index_bands(8) == (2, 4, 6)  # every known 8-band sensor orders them alike
    assert index_bands(5, band_indices=[0, 3, 4]) == (0, 3, 4)
    with pytest.raises(UserError, match="green, red and NIR"):
        index_bands(3)
    with pytest.raises(UserError, match="band_indices"):
        index_bands(4, band_indices=[1, 2, 9])
    model = panfw.create_model("pnn", bands=8, sensor="wv2")
    assert model.indices == (2, 4, 6) and model.head.in_channels == 11


def test_pnn_dlpan_keeps_the_size_with_valid_convolutions():
    model = panfw.create_model("pnn_dlpan", bands=4).eval()
    assert all(c.padding == (0, 0) for c in (model.conv1, model.conv2, model.conv3))
    lms, pan = torch.rand(1, 4, 20, 28), torch.rand(1, 1, 20, 28)
    with torch.no_grad():
        out = model(lms, pan)
        x = F.pad(torch.cat([lms, pan], 1), (8, 8, 8, 8), mode="replicate")
        ref = model.conv3(torch.relu(model.conv2(torch.relu(model.conv1(x)))))
    assert out.shape == lms.shape
    torch.testing.assert_close(out, ref)


# --- PanNet: high-pass by a 5x5 box, reflect-101 --------------------------------------------------


def test_highpass_box_on_known_arrays():
    x = torch.arange(12.0).view(1, 1, 3, 4)  # x[r, c] = 4r + c
    # corner: rows and columns reflect-101 to indices [2, 1, 0, 1, 2], whose mean is 1.2 each,
    # so the box mean is 4 * 1.2 + 1.2 = 6 and the detail 0 - 6
    hp = highpass_box(x)
    assert hp[0, 0, 0, 0].item() == pytest.approx(-6.0)
    # the centre row, column 1: rows [1, 0, 1, 2, 1] (mean 1), columns [1, 0, 1, 2, 3] (mean 1.4)
    assert hp[0, 0, 1, 1].item() == pytest.approx(5.0 - (4 * 1.0 + 1.4))
    # an axis shorter than the filter radius still reflects (period 2(n - 1)): [1, 3] -> 1 3 1 3 1
    hp = highpass_box(torch.tensor([[[[1.0, 3.0]]]]))
    torch.testing.assert_close(hp, torch.tensor([[[[1 - 9 / 5, 3 - 11 / 5]]]]))
    assert torch.equal(highpass_box(torch.full((1, 2, 6, 7), 0.25)), torch.zeros(1, 2, 6, 7))


def test_highpass_box_matches_scipy_mirror_borders():
    ndimage = pytest.importorskip("scipy.ndimage")
    rng = np.random.default_rng(0)
    x = rng.random((2, 3, 9, 13))
    ref = x - ndimage.uniform_filter(x, size=(1, 1, 5, 5), mode="mirror")  # mirror = reflect-101
    np.testing.assert_allclose(highpass_box(torch.from_numpy(x)).numpy(), ref, atol=1e-12)


def test_pannet_sees_only_details():
    model = panfw.create_model("pannet", bands=4).eval()
    ms = torch.rand(1, 4, 6, 5)
    lms = F.interpolate(ms, size=(24, 20))
    pan = torch.rand(1, 1, 24, 20)
    with torch.no_grad():
        base = model(lms, pan, ms) - lms
        shifted = model(lms, pan + 0.3, ms + 0.2) - lms  # a constant offset has no high-pass
    torch.testing.assert_close(base, shifted, atol=1e-5, rtol=0)


# --- LAGConv: the reference's formulation, and its argument order ---------------------------------


def _lagconv_reference(layer, x):
    """PanCollection's LAGConv2D.forward: repeat the per-pixel weights over the channels, matmul."""
    b, n, h, w = x.shape
    m, k = layer.weight.shape[0], layer.kernel
    atw = layer.attention1(x).permute(0, 2, 3, 1).unsqueeze(3).repeat(1, 1, 1, n, 1).reshape(b, h * w, n * k * k)
    kx = F.unfold(x, kernel_size=k, padding=k // 2)
    atx = (atw.permute(0, 2, 1) * kx).permute(0, 2, 1)
    y = atx @ layer.weight.view(m, n * k * k).t()
    y = y + layer.attention3(x).view(b, 1, m)
    return y.permute(0, 2, 1).reshape(b, m, h, w)


def test_lagconv_layer_matches_the_reference_formulation():
    from panfw_baselines.lagconv import LAGConv2d

    torch.manual_seed(0)
    layer = LAGConv2d(5, 7)
    x = torch.randn(2, 5, 6, 9)
    torch.testing.assert_close(layer(x), _lagconv_reference(layer, x), rtol=1e-5, atol=1e-5)


def test_lagconv_adds_its_details_to_lms_not_to_pan():
    model = panfw.create_model("lagconv", bands=4).eval()
    for p in model.tail_conv.parameters():
        torch.nn.init.zeros_(p)  # no details: the output is the residual's base
    lms, pan = torch.rand(1, 4, 8, 12), torch.rand(1, 1, 8, 12)
    with torch.no_grad():
        torch.testing.assert_close(model(lms, pan), lms)


def test_unknown_upsampler_is_a_user_error():
    with pytest.raises(UserError, match="upsample="):
        panfw.create_model("panmamba", upsample="lanczos")


# --- a few training steps in the engine ------------------------------------------------------------

TRAIN = """
name = "{name}"
seed = 0
[model]
name = "{name}"
{options}
[[loss.terms]]
name = "l1"
[[data.train]]
name = "synthetic"
sensor = "gf2"
n = 4
size = {size}
[[data.test]]
name = "synthetic"
sensor = "gf2"
n = 1
size = {size}
[train]
steps = {steps}
batch_size = 4
lr = {lr}
scheduler = "constant"
weight_decay = 0
device = "cpu"
log_every = 1
save_every = 0
[eval]
every = 0
rr_metrics = ["psnr"]
fr_metrics = []
figures = 0
[output]
dir = "{out}"
"""

# name -> (PAN size, steps, lr, extra [model] lines); one batch of 4 repeated, so each step sees the same data
TRAIN_CASES = {
    "pnn": (16, 10, 1e-3, ""), "pnn_dlpan": (16, 10, 1e-3, ""), "pannet": (16, 10, 1e-3, ""),
    "msdcnn": (16, 10, 1e-3, ""), "msdcnn_dlpan": (16, 10, 1e-3, ""), "dicnn": (16, 10, 1e-3, ""),
    "fusionnet": (16, 10, 1e-3, ""), "lagconv": (16, 10, 1e-3, ""), "panflow": (16, 10, 1e-3, ""),
    "pscinn": (16, 8, 2e-4, ""), "panmamba": (16, 6, 1e-3, ""),
}


def _train_losses(tmp_path: Path, name: str) -> list[float]:
    from panfw.evaluation.results import read_metrics_csv
    from panfw.procedures.run import run

    size, steps, lr, options = TRAIN_CASES[name]
    recipe = tmp_path / f"{name}.toml"
    recipe.write_text(TRAIN.format(name=name, options=options, size=size, steps=steps, lr=lr,
                                   out=(tmp_path / "runs").as_posix()), encoding="utf-8")
    result = run(str(recipe), [])
    rows = read_metrics_csv(Path(result["run_dir"]) / "metrics.csv")
    return [r["value"] for r in rows if r["key"] == "train/loss"]


@pytest.mark.parametrize("name", TRAIN_CASES)
def test_trains_in_the_engine_with_the_loss_going_down(tmp_path, name):
    torch.manual_seed(0)
    losses = _train_losses(tmp_path, name)
    assert len(losses) == TRAIN_CASES[name][1] and all(math.isfinite(v) for v in losses), losses
    first, last = np.mean(losses[:2]), np.mean(losses[-2:])
    assert last < first, f"{name}: loss {losses}"


# --- recipes ---------------------------------------------------------------------------------------

RECIPES = Path(__file__).resolve().parents[1] / "recipes"


@pytest.mark.parametrize("name", sorted(COUNTS))
def test_baseline_recipe_is_the_paper_protocol_with_l1(name):
    from panfw.config.recipe import load_recipe

    recipe = load_recipe(RECIPES / "baselines" / f"{name}.toml", check=True)
    base = load_recipe(RECIPES / "paper_base.toml")
    assert recipe.model.name == name and [(t.name, t.weight) for t in recipe.loss.terms] == [("l1", 1.0)]
    assert (recipe.train.lr, recipe.train.weight_decay, recipe.train.epochs, recipe.train.batch_size) == \
        (base.train.lr, base.train.weight_decay, base.train.epochs, base.train.batch_size)
    assert "Original training" in (RECIPES / "baselines" / f"{name}.toml").read_text(encoding="utf-8")


def test_table1_sweeps_every_deep_baseline_pantiny_and_the_classical_methods():
    from panfw.config.recipe import load_recipe

    table = dict(load_recipe(RECIPES / "table1.toml", check=True).variants())
    models = {v.model.name for v in table.values()}
    assert set(COUNTS) | {"pantiny_small", "pantiny_big", "brovey", "gihs", "sfim", "gs"} == models
    for v in table.values():
        free = panfw.registry("models").get(v.model.name).meta["reference_params"] == 0
        assert (v.train.epochs == 0) == free, v.model.name  # classical rows are evaluated, not trained
        assert [t.name for t in v.loss.terms] == ["l1"] and v.train.lr == 5e-4
    synthetic = dict(load_recipe(RECIPES / "table1_synthetic.toml", check=True).variants())
    assert set(synthetic) == set(table)
    trained = [v for v in synthetic.values() if v.train.epochs]
    assert len({(v.train.steps, v.train.batch_size, v.train.lr) for v in trained}) == 1  # one protocol
    assert {d.name for v in synthetic.values() for d in v.data.train + v.data.test} == {"synthetic"}
