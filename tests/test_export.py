"""panfw export: torch.export (.pt2) and ONNX with dynamic H, W, parity, metadata, the CLI."""

from __future__ import annotations

import json

import pytest
import torch
from click.testing import CliRunner
from torch import nn

import panfw

SIZES = {"min_size": 16, "opt_size": 48, "max_size": 128}


class TinyConv(nn.Module):
    def __init__(self, bands: int = 4) -> None:
        super().__init__()
        self.c1 = nn.Conv2d(bands + 1, 8, 3, padding=1)
        self.norm = nn.GroupNorm(1, 8)
        self.c2 = nn.Conv2d(8, bands, 3, padding=1)

    def forward(self, lms, pan, ms):
        # uses ms too, sized by the input shape (never a scale factor)
        up = nn.functional.interpolate(ms, size=pan.shape[-2:], mode="nearest")
        return self.c2(torch.relu(self.norm(self.c1(torch.cat([lms, pan], 1))))) + 0.5 * (lms + up)


class TinyPlugin:
    @staticmethod
    @panfw.hookimpl
    def register_models(register):
        def export_tinyconv(bands: int = 4):
            """A tiny convolutional test model."""
            return TinyConv(bands)

        register("export_tinyconv", export_tinyconv)


@pytest.fixture
def tiny(plugin_registered):
    plugin_registered(TinyPlugin, "test-export-tiny")
    return "export_tinyconv"


