"""panfw run end to end on a tiny plugin: run directory, report, checkpoints, NaN stop, sweeps."""

from __future__ import annotations

import json
import math

import pytest
import test_engine_plugin as tiny
import torch
from test_engine_plugin import one_thread  # noqa: F401 - autouse fixture

from panfw.engine import TrainingDiverged
from panfw.engine.data import ResumableSampler
from panfw.engine.schedule import lr_lambda
from panfw.evaluation.results import read_metrics_csv
from panfw.io.checkpoint import load_checkpoint
from panfw.io.resolve import model_from_checkpoint
from panfw.procedures import run


@pytest.fixture
def tiny_plugin():
    tiny.register()
    yield tiny
    tiny.unregister()


def _only_run(folder):
    runs = sorted((folder / "runs" / "tiny").iterdir())
    assert len(runs) == 1
    return runs[0]


def test_run_writes_everything(tiny_plugin, tmp_path, capsys):
    results = run(str(tiny.write_recipe(tmp_path)), [])
    run_dir = _only_run(tmp_path)
    for name in ("recipe.toml", "last.pt", "best.pt", "metrics.csv", "results.json", "report.md",
                 "train.log", "curves.png", "examples_tiny_set.png"):
        assert (run_dir / name).is_file(), name
    saved = json.loads((run_dir / "results.json").read_text())
    assert saved["train"]["steps"] == 16 == results["train"]["steps"]
    assert saved["model"]["params"] == sum(p.numel() for p in tiny.tiny_net().parameters())
    assert saved["model"]["flops"] > 0
    final = saved["final"]["tiny_set"]
    assert set(final["rr"]) == {"tiny_psnr", "tiny_mae"}
    assert set(final["fr"]) == {"tiny_qnr", "tiny_psnr", "tiny_mae"}  # FR keeps gt: reference metrics too
    assert final["rr"]["tiny_psnr"]["n"] == 4
    assert "tiny_lms" in saved["baselines"]
    report = (run_dir / "report.md").read_text()
    assert "| Model | Params (K) | FLOPs (G) | tiny_set tiny_psnr↑ | tiny_set tiny_mae↓ |" in report
    assert "## Full resolution" in report and "tiny_lms" in report and "![curves](curves.png)" in report
    rows = read_metrics_csv(run_dir / "metrics.csv")
    losses = [r for r in rows if r["key"] == "train/loss"]
    assert [r["step"] for r in losses] == list(range(1, 17))
    assert any(r["key"] == "eval/tiny_set/rr/tiny_psnr" and r["step"] == 8 for r in rows)
    out = capsys.readouterr().out
    assert "epoch 1/2" in out and "steps/s" in out and "eta" in out  # plain lines off a terminal
    # checkpoints: weights_only loadable, the model rebuilds from them
    last = load_checkpoint(run_dir / "last.pt")
    assert last["training"]["step"] == 16 and last["training"]["finished"]
    assert last["recipe"]["name"] == "tiny" and last["data"]["bands"] == 4
    model, best = model_from_checkpoint(run_dir / "best.pt")
    assert best["best"]["metric"] == "tiny_psnr"
    x = tiny.TinySet("test_rr", n=1)[0]
    assert model(x["lms"][None], x["pan"][None], x["ms"][None]).shape == (1, 4, 16, 16)


def test_nan_loss_stops_and_keeps_last_good_checkpoint(tiny_plugin, tmp_path):
    recipe = tiny.write_recipe(tmp_path, tiny.RECIPE.replace('name = "tiny_l1"',
                                                             'name = "tiny_l1"\nnan_at_call = 6'))
    with pytest.raises(TrainingDiverged, match="loss became nan at epoch 1, step 6"):
        run(str(recipe), ["train.save_every=2"])
    run_dir = _only_run(tmp_path)
    state = load_checkpoint(run_dir / "last.pt")
    assert state["training"]["step"] == 4 and not state["training"]["finished"]
    assert all(torch.isfinite(v).all() for v in state["model"]["state_dict"].values())


def test_nan_loss_is_exit_code_2(tiny_plugin, tmp_path):
    from click.testing import CliRunner

    from panfw.cli import cli

    recipe = tiny.write_recipe(tmp_path, tiny.RECIPE.replace('name = "tiny_l1"',
                                                             'name = "tiny_l1"\nnan_at_call = 1'))
    res = CliRunner().invoke(cli, ["run", str(recipe)])
    assert res.exit_code == 2, res.output
    assert "loss became nan" in res.output and "Traceback" not in res.output


