"""The fault suite: bad input a user can give, each with its exit code, the words its one-line message
must contain, and that nothing was written or lost (the folder is byte-identical afterwards).

Every case runs the real command in-process (click's CliRunner) on small files made here; a case
is (id, setup(tmp) -> argv, exit code, words).
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

pytest.importorskip("rasterio")

from helpers import write_scene_pair  # noqa: E402


def _pair(tmp: Path, **kw) -> dict:
    return write_scene_pair(tmp / "in", ms_size=(12, 10), **kw)


def _shifted_pair(tmp: Path, shift_px: float, ratio: int = 4) -> dict:
    """A pair whose PAN grid is ``shift_px`` PAN pixels east of the MS corners."""
    import rasterio
    from rasterio.transform import Affine

    s = _pair(tmp, ratio=ratio)
    with rasterio.open(s["pan"], "r+") as ds:
        t = ds.transform
        ds.transform = Affine(t.a, 0.0, t.c + shift_px * t.a, 0.0, t.e, t.f)
    return s


def _fuse(s: dict, out: Path, *extra: str, model: str = "brovey") -> list[str]:
    return ["fuse", "--pan", str(s["pan"]), "--ms", str(s["ms"]), "--model", model, "-o", str(out),
            "--quiet", *extra]


def _a_file(tmp: Path) -> Path:
    f = tmp / "afile"
    f.write_text("not a folder\n")
    return f


def fuse_existing(tmp: Path) -> list[str]:
    s = _pair(tmp)
    (tmp / "out.tif").write_bytes(b"precious")
    return _fuse(s, tmp / "out.tif", "--bits", "11")


def fuse_subpixel(tmp: Path) -> list[str]:
    return _fuse(_shifted_pair(tmp, 0.3), tmp / "o.tif", "--bits", "11")


def fuse_half_pixel_odd_ratio(tmp: Path) -> list[str]:
    return _fuse(_shifted_pair(tmp, 0.5, ratio=3), tmp / "o.tif", "--bits", "11")


def fuse_bits(bits: str) -> Callable[[Path], list[str]]:
    return lambda tmp: _fuse(_pair(tmp), tmp / "o.tif", "--bits", bits)


def fuse_option(opt: str) -> Callable[[Path], list[str]]:
    return lambda tmp: _fuse(_pair(tmp), tmp / "o.tif", "--bits", "11", "-O", opt)


def fuse_ratio3_glp(tmp: Path) -> list[str]:
    return _fuse(_pair(tmp, ratio=3), tmp / "o.tif", "--bits", "11", model="mtf_glp")


def fuse_tv_eight_bands(tmp: Path) -> list[str]:
    return _fuse(_pair(tmp, bands=8), tmp / "o.tif", "--bits", "11", model="tv")


def fuse_unwritable(tmp: Path) -> list[str]:
    return _fuse(_pair(tmp), _a_file(tmp) / "o.tif", "--bits", "11")


def fuse_missing_pan(tmp: Path) -> list[str]:
    s = _pair(tmp)
    return _fuse({**s, "pan": tmp / "nosuch.tif"}, tmp / "o.tif", "--bits", "11")


def export_two_formats(tmp: Path) -> list[str]:
    return ["export", "brovey", "--onnx", "--exported-program", "-o", str(tmp / "m.pt2")]


def export_existing(tmp: Path) -> list[str]:
    (tmp / "m.pt2").write_bytes(b"an older export")
    return ["export", "brovey", "--exported-program", "-o", str(tmp / "m.pt2")]


def export_unwritable(tmp: Path) -> list[str]:
    return ["export", "brovey", "--exported-program", "-o", str(_a_file(tmp) / "m.pt2")]


def eval_unwritable(tmp: Path) -> list[str]:
    return ["eval", "lms", "--data", "synthetic:sensor=qb,n=1", "--figures", "0", "-o", str(_a_file(tmp) / "r")]


def run_unwritable(tmp: Path) -> list[str]:
    return ["run", "quickstart", "-s", f"output.dir={_a_file(tmp) / 'runs'}"]


def eval_wrong_band_count(tmp: Path) -> list[str]:
    import panfw
    from panfw.io.checkpoint import save_checkpoint

    m = panfw.create_model("pantiny_small", bands=8)
    save_checkpoint({"model": {"name": "pantiny_small", "options": {"bands": 8}, "state_dict": m.state_dict()},
                     "data": {"bands": 8, "sensor": "wv3", "ratio": 4}}, tmp / "ck8.pt")
    return ["eval", str(tmp / "ck8.pt"), "--data", "synthetic:sensor=qb,n=1", "-o", str(tmp / "report")]


def _h5(tmp: Path, name: str = "f.h5", **override) -> Path:
    from helpers import write_h5

    write_h5(tmp / name, n=2, c=4, size=16, **override)
    return tmp / name


def info_no_pan(tmp: Path) -> list[str]:
    return ["data", "info", str(_h5(tmp, pan=None))]


def info_not_a_ratio(tmp: Path) -> list[str]:
    return ["data", "info", str(_h5(tmp, ms=np.zeros((2, 4, 5, 5))))]


def info_nan(tmp: Path) -> list[str]:
    gt = np.ones((2, 4, 16, 16))
    gt[0, 0, 0, 0] = np.nan
    return ["data", "info", str(_h5(tmp, gt=gt))]


def check_nan(tmp: Path) -> list[str]:
    gt = np.ones((2, 4, 16, 16))
    gt[1, 2, 3, 4] = np.nan
    (tmp / "pc").mkdir()
    _h5(tmp / "pc", "test_qb_multiExm1.h5", gt=gt)
    return ["data", "check", str(tmp / "pc")]


def validate_unknown_fusion(tmp: Path) -> list[str]:
    return ["validate", "quickstart", "-s", "model.fusion=no_such_block"]


def validate_unknown_synthetic_sensor(tmp: Path) -> list[str]:
    return ["validate", "quickstart", "-s", 'data.train=[{name="synthetic", sensor="no_such_sensor"}]']


def run_unknown_fusion(tmp: Path) -> list[str]:
    return ["run", "quickstart", "-s", "model.fusion=no_such_block", "-s", f"output.dir={tmp / 'runs'}"]


def make_subpixel(tmp: Path) -> list[str]:
    s = _shifted_pair(tmp, 0.3)
    return ["data", "make", "--pan", str(s["pan"]), "--ms", str(s["ms"]), "--sensor", "qb", "-o",
            str(tmp / "o.h5"), "--patch", "8"]


CASES = [
    ("fuse_existing_output", fuse_existing, 2, ["exists", "--overwrite"]),
    ("fuse_subpixel_offset", fuse_subpixel, 2, ["not aligned", "0.30", "gdalwarp"]),
    ("fuse_half_pixel_at_an_odd_ratio", fuse_half_pixel_odd_ratio, 2, ["odd ratio 3", "0.50", "gdalwarp"]),
    ("fuse_bits_0", fuse_bits("0"), 2, ["--bits 0", "1 to 16"]),
    ("fuse_bits_40", fuse_bits("40"), 2, ["--bits 40", "uint16", "1 to 16"]),
    ("fuse_unknown_option", fuse_option("no_such=1"), 2, ["no_such", "floor_ms"]),
    ("fuse_option_syntax", fuse_option("floor_ms"), 2, ["KEY=VALUE"]),
    ("fuse_ratio_the_method_cannot_run", fuse_ratio3_glp, 2, ["ratio 3", "power-of-two"]),
    ("fuse_wrong_band_count", fuse_tv_eight_bands, 2, ["4 bands", "bands=8", "corrected=True"]),
    ("fuse_unwritable_output", fuse_unwritable, 2, ["afile"]),
    ("fuse_missing_input", fuse_missing_pan, 2, ["nosuch.tif", "not found"]),
    ("export_two_formats", export_two_formats, 2, ["one format per call", "--onnx", "--exported-program"]),
    ("export_existing_output", export_existing, 2, ["exists", "--overwrite"]),
    ("export_unwritable_output", export_unwritable, 2, ["afile"]),
    ("eval_unwritable_output", eval_unwritable, 2, ["afile"]),
    ("run_unwritable_output", run_unwritable, 2, ["afile"]),
    ("data_make_subpixel_offset", make_subpixel, 2, ["not aligned", "gdalwarp"]),
    ("eval_wrong_band_count", eval_wrong_band_count, 2, ["takes 8 bands", "has 4", "synthetic"]),
    ("data_info_without_pan", info_no_pan, 2, ["not a usable PanCollection file", "missing key 'pan'"]),
    ("data_info_sizes_not_a_ratio", info_not_a_ratio, 2, ["'ms' 5x5", "16x16", "ratio"]),
    ("data_info_nan", info_nan, 2, ["'gt' has 1 non-finite"]),
    ("data_check_nan", check_nan, 2, ["not usable"]),
    ("validate_unknown_fusion_block", validate_unknown_fusion, 2, ["model.fusion", "no_such_block", "conv1x1"]),
    ("validate_unknown_synthetic_sensor", validate_unknown_synthetic_sensor, 2,
     ["data.train[0]", "no_such_sensor", "wv3"]),
    ("run_unknown_fusion_block_no_run_dir", run_unknown_fusion, 2, ["model.fusion", "no_such_block"]),
]


def _snapshot(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("setup, code, words", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_fault(tmp_path, monkeypatch, setup, code, words):
    from panfw.cli import build_cli

    monkeypatch.chdir(tmp_path)
    argv = setup(tmp_path)
    before = _snapshot(tmp_path)
    res = CliRunner().invoke(build_cli(), argv)
    out = res.output
    assert res.exit_code == code, out
    assert "Traceback" not in out and "internal error" not in out, out
    error_lines = [line for line in out.splitlines() if line.startswith("error:")]
    assert len(error_lines) == 1, out
    for word in words:
        assert word in error_lines[0], (word, error_lines[0])
    assert _snapshot(tmp_path) == before  # nothing written, nothing lost
    assert not any(tmp_path.glob("**/*.partial"))


def test_overwrite_replaces(tmp_path):
    """The flag the refusals name does what they say."""
    from panfw.cli import build_cli

    s = _pair(tmp_path)
    (tmp_path / "out.tif").write_bytes(b"old")
    res = CliRunner().invoke(build_cli(), [*_fuse(s, tmp_path / "out.tif", "--bits", "11"), "--overwrite"])
    assert res.exit_code == 0, res.output
    assert (tmp_path / "out.tif").read_bytes()[:2] in (b"II", b"MM")  # a TIFF now


def test_clipping_is_reported_with_the_option_that_avoids_it(tmp_path):
    """A ratio method's blow-up is clipped to the bit depth (never 65535 in 11-bit data) and said."""
    import rasterio

    from panfw.cli import build_cli

    s = _pair(tmp_path)
    with rasterio.open(s["ms"], "r+") as ds:  # a dark MS corner: interp23tap undershoots to ~0
        a = ds.read()
        a[:, :3, :3] = 1
        a[:, 0, 0] = 2047
        ds.write(a)
    res = CliRunner().invoke(build_cli(), _fuse(s, tmp_path / "o.tif", "--bits", "11", model="mtf_glp_hpm"))
    assert res.exit_code == 0, res.output
    with rasterio.open(tmp_path / "o.tif") as ds:
        assert ds.read().max() <= 2047
    line = next(x for x in res.output.splitlines() if "clipped" in x)
    assert line.startswith("warning:") and "%" in line and "floor_ms" in line and "0..2047" in line
    below = int(line.split("(")[-1].split(" below")[0])
    assert below > 0
    res = CliRunner().invoke(build_cli(), _fuse(s, tmp_path / "f.tif", "--bits", "11", "-O", "floor_ms=true",
                                                model="mtf_glp_hpm"))
    assert res.exit_code == 0, res.output
    line = next((x for x in res.output.splitlines() if "clipped" in x), "(0 below 0")
    assert int(line.split("(")[-1].split(" below")[0]) < below / 4  # the option avoids most of them