def _inputs(h, w, bands=4, r=4):
    g = torch.Generator().manual_seed(7)
    return (torch.rand(1, bands, h, w, generator=g), torch.rand(1, 1, h, w, generator=g),
            torch.rand(1, bands, h // r, w // r, generator=g))


def test_exported_program_roundtrip(tmp_path, tiny):
    from panfw.export import export_model

    torch.manual_seed(0)
    out = tmp_path / "m.pt2"
    result = export_model(tiny, "exported_program", out, bands=3, **SIZES)
    assert result.ok and result.max_abs <= 1e-6 and len(result.parity) == 2
    assert {(p.height, p.width) for p in result.parity} == {(48, 48), (24, 72)}
    # loads with plain torch, no panfw code; dynamic H, W at a size not seen by the parity check
    prog = torch.export.load(str(out)).module()
    y = prog(*_inputs(40, 112, bands=3))
    assert y.shape == (1, 3, 40, 112)
    meta = json.loads((tmp_path / "m.pt2.json").read_text())
    assert meta["bands"] == 3 and meta["ratio"] == 4 and meta["kind"] == "exported_program"
    assert meta["parity_ok"] and meta["model"]["name"] == tiny
    assert "parity vs PyTorch" in result.report()


def test_onnx_parity_two_sizes(tmp_path, tiny):
    import onnxruntime as ort

    from panfw.export import export_model

    out = tmp_path / "m.onnx"
    result = export_model(tiny, "onnx", out, **SIZES)
    assert result.ok and result.max_abs <= 1e-4
    sess = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    assert [i.name for i in sess.get_inputs()] == ["lms", "pan", "ms"]
    from panfw.io.resolve import resolve_model

    res = resolve_model(tiny, bands=3)  # the band count reaches the factory through the build context
    assert res.kind == "registered" and res.name == tiny and res.bands == 3
    assert res.model_or_runtime.c2.out_channels == 3
    # the metadata sits in the file too
    from panfw.export.common import read_meta

    (tmp_path / "m.onnx.json").unlink()
    assert read_meta(out)["bands"] == 4
    for h, w in [(32, 32), (64, 96)]:
        lms, pan, ms = _inputs(h, w)
        got = sess.run(None, {"lms": lms.numpy(), "pan": pan.numpy(), "ms": ms.numpy()})[0]
        assert got.shape == (1, 4, h, w)


def test_export_from_checkpoint(tmp_path, tiny):
    from panfw.errors import UserError
    from panfw.export import export_model
    from panfw.io.checkpoint import save_checkpoint

    torch.manual_seed(3)
    net = TinyConv(8)
    ckpt = save_checkpoint({"model": {"name": tiny, "options": {"bands": 8}, "state_dict": net.state_dict()},
                            "recipe": {}, "data": {"sensor": "wv3", "bands": 8, "ratio": 4, "bit_depth": 11}},
                           tmp_path / "run" / "best.pt")
    result = export_model(tmp_path / "run", "exported_program", **SIZES)
    assert result.path == tmp_path / "run" / "best.pt2"
    assert result.meta["data"]["sensor"] == "wv3" and result.meta["bands"] == 8
    prog = torch.export.load(str(result.path)).module()
    x = _inputs(32, 48, bands=8)
    assert torch.allclose(prog(*x), net.eval()(*x), atol=1e-6)
    with pytest.raises(UserError, match="takes 8 bands"):
        export_model(ckpt, "onnx", bands=4, **SIZES)


def test_low_precision_keeps_norms_fp32(tiny):
    from panfw.export import cast_model
    from panfw.export.common import CastIO, _Fp32

    net = cast_model(TinyConv(), "bf16")
    assert isinstance(net, CastIO)
    wrapped = [m for m in net.modules() if isinstance(m, _Fp32)]
    assert len(wrapped) == 1 and wrapped[0].inner.weight.dtype == torch.float32
    assert net.model.c1.weight.dtype == torch.bfloat16
    y = net(*_inputs(32, 32))
    assert y.dtype == torch.float32


def test_bf16_exported_program_parity(tmp_path, tiny):
    from panfw.export import export_model

    result = export_model(tiny, "exported_program", tmp_path / "m.pt2", precision="bf16", **SIZES)
    assert result.ok and 0 < result.max_abs <= 5e-2 and result.precision == "bf16"


def test_cli_export(tmp_path, tiny):
    from panfw.cli import cli

    runner = CliRunner()
    out = tmp_path / "cli.onnx"
    args = ["export", tiny, "--onnx", "-o", str(out), "--min-size", "16", "--opt-size", "32",
            "--max-size", "64"]
    res = runner.invoke(cli, args)
    assert res.exit_code == 0, res.output
    assert "parity vs PyTorch at 32x32" in res.output and "OK" in res.output and out.is_file()
    res = runner.invoke(cli, ["export", tiny])
    assert res.exit_code == 2 and "--trt, --onnx or --exported-program" in res.output
    res = runner.invoke(cli, ["export", tiny, "--onnx", "--fp16"])
    assert res.exit_code == 2 and "FP32 only" in res.output
    res = runner.invoke(cli, ["export", tiny, "--onnx", "--min-size", "18"])
    assert res.exit_code == 2 and "multiple of the ratio 4" in res.output
    res = runner.invoke(cli, ["export", "no_such_model", "--onnx"])
    assert res.exit_code == 2 and "no_such_model" in res.output


def test_untraceable_model_is_a_clear_error(tmp_path):
    from panfw.errors import UserError
    from panfw.export import export_model

    class ScaleFactor(nn.Module):
        def forward(self, lms, pan, ms):
            if lms.shape[-1] > 100:  # a Python branch on the size
                return lms
            return nn.functional.interpolate(ms, scale_factor=4.0) + pan * 0

    with pytest.raises(UserError, match="cannot be exported with dynamic H, W"):
        export_model(ScaleFactor(), "exported_program", tmp_path / "x.pt2", **SIZES)


def _pantiny(name):
    if name not in panfw.registry("models"):
        pytest.skip("PanTiny plugin not installed")
    return name


def test_pantiny_small_exported_program(tmp_path):
    """PanTiny (LayerNorm, channel attention, an unused ms input) exports with dynamic H, W; the ONNX
    path for every variant is in the slow test below."""
    from panfw.export import export_model

    result = export_model(_pantiny("pantiny_small"), "exported_program", tmp_path / "s.pt2", min_size=16,
                          opt_size=32, max_size=64)
    assert result.ok and result.max_abs <= 1e-5


@pytest.mark.slow
@pytest.mark.parametrize("fmt", ["exported_program", "onnx"])
@pytest.mark.parametrize("name", ["pantiny_small", "pantiny_big", "pantiny_large", "pantiny_huge"])
def test_every_pantiny_variant_exports(tmp_path, name, fmt):
    from panfw.export import FORMATS, export_model

    result = export_model(_pantiny(name), fmt, tmp_path / f"m{FORMATS[fmt]}", min_size=16, opt_size=64,
                          max_size=256)
    assert result.ok and result.max_abs <= 1e-4, result.report()
