"""Pan-Mamba's pure-PyTorch selective scan against a sequential reference written here (values and
gradients), and the model built on it."""

from __future__ import annotations

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


@pytest.mark.parametrize("length", [1, 7, 8, 9, 64, 100, 333])
def test_parallel_scan_matches_the_sequential_reference_with_gradients(length):
    x = _scan_inputs(length)
    ref = reference_selective_scan(**x)
    gy = torch.randn_like(ref)
    ref_grads = torch.autograd.grad(ref, list(x.values()), gy)
    out = pm.selective_scan(**x, scan="parallel")
    grads = torch.autograd.grad(out, list(x.values()), gy)
    torch.testing.assert_close(out, ref, rtol=1e-5, atol=1e-5)
    for key, g, rg in zip(x, grads, ref_grads):
        torch.testing.assert_close(g, rg, rtol=1e-5, atol=1e-5, msg=lambda m, k=key: f"d/d{k}: {m}")


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


def test_model_parallel_and_sequential_scans_agree():
    torch.manual_seed(0)
    model = panfw.create_model("panmamba", scan="parallel")
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
