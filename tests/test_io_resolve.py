"""panfw.io: one resolver for checkpoints, run directories, exported files and names; safe loading."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import panfw
from panfw.errors import UserError


class Tiny(nn.Module):
    def __init__(self, bands: int = 4, ratio: int = 4) -> None:
        super().__init__()
        self.ratio = ratio
        self.c = nn.Conv2d(bands + 1, bands, 3, padding=1)

    def forward(self, lms, pan, ms):
        return self.c(torch.cat([lms, pan], 1)) + lms


class TinyPlugin:
    @staticmethod
    @panfw.hookimpl
    def register_models(register):
        def io_tiny(bands: int = 4, ratio: int = 4):
            """A tiny test model that takes the ratio."""
            return Tiny(bands, ratio)

        register("io_tiny", io_tiny)


@pytest.fixture
def tiny(plugin_registered):
    plugin_registered(TinyPlugin, "test-io-tiny")
    return "io_tiny"


def _ckpt(tmp_path, name, bands=4):
    from panfw.io.checkpoint import save_checkpoint

    torch.manual_seed(0)
    net = Tiny(bands)
    return net, save_checkpoint({"model": {"name": name, "options": {"bands": bands}, "state_dict": net.state_dict()},
                                 "recipe": {}, "data": {"sensor": "wv3", "bands": bands, "ratio": 4, "bit_depth": 11}},
                                tmp_path / "run" / "best.pt")


def test_resolves_each_kind(tmp_path, tiny):
    from panfw.io.resolve import resolve_model

    net, path = _ckpt(tmp_path, tiny, bands=8)
    x = (torch.rand(1, 8, 16, 16), torch.rand(1, 1, 16, 16), torch.rand(1, 8, 4, 4))
    for spec in (path, tmp_path / "run", str(path)):
        res = resolve_model(spec)
        assert res.kind == "checkpoint" and res.name == tiny and res.bands == 8
        assert res.data["sensor"] == "wv3" and res.checkpoint["format"] == "panfw-checkpoint"
        assert torch.equal(res.model_or_runtime(*x), net.eval()(*x))
    # a registered name gets bands, sensor and ratio where its factory declares them
    res = resolve_model(tiny, bands=3, sensor="qb", ratio=2)
    assert res.kind == "registered" and res.model_or_runtime.c.out_channels == 3
    assert res.model_or_runtime.ratio == 2 and res.data["ratio"] == 2
    res = resolve_model(Tiny(), bands=4)
    assert res.kind == "module" and res.bands == 4
    with pytest.raises(UserError, match="neither a checkpoint file") as exc:
        resolve_model("io_tin")
    assert "io_tiny" in str(exc.value)


def test_exported_program_resolves(tmp_path, tiny):
    from panfw.export import export_model
    from panfw.io.resolve import resolve_model

    _, path = _ckpt(tmp_path, tiny)
    result = export_model(path, "exported_program", tmp_path / "m.pt2", min_size=16, opt_size=16, max_size=32)
    res = resolve_model(result.path)
    assert res.kind == "exported_program" and res.name == tiny and res.bands == 4 and res.sizes == (16, 32)
    assert res.data["sensor"] == "wv3"


def test_top_level_load_model(tmp_path, tiny):
    net, path = _ckpt(tmp_path, tiny)
    model = panfw.load_model(path)
    assert isinstance(model, Tiny) and not model.training
    assert torch.equal(model.c.weight, net.c.weight)
    assert panfw.load_model(tiny, bands=5).c.out_channels == 5


class Foreign:
    """An arbitrary object: a weights-only load must refuse it."""


def test_corrupt_checkpoint_never_suggests_unsafe_loading(tmp_path):
    from panfw.io.checkpoint import load_checkpoint

    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a checkpoint at all")

    pickled = tmp_path / "pickled.pt"
    torch.save({"format": "panfw-checkpoint", "obj": Foreign()}, pickled)
    for path in (junk, pickled):
        with pytest.raises(UserError) as exc:
            load_checkpoint(path)
        text = str(exc.value)
        assert str(path) in text and "weights_only=False" not in text.replace("never", "")
        assert "Re-running" not in text and "trusted source" not in text
    with pytest.raises(UserError, match="never unpickles") as exc:
        load_checkpoint(pickled)
    assert "Foreign" in str(exc.value)


def test_open_pair_without_georeference(tmp_path):
    import numpy as np
    import rasterio

    from panfw.errors import DataError
    from panfw.io.geotiff import open_pair

    def write(path, arr):
        with rasterio.open(path, "w", driver="GTiff", width=arr.shape[2], height=arr.shape[1],
                           count=arr.shape[0], dtype=arr.dtype) as dst:
            dst.write(arr)

    write(tmp_path / "pan.tif", np.ones((1, 32, 24), np.uint16))
    write(tmp_path / "ms.tif", np.ones((4, 8, 6), np.uint16))
    write(tmp_path / "ms3.tif", np.ones((4, 8, 8), np.uint16))
    with open_pair(tmp_path / "pan.tif", tmp_path / "ms.tif") as pair:
        assert pair.ratio == 4 and not pair.georeferenced and pair.pan_window == (0, 0, 32, 24)
    with pytest.raises(DataError, match="integer ratio"):
        open_pair(tmp_path / "pan.tif", tmp_path / "ms3.tif")
    with pytest.raises(DataError, match="single-band"):
        open_pair(tmp_path / "ms.tif", tmp_path / "ms.tif")
    with pytest.raises(DataError, match="not found"):
        open_pair(tmp_path / "none.tif", tmp_path / "ms.tif")
