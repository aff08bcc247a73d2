"""The runtime contract, over every registered runtime.

A runtime registers with ``tolerance`` (largest |runtime - eager| in the [0, 1] scale), ``available``
(why it cannot run here, or "") and ``devices``. Where it can run, it gives the eager model's output
within its tolerance for a network (PanTiny Small) and a classical method (Brovey), with its name
and device as attributes; where it cannot, building it is a UserError that says why and names the
runtimes that can. CUDA cases run on a CUDA machine and are skipped elsewhere. ``torch_compile``
compiles for about a minute on a 2-core CPU, so its cases are marked slow.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

import panfw
from panfw.errors import RegistryError, UserError
from panfw.inference import available_runtimes, build_runtime, runtime_reason

RATIO = 4
HW = (32, 48)  # PAN grid, non-square multiples of the ratio
MODELS = ("pantiny_small", "brovey")
SLOW = {"torch_compile"}
REGISTRY = panfw.registry("runtimes")
NAMES = REGISTRY.names()
DEVICES = ["cpu", pytest.param("cuda", marks=[pytest.mark.cuda, pytest.mark.skipif(
    not torch.cuda.is_available(), reason="needs a CUDA device")])]


def _params(names):
    return [pytest.param(n, marks=pytest.mark.slow) if n in SLOW else n for n in names]


def _inputs(device: str = "cpu", seed: int = 0) -> tuple[torch.Tensor, ...]:
    g = torch.Generator().manual_seed(seed)
    h, w = HW
    lms, pan = torch.rand(1, 4, h, w, generator=g), torch.rand(1, 1, h, w, generator=g)
    ms = torch.rand(1, 4, h // RATIO, w // RATIO, generator=g)
    return tuple(t.to(device) for t in (lms, pan, ms))


def _model(name: str) -> nn.Module:
    if name not in panfw.registry("models"):
        pytest.skip(f"model {name} not registered (plugin not installed)")
    torch.manual_seed(0)
    return panfw.create_model(name, context={"bands": 4, "ratio": RATIO}).eval()


def test_core_runtimes_registered():
    assert {"torch", "torch_channels_last", "torch_compile", "onnxruntime", "tensorrt"} <= set(NAMES)
    assert "torch" in available_runtimes("cpu")


@pytest.mark.parametrize("name", NAMES)
def test_metadata(name):
    meta = REGISTRY.get(name).meta
    assert isinstance(meta.get("tolerance"), float) and 0 <= meta["tolerance"] <= 1e-2
    assert callable(meta.get("available")) and isinstance(runtime_reason(name, "cpu"), str)
    assert meta.get("devices") and set(meta["devices"]) <= {"cpu", "cuda"}


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("model_name", MODELS)
@pytest.mark.parametrize("name", _params(NAMES))
def test_matches_eager(name, model_name, device):
    reason = runtime_reason(name, device)
    if reason:
        pytest.skip(f"{name} on {device}: {reason} (the refusal is tested below)")
    model = _model(model_name)
    x = _inputs(device)
    with torch.inference_mode():
        ref = model.to(device)(*x).float()
    rt = build_runtime(name, model, device=device, context={"bands": 4, "ratio": RATIO, "size": max(HW)})
    assert rt.name == name and str(rt.device).startswith(device)
    got = rt(*(t.cpu() for t in x))  # inputs from another device are moved; the output is on rt.device
    assert got.dtype == torch.float32 and got.shape == ref.shape and got.device.type == device
    tol = REGISTRY.get(name).meta["tolerance"]
    diff = float((got - ref).abs().max())
    assert diff <= tol + 1e-7, f"{name} differs from eager {model_name} by {diff:.3g} > {tol:g}"
    # a second call (other data) goes through the same compiled/exported graph
    x2 = _inputs(device, seed=1)
    with torch.inference_mode():
        assert float((rt(*x2) - model(*x2)).abs().max()) <= tol + 1e-7


@pytest.mark.parametrize("device", ["cpu", "cuda"])  # without a GPU, every cuda request is refused clearly
@pytest.mark.parametrize("name", NAMES)
def test_unavailable_is_a_clear_error(name, device):
    reason = runtime_reason(name, device)
    if not reason:
        pytest.skip(f"{name} runs on {device} here")
    with pytest.raises(UserError) as exc:
        build_runtime(name, nn.Identity(), device=device, context={"bands": 4, "ratio": RATIO})
    text = str(exc.value)
    assert name in text and reason in text and f"Usable on {device}:" in text
    assert "Traceback" not in text


def test_tensorrt_refusal_names_what_is_missing():
    reason = runtime_reason("tensorrt", "cuda")
    if not reason:
        pytest.skip("TensorRT is usable here (tested for real above)")
    assert "pip install 'panfw[trt]'" in reason
    if not torch.cuda.is_available():
        assert "CUDA" in reason


def test_unknown_runtime_names_the_known_ones():
    with pytest.raises(RegistryError) as exc:
        build_runtime("onnxruntim", nn.Identity())
    assert "onnxruntime" in str(exc.value)


def test_old_backend_names_still_accepted():
    rt = build_runtime("onnx" if "onnxruntime" in available_runtimes() else "torch", _model("brovey"),
                       context={"bands": 4, "ratio": RATIO, "size": max(HW)})
    assert rt.name in ("onnxruntime", "torch")


class _Conv(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.c = nn.Conv2d(5, 4, 3, padding=1)

    def forward(self, lms, pan, ms):
        return self.c(torch.cat([lms, pan], 1)) + lms


def test_onnx_cache_is_keyed_by_the_weights(tmp_path):
    """A graph cached for a model is reused for the same weights and never for changed ones."""
    if runtime_reason("onnxruntime", "cpu"):
        pytest.skip(runtime_reason("onnxruntime", "cpu"))
    torch.manual_seed(0)
    net = _Conv().eval()
    ctx = {"bands": 4, "ratio": RATIO, "size": max(HW)}
    build_runtime("onnxruntime", net, context=ctx, cache_dir=tmp_path)
    first = sorted(tmp_path.glob("*.onnx"))
    assert len(first) == 1
    mtime = first[0].stat().st_mtime_ns
    rt = build_runtime("onnxruntime", net, context=ctx, cache_dir=tmp_path)
    assert sorted(tmp_path.glob("*.onnx")) == first and first[0].stat().st_mtime_ns == mtime
    with torch.no_grad():
        net.c.weight.add_(0.5)
    rt2 = build_runtime("onnxruntime", net, context=ctx, cache_dir=tmp_path)
    assert len(list(tmp_path.glob("*.onnx"))) == 2
    x = _inputs()
    with torch.inference_mode():
        ref = net(*x)
    assert float((rt2(*x) - ref).abs().max()) <= 1e-4 < float((rt(*x) - ref).abs().max())


def test_eval_backend_scores_like_eager(tmp_path):
    """``panfw eval --backend`` runs the model through the runtime (batches of several images included)
    and scores as the eager model does."""
    import json

    from click.testing import CliRunner

    from panfw.cli import cli

    _model("brovey")
    backend = "onnxruntime" if "onnxruntime" in available_runtimes() else "torch_channels_last"
    base = ["eval", "brovey", "--data", "synthetic:n=2", "--figures", "0", "--device", "cpu"]
    scores = {}
    for b in ("torch", backend):
        res = CliRunner().invoke(cli, base + ["--backend", b, "-o", str(tmp_path / b)])
        assert res.exit_code == 0, res.output
        assert f"runtime: {b} on cpu" in res.output
        scores[b] = json.loads((tmp_path / b / "results.json").read_text())["final"]["synthetic"]["rr"]
    for metric, value in scores["torch"].items():
        assert abs(scores[backend][metric]["mean"] - value["mean"]) <= 1e-4 * max(1.0, abs(value["mean"])), metric
    res = CliRunner().invoke(cli, base + ["--backend", "no_such_runtime"])
    assert res.exit_code == 2 and "no_such_runtime" in res.output and "torch" in res.output
