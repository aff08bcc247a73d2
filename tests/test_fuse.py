"""panfw fuse: geo-metadata, input checks, tiled == untiled, band picking, nodata, backends."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from torch import nn

import panfw

rasterio = pytest.importorskip("rasterio")
from rasterio.crs import CRS  # noqa: E402
from rasterio.transform import from_origin  # noqa: E402

RATIO = 4
PAN_RES = 0.5
ORIGIN = (500000.0, 4200000.0)


class TinyConv(nn.Module):
    """Purely convolutional: receptive radius 2 pixels."""

    def __init__(self, bands: int = 4) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.c1 = nn.Conv2d(bands + 1, 8, 3, padding=1)
        self.c2 = nn.Conv2d(8, bands, 3, padding=1)

    def forward(self, lms, pan, ms):
        return 0.1 * self.c2(torch.relu(self.c1(torch.cat([lms, pan], 1)))) + lms


class TinyPlugin:
    @staticmethod
    @panfw.hookimpl
    def register_models(register):
        def fuse_tinyconv(bands: int = 4):
            """A tiny convolutional test model."""
            return TinyConv(bands)

        register("fuse_tinyconv", fuse_tinyconv)


@pytest.fixture
def tiny(plugin_registered):
    plugin_registered(TinyPlugin, "test-fuse-tiny")
    return "fuse_tinyconv"


def write_pair(tmp_path, height=96, width=80, bands=4, dtype="uint16", crs="EPSG:32633", ms_crs=None,
               ms_origin=None, ms_res=None, nodata=0, seed=0, bits=11, name=""):
    """A smooth random PAN (height x width) and MS (bands, height/4, width/4) GeoTIFF pair."""
    rng = np.random.default_rng(seed)
    h, w = height // RATIO, width // RATIO
    base = rng.random((bands, h, w))
    ms = base * 0.6 + 0.2
    up = np.kron(ms.mean(0), np.ones((RATIO, RATIO)))
    pan = np.clip(up + 0.05 * rng.standard_normal((height, width)), 0.01, 1)
    scale = 2 ** bits - 1
    is_int = np.issubdtype(np.dtype(dtype), np.integer)
    conv = (lambda a: np.rint(a * scale).astype(dtype)) if is_int else (lambda a: (a * scale).astype(dtype))
    pan_path, ms_path = tmp_path / f"pan{name}.tif", tmp_path / f"ms{name}.tif"
    common = {"driver": "GTiff", "dtype": dtype, "nodata": nodata}
    with rasterio.open(pan_path, "w", height=height, width=width, count=1, crs=CRS.from_string(crs),
                       transform=from_origin(*ORIGIN, PAN_RES, PAN_RES), **common) as dst:
        dst.write(conv(pan)[None])
    mres = ms_res or PAN_RES * RATIO
    with rasterio.open(ms_path, "w", height=h, width=w, count=bands, crs=CRS.from_string(ms_crs or crs),
                       transform=from_origin(*(ms_origin or ORIGIN), mres, mres), **common) as dst:
        dst.write(conv(ms))
        for i in range(bands):
            dst.set_band_description(i + 1, f"band{i + 1}")
        dst.update_tags(ACQUISITION="2024-01-01")
    return pan_path, ms_path


def read(path):
    with rasterio.open(path) as ds:
        return ds.read(), ds.profile, ds.descriptions, ds.tags()


def test_geo_metadata_carried_over(tmp_path, tiny):
    from panfw.inference.scene import fuse_scene

    pan, ms = write_pair(tmp_path)
    out = tmp_path / "out.tif"
    report = fuse_scene(pan, ms, tiny, out, bits=11, tile=32, overlap=16, progress=False)
    assert report.tiles == 5 * 4 and report.ratio == 4 and report.bits == 11
    data, prof, desc, tags = read(out)
    with rasterio.open(pan) as p, rasterio.open(ms) as m:
        assert prof["crs"] == p.crs
        assert prof["transform"] == p.transform
        assert (prof["width"], prof["height"]) == (p.width, p.height)
        assert prof["dtype"] == m.dtypes[0] and prof["count"] == m.count
        assert prof["nodata"] == m.nodata
        assert desc == m.descriptions
    assert tags["ACQUISITION"] == "2024-01-01" and tags["PANFW_MODEL"] == tiny
    assert data.dtype == np.uint16 and data.max() <= 2047 * 1.2
    assert not list(tmp_path.glob(".*partial"))


def test_mismatched_crs_rejected(tmp_path, tiny):
    from panfw.errors import UserError
    from panfw.inference.scene import fuse_scene

    pan, ms = write_pair(tmp_path, ms_crs="EPSG:32634")
    with pytest.raises(UserError, match="coordinate reference") as exc:
        fuse_scene(pan, ms, tiny, tmp_path / "o.tif", bits=11, progress=False)
    assert str(pan) in str(exc.value) and str(ms) in str(exc.value) and "32634" in str(exc.value)


def test_mismatched_extent_rejected(tmp_path, tiny):
    from panfw.errors import UserError
    from panfw.inference.scene import fuse_scene

    pan, ms = write_pair(tmp_path, ms_origin=(ORIGIN[0] + 2.0, ORIGIN[1]))  # one MS pixel east
    with pytest.raises(UserError, match="same ground") as exc:
        fuse_scene(pan, ms, tiny, tmp_path / "o.tif", bits=11, progress=False)
    assert "left differs by -2" in str(exc.value) and str(ms) in str(exc.value)
    # half a PAN pixel of offset is detected, said and accepted (MS pixel centres on PAN pixel centres);
    # any other sub-pixel offset is refused with the fix (test_faults.py and test_real_scenes.py: more)
    pan, ms = write_pair(tmp_path, ms_origin=(ORIGIN[0] + 0.25, ORIGIN[1]), name="b")
    with pytest.warns(UserWarning, match="offset by -0.50 PAN pixel"):
        rep = fuse_scene(pan, ms, tiny, tmp_path / "ok.tif", bits=11, tile=48, overlap=16, progress=False)
    assert any("Landsat" in n for n in rep.notes)
    pan, ms = write_pair(tmp_path, ms_origin=(ORIGIN[0] + 0.2, ORIGIN[1]), name="c")
    with pytest.raises(UserError, match="not aligned.*gdalwarp"):
        fuse_scene(pan, ms, tiny, tmp_path / "no.tif", bits=11, tile=48, overlap=16, progress=False)


def test_non_integer_ratio_rejected(tmp_path, tiny):
    from panfw.errors import UserError
    from panfw.inference.scene import fuse_scene

    pan, ms = write_pair(tmp_path, ms_res=PAN_RES * 2.5)
    with pytest.raises(UserError, match="integer") as exc:
        fuse_scene(pan, ms, tiny, tmp_path / "o.tif", bits=11, progress=False)
    assert "ratio 2.5" in str(exc.value)


def test_tiled_equals_untiled_conv(tmp_path, tiny):
    from panfw.inference.scene import fuse_scene

    pan, ms = write_pair(tmp_path, height=128, width=112, dtype="float32", nodata=None)
    fuse_scene(pan, ms, tiny, tmp_path / "whole.tif", bits=11, tile=128, overlap=0, progress=False)
    r = fuse_scene(pan, ms, tiny, tmp_path / "tiled.tif", bits=11, tile=48, overlap=16, progress=False)
    assert r.tiles > 4
    whole, tiled = read(tmp_path / "whole.tif")[0], read(tmp_path / "tiled.tif")[0]
    assert np.abs(whole - tiled).max() / 2047 <= 1e-3
    assert np.abs(whole - tiled).max() / 2047 <= 1e-5  # in fact identical up to float rounding


def test_tiled_vs_untiled_pantiny(tmp_path):
    """PanTiny's channel attention normalises over the whole tile, so each tile sees slightly different
    statistics. Stated tolerance, [0, 1] scale, 128-pixel tiles overlapping by 64: max 1e-2, mean 2e-3
    (measured with untrained weights on a noisy synthetic scene: Small 3.7e-3 / 9.8e-4, Big
    3.8e-3 / 8.1e-4; see docs/deploy.md)."""
    from panfw.inference.scene import fuse_scene

    if "pantiny_small" not in panfw.registry("models"):
        pytest.skip("PanTiny plugin not installed")
    torch.manual_seed(0)
    model = panfw.create_model("pantiny_small", bands=4).eval()
    pan, ms = write_pair(tmp_path, height=192, width=192, dtype="float32", nodata=None)
    fuse_scene(pan, ms, model, tmp_path / "whole.tif", bits=11, tile=192, overlap=0, progress=False)
    r = fuse_scene(pan, ms, model, tmp_path / "tiled.tif", bits=11, tile=128, overlap=64, progress=False)
    assert r.tiles == 4
    diff = np.abs(read(tmp_path / "whole.tif")[0] - read(tmp_path / "tiled.tif")[0]) / 2047
    assert diff.max() <= 1e-2 and diff.mean() <= 2e-3, (diff.max(), diff.mean())


def test_bands_pick_four_of_eight(tmp_path, tiny):
    from panfw.cli import cli

    pan, ms = write_pair(tmp_path, bands=8)
    out = tmp_path / "o.tif"
    args = ["fuse", "--pan", str(pan), "--ms", str(ms), "--model", tiny, "-o", str(out), "--tile", "48",
            "--overlap", "16", "--quiet"]
    # a registered model takes the MS band count; a 4-band model with 8 bands needs --bands
    res = CliRunner().invoke(cli, args + ["--sensor", "wv3", "--bands", "bgrn"])
    assert res.exit_code == 0, res.output
    data, prof, desc, tags = read(out)
    assert data.shape[0] == 4 and desc == ("band2", "band3", "band5", "band7")
    assert tags["PANFW_MS_BANDS"] == "2,3,5,7" and tags["PANFW_BITS"] == "11"
    res = CliRunner().invoke(cli, args + ["--bits", "11", "--bands", "1,2,4,9"])
    assert res.exit_code == 2 and "1..8" in res.output


def test_band_count_mismatch_names_bands_option(tmp_path, tiny):
    from panfw.errors import UserError
    from panfw.inference.scene import fuse_scene
    from panfw.io.checkpoint import save_checkpoint

    ckpt = save_checkpoint({"model": {"name": tiny, "options": {"bands": 4},
                                      "state_dict": TinyConv(4).state_dict()},
                            "recipe": {}, "data": {"sensor": "wv3", "bands": 4, "ratio": 4, "bit_depth": 11}},
                           tmp_path / "best.pt")
    pan, ms = write_pair(tmp_path, bands=8)
    with pytest.raises(UserError, match="--bands") as exc:
        fuse_scene(pan, ms, ckpt, tmp_path / "o.tif", progress=False)
    assert "2,3,5,7" in str(exc.value)
    # the checkpoint's sensor gives the bit depth; bgrn comes from it too
    r = fuse_scene(pan, ms, ckpt, tmp_path / "o.tif", bands="bgrn", tile=48, overlap=16, progress=False)
    assert r.bits == 11 and r.bands == 4


def test_bit_depth_required_for_unknown_sensor(tmp_path, tiny):
    from panfw.errors import UserError
    from panfw.inference.scene import fuse_scene

    pan, ms = write_pair(tmp_path)
    with pytest.raises(UserError, match="--bits"):
        fuse_scene(pan, ms, tiny, tmp_path / "o.tif", progress=False)
    r = fuse_scene(pan, ms, tiny, tmp_path / "o.tif", sensor="gf2", tile=48, overlap=16, progress=False)
    assert r.bits == 10


def test_nodata_carried_through(tmp_path):
    """Pixels that are nodata in the MS (or PAN) are nodata in the output; DN are rounded and clipped."""
    from panfw.inference.scene import fuse_scene

    pan, ms = write_pair(tmp_path, nodata=0)
    with rasterio.open(ms, "r+") as ds:
        a = ds.read()
        a[:, 0:2, 0:3] = 0  # a corner of MS nodata
        ds.write(a)

    class Bright(nn.Module):
        def forward(self, lms, pan, ms):
            return lms * 1e4  # far above 2047 DN: clipped to the 11-bit range, never wrapped

    out = tmp_path / "o.tif"
    with pytest.warns(UserWarning, match="clipped"):
        rep = fuse_scene(pan, ms, Bright(), out, bits=11, tile=48, overlap=16, progress=False)
    data = read(out)[0]
    assert (data[:, 0:8, 0:12] == 0).all()
    assert (data[:, 24:, 24:] == 2047).all() and rep.clipped > 0

    class Dark(nn.Module):
        def forward(self, lms, pan, ms):
            return lms * 0  # valid pixels that round to the nodata value (0) are written as 1

    fuse_scene(pan, ms, Dark(), out, bits=11, tile=48, overlap=16, progress=False, overwrite=True)
    data = read(out)[0]
    assert (data[:, 0:8, 0:12] == 0).all() and (data[:, 8:, 12:] == 1).all()


def test_cli_fuse_exit_codes(tmp_path, tiny):
    from panfw.cli import cli

    pan, ms = write_pair(tmp_path)
    out = tmp_path / "o.tif"
    base = ["fuse", "--pan", str(pan), "--ms", str(ms), "--model", tiny, "-o", str(out), "--quiet"]
    res = CliRunner().invoke(cli, base + ["--bits", "11", "--tile", "48", "--overlap", "16"])
    assert res.exit_code == 0, res.output
    assert "tiles" in res.output and "MP/s" in res.output
    res = CliRunner().invoke(cli, base + ["--bits", "11", "--tile", "50"])
    assert res.exit_code == 2 and "multiples of the ratio 4" in res.output
    res = CliRunner().invoke(cli, base + ["--bits", "11", "--tile", "32", "--overlap", "32"])
    assert res.exit_code == 2 and "smaller than --tile" in res.output
    res = CliRunner().invoke(cli, ["fuse", "--pan", str(tmp_path / "none.tif"), "--ms", str(ms), "--model",
                                   tiny, "-o", str(out)])
    assert res.exit_code == 2 and "not found" in res.output
    res = CliRunner().invoke(cli, base + ["--bits", "11", "--tile", "48", "--overlap", "16", "--device", "cuda"])
    if torch.cuda.is_available():  # runs on the GPU and says so
        assert res.exit_code == 0, res.output
        assert "cuda" in res.output and "MP/s" in res.output
    else:
        assert res.exit_code == 2 and "no CUDA device" in res.output and "--device cpu" in res.output


def test_onnx_backend_matches_torch(tmp_path, tiny):
    from panfw.export import export_model
    from panfw.inference.scene import fuse_scene

    pan, ms = write_pair(tmp_path, dtype="float32", nodata=None)
    onnx_file = tmp_path / "m.onnx"
    export_model(tiny, "onnx", onnx_file, min_size=16, opt_size=48, max_size=96)
    a = fuse_scene(pan, ms, tiny, tmp_path / "t.tif", bits=11, tile=48, overlap=16, progress=False)
    b = fuse_scene(pan, ms, onnx_file, tmp_path / "o.tif", bits=11, tile=48, overlap=16, progress=False)
    assert b.backend == "onnxruntime" and b.model == tiny and a.backend == "torch"
    diff = np.abs(read(tmp_path / "t.tif")[0] - read(tmp_path / "o.tif")[0]) / 2047
    assert diff.max() <= 1e-4


def test_exported_program_file_as_model(tmp_path, tiny):
    """A .pt2 from panfw export runs with the torch backend and knows its bands from its metadata."""
    from panfw.export import export_model
    from panfw.inference.scene import fuse_scene

    pan, ms = write_pair(tmp_path, dtype="float32", nodata=None)
    prog = tmp_path / "m.pt2"
    export_model(tiny, "exported_program", prog, min_size=16, opt_size=48, max_size=96)
    a = fuse_scene(pan, ms, tiny, tmp_path / "t.tif", bits=11, tile=48, overlap=16, progress=False)
    b = fuse_scene(pan, ms, prog, tmp_path / "p.tif", bits=11, tile=48, overlap=16, progress=False)
    assert b.backend == "torch" and b.model == tiny and b.tiles == a.tiles
    assert np.abs(read(tmp_path / "t.tif")[0] - read(tmp_path / "p.tif")[0]).max() / 2047 <= 1e-5
    from panfw.errors import UserError

    with pytest.raises(UserError, match="accepts H, W from 16 to 96"):
        fuse_scene(pan, ms, prog, tmp_path / "x.tif", bits=11, tile=8, overlap=4, progress=False)


@pytest.mark.slow
def test_onnx_backend_from_checkpoint_name(tmp_path, tiny):
    """--backend onnx with a model name exports to a temporary ONNX file sized for the tile."""
    from panfw.inference.scene import fuse_scene

    pan, ms = write_pair(tmp_path, dtype="float32", nodata=None)
    fuse_scene(pan, ms, tiny, tmp_path / "t.tif", bits=11, tile=48, overlap=16, progress=False)
    b = fuse_scene(pan, ms, tiny, tmp_path / "o.tif", bits=11, tile=48, overlap=16, backend="onnx",
                   progress=False)
    assert b.backend == "onnxruntime"
    assert np.abs(read(tmp_path / "t.tif")[0] - read(tmp_path / "o.tif")[0]).max() / 2047 <= 1e-4


class ContextPlugin:
    """A registered model whose factory takes the sensor and the ratio, as classical methods do."""

    seen: dict = {}

    @staticmethod
    @panfw.hookimpl
    def register_models(register):
        def fuse_ctx(bands: int = 4, sensor: str = "generic", ratio: int = 4):
            """Records what it was built with."""
            ContextPlugin.seen = {"bands": bands, "sensor": sensor, "ratio": ratio}
            return TinyConv(bands)

        register("fuse_ctx", fuse_ctx)


def test_registered_model_gets_bands_sensor_and_ratio(tmp_path, plugin_registered):
    """The MS band count, --sensor and the pair's ratio reach a registered model's factory."""
    from panfw.inference.scene import fuse_scene

    plugin_registered(ContextPlugin, "test-fuse-ctx")
    pan, ms = write_pair(tmp_path, bands=8)
    fuse_scene(pan, ms, "fuse_ctx", tmp_path / "o.tif", sensor="wv2", tile=48, overlap=16, progress=False)
    assert ContextPlugin.seen == {"bands": 8, "sensor": "wv2", "ratio": RATIO}


def test_backend_list_in_help_and_errors(tmp_path, tiny):
    from panfw.cli import cli
    from panfw.inference import available_runtimes

    res = CliRunner().invoke(cli, ["fuse", "--help"])
    assert res.exit_code == 0
    help_text = " ".join(res.output.split())
    assert all(name in help_text for name in available_runtimes())
    pan, ms = write_pair(tmp_path)
    res = CliRunner().invoke(cli, ["fuse", "--pan", str(pan), "--ms", str(ms), "--model", tiny, "-o",
                                   str(tmp_path / "o.tif"), "--bits", "11", "--backend", "onnxrt"])
    assert res.exit_code == 2 and "onnxruntime" in res.output
    assert not (tmp_path / "o.tif").exists()
