"""panfw.layers.cpu: the fast CPU inference path gives the plain blocks' outputs (float32 rounding)."""

from __future__ import annotations

import pytest
import torch

import panfw
from panfw.layers import TransformerBlock, cpu

RTOL = 1e-5  # relative to the output's largest magnitude


def _rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).abs().max() / b.abs().max())


def _block(dim: int, heads: int, factor: float, seed: int = 0) -> TransformerBlock:
    torch.manual_seed(seed)
    blk = TransformerBlock(dim, heads, factor).eval()
    with torch.no_grad():  # away from the 1 / 0 initialisation, so a wrong scale or shift shows
        for name, p in blk.named_parameters():
            if "norm" in name or "temperature" in name:
                p.add_(0.3 * torch.randn_like(p))
    return blk


@pytest.mark.parametrize(("dim", "heads", "factor", "shape"), [
    (32, 2, 2.66, (1, 97, 131)),    # Small's block; odd sizes, stripes that do not divide H
    (28, 2, 2.0, (2, 100, 100)),    # Big's block, a batch
    (40, 4, 2.0, (1, 200, 60)),     # Large's block, 4 heads, a tall image
    (32, 2, 2.66, (1, 5, 2100)),    # fewer rows than a stripe
])
def test_block_matches_the_plain_block(dim, heads, factor, shape):
    blk = _block(dim, heads, factor)
    b, h, w = shape
    x = torch.randn(b, dim, h, w)
    with torch.no_grad():
        assert cpu.applies(blk, x)
        fast = blk(x)
        with cpu.enabled(False):
            plain = blk(x)
    assert fast.shape == plain.shape
    assert _rel(fast, plain) < RTOL


def test_input_untouched_and_any_layout():
    blk = _block(32, 2, 2.66)
    x = torch.randn(1, 32, 128, 128)
    keep = x.clone()
    with torch.no_grad():
        a = blk(x)
        b = blk(x.contiguous(memory_format=torch.channels_last))
        with cpu.enabled(False):
            plain = blk(x)
    assert torch.equal(x, keep)
    assert _rel(a, plain) < RTOL and _rel(b, plain) < RTOL


def test_not_applied_where_it_must_not_be():
    blk = _block(32, 2, 2.66)
    x = torch.randn(1, 32, 128, 128)
    assert not cpu.applies(blk, x)  # gradients enabled and the parameters need them
    with torch.no_grad():
        assert cpu.applies(blk, x)
        assert not cpu.applies(blk, x.double())
        assert not cpu.applies(blk, torch.randn(1, 32, 16, 16))  # too small to pay
        with cpu.enabled(False):
            assert not cpu.applies(blk, x)
    with_bias = TransformerBlock(32, 2, 2.66, bias=True).eval()
    with torch.no_grad():
        assert not cpu.applies(with_bias, x)


def test_export_traces_the_plain_block():
    blk = _block(32, 2, 2.66)
    x = torch.randn(1, 32, 128, 128)
    with torch.no_grad():
        traced = torch.jit.trace(blk, x)
    ops = {n.kind() for n in traced.inlined_graph.nodes()}
    assert "aten::layer_norm" in ops and "aten::softmax" in ops  # the plain block's graph, no stripe loop
    with torch.no_grad():
        assert _rel(traced(x), blk(x)) < RTOL


@pytest.mark.parametrize("name", ["pantiny_small", "pantiny_big"])
def test_models_match_with_the_path_off(name):
    torch.manual_seed(0)
    model = panfw.create_model(name, bands=4).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.05 * torch.randn_like(p))
    lms, pan = torch.rand(1, 4, 160, 144), torch.rand(1, 1, 160, 144)
    with torch.no_grad():
        fast = model(lms, pan)
        with cpu.enabled(False):
            plain = model(lms, pan)
    assert _rel(fast, plain) < RTOL


def test_channel_attention_equals_normalising_q_and_k_first():
    import torch.nn.functional as F

    from panfw.layers import channel_attention

    g = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(2, 8, 12, 10, generator=g, dtype=torch.float64) for _ in range(3))
    q[0, 3] = 0  # a zero channel: both clamp its norm at 1e-12
    temp = torch.rand(2, 1, 1, generator=g, dtype=torch.float64) + 0.5
    qh, kh, vh = (t.flatten(2).unflatten(1, (2, -1)) for t in (q, k, v))
    attn = ((F.normalize(qh, dim=-1) @ F.normalize(kh, dim=-1).transpose(-2, -1)) * temp).softmax(-1)
    expected = (attn @ vh).flatten(1, 2).unflatten(-1, (12, 10))
    torch.testing.assert_close(channel_attention(q, k, v, 2, temp), expected, rtol=1e-12, atol=1e-12)
