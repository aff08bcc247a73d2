"""panfw export --trt: exit 2 with an install hint where CUDA or torch-tensorrt is missing; a real
TensorRT export, parity and fuse where both are present."""

from __future__ import annotations

import importlib.util

import pytest
import torch
from click.testing import CliRunner
from torch import nn

import panfw

HAVE_TRT = torch.cuda.is_available() and importlib.util.find_spec("torch_tensorrt") is not None
needs_trt = pytest.mark.skipif(not HAVE_TRT, reason="needs CUDA and torch_tensorrt (pip install 'panfw[trt]')")


class TinyConv(nn.Module):
    def __init__(self, bands: int = 4) -> None:
        super().__init__()
        self.c1 = nn.Conv2d(bands + 1, 8, 3, padding=1)
        self.norm = nn.LayerNorm(8)
        self.c2 = nn.Conv2d(8, bands, 3, padding=1)

    def forward(self, lms, pan, ms):
        f = self.c1(torch.cat([lms, pan], 1))
        f = self.norm(f.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)
        return self.c2(torch.relu(f)) + lms


class TinyPlugin:
    @staticmethod
    @panfw.hookimpl
    def register_models(register):
        def trt_tinyconv(bands: int = 4):
            """A tiny convolutional test model with a LayerNorm."""
            return TinyConv(bands)

        register("trt_tinyconv", trt_tinyconv)


@pytest.fixture
def tiny(plugin_registered):
    plugin_registered(TinyPlugin, "test-trt-tiny")
    return "trt_tinyconv"


@pytest.mark.skipif(HAVE_TRT, reason="CUDA and torch_tensorrt are present")
def test_trt_missing_exits_2_with_install_hint(tiny):
    from panfw.cli import cli

    res = CliRunner().invoke(cli, ["export", tiny, "--trt"])
    assert res.exit_code == 2, res.output
    assert "TensorRT export needs" in res.output and "pip install 'panfw[trt]'" in res.output
    if not torch.cuda.is_available():
        assert "CUDA" in res.output
    if importlib.util.find_spec("torch_tensorrt") is None:
        assert "torch_tensorrt" in res.output
    assert "Traceback" not in res.output


@pytest.mark.skipif(HAVE_TRT, reason="CUDA and torch_tensorrt are present")
def test_fuse_backend_trt_missing_exits_2(tmp_path, tiny):
    from test_fuse import write_pair

    from panfw.cli import cli

    pan, ms = write_pair(tmp_path)
    res = CliRunner().invoke(cli, ["fuse", "--pan", str(pan), "--ms", str(ms), "--model", tiny, "-o",
                                   str(tmp_path / "o.tif"), "--bits", "11", "--backend", "trt", "--device", "cpu"])
    assert res.exit_code == 2 and "pip install 'panfw[trt]'" in res.output


@needs_trt
@pytest.mark.cuda
@pytest.mark.parametrize("precision,tol", [("fp32", 1e-3), ("fp16", 1e-2), ("bf16", 5e-2)])
def test_trt_export_parity(tmp_path, tiny, precision, tol):
    from panfw.export import export_model

    out = tmp_path / f"m.{precision}.ep"
    result = export_model(tiny, "tensorrt", out, min_size=32, opt_size=64, max_size=128, precision=precision)
    assert result.max_abs <= tol, result.report()
    # loads without panfw's model code
    import torch_tensorrt  # noqa: F401

    prog = torch.export.load(str(out)).module()
    x = (torch.rand(1, 4, 96, 64).cuda(), torch.rand(1, 1, 96, 64).cuda(), torch.rand(1, 4, 24, 16).cuda())
    assert prog(*x).shape == (1, 4, 96, 64)


@needs_trt
@pytest.mark.cuda
@pytest.mark.parametrize("name", ["pantiny_small", "pantiny_big"])
def test_trt_pantiny(tmp_path, name):
    from panfw.export import export_model

    if name not in panfw.registry("models"):
        pytest.skip("PanTiny plugin not installed")
    result = export_model(name, "tensorrt", tmp_path / "m.ep", min_size=32, opt_size=128, max_size=256)
    assert result.max_abs <= 1e-3, result.report()


@needs_trt
@pytest.mark.cuda
def test_fuse_with_trt_backend(tmp_path, tiny):
    import numpy as np
    import rasterio
    from test_fuse import write_pair

    from panfw.inference.scene import fuse_scene

    pan, ms = write_pair(tmp_path, dtype="float32", nodata=None)
    a = fuse_scene(pan, ms, tiny, tmp_path / "t.tif", bits=11, tile=48, overlap=16, device="cpu",
                   progress=False)
    b = fuse_scene(pan, ms, tiny, tmp_path / "r.tif", bits=11, tile=48, overlap=16, backend="trt",
                   device="cuda", progress=False)
    assert b.backend == "tensorrt" and a.tiles == b.tiles
    with rasterio.open(tmp_path / "t.tif") as x, rasterio.open(tmp_path / "r.tif") as y:
        assert np.abs(x.read() - y.read()).max() / 2047 <= 1e-3
