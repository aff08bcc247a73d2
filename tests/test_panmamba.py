"""Pan-Mamba's pure-PyTorch selective scan against a sequential reference written here (values and
gradients), and the model built on it."""

from __future__ import annotations

import importlib.util

import pytest
import torch
import torch.nn.functional as F

import panfw
from panfw.errors import UserError
from panfw_baselines import panmamba as pm


@pytest.fixture(autouse=True)
def _one_thread(one_thread):
    yield


def reference_selective_scan(u, delta, A, B, C, D, z, delta_bias):
    """Mamba's selective scan, one token at a time, as mamba_ssm's ``selective_scan_ref``."""
    delta = F.softplus(delta + delta_bias[:, None])
    h = u.new_zeros(u.shape[0], u.shape[1], A.shape[1])
    ys = []
    for t in range(u.shape[-1]):
        h = torch.exp(delta[:, :, t, None] * A) * h + (delta[:, :, t] * u[:, :, t])[..., None] * B[:, None, :, t]
        ys.append((h * C[:, None, :, t]).sum(-1))
    return (torch.stack(ys, -1) + D[:, None] * u) * F.silu(z)


def _scan_inputs(length, b=2, d=6, n=4, seed=0, dtype=torch.float32):
    g = torch.Generator().manual_seed(seed)

    def r(*shape, scale=1.0):
        return (scale * torch.randn(*shape, generator=g, dtype=dtype)).requires_grad_()

    A = (-torch.rand(d, n, generator=g, dtype=dtype) * 4 - 0.5).requires_grad_()
    return dict(u=r(b, d, length), delta=r(b, d, length, scale=0.5), A=A, B=r(b, n, length), C=r(b, n, length),
                D=r(d), z=r(b, d, length), delta_bias=r(d, scale=0.5))


def _check_against_reference(x, scan):
    ref = reference_selective_scan(**x)
    gy = torch.randn_like(ref)
    ref_grads = torch.autograd.grad(ref, list(x.values()), gy)
    out = pm.selective_scan(**x, scan=scan)
    grads = torch.autograd.grad(out, list(x.values()), gy)
    torch.testing.assert_close(out, ref, rtol=1e-5, atol=1e-5)
    for key, g, rg in zip(x, grads, ref_grads):
        torch.testing.assert_close(g, rg, rtol=1e-5, atol=1e-5, msg=lambda m, k=key: f"{scan} d/d{k}: {m}")


@pytest.mark.parametrize("scan", ["parallel", "chunked"])
@pytest.mark.parametrize("length", [1, 7, 8, 9, 64, 100, 333])
def test_scan_matches_the_sequential_reference_with_gradients(length, scan):
    _check_against_reference(_scan_inputs(length), scan)


@pytest.mark.parametrize(("length", "step_lanes", "group_steps"), [(100, 3, 5), (97, 4, 1), (64, 1, 7), (5, 8, 2)])
def test_chunked_scan_with_many_chunks_steps_and_groups(monkeypatch, length, step_lanes, group_steps):
    # tiny STEP/GROUP so small tensors take every path: several chunks, padded ends, partial last groups
    lanes = 2 * 6 * 4  # b * d * n of _scan_inputs
    monkeypatch.setattr(pm, "STEP", lanes * step_lanes)
    monkeypatch.setattr(pm, "GROUP", lanes * step_lanes * group_steps)
    chunks, steps, group = pm._chunk_plan(2, 6, 4, length)
    assert chunks == min(length, step_lanes) and chunks * steps >= length and group == min(steps, group_steps)
    _check_against_reference(_scan_inputs(length, seed=length), "chunked")


def test_chunked_scan_keeps_float32_precision_on_a_long_sequence():
    # 16,384 tokens as a 128 x 128 PAN: the chunk carries compose 64 decays; against a float64 loop
    x = {k: v.detach() for k, v in _scan_inputs(16384, b=1, d=4, n=4, seed=5).items()}
    ref = reference_selective_scan(**{k: v.double() for k, v in x.items()})
    out = pm.selective_scan(**x, scan="chunked")
    torch.testing.assert_close(out.double(), ref, rtol=1e-5, atol=1e-5)


