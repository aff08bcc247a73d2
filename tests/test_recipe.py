"""Recipes: extends chains, cycles, overrides, sweeps, every validation error path, TOML round trip."""

from __future__ import annotations

import textwrap
import types

import pytest
import torch
from torch import nn

import panfw
from panfw.config.recipe import Recipe, load_recipe, loads_recipe, parse_value
from panfw.errors import RecipeError


class TinyModel(nn.Module):
    def __init__(self, bands: int = 4, width: int = 8, fusion: str = "plain") -> None:
        super().__init__()
        self.conv = nn.Conv2d(bands + 1, bands, 3, padding=1)

    def forward(self, lms, pan, ms):
        return lms + self.conv(torch.cat([lms, pan], 1))


def tiny_dataset(split: str, root=None, sensor: str = "wv3", n: int = 4):
    return []


def _plugin():
    mod = types.ModuleType("recipe_test_plugin")

    @panfw.hookimpl
    def register_models(register):
        register("tiny_model", TinyModel)

    @panfw.hookimpl
    def register_losses(register):
        register("tiny_l1", lambda: nn.L1Loss())

    @panfw.hookimpl
    def register_datasets(register):
        register("tiny_data", tiny_dataset)

    @panfw.hookimpl
    def register_metrics(register):
        register("tiny_psnr", lambda: None)
        register("tiny_qnr", lambda: None)

    for f in (register_models, register_losses, register_datasets, register_metrics):
        setattr(mod, f.__name__, f)
    return mod


@pytest.fixture(autouse=True)
def tiny_plugin(plugin_registered):
    plugin_registered(_plugin(), "recipe_test_plugin")


BASE = """
    seed = 3
    [model]
    name = "tiny_model"
    width = 16
    [[loss.terms]]
    name = "tiny_l1"
    weight = 2.0
    [[data.train]]
    name = "tiny_data"
    sensor = "gf2"
    [train]
    epochs = 5
    lr = 1e-3
    [eval]
    rr_metrics = ["tiny_psnr"]
    fr_metrics = ["tiny_qnr"]
    best = "tiny_psnr"
"""


def write(tmp_path, name, text):
    p = tmp_path / name
    p.write_text(textwrap.dedent(text))
    return p


def test_load_defaults_name_and_open_sections(tmp_path):
    r = load_recipe(write(tmp_path, "base.toml", BASE))
    assert r.name == "base" and r.seed == 3
    assert r.model.name == "tiny_model" and r.model.options == {"width": 16}
    assert r.loss.terms[0].weight == 2.0
    assert r.data.train[0].options == {"sensor": "gf2"}
    assert r.train.epochs == 5 and r.train.lr == 1e-3 and r.train.batch_size == 16


def test_extends_chain_merges_deeply(tmp_path):
    write(tmp_path, "base.toml", BASE)
    write(tmp_path, "mid.toml", 'extends = "base.toml"\n[train]\nepochs = 7\n')
    (tmp_path / "sub").mkdir()
    child = write(tmp_path, "sub/child.toml", 'extends = "../mid.toml"\n[model]\nfusion = "x"\n')
    r = load_recipe(child)
    assert r.name == "child"
    assert r.train.epochs == 7 and r.train.lr == 1e-3  # from mid and base
    assert r.model.options == {"width": 16, "fusion": "x"}


def test_extends_cycle_is_detected(tmp_path):
    write(tmp_path, "a.toml", 'extends = "b.toml"\n')
    write(tmp_path, "b.toml", 'extends = "a.toml"\n')
    with pytest.raises(RecipeError, match="cycle in the extends chain"):
        load_recipe(tmp_path / "a.toml")


def test_extends_missing_file_names_the_file(tmp_path):
    p = write(tmp_path, "a.toml", 'extends = "nope.toml"\n')
    with pytest.raises(RecipeError, match=r"a\.toml: extends: recipe file .*nope\.toml' not found"):
        load_recipe(p)


def test_overrides_are_typed_and_reach_lists(tmp_path):
    p = write(tmp_path, "base.toml", BASE)
    r = load_recipe(p, ["train.epochs=2", "model.fusion=conv1x1", "loss.terms.0.weight=0.5",
                        "train.betas=[0.8, 0.9]", "train.amp=true"])
    assert r.train.epochs == 2 and r.model.options["fusion"] == "conv1x1"
    assert r.loss.terms[0].weight == 0.5 and r.train.betas == [0.8, 0.9] and r.train.amp is True


def test_parse_value():
    assert parse_value("2") == 2 and parse_value("1e-3") == 1e-3 and parse_value("abc") == "abc"
    assert parse_value('"2"') == "2" and parse_value("[1, 2]") == [1, 2]


