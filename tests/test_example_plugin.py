"""A third-party plugin, installed as its own distribution, is discovered through the entry point."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import panfw

EXAMPLE = Path(__file__).resolve().parents[1] / "plugins" / "examples" / "panfw-example-fusion"


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> dict:
    """Install the example distribution into a private target folder; return an environment using it."""
    target = tmp_path_factory.mktemp("site")
    build = tmp_path_factory.mktemp("build")
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
         "--no-index", "--target", str(target), str(EXAMPLE)],
        capture_output=True, text=True, cwd=build)
    if proc.returncode != 0:
        pytest.fail(f"could not install the example plugin:\n{proc.stderr}")
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(target), env.get("PYTHONPATH")]))
    env["PANFW_STRICT_PLUGINS"] = "0"
    return env


def panfw_cli(env, *args):
    return subprocess.run([sys.executable, "-m", "panfw", *args], capture_output=True, text=True, env=env)


def test_panfw_plugins_lists_the_installed_package(installed):
    proc = panfw_cli(installed, "plugins")
    assert proc.returncode == 0, proc.stderr
    assert "example_fusion  [ok]  panfw-example-fusion 0.1.0  module panfw_example_fusion" in proc.stdout
    assert "fusions: example_gate" in proc.stdout


def test_a_recipe_can_name_the_third_party_block(installed, tmp_path):
    if "pantiny_big" not in panfw.registry("models"):
        pytest.skip("pantiny_big is not registered in this build")
    recipe = tmp_path / "gate.toml"
    recipe.write_text(textwrap.dedent("""
        [model]
        name = "pantiny_big"
        fusion = "example_gate"
        [[loss.terms]]
        name = "l1"
        [eval]
        rr_metrics = []
        fr_metrics = []
    """))
    proc = panfw_cli(installed, "validate", str(recipe))
    assert proc.returncode == 0, proc.stderr
    assert 'fusion = "example_gate"' in proc.stdout
    code = ("import torch, panfw; m = panfw.create_model('pantiny_big', fusion='example_gate');"
            "y = m(torch.rand(1,4,16,16), torch.rand(1,1,16,16), torch.rand(1,4,4,4)); print(tuple(y.shape))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=installed)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "(1, 4, 16, 16)"


def test_without_the_package_the_block_is_unknown():
    assert "example_gate" not in panfw.registry("fusions")
