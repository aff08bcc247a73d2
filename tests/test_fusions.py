"""Fusion blocks and refine heads: registration, exact sizes, the contract, PAN resizing, export."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.export import Dim, export

import panfw
from panfw.evaluation.cost import count_params as count_parameters
from panfw.layers import resize_to

# (name, dim, parameters): the reference code's module sizes
FUSIONS = [
    ("enhanced_conv", 28, 14_364),
    ("conv1x1", 28, 812),
    ("channel_attention", 28, 3_978),
    ("gated_conv", 28, 2_912),
    ("deepfusion", 28, 46_210),
    ("attention_gate", 32, 1_337),
    ("enhanced_conv", 40, 29_160),
    ("gated_conv", 40, 5_600),
]
REFINES = [("conv", 7_056), ("channel_attention", 21_679), ("large_conv", 14_112)]
OURS = ["enhanced_conv", "conv1x1", "channel_attention", "gated_conv", "attention_gate", "deepfusion"]


def test_blocks_are_registered_by_their_plugins():
    fusions, refines = panfw.registry("fusions"), panfw.registry("refines")
    for name in OURS:
        assert name in fusions and fusions.get(name).summary
    assert fusions.get("deepfusion").plugin == "deepfusion"
    assert fusions.get("enhanced_conv").plugin == "pantiny"
    assert {"conv", "channel_attention", "large_conv"} <= set(refines.names())


@pytest.mark.parametrize(("name", "dim", "expected"), FUSIONS)
def test_fusion_parameter_count(name, dim, expected):
    assert count_parameters(panfw.create_fusion(name, dim)) == expected


@pytest.mark.parametrize(("name", "expected"), REFINES)
def test_refine_parameter_count(name, expected):
    assert count_parameters(panfw.create("refines", name, 28)) == expected


@pytest.mark.parametrize("name", OURS)
def test_fusion_contract_and_pan_resize(name):
    block = panfw.create_fusion(name, 8)
    feat = torch.randn(2, 8, 6, 10)
    assert block(feat, torch.rand(2, 1, 6, 10)).shape == feat.shape
    # a PAN on another grid is resized bilinearly onto the features
    assert block(feat, torch.rand(2, 1, 12, 20)).shape == feat.shape


@pytest.mark.parametrize("name", OURS)
def test_fusion_uses_the_pan(name):
    torch.manual_seed(0)
    block = panfw.create_fusion(name, 8).eval()
    feat = torch.randn(1, 8, 6, 6)
    with torch.no_grad():
        assert not torch.allclose(block(feat, torch.rand(1, 1, 6, 6)), block(feat, torch.rand(1, 1, 6, 6)))


@pytest.mark.parametrize("name", ["enhanced_conv", "deepfusion"])
def test_fusion_accepts_multi_channel_pan(name):
    block = panfw.create_fusion(name, 8, pan_channels=3)
    assert block(torch.randn(1, 8, 6, 6), torch.rand(1, 3, 6, 6)).shape == (1, 8, 6, 6)


@pytest.mark.parametrize(("name", "_"), REFINES)
def test_refine_contract(name, _):
    x = torch.randn(2, 28, 5, 9)
    assert panfw.create("refines", name, 28)(x).shape == x.shape


def test_resize_to_is_identity_at_equal_size_and_bilinear_otherwise():
    pan, feat = torch.rand(1, 1, 8, 6), torch.zeros(1, 4, 8, 6)
    assert resize_to(pan, feat) is pan
    small = torch.zeros(1, 4, 4, 3)
    expected = nn.functional.interpolate(pan, size=(4, 3), mode="bilinear", align_corners=False)
    torch.testing.assert_close(resize_to(pan, small), expected)


def test_deepfusion_layers_option():
    one = count_parameters(panfw.create_fusion("deepfusion", 28, layers=1))
    assert one == 9_242 and count_parameters(panfw.create_fusion("deepfusion", 28)) == 5 * one


@pytest.mark.parametrize("name", OURS)
def test_fusion_exports_with_dynamic_height_and_width(name):
    block = panfw.create_fusion(name, 8).eval()
    h, w = Dim("H", min=4, max=4096), Dim("W", min=4, max=4096)
    program = export(block, (torch.rand(1, 8, 6, 10), torch.rand(1, 1, 6, 10)),
                     dynamic_shapes={"feat": {2: h, 3: w}, "pan": {2: h, 3: w}})
    x = (torch.rand(1, 8, 12, 5), torch.rand(1, 1, 12, 5))
    with torch.no_grad():
        torch.testing.assert_close(program.module()(*x), block(*x))
