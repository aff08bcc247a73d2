"""The PanTiny paper recipes: settings, the ablation sweeps' variants, and full validation."""

from __future__ import annotations

import types
from pathlib import Path

import pytest

import panfw
from panfw.config.recipe import load_recipe
from panfw.engine.objective import build_loss
from panfw.evaluation.cost import count_params as count_parameters

RECIPES = Path(__file__).resolve().parents[1] / "recipes"
PAPER = ["pantiny_small", "pantiny_big", "pantiny_large", "pantiny_huge"]
FILES = ["paper_base", *PAPER, "pantiny_big_released",
         "ablations/fusion", "ablations/refine", "ablations/loss", "ablations/size"]


def _load(name: str, check: bool = False):
    return load_recipe(RECIPES / f"{name}.toml", check=check)


def _weights(recipe) -> dict:
    return {t.name: t.weight for t in recipe.loss.terms}


def _ready() -> bool:
    """Full validation needs the datasets and metrics plugins."""
    return all(n in panfw.registry("datasets") for n in ("wv2", "wv3", "gf2", "qb")) and \
        "psnr" in panfw.registry("metrics")


@pytest.mark.parametrize("name", FILES)
def test_recipe_validates(name):
    if not _ready():
        pytest.skip("the datasets (wv2, wv3, gf2, qb) or metrics plugins are not registered yet")
    recipe = _load(name, check=True)
    assert recipe.variants()


def _stub_plugin():
    """Stand-ins for any of the recipes' datasets and metrics that are not registered."""
    plugin = types.ModuleType("paper_recipe_stubs")  # hashable, as pluggy needs its plugins to be

    def dataset(split, root=None, bands="all", cache=False):
        return []

    @panfw.hookimpl
    def register_datasets(register):
        for n in ("wv2", "wv3", "gf2", "qb"):
            if n not in panfw.registry("datasets"):
                register(n, dataset)

    @panfw.hookimpl
    def register_metrics(register):
        for n in ("psnr", "ssim", "sam", "ergas", "q2n", "d_lambda", "d_s", "qnr", "hqnr"):
            if n not in panfw.registry("metrics"):
                register(n, lambda: None)

    plugin.register_datasets, plugin.register_metrics = register_datasets, register_metrics
    return plugin


@pytest.mark.parametrize("name", FILES)
def test_recipe_validates_models_losses_and_sweeps(name, plugin_registered):
    plugin_registered(_stub_plugin(), "paper_recipe_stubs")
    for _, variant in _load(name, check=True).variants():
        assert panfw.registry("models").get(variant.model.name)


@pytest.mark.parametrize("name", PAPER)
def test_paper_settings(name):
    r = _load(name)
    assert r.model.name == name and r.model.options == {}
    assert _weights(r) == {"charbonnier": 1.5, "ssim": 4.0, "focal": 1.5}
    t = r.train
    assert (t.optimizer, t.lr, t.weight_decay, t.betas) == ("adam", 5e-4, 1e-4, [0.9, 0.999])
    assert (t.scheduler, t.min_lr, t.epochs, t.batch_size) == ("cosine", 1e-6, 500, 16)
    assert (t.grad_clip, t.ema, t.amp) == (0.0, 0.0, False)
    assert r.data.mixing == "concat"
    assert [d.name for d in r.data.train] == ["wv3", "gf2", "qb"]
    assert [d.name for d in r.data.test] == ["wv2", "wv3", "gf2"]
    for d in r.data.train + r.data.test:
        assert d.options == ({"bands": "bgrn"} if d.name in ("wv2", "wv3") else {})


def test_released_recipe_loss():
    r = _load("pantiny_big_released")
    assert r.model.name == "pantiny_big"
    assert _weights(r) == {"l1": 3.0, "ssim": 4.0}
    assert r.loss.terms[1].options == {"padding": "zero"}


def _variants(name: str) -> dict:
    return dict(_load(name).variants())


def _params(recipe) -> int:
    return count_parameters(panfw.create_model(recipe.model.name, **recipe.model.options))


def test_size_sweep_is_table_5():
    v = _variants("ablations/size")
    assert {k: _params(r) for k, r in v.items()} == {"small": 48_269, "big": 81_744, "large": 172_352,
                                                     "huge": 195_912}


def test_fusion_sweep_is_table_7():
    v = _variants("ablations/fusion")
    assert {k: _params(r) for k, r in v.items()} == {"conv1x1": 68_192, "channel_attention": 71_358,
                                                     "gated_conv": 70_292, "deepfusion": 113_590,
                                                     "enhanced_conv": 81_744}


def test_refine_sweep_is_table_8():
    v = _variants("ablations/refine")
    assert {k: _params(r) for k, r in v.items()} == {"conv": 81_744, "channel_attention": 96_367,
                                                     "large_conv": 88_800}


def test_loss_sweep_is_table_6():
    v = _variants("ablations/loss")
    table = {"l1_only": (1.0, 0, 0), "ssim_only": (0, 1.0, 0), "focal_only": (0, 0, 1.0),
             "balanced": (0.8, 0.5, 0.4), "equal": (1.0, 1.0, 1.0), "high_weight": (3.0, 3.0, 3.0),
             "ssim_focus": (0.5, 8.0, 0.5), "ours": (1.5, 4.0, 1.5)}
    assert list(v) == list(table)
    for key, (charb, ssim, focal) in table.items():
        w = _weights(v[key])
        assert (w.get("charbonnier", 0), w.get("ssim", 0), w.get("focal", 0)) == (charb, ssim, focal)
        assert v[key].model.options == {"fusion": "gated_conv"}  # the paper's Table 6 model
        assert len(build_loss(v[key].loss.terms).terms) == sum(x > 0 for x in (charb, ssim, focal))