@pytest.mark.parametrize(
    ("override", "pattern"),
    [
        ("train.epocs=2", r"base\.toml: train\.epocs: unknown key \(did you mean \"epochs\"\?\); accepted: "),
        ("train.epochs=ten", r"command line \(-s train\.epochs=ten\): train\.epochs: expected an integer, got 'ten'"),
        ("train.epochs=-1", r"train\.epochs: -1 is too small; accepted: a value >= 0"),
        ("train.optimizer=sgd", r"train\.optimizer: 'sgd' is not accepted; accepted: adam, adamw"),
        ("train.optimizer=adamW", r"did you mean \"adamw\""),
        ("train.lr=fast", r"train\.lr: expected a number"),
        ("train.amp=1", r"train\.amp: expected true or false"),
        ("model.name=tiny_modle", r"model\.name: unknown model 'tiny_modle' \(did you mean \"tiny_model\"\?\)"),
        ("model.depth=3", r"model\.name: model 'tiny_model' has no option 'depth'"),
        ("loss.terms.0.name=l2", r"loss\.terms\[0\]: unknown loss 'l2'"),
        ("loss.terms.3.weight=1", r"loss\.terms\.3\.weight: index 3 is out of range"),
        ("data.train.0.senser=wv3", r"data\.train\[0\]: dataset 'tiny_data' has no option 'senser' \(did you mean \"sensor\"\?\)"),
        ("eval.rr_metrics=[\"psnrr\"]", r"eval\.rr_metrics\[0\]: unknown metric 'psnrr'"),
        ("eval.best=qnr", r"eval\.best: 'qnr' is not one of eval\.rr_metrics"),
        ("data.mixing=mix", r"data\.mixing: 'mix' is not accepted; accepted: concat, balanced"),
        ("model=3", r"model: expected a table, got 3"),
    ],
)
def test_validation_errors_name_file_key_value_and_accepted(tmp_path, override, pattern):
    # unknown top-level keys in the file itself are reported against that file
    p = write(tmp_path, "base.toml", BASE)
    if override.startswith("train.epocs"):
        p = write(tmp_path, "base.toml", BASE.replace("epochs = 5", "epocs = 5"))
        override = "seed=1"
    with pytest.raises(RecipeError, match=pattern):
        load_recipe(p, [override])


def test_bad_override_syntax_and_bad_toml(tmp_path):
    p = write(tmp_path, "base.toml", BASE)
    with pytest.raises(RecipeError, match="is not KEY=VALUE"):
        load_recipe(p, ["train.epochs"])
    bad = write(tmp_path, "bad.toml", "[train\nepochs = 2\n")
    with pytest.raises(RecipeError, match=r"bad\.toml: not valid TOML"):
        load_recipe(bad)
    with pytest.raises(RecipeError, match="not found"):
        load_recipe(tmp_path / "missing.toml")


def test_missing_required_key(tmp_path):
    p = write(tmp_path, "r.toml", BASE + "\n[[data.test]]\nsensor = 'wv3'\n")
    with pytest.raises(RecipeError, match=r"data\.test\[0\]: missing required key 'name'"):
        load_recipe(p)


def test_sweep_expands_to_named_variants(tmp_path):
    p = write(tmp_path, "sweep.toml", BASE + """
        [[sweep]]
        name = "wide"
        set = { "model.width" = 32, "train.epochs" = 1 }
        [[sweep]]
        name = "plain"
        set = {}
    """)
    r = load_recipe(p)
    variants = r.variants()
    assert [n for n, _ in variants] == ["wide", "plain"]
    wide = variants[0][1]
    assert wide.name == "sweep/wide" and wide.model.options["width"] == 32 and wide.train.epochs == 1
    assert wide.sweep == [] and variants[1][1].model.options["width"] == 16


def test_sweep_variant_errors_are_reported(tmp_path):
    p = write(tmp_path, "sweep.toml", BASE + """
        [[sweep]]
        name = "bad"
        set = { "model.name" = "nope" }
    """)
    with pytest.raises(RecipeError, match="sweep variant 'bad'.*unknown model 'nope'"):
        load_recipe(p)
    p = write(tmp_path, "dup.toml", BASE + '[[sweep]]\nname = "a"\n[[sweep]]\nname = "a"\n')
    with pytest.raises(RecipeError, match="used twice"):
        load_recipe(p)


def test_round_trip_through_toml(tmp_path):
    p = write(tmp_path, "sweep.toml", BASE + '[[sweep]]\nname = "w"\nset = { "model.width" = 4 }\n')
    r = load_recipe(p, ["train.epochs=9"])
    again = loads_recipe(r.to_toml())
    assert again == r
    assert isinstance(again, Recipe)