def test_broken_pipe_is_quiet(tmp_path):
    """``panfw list models | head -2``: the reader goes away; no BrokenPipeError traceback, exit 0."""
    code = ("import sys; from panfw.cli import main; sys.argv = ['panfw', 'list', 'models']; main()")
    proc = subprocess.run(f"{sys.executable} -c \"{code}\" | head -2", shell=True, capture_output=True,
                          text=True, timeout=120, cwd=tmp_path)
    assert len(proc.stdout.splitlines()) == 2
    assert "Traceback" not in proc.stderr and "BrokenPipe" not in proc.stderr, proc.stderr


def test_no_output_partial_left_after_a_failed_write(tmp_path):
    """A refused fuse leaves neither the output nor its temporary file."""
    from panfw.cli import build_cli

    s = _pair(tmp_path)
    res = CliRunner().invoke(build_cli(), _fuse(s, tmp_path / "o.tif", "--bits", "0"))
    assert res.exit_code == 2
    assert not (tmp_path / "o.tif").exists() and not list(tmp_path.glob(".*partial"))


def test_a_recipe_without_test_sets_trains_and_says_it_is_not_evaluated(tmp_path, monkeypatch):
    """No [[data.test]]: no metric error on training patches at the end; the run says why."""
    from panfw.cli import build_cli

    monkeypatch.chdir(tmp_path)
    (tmp_path / "r.toml").write_text(
        'name = "notest"\n[model]\nname = "pantiny_small"\n[[loss.terms]]\nname = "l1"\n'
        '[[data.train]]\nname = "synthetic"\nsensor = "qb"\nn = 8\nsize = 32\n'
        '[train]\nsteps = 1\nbatch_size = 4\ndevice = "cpu"\n[eval]\nbaselines = []\nfigures = 0\n'
        f'[output]\ndir = "{(tmp_path / "runs").as_posix()}"\n')
    res = CliRunner().invoke(build_cli(), ["run", "r.toml"])
    assert res.exit_code == 0, res.output
    assert "no [[data.test]]" in res.output and "not evaluated" in res.output
    run = next((tmp_path / "runs" / "notest").iterdir())
    assert (run / "last.pt").is_file() and (run / "report.md").is_file()
