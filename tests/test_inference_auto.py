"""panfw.inference.auto: the default runtime, the cached ONNX graph (never stale), the measured
reach behind the default overlap, and the scene loop's reader thread."""

from __future__ import annotations

import importlib.util

import pytest
import torch
from torch import nn

import panfw
from panfw.inference import build_runtime, runtime_for
from panfw.inference.auto import choose_backend, default_overlap, graph_cache, measured_reach
from panfw.inference.scene import prefetch
from panfw.layers import cpu

needs_onnx = pytest.mark.skipif(any(importlib.util.find_spec(m) is None for m in ("onnx", "onnxruntime")),
                                reason="needs onnx and onnxruntime")


class TwoConv(nn.Module):
    """Two 3x3 convolutions: a receptive field of exactly 2 pixels."""

    def __init__(self, bands: int = 4) -> None:
        super().__init__()
        self.c1 = nn.Conv2d(bands + 1, 8, 3, padding=1)
        self.c2 = nn.Conv2d(8, bands, 3, padding=1)

    def forward(self, lms, pan, ms):
        return self.c2(torch.relu(self.c1(torch.cat([lms, pan], 1)))) + lms


class AutoPlugin:
    @staticmethod
    @panfw.hookimpl
    def register_models(register):
        def auto_twoconv(bands: int = 4):
            """Two 3x3 convolutions (a test model)."""
            return TwoConv(bands)

        register("auto_twoconv", auto_twoconv)
        register("auto_twoconv_eager", auto_twoconv, prefers_eager="its graph is slower (a test model)")


@pytest.fixture
def twoconv(plugin_registered):
    plugin_registered(AutoPlugin, "test-auto-twoconv")
    return "auto_twoconv"


def _checkpoint(path, name, model):
    from panfw.io.checkpoint import save_checkpoint

    return save_checkpoint({"model": {"name": name, "options": {"bands": 4}, "state_dict": model.state_dict()},
                            "recipe": {}, "data": {"sensor": "wv3", "bands": 4, "ratio": 4, "bit_depth": 11}}, path)


def _inputs(size=64, seed=0):
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(1, 4, size, size, generator=g), torch.rand(1, 1, size, size, generator=g),
            torch.rand(1, 4, size // 4, size // 4, generator=g))


def test_choice_on_cpu(tmp_path, twoconv):
    small = panfw.create_model("pantiny_small", bands=4)
    assert choose_backend(small, "cpu", "pantiny_small")[0] == "torch"  # its fast CPU path
    assert choose_backend(TwoConv(), "cpu", twoconv)[0] == "torch"  # no checkpoint: no graph to cache
    ckpt = _checkpoint(tmp_path / "best.pt", twoconv, TwoConv())
    name, why = choose_backend(TwoConv(), "cpu", twoconv, ckpt)
    onnx = importlib.util.find_spec("onnxruntime") is not None
    assert name == ("onnxruntime" if onnx else "torch") and why


def test_a_model_that_prefers_eager_runs_eager_everywhere(tmp_path, twoconv):
    ckpt = _checkpoint(tmp_path / "best.pt", "auto_twoconv_eager", TwoConv())
    for device in ("cpu", "cuda"):
        name, why = choose_backend(TwoConv(), device, "auto_twoconv_eager", ckpt)
        assert name == "torch" and "its graph is slower" in why, (device, why)
    assert choose_backend(TwoConv(), "cuda", twoconv, ckpt)[0] in ("tensorrt", "torch")


def test_graph_cache_key_follows_the_checkpoint(tmp_path, twoconv):
    torch.manual_seed(0)
    a = _checkpoint(tmp_path / "a.pt", twoconv, TwoConv())
    b = _checkpoint(tmp_path / "b.pt", twoconv, TwoConv())  # other weights
    assert graph_cache(a) == graph_cache(a) and graph_cache(a) != graph_cache(b)
    assert graph_cache(a).parent == tmp_path / "exported"
    assert graph_cache(a, {"x": 1}) != graph_cache(a)
    assert graph_cache("pantiny_small") is None and graph_cache(None) is None


@needs_onnx
def test_changed_checkpoint_never_reuses_a_stale_graph(tmp_path, twoconv):
    torch.manual_seed(0)
    first, second = TwoConv(), TwoConv()
    ckpt = tmp_path / "best.pt"
    lms, pan, ms = _inputs()
    _checkpoint(ckpt, twoconv, first)
    rt, res = runtime_for(str(ckpt), device="cpu", size=64)
    assert rt.name == "onnxruntime"
    graphs = sorted((tmp_path / "exported").rglob("*.onnx"))
    assert len(graphs) == 1
    with torch.no_grad():
        assert (rt(lms, pan, ms) - first(lms, pan, ms)).abs().max() <= 1e-4
    # the same checkpoint again: the cached graph, no new export
    rt, _ = runtime_for(str(ckpt), device="cpu", size=64)
    assert sorted((tmp_path / "exported").rglob("*.onnx")) == graphs
    # new weights under the same file name: a new graph that gives the new model's output
    _checkpoint(ckpt, twoconv, second)
    rt, _ = runtime_for(str(ckpt), device="cpu", size=64)
    now = sorted((tmp_path / "exported").rglob("*.onnx"))
    assert len(now) == 2
    with torch.no_grad():
        out = rt(lms, pan, ms)
        assert (out - second(lms, pan, ms)).abs().max() <= 1e-4
        assert (out - first(lms, pan, ms)).abs().max() > 1e-3


@pytest.mark.parametrize("name", ["torch", "torch_channels_last",
                                  pytest.param("onnxruntime", marks=needs_onnx)])
def test_runtimes_give_the_plain_eager_output_where_the_fast_path_runs(name):
    torch.manual_seed(0)
    model = panfw.create_model("pantiny_small", bands=4).eval()
    lms, pan, ms = _inputs(128)
    with torch.no_grad(), cpu.enabled(False):
        plain = model(lms, pan, ms)
    rt = build_runtime(name, model, device="cpu", context={"bands": 4, "ratio": 4, "size": 128})
    tol = panfw.registry("runtimes").get(name).meta["tolerance"]
    assert (rt(lms, pan, ms) - plain).abs().max() <= max(tol, 1e-5)


def test_measured_reach_of_known_receptive_fields():
    torch.manual_seed(0)
    assert measured_reach(TwoConv(), 4, 4) == 2
    overlap, why = default_overlap(TwoConv(), 4, 4)
    assert overlap == 8 and "reach of 2" in why
    small = measured_reach(panfw.create_model("pantiny_small", bands=4), 4, 4)
    assert 2 <= small <= 8  # its convolutional path reaches 8 pixels, the tails fall below the tolerance


def test_prefetch_keeps_order_and_raises():
    assert list(prefetch(iter(range(10)))) == list(range(10))

    def broken():
        yield 1
        raise ValueError("reader failed")

    got = []
    with pytest.raises(ValueError, match="reader failed"):
        for item in prefetch(broken()):
            got.append(item)
    assert got == [1]
    # the consumer stopping early stops the producer
    gen = prefetch(iter(range(1000)))
    assert next(gen) == 0
    gen.close()