def test_traced_scan_is_the_recurrence_and_exports_with_any_length():
    x = {k: v.detach() for k, v in _scan_inputs(37, seed=2).items()}
    ref = reference_selective_scan(**x)
    delta = F.softplus(x["delta"] + x["delta_bias"][:, None])
    y = pm.ssm_traced(x["u"], delta, x["A"], x["B"], x["C"])
    torch.testing.assert_close((y + x["D"][:, None] * x["u"]) * F.silu(x["z"]), ref, rtol=1e-5, atol=1e-5)

    layer = pm.Mamba(8, scan="auto").eval()
    tokens = torch.randn(1, 20, 8)
    program = torch.export.export(layer, (tokens,), dynamic_shapes=({1: torch.export.Dim("L", min=2, max=4096)},),
                                  strict=False)
    other = torch.randn(1, 53, 8)  # another token count than the one traced
    with torch.no_grad():
        torch.testing.assert_close(program.module()(other), layer(other), rtol=1e-5, atol=1e-6)


def test_the_sequential_option_is_the_reference_too():
    x = _scan_inputs(50, seed=3)
    ref = reference_selective_scan(**x)
    out = pm.selective_scan(**x, scan="sequential")
    torch.testing.assert_close(out, ref, rtol=1e-5, atol=1e-5)
    g = torch.autograd.grad(out.sum(), x["A"])[0]
    torch.testing.assert_close(g, torch.autograd.grad(ref.sum(), x["A"])[0], rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("length", [1, 2, 8, 63, 64, 65, 511, 513, 4097])
def test_blocked_scan_equals_the_recurrence(length):
    g = torch.Generator().manual_seed(length)
    a = torch.rand(2, 3, length, generator=g, dtype=torch.float64)
    b = torch.randn(2, 3, length, generator=g, dtype=torch.float64)
    h, prev = torch.empty_like(b), torch.zeros(2, 3, dtype=torch.float64)
    for t in range(length):
        prev = a[..., t] * prev + b[..., t]
        h[..., t] = prev
    torch.testing.assert_close(pm.scan_parallel(a, b), h, rtol=1e-12, atol=1e-12)
    assert torch.equal(pm.scan_parallel(a, b), pm.scan_parallel(a.clone(), b.clone()))  # inputs untouched


@pytest.mark.parametrize("scan", ["parallel", "chunked"])
def test_model_scans_agree_with_the_sequential_one(scan):
    torch.manual_seed(0)
    model = panfw.create_model("panmamba", scan=scan)
    ms = torch.rand(1, 4, 3, 4)
    lms, pan = F.interpolate(ms, size=(12, 16)), torch.rand(1, 1, 12, 16)
    out = model(lms, pan, ms)
    out.square().mean().backward()
    grads = {k: p.grad.clone() for k, p in model.named_parameters() if p.grad is not None}
    model.zero_grad()
    model.set_scan("sequential")
    ref = model(lms, pan, ms)
    ref.square().mean().backward()
    torch.testing.assert_close(out, ref, rtol=1e-5, atol=1e-5)
    for k, p in model.named_parameters():
        if p.grad is not None:
            torch.testing.assert_close(grads[k], p.grad, rtol=1e-4, atol=1e-5, msg=lambda m, k=k: f"{k}: {m}")


def test_model_uses_the_inputs_own_grid_and_nearest_upsampling():
    torch.manual_seed(0)
    model = panfw.create_model("panmamba").eval()
    for p in model.output.conv_last.parameters():
        torch.nn.init.zeros_(p)  # no details: the output is the upsampled MS the residual adds
    ms = torch.rand(1, 4, 3, 5)
    with torch.no_grad():
        out = model(torch.rand(1, 4, 12, 20), torch.rand(1, 1, 12, 20), ms)
    torch.testing.assert_close(out, F.interpolate(ms, size=(12, 20), mode="nearest"))


def test_mamba_ssm_is_never_a_silent_choice():
    x = _scan_inputs(10)
    with pytest.raises(UserError, match="mamba_ssm"):
        pm.selective_scan(**x, scan="mamba_ssm")  # CPU tensors: the CUDA kernel cannot run
    with pytest.raises(UserError, match="scan="):
        panfw.create_model("panmamba", scan="fast")
    # the layer stays a Mamba (PanTiny's copy falls back to one nn.Linear when the import fails)
    model = panfw.create_model("panmamba")
    assert sum(isinstance(m, pm.Mamba) for m in model.modules()) == 8 + 8 + 2 * 2 + 5


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available() or pm._mamba_ssm_scan() is None,
                    reason="needs CUDA and an importable mamba_ssm")
