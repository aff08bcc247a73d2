"""PanTiny models: exact parameter counts, shapes for any band count and H x W, gradients, export."""

from __future__ import annotations

import types

import pytest
import torch
from torch import nn
from torch.export import Dim, export

import panfw
from panfw.describe import describe
from panfw.errors import RegistryError
from panfw.evaluation.cost import count_params as count_parameters
from panfw.layers import ChannelAttention, TransformerBlock, channel_attention

# (model, options, parameters at 4 bands): the reference code's counts
PARAMS = [
    ("pantiny_small", {}, 48_269),
    ("pantiny_big", {}, 81_744),
    ("pantiny_large", {}, 172_352),
    ("pantiny_huge", {}, 195_912),
    ("pantiny_big", {"fusion": "conv1x1"}, 68_192),
    ("pantiny_big", {"fusion": "channel_attention"}, 71_358),
    ("pantiny_big", {"fusion": "gated_conv"}, 70_292),
    ("pantiny_big", {"fusion": "deepfusion"}, 113_590),
    ("pantiny_big", {"refine": "channel_attention"}, 96_367),
    ("pantiny_big", {"refine": "large_conv"}, 88_800),
    ("pantiny_small", {"fusion": "conv1x1"}, 47_988),
]
IDS = [f"{m}-{'-'.join(o.values()) or 'default'}" for m, o, _ in PARAMS]
MODELS = ["pantiny_small", "pantiny_big", "pantiny_large", "pantiny_huge"]


