"""Recipes ship inside the package: found by name from any folder, listed by ``panfw recipes``, and
present in a built wheel (a non-editable install)."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from click.testing import CliRunner

from panfw.cli import cli
from panfw.config.bundled import find_recipe, list_recipes, recipes_dir

REPO = Path(__file__).resolve().parents[1]


def test_bundled_folder_is_the_checkouts_recipes():
    assert recipes_dir().is_dir()
    names = list_recipes()
    assert {"quickstart", "paper_base", "ablations/fusion"} <= set(names)
    assert (recipes_dir() / "quickstart.toml").read_bytes() == (REPO / "recipes" / "quickstart.toml").read_bytes()


@pytest.mark.parametrize("spec", ["quickstart", "quickstart.toml", "recipes/quickstart.toml",
                                  "ablations/fusion", "recipes/ablations/fusion.toml"])
def test_found_by_name_from_any_folder(spec, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = find_recipe(spec)
    assert path.is_file() and path.resolve().is_relative_to(recipes_dir().resolve())
    res = CliRunner().invoke(cli, ["validate", spec])
    assert res.exit_code == 0, res.output
    assert "name = " in res.output


def test_a_file_in_the_folder_wins(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "quickstart.toml").write_text('name = "mine"\n')
    assert find_recipe("quickstart.toml") == Path("quickstart.toml")


def test_unknown_recipe_lists_the_bundled_ones(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    res = CliRunner().invoke(cli, ["validate", "quikstart"])
    assert res.exit_code == 2
    assert "not a bundled recipe" in res.output and "quickstart" in res.output


def test_panfw_recipes_lists_them():
    res = CliRunner().invoke(cli, ["recipes"])
    assert res.exit_code == 0
    assert "quickstart" in res.output and "ablations/fusion" in res.output and "Quickstart" in res.output


@pytest.mark.skipif(shutil.which("git") is None, reason="needs the checkout")
def test_wheel_carries_the_recipes(tmp_path):
    pytest.importorskip("setuptools")
    proc = subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
                           str(REPO), "-w", str(tmp_path)], capture_output=True, text=True, timeout=300)
    if proc.returncode != 0:
        pytest.skip(f"pip wheel unavailable here: {proc.stderr[-300:]}")
    wheel = next(tmp_path.glob("panfw-*.whl"))
    names = set(zipfile.ZipFile(wheel).namelist())
    for name in list_recipes():
        assert f"panfw/recipes/{name}.toml" in names


def test_tensorboard_extra_is_named_and_used(tmp_path, monkeypatch):
    """The README names the extra that installs TensorBoard; with it, a run's scalars reach it."""
    import types

    import tomllib

    extras = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    assert any(req.startswith("tensorboard") for req in extras["tensorboard"])
    assert "panfw[tensorboard]" in (REPO / "README.md").read_text()

    seen = []

    class Writer:
        def __init__(self, logdir, purge_step=None):
            seen.append(("dir", logdir))

        def add_scalar(self, key, value, step):
            seen.append((key, value, step))

        def close(self):
            seen.append(("closed",))

    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", types.SimpleNamespace(SummaryWriter=Writer))
    from panfw.engine.runlog import RunLog

    log = RunLog(tmp_path, active=True, total_steps=10)
    log.record(3, 0, {"loss": 0.5})
    log.close()
    assert ("dir", str(tmp_path / "tensorboard")) in seen and ("loss", 0.5, 3) in seen and ("closed",) in seen
