"""``torchrun --nproc_per_node=2`` on CPU (gloo) trains like one process with the same global batch."""

from __future__ import annotations

import os
import sys

import pytest
import test_engine_plugin as tiny
import torch

from panfw.evaluation.results import read_metrics_csv
from panfw.io.checkpoint import load_checkpoint

RECIPE = (tiny.RECIPE.replace("batch_size = 4", "batch_size = 8")
          .replace("\nevery = 1", "\nevery = 0").replace('baselines = ["tiny_lms"]', "baselines = []")
          .replace("figures = 2", "figures = 0"))


def _env() -> dict:
    env = dict(os.environ)
    env.update(PANFW_LOAD_PLUGINS="", OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1")
    return env


@pytest.mark.skipif(not torch.distributed.is_available() or not torch.distributed.is_gloo_available(),
                    reason="needs torch.distributed with gloo")
def test_two_processes_match_one_process(tmp_path):
    one, two = tmp_path / "one", tmp_path / "two"
    one.mkdir()
    two.mkdir()
    script_one, script_two = tiny.launch_script(one), tiny.launch_script(two)
    p1 = tiny.start([sys.executable, str(script_one), "run", str(tiny.write_recipe(one, RECIPE))], one, _env())
    p2 = tiny.start([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
                     str(script_two), "run", str(tiny.write_recipe(two, RECIPE))], two, _env())
    out1, err1 = tiny.finish(p1, 240)
    out2, err2 = tiny.finish(p2, 240)
    assert p1.returncode == 0, err1
    assert p2.returncode == 0, err2 + out2

    runs1 = sorted((one / "runs" / "tiny").iterdir())
    runs2 = sorted((two / "runs" / "tiny").iterdir())
    assert len(runs1) == len(runs2) == 1  # only rank 0 created a run directory
    r1, r2 = runs1[0], runs2[0]
    c1 = [(r["step"], r["value"]) for r in read_metrics_csv(r1 / "metrics.csv") if r["key"] == "train/loss"]
    c2 = [(r["step"], r["value"]) for r in read_metrics_csv(r2 / "metrics.csv") if r["key"] == "train/loss"]
    assert [s for s, _ in c1] == [s for s, _ in c2] == list(range(1, 9))
    for (_, a), (_, b) in zip(c1, c2):
        assert b == pytest.approx(a, rel=1e-4, abs=1e-6)
    s1, s2 = load_checkpoint(r1 / "last.pt"), load_checkpoint(r2 / "last.pt")
    assert s2["training"]["world_size"] == 2 and len(s2["training"]["rng"]) == 2
    for k, v in s1["model"]["state_dict"].items():
        torch.testing.assert_close(s2["model"]["state_dict"][k], v, rtol=1e-4, atol=1e-5)
    assert "2 x cpu" in out2  # the log says how many processes trained
