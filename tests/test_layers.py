"""panfw.layers: the shared building blocks' formulas, keys and FP32 flags."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from panfw.layers import (
    ChannelAttention,
    GatedFeedForward,
    LayerNorm2d,
    ResBlock,
    SqueezeExcite,
    TransformerBlock,
    conv3x3,
    keeps_fp32,
)


def test_layer_norm_2d_matches_restormer_s_round_trip_with_plain_keys():
    torch.manual_seed(0)
    ln = LayerNorm2d(6)
    nn.init.normal_(ln.weight)
    nn.init.normal_(ln.bias)
    x = torch.randn(2, 6, 5, 7)
    # Restormer: (B, C, H, W) -> (B, HW, C), LayerNorm over C, and back
    seq = nn.functional.layer_norm(x.flatten(2).transpose(1, 2), (6,), ln.weight, ln.bias, 1e-5)
    torch.testing.assert_close(ln(x), seq.transpose(1, 2).reshape(x.shape))
    assert ln.eps == 1e-5 and list(ln.state_dict()) == ["weight", "bias"]


def test_squeeze_excite_formula_and_keys():
    torch.manual_seed(0)
    se = SqueezeExcite(8, reduction=4)
    x = torch.randn(2, 8, 5, 6)
    pooled = x.mean((2, 3), keepdim=True)
    gate = torch.sigmoid(se[3](torch.relu(se[1](pooled))))
    torch.testing.assert_close(se(x), x * gate)
    assert se[1].out_channels == 2
    assert sorted(se.state_dict()) == ["1.bias", "1.weight", "3.bias", "3.weight"]


@pytest.mark.parametrize(("kernel", "se"), [(3, None), (1, None), (3, 4)])
def test_res_block_is_the_identity_when_its_branch_is_zero(kernel, se):
    block = ResBlock(8, kernel=kernel, se_reduction=se)
    x = torch.randn(1, 8, 5, 7)
    assert block(x).shape == x.shape
    nn.init.zeros_(block.res[2].weight)
    assert torch.equal(block(x), x)


def test_res_block_scale_and_bias():
    torch.manual_seed(0)
    block = ResBlock(4, bias=True, res_scale=0.5)
    x = torch.randn(1, 4, 6, 6)
    torch.testing.assert_close(block(x), x + 0.5 * block.res(x))
    assert block.res[0].bias is not None


def test_blocks_are_bias_free_by_default():
    convs = [m for b in (TransformerBlock(8, 2), ChannelAttention(8, 2), GatedFeedForward(8, 16), ResBlock(8))
             for m in b.modules() if isinstance(m, nn.Conv2d)]
    assert convs and all(c.bias is None for c in convs)
    assert conv3x3(4, 4, groups=4).groups == 4


def test_keep_fp32_flags():
    ln, attn, block = LayerNorm2d(4), ChannelAttention(4, 2), TransformerBlock(4, 2)
    assert keeps_fp32(ln, "fp16") and keeps_fp32(ln, "bf16")
    assert keeps_fp32(attn, "fp16") and not keeps_fp32(attn, "bf16")
    assert not keeps_fp32(block, "fp16")  # its norms and attention are wrapped, not the whole block
    assert keeps_fp32(nn.GroupNorm(2, 4), "bf16") and not keeps_fp32(nn.Conv2d(4, 4, 1), "fp16")


def test_half_instance_norm_normalises_the_first_half_only():
    from panfw.layers import HalfInstanceNorm

    torch.manual_seed(0)
    norm = HalfInstanceNorm(6)
    with torch.no_grad():
        norm.weight.copy_(torch.tensor([1.0, 2.0, 3.0]))
        norm.bias.copy_(torch.tensor([0.5, 0.0, -1.0]))
    x = 3 * torch.randn(2, 6, 5, 7) + 1
    out = norm(x)
    torch.testing.assert_close(out[:, 3:], x[:, 3:], rtol=0, atol=0)
    first = x[:, :3]
    mean, var = first.mean((2, 3), keepdim=True), first.var((2, 3), unbiased=False, keepdim=True)
    expected = (first - mean) / torch.sqrt(var + 1e-5) * norm.weight.view(1, 3, 1, 1) + norm.bias.view(1, 3, 1, 1)
    torch.testing.assert_close(out[:, :3], expected, rtol=1e-5, atol=1e-5)
    assert set(norm.state_dict()) == {"weight", "bias"}  # the keys of InstanceNorm2d(3, affine=True)
