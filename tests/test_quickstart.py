"""The quickstart and paradigm recipes: they validate, the quickstart runs end to end with the bundled
plugins, and (slow) its model beats plain upsampling on PSNR, SAM and ERGAS on every sensor."""

from __future__ import annotations

from pathlib import Path

import pytest
from test_engine_plugin import one_thread  # noqa: F401 - autouse fixture

from panfw.config.recipe import load_recipe
from panfw.procedures import run

RECIPES = Path(__file__).resolve().parents[1] / "recipes"
SENSORS = ("synthetic/wv2", "synthetic/wv3", "synthetic/gf2")


def _needs(*names: str) -> None:
    import panfw

    for kind, name in (("models", "pantiny_small"), ("models", "lms"), ("datasets", "synthetic"), *names):
        if name not in panfw.registry(kind):
            pytest.skip(f"{kind[:-1]} {name!r} is not registered (plugin missing)")


def test_quickstart_and_paradigm_validate():
    _needs()
    q = load_recipe(RECIPES / "quickstart.toml")
    assert q.model.name == "pantiny_small" and len(q.data.train) == 3
    assert {d.options.get("sensor") for d in q.data.train} == {"wv2", "wv3", "gf2"}
    assert "lms" in q.eval.baselines
    p = load_recipe(RECIPES / "paradigm.toml")
    names = [name for name, _ in p.variants()]
    assert names == ["separate_wv2", "separate_wv3", "separate_gf2", "all_in_one"]
    assert [len(v.data.train) for _, v in p.variants()] == [1, 1, 1, 3]
    assert all(len(v.data.test) == 3 for _, v in p.variants())


def test_quickstart_runs_end_to_end(tmp_path):
    _needs()
    small = [f"data.train.{i}.n=32" for i in range(3)] + [f"data.test.{i}.n=1" for i in range(3)]
    small += [f"data.test.{i}.size=64" for i in range(3)]
    results = run(str(RECIPES / "quickstart.toml"),
                  ["train.steps=2", f"output.dir={tmp_path.as_posix()}", 'eval.baselines=["lms"]',
                   "eval.figures=1", *small])
    assert set(results["final"]) == set(SENSORS)
    for label in SENSORS:
        assert set(results["final"][label]["rr"]) == {"psnr", "ssim", "sam", "ergas", "q2n"}
        assert {"qnr", "hqnr", "psnr", "sam"} <= set(results["final"][label]["fr"])
    run_dir = Path(results["run_dir"])
    report = (run_dir / "report.md").read_text()
    assert "synthetic/gf2 PSNR↑" in report and "| lms |" in report and "synthetic/wv3 HQNR↑" in report
    assert (run_dir / "examples_synthetic_wv2.png").is_file()


@pytest.mark.slow
def test_quickstart_beats_upsampling(tmp_path):
    """The quickstart's training as is, scored with fewer metrics and only the lms baseline."""
    _needs()
    results = run(str(RECIPES / "quickstart.toml"),
                  [f"output.dir={tmp_path.as_posix()}", 'eval.baselines=["lms"]', "eval.figures=0",
                   'eval.rr_metrics=["psnr","sam","ergas"]', "eval.fr_metrics=[]"])
    lms = results["baselines"]["lms"]["results"]
    for label in SENSORS:
        ours, base = results["final"][label]["rr"], lms[label]["rr"]
        assert ours["psnr"]["mean"] > base["psnr"]["mean"], label
        assert ours["sam"]["mean"] < base["sam"]["mean"], label
        assert ours["ergas"]["mean"] < base["ergas"]["mean"], label