def test_mamba_ssm_kernel_agrees_with_the_parallel_scan():
    x = {k: v.detach().cuda() for k, v in _scan_inputs(300).items()}
    torch.testing.assert_close(pm.selective_scan(**x, scan="mamba_ssm"), pm.selective_scan(**x, scan="parallel"),
                               rtol=1e-4, atol=1e-4)


def test_auto_takes_the_chunked_scan_on_a_cpu():
    x = {k: v.detach() for k, v in _scan_inputs(90, seed=4).items()}
    assert torch.equal(pm.selective_scan(**x, scan="auto"), pm.selective_scan(**x, scan="chunked"))
    assert not torch.equal(pm.selective_scan(**x, scan="auto"), pm.selective_scan(**x, scan="parallel"))


needs_onnx = pytest.mark.skipif(any(importlib.util.find_spec(m) is None for m in ("onnx", "onnxscript", "onnxruntime")),
                                reason="needs onnx, onnxscript and onnxruntime")


@needs_onnx
def test_a_mamba_layer_exports_to_onnx_with_any_token_count(tmp_path):
    import onnxruntime

    torch.manual_seed(0)
    layer = pm.Mamba(8, cross=True).eval()
    tokens, extra = torch.randn(1, 20, 8), torch.randn(1, 20, 8)
    length = torch.export.Dim("L", min=2, max=4096)
    torch.onnx.export(layer, (tokens, extra), str(tmp_path / "mamba.onnx"), input_names=["tokens", "extra"],
                      dynamic_shapes=({1: length}, {1: length}), dynamo=True, verbose=False)
    session = onnxruntime.InferenceSession(str(tmp_path / "mamba.onnx"), providers=["CPUExecutionProvider"])
    tokens, extra = torch.randn(1, 45, 8), torch.randn(1, 45, 8)
    out = session.run(None, {"tokens": tokens.numpy(), "extra": extra.numpy()})[0]
    with torch.no_grad():
        torch.testing.assert_close(torch.from_numpy(out), layer(tokens, extra), rtol=1e-4, atol=1e-5)


@needs_onnx
@pytest.mark.slow
def test_the_model_exports_to_onnx_and_an_exported_program(tmp_path):
    from panfw.export import export_model

    for fmt in ("onnx", "exported_program"):
        result = export_model("panmamba", fmt, tmp_path / f"panmamba.{fmt}", min_size=16, opt_size=32, max_size=256)
        assert result.ok and len(result.parity) == 2, result.report()  # 32 x 32 and 16 x 48, one graph


@pytest.mark.parametrize("scan", ["chunked", "parallel"])
def test_half_precision_inputs_scan_in_float32(scan):
    # a slow decay: the state sums ~2000 positive inputs, which a bfloat16 state (8 bits) gets 14-100% wrong
    x = {k: v.detach() for k, v in _scan_inputs(2000, seed=6).items()}
    x.update(A=torch.full_like(x["A"], -1e-3), u=x["u"].abs() + 0.5, B=x["B"].abs() + 0.5, C=x["C"].abs())
    ref = pm.selective_scan(**x, scan=scan)
    low = pm.selective_scan(**{k: v.bfloat16() for k, v in x.items()}, scan=scan)
    assert low.dtype == torch.bfloat16
    # only the inputs and the output are rounded to bfloat16: well under 1% of the largest value
    assert (low.float() - ref).abs().max() < 0.01 * ref.abs().max()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = pm.Mamba(8)(torch.randn(1, 30, 8))
    assert torch.isfinite(out).all()


def test_checkpointed_blocks_give_the_same_output_and_gradients():
    torch.manual_seed(0)
    plain = panfw.create_model("panmamba")
    checked = panfw.create_model("panmamba", checkpoint=True)
    checked.load_state_dict(plain.state_dict())
    ms = torch.rand(2, 4, 3, 4)
    lms, pan = F.interpolate(ms, size=(12, 16)), torch.rand(2, 1, 12, 16)
    outs, grads = [], []
    for model in (plain, checked):
        out = model(lms, pan, ms)
        out.square().mean().backward()
        outs.append(out.detach())
        grads.append({k: p.grad for k, p in model.named_parameters() if p.grad is not None})
    torch.testing.assert_close(outs[1], outs[0], rtol=0, atol=0)
    assert grads[0].keys() == grads[1].keys() and len(grads[0]) > 100
    for k in grads[0]:
        torch.testing.assert_close(grads[1][k], grads[0][k], rtol=1e-5, atol=1e-7, msg=lambda m, k=k: f"{k}: {m}")
