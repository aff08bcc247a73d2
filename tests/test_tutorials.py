"""The tutorials under docs/tutorials/ run, at a small size (``--tiny``), and leave what their pages
say they leave; each page shows its own script (included with pymdownx.snippets, not a copy)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TUTORIALS = ROOT / "docs" / "tutorials"


def run_tutorial(name: str, tmp_path: Path, *args: str, timeout: int = 300) -> str:
    """Run ``docs/tutorials/NAME.py --tiny --out TMP`` in a fresh process from a folder that is not the
    checkout (the bundled recipes are found by name); return its output."""
    env = dict(os.environ, OMP_NUM_THREADS="1", MPLBACKEND="Agg")
    out = tmp_path / "out"
    proc = subprocess.run([sys.executable, str(TUTORIALS / f"{name}.py"), "--tiny", "--out", str(out), *args],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, f"tutorial {name} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}"
    return proc.stdout


def latest(folder: Path) -> Path:
    return max(folder.iterdir(), key=lambda p: p.stat().st_mtime)


def test_every_tutorial_page_includes_its_script():
    scripts = sorted(p.stem for p in TUTORIALS.glob("*.py") if not p.name.startswith("_"))
    assert scripts, "no tutorial scripts"
    for name in scripts:
        page = TUTORIALS / f"{name}.md"
        assert page.is_file(), f"docs/tutorials/{name}.py has no page {page.name}"
        assert f'--8<-- "docs/tutorials/{name}.py"' in page.read_text(), f"{page.name} does not include its script"
        assert f"tutorials/{name}.md" in (ROOT / "mkdocs.yml").read_text(), f"{page.name} is not in the nav"


def test_quickstart(tmp_path):
    stdout = run_tutorial("quickstart", tmp_path)
    run_dir = latest(tmp_path / "out" / "quickstart")
    assert (run_dir / "report.md").is_file() and (run_dir / "best.pt").is_file()
    assert "synthetic/gf2: PSNR" in stdout and "$ panfw eval" in stdout


def test_pancollection(tmp_path):
    stdout = run_tutorial("pancollection", tmp_path)
    data = tmp_path / "out" / "pancollection"
    assert {p.name for p in data.glob("*.h5")} >= {"train_wv3.h5", "train_gf2.h5", "train_qb.h5",
                                                   "test_wv2_multiExm1.h5", "test_gf2_OrigScale_multiExm1.h5"}
    run_dir = latest(tmp_path / "out" / "pantiny_big_released")
    assert (run_dir / "best.pt").is_file() and (run_dir / "report.md").is_file()
    assert "sensor guess: wv3" in stdout


def test_geotiff(tmp_path):
    stdout = run_tutorial("geotiff", tmp_path)
    folder = tmp_path / "out" / "geotiff"
    assert (folder / "fused.tif").is_file() and (folder / "quicklook.png").stat().st_size > 10_000
    assert "fused: 8 bands, 256 x 256, uint16, EPSG:32633" in stdout


def test_export(tmp_path):
    stdout = run_tutorial("export", tmp_path)
    assert (tmp_path / "out" / "export" / "model.onnx").is_file()
    assert "OK" in stdout and "output (1, 4, 96, 96)" in stdout


def test_adapt(tmp_path):
    stdout = run_tutorial("adapt", tmp_path)
    folder = tmp_path / "out" / "adapt"
    assert {"fused.npz", "adapt.json", "adapt.md"} <= {p.name for p in folder.iterdir()}
    assert "adapted pantiny_small" in stdout


@pytest.mark.slow
def test_fusion_plugin(tmp_path):
    """Slow (two runs in fresh processes, ~20 s): tests/test_example_plugin.py covers the install and
    discovery in the default run."""
    stdout = run_tutorial("fusion_plugin", tmp_path)
    assert "fusions: example_gate" in stdout
    comparison = (latest(tmp_path / "out" / "example_gate") / "comparison.md").read_text()
    assert "| example_gate |" in comparison and "| attention_gate |" in comparison
