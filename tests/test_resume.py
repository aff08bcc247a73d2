"""Exact resume after SIGKILL mid-epoch, and Ctrl-C (SIGINT) saving a checkpoint, on real processes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import test_engine_plugin as tiny
import torch

from panfw.evaluation.results import read_metrics_csv
from panfw.io.checkpoint import load_checkpoint

SLOW = (tiny.RECIPE.replace("n = 32\n", "n = 32\ndelay = 0.03\n", 1)  # ~0.12 s per training step
        .replace("log_every = 1\n", "log_every = 1\nsave_every = 3\n", 1))


def _env() -> dict:
    env = dict(os.environ)
    env.update(PANFW_LOAD_PLUGINS="", OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1")
    return env


def _start(folder: Path, *args: str) -> subprocess.Popen:
    folder.mkdir(parents=True, exist_ok=True)
    script = tiny.launch_script(folder)
    return tiny.start([sys.executable, str(script), *args], folder, _env())


def _run_dir(folder: Path, timeout: float = 60) -> Path:
    deadline = time.time() + timeout
    while time.time() < deadline:
        base = folder / "runs" / "tiny"
        if base.is_dir() and any(base.iterdir()):
            return sorted(base.iterdir())[0]
        time.sleep(0.05)
    raise AssertionError(f"no run directory under {folder}")


def _wait_for_mid_epoch_checkpoint(run_dir: Path, proc: subprocess.Popen, timeout: float = 90) -> dict:
    deadline = time.time() + timeout
    while time.time() < deadline:
        assert proc.poll() is None, tiny.finish(proc, 5)
        last = run_dir / "last.pt"
        if last.is_file():
            state = load_checkpoint(last)
            if state["training"]["batch_in_epoch"] > 0:
                return state
        time.sleep(0.02)
    raise AssertionError("no mid-epoch checkpoint appeared")


def test_sigkill_mid_epoch_then_resume_gives_the_same_weights(tmp_path):
    a_dir, b_dir = tmp_path / "a", tmp_path / "b"
    a_dir.mkdir()
    b_dir.mkdir()
    recipe_a = tiny.write_recipe(a_dir, SLOW)
    recipe_b = tiny.write_recipe(b_dir, SLOW)
    full = _start(a_dir, "run", str(recipe_a))          # uninterrupted, alongside
    killed = _start(b_dir, "run", str(recipe_b))
    run_b = _run_dir(b_dir)
    state = _wait_for_mid_epoch_checkpoint(run_b, killed)
    killed.send_signal(signal.SIGKILL)
    tiny.finish(killed, 30)
    assert killed.returncode == -signal.SIGKILL
    assert not (run_b / "results.json").exists()
    at = load_checkpoint(run_b / "last.pt")["training"]
    assert 0 < at["step"] < 16 and at["batch_in_epoch"] > 0 and not at["finished"]
    assert state["training"]["step"] <= at["step"]

    resumed = _start(b_dir, "run", "--resume", str(run_b))
    out, err = tiny.finish(resumed, 180)
    assert resumed.returncode == 0, err
    out_a, err_a = tiny.finish(full, 180)
    assert full.returncode == 0, err_a

    run_a = _run_dir(a_dir)
    wa = load_checkpoint(run_a / "last.pt")
    wb = load_checkpoint(run_b / "last.pt")
    assert wa["training"]["step"] == wb["training"]["step"] == 16
    for k, v in wa["model"]["state_dict"].items():
        assert torch.equal(v, wb["model"]["state_dict"][k]), k
    assert wa["training"]["optimizer"]["state"][0]["exp_avg"].equal(wb["training"]["optimizer"]["state"][0]["exp_avg"])
    curve = [(r["step"], r["value"]) for r in read_metrics_csv(run_a / "metrics.csv") if r["key"] == "train/loss"]
    curve_b = [(r["step"], r["value"]) for r in read_metrics_csv(run_b / "metrics.csv") if r["key"] == "train/loss"]
    assert curve == curve_b and len(curve) == 16


def test_ctrl_c_saves_a_checkpoint_and_exits_cleanly(tmp_path):
    recipe = tiny.write_recipe(tmp_path, SLOW)
    proc = _start(tmp_path, "run", str(recipe))
    run_dir = _run_dir(tmp_path)
    seen = _wait_for_mid_epoch_checkpoint(run_dir, proc)
    proc.send_signal(signal.SIGINT)
    out, err = tiny.finish(proc, 60)
    assert proc.returncode == 130, (out, err)
    assert "Traceback" not in err and "Traceback" not in out
    assert "interrupted" in out and f"panfw run --resume {run_dir}" in out
    state = load_checkpoint(run_dir / "last.pt")["training"]
    assert not state["finished"] and state["step"] >= seen["training"]["step"]
    assert not (run_dir / "results.json").exists()


@pytest.mark.slow
def test_resume_after_ctrl_c_finishes(tmp_path):
    recipe = tiny.write_recipe(tmp_path, SLOW)
    proc = _start(tmp_path, "run", str(recipe))
    run_dir = _run_dir(tmp_path)
    _wait_for_mid_epoch_checkpoint(run_dir, proc)
    proc.send_signal(signal.SIGINT)
    tiny.finish(proc, 60)
    again = _start(tmp_path, "run", "--resume", str(run_dir))
    _, err = tiny.finish(again, 180)
    assert again.returncode == 0, err
    assert (run_dir / "report.md").is_file()