def _inputs(bands: int = 4, h: int = 8, w: int = 8, batch: int = 2, ratio: int = 4):
    g = torch.Generator().manual_seed(0)
    return (torch.rand(batch, bands, h, w, generator=g), torch.rand(batch, 1, h, w, generator=g),
            torch.rand(batch, bands, h // ratio, w // ratio, generator=g))


@pytest.mark.parametrize(("name", "options", "expected"), PARAMS, ids=IDS)
def test_parameter_count_is_exact(name, options, expected):
    assert count_parameters(panfw.create_model(name, **options)) == expected


def test_big_parameters_per_stage():
    m = panfw.create_model("pantiny_big")
    per_stage = {n: count_parameters(c) for n, c in m.named_children()}
    assert per_stage == {"patch_embed": 1_008, "encoder": 29_154, "fusion": 14_364, "body": 29_154,
                         "refine": 7_056, "output": 1_008}


@pytest.mark.parametrize(("dim", "heads", "factor", "expected"),
                         [(28, 2, 2.0, 9_718), (40, 4, 2.0, 18_684), (32, 2, 2.66, 14_780)])
def test_transformer_block_parameters(dim, heads, factor, expected):
    assert count_parameters(TransformerBlock(dim, heads, factor)) == expected


def test_every_convolution_is_bias_free_in_big():
    convs = [m for m in panfw.create_model("pantiny_big").modules() if isinstance(m, nn.Conv2d)]
    assert convs and all(c.bias is None for c in convs)


@pytest.mark.parametrize("name", MODELS)
@pytest.mark.parametrize(("bands", "h", "w"), [(4, 8, 8), (8, 8, 12), (4, 12, 4)])
def test_forward_shapes(name, bands, h, w):
    model = panfw.create_model(name, bands=bands).eval()
    lms, pan, ms = _inputs(bands, h, w)
    with torch.no_grad():
        out = model(lms, pan, ms)
    assert out.shape == lms.shape and out.dtype == torch.float32
    assert torch.isfinite(out).all()


@pytest.mark.parametrize("name", MODELS)
def test_eight_bands_changes_only_the_band_convolutions(name):
    four, eight = (count_parameters(panfw.create_model(name, bands=b)) for b in (4, 8))
    # patch_embed (+1 PAN channel for Small) and output: 9 x dim per extra band each
    dim = {"pantiny_small": 32, "pantiny_big": 28}.get(name, 40)
    assert eight - four == 2 * 4 * 9 * dim


def test_ms_is_not_used():
    model = panfw.create_model("pantiny_big").eval()
    lms, pan, ms = _inputs()
    with torch.no_grad():
        assert torch.equal(model(lms, pan, ms), model(lms, pan, None))
        assert torch.equal(model(lms, pan, ms), model(lms, pan, torch.zeros_like(ms)))


@pytest.mark.parametrize(("name", "options"), [(m, o) for m, o, _ in PARAMS], ids=IDS)
def test_gradients_reach_every_parameter(name, options):
    torch.manual_seed(0)
    model = panfw.create_model(name, **options)
    lms, pan, ms = _inputs(h=8, w=8, batch=1)
    (model(lms, pan, ms) - lms).square().mean().backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    assert not missing


def test_global_residual_with_zero_output_conv():
    model = panfw.create_model("pantiny_big").eval()
    nn.init.zeros_(model.output.weight)
    lms, pan, ms = _inputs()
    with torch.no_grad():
        assert torch.equal(model(lms, pan, ms), lms)


def test_layer_norm_matches_the_restormer_formula():
    block = TransformerBlock(8, 2, 2.0)
    nn.init.normal_(block.norm1.weight)
    nn.init.normal_(block.norm1.bias)
    x = torch.randn(2, 8, 5, 7)
    mu = x.mean(1, keepdim=True)
    var = x.var(1, keepdim=True, unbiased=False)
    ref = (x - mu) / torch.sqrt(var + 1e-5) * block.norm1.weight.view(1, -1, 1, 1) + block.norm1.bias.view(1, -1, 1, 1)
    torch.testing.assert_close(block.norm1(x), ref)


def test_channel_attention_matches_a_direct_computation():
    torch.manual_seed(0)
    attn = ChannelAttention(8, heads=2)
    nn.init.uniform_(attn.temperature, 0.5, 2.0)
    x = torch.randn(2, 8, 5, 6)
    q, k, v = attn.qkv_dwconv(attn.qkv(x)).chunk(3, dim=1)
    outs = []
    for h in range(2):  # one head at a time, plain loops over the formula
        sl = slice(4 * h, 4 * h + 4)
        qh, kh, vh = (t[:, sl].reshape(2, 4, -1) for t in (q, k, v))
        qh = qh / qh.norm(dim=-1, keepdim=True)
        kh = kh / kh.norm(dim=-1, keepdim=True)
        a = torch.softmax(qh @ kh.transpose(1, 2) * attn.temperature[h], dim=-1)
        outs.append((a @ vh).reshape(2, 4, 5, 6))
    torch.testing.assert_close(attn(x), attn.project_out(torch.cat(outs, 1)))
    torch.testing.assert_close(channel_attention(q, k, v, 2, attn.temperature), torch.cat(outs, 1))


def test_unknown_fusion_or_refine_name_is_a_user_error():
    with pytest.raises(RegistryError, match="enhanced_conv"):
        panfw.create_model("pantiny_big", fusion="enhanced_cnv")
    with pytest.raises(RegistryError, match="refine block 'lage_conv'"):
        panfw.create_model("pantiny_big", refine="lage_conv")
    with pytest.raises(RegistryError, match="no option 'width'"):
        panfw.create_model("pantiny_big", fusion="conv1x1", fusion_options={"width": 3})


def test_fusion_and_refine_options_are_passed():
    model = panfw.create_model("pantiny_big", fusion="channel_attention", fusion_options={"heads": 4},
                               refine="channel_attention", refine_options={"reduction": 2})
    assert model.fusion.body.heads == 4
    assert model.refine.gate[1].out_channels == 14


def test_a_third_party_fusion_block_plugs_in(plugin_registered):
    class AddPan(nn.Module):
        def __init__(self, dim: int, pan_channels: int = 1, scale: float = 1.0) -> None:
            super().__init__()
            self.proj = nn.Conv2d(pan_channels, dim, 1)
            self.scale = scale

        def forward(self, feat, pan):
            return feat + self.scale * self.proj(pan)

    plugin = types.SimpleNamespace()

    @panfw.hookimpl
    def register_fusions(register):
        register("add_pan_test", AddPan)

    plugin.register_fusions = register_fusions
    plugin_registered(plugin, "third_party_fusion_test")
    model = panfw.create_model("pantiny_big", fusion="add_pan_test", fusion_options={"scale": 0.5})
    assert isinstance(model.fusion, AddPan) and model.fusion.scale == 0.5
    assert count_parameters(model) == 81_744 - 14_364 + 2 * 28
    lms, pan, ms = _inputs()
    assert model(lms, pan, ms).shape == lms.shape


def test_show_model_prints_parameters_and_measured_flops():
    text = describe("model", "pantiny_big", size=64)
    assert "parameters: 81,744 trainable (at 4 bands)" in text
    assert "FLOPs: 0.703 G measured at PAN 64x64" in text
    assert "paper proxy 2 x params x 128^2 = 2.679 G" in text


def _export_and_check(model: nn.Module, bands: int = 4) -> None:
    """Export with dynamic H and W, then run the program at another, non-square size."""
    model = model.eval()
    h, w = Dim("H", min=8, max=4096), Dim("W", min=8, max=4096)
    program = export(model, _inputs(bands, 16, 20, batch=1),
                     dynamic_shapes={"lms": {2: h, 3: w}, "pan": {2: h, 3: w},
                                     "ms": {2: Dim("h"), 3: Dim("w")}})
    x = _inputs(bands, 24, 12, batch=1)
    with torch.no_grad():
        torch.testing.assert_close(program.module()(*x), model(*x))


@pytest.mark.parametrize("name", ["pantiny_big", "pantiny_small"])
def test_export_with_dynamic_height_and_width(name):
    _export_and_check(panfw.create_model(name))


@pytest.mark.slow
def test_export_eight_bands():
    _export_and_check(panfw.create_model("pantiny_big", bands=8), bands=8)


@pytest.mark.slow
@pytest.mark.parametrize(("name", "options"),
                         [(m, o) for m, o, _ in PARAMS if o or m not in ("pantiny_big", "pantiny_small")],
                         ids=[i for (m, o, _), i in zip(PARAMS, IDS) if o or m not in ("pantiny_big", "pantiny_small")])
def test_export_every_variant(name, options):
    _export_and_check(panfw.create_model(name, **options))