def test_sweep_writes_one_run_per_variant_and_a_comparison(tiny_plugin, tmp_path, capsys):
    extra = """
[[sweep]]
name = "narrow"
set = { "model.width" = 2 }
[[sweep]]
name = "wide"
set = { "model.width" = 6, "train.optimizer" = "adamw" }
"""
    recipe = tiny.write_recipe(tmp_path, tiny.RECIPE.replace("epochs = 2", "epochs = 1")
                               .replace('baselines = ["tiny_lms"]', "baselines = []")
                               .replace("figures = 2", "figures = 0"), extra)
    out = run(str(recipe), [])
    assert set(out) == {"narrow", "wide"}
    sweep_dir = _only_run(tmp_path)
    assert (sweep_dir / "sweep.toml").is_file()
    for v in ("narrow", "wide"):
        assert (sweep_dir / v / "report.md").is_file() and (sweep_dir / v / "best.pt").is_file()
    assert out["narrow"]["model"]["params"] < out["wide"]["model"]["params"]
    table = (sweep_dir / "comparison.md").read_text()
    assert "| narrow |" in table and "| wide |" in table and "## Full resolution" in table
    assert "sweep comparison" in capsys.readouterr().out
    # resuming the sweep skips finished variants and re-reports a finished run without training
    (sweep_dir / "wide" / "results.json").unlink()
    again = run(None, [], resume=str(sweep_dir))
    assert again["wide"]["train"]["steps_this_process"] == 0
    assert (sweep_dir / "wide" / "results.json").is_file()
    assert "already finished" in capsys.readouterr().out


def test_steps_ema_clip_warmup(tiny_plugin, tmp_path):
    results = run(str(tiny.write_recipe(tmp_path)),
                  ["train.steps=5", "train.ema=0.9", "train.grad_clip=0.5", "train.warmup_epochs=0.5",
                   "train.scheduler=constant", "eval.every=0", "eval.baselines=[]", "eval.figures=0"])
    assert results["train"]["steps"] == 5
    state = load_checkpoint(_only_run(tmp_path) / "last.pt")
    tr = state["training"]
    assert tr["ema"]["updates"] == 5 and tr["raw_model"] is not None
    # the deployable weights are the EMA, not the raw weights
    assert any(not torch.equal(state["model"]["state_dict"][k], tr["raw_model"][k]) for k in tr["raw_model"])
    assert tr["scheduler"]["last_epoch"] == 5


def test_lr_schedule_warmup_then_cosine_to_min_lr():
    f = lr_lambda(total_steps=110, warmup_steps=10, base_lr=1e-3, min_lr=1e-5, kind="cosine")
    assert f(0) == pytest.approx(0.1) and f(9) == pytest.approx(1.0)
    assert f(10) == pytest.approx(1.0)
    assert f(60) * 1e-3 == pytest.approx((1e-3 + 1e-5) / 2)
    assert f(110) * 1e-3 == pytest.approx(1e-5)
    const = lr_lambda(100, 0, 1e-3, 0, "constant")
    assert const(0) == const(99) == 1.0


def test_sampler_resumes_mid_epoch_and_splits_global_batches():
    one = ResumableSampler(20, 4, seed=1)
    one.set_epoch(3)
    order = list(one)
    assert sorted(order) == sorted(set(order)) and len(order) == 20
    one.set_epoch(3, start_batch=2)
    assert list(one) == order[8:]
    ranks = []
    for r in range(2):
        s = ResumableSampler(20, 4, seed=1, rank=r, world_size=2)
        s.set_epoch(3)
        ranks.append(list(s))
    # global batch b of one process = the union of the ranks' local batches b
    for b in range(5):
        assert ranks[0][2 * b:2 * b + 2] + ranks[1][2 * b:2 * b + 2] == order[4 * b:4 * b + 4]
    other = ResumableSampler(20, 4, seed=1)
    other.set_epoch(4)
    assert list(other) != order


def test_parameter_free_model_is_only_evaluated(tiny_plugin, tmp_path):
    results = run(str(tiny.write_recipe(tmp_path)), ["model.name=tiny_lms", "eval.baselines=[]"])
    assert results["train"]["steps"] == 0 and results["model"]["params"] == 0
    assert math.isfinite(results["final"]["tiny_set"]["rr"]["tiny_psnr"]["mean"])


def test_balanced_mixing_of_two_sensors(tiny_plugin, tmp_path):
    extra_sets = """
[[data.train]]
name = "tiny_set"
n = 8
sensor = "gf2"
"""
    text = tiny.RECIPE.replace('[[data.test]]', extra_sets + '[data]\nmixing = "balanced"\n[[data.test]]', 1)
    results = run(str(tiny.write_recipe(tmp_path, text)), ["train.epochs=1", "eval.baselines=[]", "eval.figures=0"])
    assert results["train"]["steps_per_epoch"] == 16  # 32 wv3 + the 8 gf2 drawn up to 32: 64 / batch 4
    assert results["data"]["sensor"] == "" and results["data"]["sensors"] == ["wv3", "gf2"]
    assert "bit_depth" not in results["data"]  # 11-bit and 10-bit sensors mixed


def test_mixing_different_band_counts_is_a_data_error(tiny_plugin, tmp_path):
    from panfw.errors import DataError

    text = tiny.RECIPE.replace('[[data.test]]', '[[data.train]]\nname = "tiny_set"\nbands = 8\n[[data.test]]', 1)
    with pytest.raises(DataError, match="band"):
        run(str(tiny.write_recipe(tmp_path, text)), [])
