"""``panfw eval`` on a trained checkpoint, on a parameter-free model, and its error messages."""

from __future__ import annotations

import json

import pytest
import test_engine_plugin as tiny
from click.testing import CliRunner
from test_engine_plugin import one_thread  # noqa: F401 - autouse fixture

from panfw.cli import cli
from panfw.procedures import run
from panfw.procedures.evaluate import parse_data_option


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    tiny.register()
    folder = tmp_path_factory.mktemp("evalrun")
    run(str(tiny.write_recipe(folder)), ["train.steps=4", "eval.every=0", "eval.figures=0", "eval.baselines=[]"])
    yield next((folder / "runs" / "tiny").iterdir())
    tiny.unregister()


def test_eval_a_checkpoint_with_baselines(trained, tmp_path):
    out = tmp_path / "ev"
    res = CliRunner().invoke(cli, ["eval", str(trained / "best.pt"), "--data", "tiny_set:n=3,seed=5",
                                   "--baseline", "tiny_lms", "--rr-metrics", "tiny_psnr,tiny_mae",
                                   "--fr-metrics", "tiny_qnr", "--figures", "1", "-o", str(out)])
    assert res.exit_code == 0, res.output
    assert "reduced resolution:" in res.output and "| tiny_net |" in res.output and "| tiny_lms |" in res.output
    results = json.loads((out / "results.json").read_text())
    assert results["final"]["tiny_set"]["rr"]["tiny_psnr"]["n"] == 3
    assert set(results["final"]["tiny_set"]["fr"]) == {"tiny_qnr", "tiny_psnr", "tiny_mae"}
    assert results["model"]["params"] > 0 and "tiny_lms" in results["baselines"]
    assert (out / "report.md").is_file() and (out / "examples_tiny_set.png").is_file()


def test_eval_a_run_directory_uses_its_recipe(trained):
    res = CliRunner().invoke(cli, ["eval", str(trained), "--figures", "0"])
    assert res.exit_code == 0, res.output
    reports = list((trained / "eval").glob("*/report.md"))
    assert reports
    results = json.loads((reports[0].parent / "results.json").read_text())
    assert results["final"]["tiny_set"]["rr"]["tiny_psnr"]["n"] == 4  # the recipe's test set (n = 4)


def test_eval_a_parameter_free_model(trained, tmp_path):
    res = CliRunner().invoke(cli, ["eval", "tiny_lms", "--data", "tiny_set:n=2", "--rr-metrics", "tiny_psnr",
                                   "--fr-metrics", "tiny_qnr", "-o", str(tmp_path / "lms")])
    assert res.exit_code == 0, res.output
    results = json.loads((tmp_path / "lms" / "results.json").read_text())
    assert results["model"]["params"] == 0
    assert results["final"]["tiny_set"]["rr"]["tiny_psnr"]["n"] == 2


def test_eval_errors_are_user_errors(trained):
    runner = CliRunner()
    res = runner.invoke(cli, ["eval", "tiny_lmss", "--data", "tiny_set"])
    assert res.exit_code == 2 and "tiny_lms" in res.output  # did-you-mean
    res = runner.invoke(cli, ["eval", "tiny_lms"])
    assert res.exit_code == 2 and "--data" in res.output
    res = runner.invoke(cli, ["eval", "tiny_lms", "--data", "tiny_set:n"])
    assert res.exit_code == 2 and "key=value" in res.output


def test_eval_refuses_an_unusable_report_folder_before_scoring(trained, tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("keep me", encoding="utf-8")
    res = CliRunner().invoke(cli, ["eval", "tiny_lms", "--data", "tiny_set:n=2", "--rr-metrics", "tiny_psnr",
                                   "--fr-metrics", "tiny_qnr", "-o", str(blocker / "report")])
    assert res.exit_code == 2 and "a_file" in res.output and "not a folder" in res.output, res.output
    assert "tiny_set RR" not in res.output and "Traceback" not in res.output  # nothing was scored
    assert blocker.read_text(encoding="utf-8") == "keep me"


def test_parse_data_option():
    spec = parse_data_option("synthetic:sensor=gf2,n=8,bands=bgrn")
    assert spec.name == "synthetic" and spec.options == {"sensor": "gf2", "n": 8, "bands": "bgrn"}
    assert parse_data_option("wv3").options == {}


def test_eval_a_sweep_directory_scores_every_variant(trained, tmp_path):
    extra = """
[[sweep]]
name = "narrow"
set = { "model.width" = 2 }
[[sweep]]
name = "wide"
set = { "model.width" = 6 }
"""
    recipe = tiny.write_recipe(tmp_path, tiny.RECIPE, extra)
    run(str(recipe), ["train.steps=2", "eval.every=0", "eval.figures=0", "eval.baselines=[]"])
    sweep_dir = next((tmp_path / "runs" / "tiny").iterdir())
    out = tmp_path / "ev"
    res = CliRunner().invoke(cli, ["eval", str(sweep_dir), "--data", "tiny_set:n=2", "--figures", "0",
                                   "-o", str(out)])
    assert res.exit_code == 0, res.output
    table = (out / "comparison.md").read_text()
    assert "| narrow |" in table and "| wide |" in table
    for v in ("narrow", "wide"):
        results = json.loads((out / v / "results.json").read_text())
        assert results["final"]["tiny_set"]["rr"]["tiny_psnr"]["n"] == 2
