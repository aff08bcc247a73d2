"""PanTiny (Zhang, He et al., "Rethinking Pan-sharpening: A New Training Process for Full-Resolution
Generalization"): a Restormer-style transformer with one PAN fusion stage.

The building blocks are ``panfw.layers``; here come the fusion and refine blocks (registered by name,
so a model takes any of them, a third-party one included), then the two model classes and one short
factory per variant with its registration metadata. Parameter counts at 4 bands: Small 48,269,
Big 81,744, Large 172,352, Huge 195,912 (the reference code's counts, exactly).

Every convolution is bias-free except Small's gate and the ``channel_attention`` refine head, as in
the reference code.
"""

from __future__ import annotations

import torch
from torch import nn

import panfw
from panfw.layers import (
    ChannelAttention,
    GatedFeedForward,
    SqueezeExcite,
    TransformerBlock,
    conv1x1,
    conv3x3,
    cpu,
    resize_to,
)

PAPER = ("R. Zhang, X. He et al., \"Rethinking Pan-sharpening: A New Training Process for "
         "Full-Resolution Generalization\"")
CODE = "https://github.com/Zirconium233/PanTiny"


# ---------------------------------------------------------------------------------------------------
# fusion blocks: factory(dim, pan_channels=1, **options), forward(feat, pan) -> feat


class ConcatFusion(nn.Module):
    """PAN resized onto the features, concatenated as extra channels, mapped back to ``dim`` by ``body``."""

    def __init__(self, body: nn.Module) -> None:
        super().__init__()
        self.body = body

    def forward(self, feat: torch.Tensor, pan: torch.Tensor) -> torch.Tensor:
        return self.body(torch.cat([feat, resize_to(pan, feat)], dim=1))


class AttentionGateFusion(nn.Module):
    """Small's fusion: out = 1x1([f, PAN]) * w + f * (1 - w), w = sigmoid(1x1(ReLU(1x1([f, PAN]))))."""

    def __init__(self, dim: int, pan_channels: int = 1, hidden: int = 8) -> None:
        super().__init__()
        cin = dim + pan_channels
        self.gate = nn.Sequential(conv1x1(cin, hidden, bias=True), nn.ReLU(inplace=True),
                                  conv1x1(hidden, 1, bias=True), nn.Sigmoid())
        self.proj = conv1x1(cin, dim)

    def forward(self, feat: torch.Tensor, pan: torch.Tensor) -> torch.Tensor:
        if cpu.inference(self, feat):  # the same numbers without the concatenation (layers/cpu.py)
            return cpu.gated_fusion(self.gate[0], self.gate[2], self.proj, feat, resize_to(pan, feat))
        x = torch.cat([feat, resize_to(pan, feat)], dim=1)
        w = self.gate(x)
        return self.proj(x) * w + feat * (1 - w)


def enhanced_conv_fusion(dim: int, pan_channels: int = 1) -> nn.Module:
    """Enhanced conv (PanTiny's default): concat PAN, 3x3 conv, ReLU, 3x3 conv."""
    return ConcatFusion(nn.Sequential(conv3x3(dim + pan_channels, dim), nn.ReLU(inplace=True),
                                      conv3x3(dim, dim)))


def conv1x1_fusion(dim: int, pan_channels: int = 1) -> nn.Module:
    """1x1 conv: concat PAN, one 1x1 conv."""
    return ConcatFusion(conv1x1(dim + pan_channels, dim))


def channel_attention_fusion(dim: int, pan_channels: int = 1, heads: int = 2) -> nn.Module:
    """Channel attention (MDTA) over the PAN-concatenated features; no norm, no residual."""
    return ConcatFusion(ChannelAttention(dim, heads, in_dim=dim + pan_channels))


def gated_conv_fusion(dim: int, pan_channels: int = 1) -> nn.Module:
    """Gated conv: concat PAN, 1x1 to 2 x dim, 3x3 depth-wise, GELU gate, 1x1."""
    return ConcatFusion(GatedFeedForward(dim + pan_channels, dim, out_dim=dim))


def attention_gate_fusion(dim: int, pan_channels: int = 1, hidden: int = 8) -> nn.Module:
    """Sigmoid-gated blend of a 1x1 PAN fusion with the input features (PanTiny Small's fusion)."""
    return AttentionGateFusion(dim, pan_channels, hidden)


FUSIONS = {"enhanced_conv": enhanced_conv_fusion, "conv1x1": conv1x1_fusion,
           "channel_attention": channel_attention_fusion, "gated_conv": gated_conv_fusion,
           "attention_gate": attention_gate_fusion}


# ---------------------------------------------------------------------------------------------------
# refine heads: factory(dim, **options), forward(feat) -> feat


class ChannelAttentionRefine(nn.Module):
    """conv_in, then a 3x3-ReLU-3x3 residual branch scaled by a squeeze-excitation gate (biases on)."""

    def __init__(self, dim: int, reduction: int = 4) -> None:
        super().__init__()
        # built in this order (conv_in first) so a seed gives the reference initialisation
        self.conv_in = conv3x3(dim, dim, bias=True)
        self.res = nn.Sequential(conv3x3(dim, dim, bias=True), nn.ReLU(inplace=True),
                                 conv3x3(dim, dim, bias=True))
        self.gate = SqueezeExcite(dim, reduction)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv_in(x)
        return x + self.gate(self.res(x))


def conv_refine(dim: int) -> nn.Module:
    """Conv (PanTiny's default): one 3x3 conv."""
    return conv3x3(dim, dim)


def channel_attention_refine(dim: int, reduction: int = 4) -> nn.Module:
    """Channel attention: 3x3 conv, then a residual 3x3-ReLU-3x3 branch with a squeeze-excitation gate."""
    return ChannelAttentionRefine(dim, reduction)


def large_conv_refine(dim: int) -> nn.Module:
    """Large conv: 3x3 conv, ReLU, 3x3 conv."""
    return nn.Sequential(conv3x3(dim, dim), nn.ReLU(inplace=True), conv3x3(dim, dim))


REFINES = {"conv": conv_refine, "channel_attention": channel_attention_refine,
           "large_conv": large_conv_refine}


# ---------------------------------------------------------------------------------------------------
# models: forward(lms, pan, ms) -> hrms; ms is not used


class PanTiny(nn.Module):
    """patch_embed(lms) -> encoder -> fusion(feat, PAN) -> body -> refine -> output conv, + lms."""

    def __init__(self, bands: int = 4, dim: int = 28, heads: int = 2, depths: tuple[int, int] = (3, 3),
                 ffn_factor: float = 2.0, fusion: str = "enhanced_conv", refine: str = "conv",
                 fusion_options: dict | None = None, refine_options: dict | None = None) -> None:
        super().__init__()
        self.patch_embed = conv3x3(bands, dim)
        self.encoder = nn.Sequential(*[TransformerBlock(dim, heads, ffn_factor) for _ in range(depths[0])])
        self.fusion = panfw.create_fusion(fusion, dim, pan_channels=1, **(fusion_options or {}))
        self.body = nn.Sequential(*[TransformerBlock(dim, heads, ffn_factor) for _ in range(depths[1])])
        self.refine = panfw.create("refines", refine, dim, **(refine_options or {}))
        self.output = conv3x3(dim, bands)

    def forward(self, lms: torch.Tensor, pan: torch.Tensor, ms: torch.Tensor | None = None) -> torch.Tensor:
        x = self.encoder(self.patch_embed(lms))
        x = self.body(self.fusion(x, pan))
        return self.output(self.refine(x)) + lms


class PanRestormer(nn.Module):
    """PanTiny Small: conv([lms, PAN]) -> transformer blocks -> fusion(feat, PAN) -> output conv, + lms."""

    def __init__(self, bands: int = 4, dim: int = 32, heads: int = 2, depth: int = 3,
                 ffn_factor: float = 2.66, fusion: str = "attention_gate",
                 fusion_options: dict | None = None) -> None:
        super().__init__()
        self.patch_embed = conv3x3(bands + 1, dim)
        self.body = nn.Sequential(*[TransformerBlock(dim, heads, ffn_factor) for _ in range(depth)])
        self.fusion = panfw.create_fusion(fusion, dim, pan_channels=1, **(fusion_options or {}))
        self.output = conv3x3(dim, bands)

    def forward(self, lms: torch.Tensor, pan: torch.Tensor, ms: torch.Tensor | None = None) -> torch.Tensor:
        x = self.body(self.patch_embed(torch.cat([lms, pan], dim=1)))
        return self.output(self.fusion(x, pan)) + lms


def pantiny_small(bands: int = 4, fusion: str = "attention_gate",
                  fusion_options: dict | None = None) -> nn.Module:
    """PanTiny Small (PanRestormer): dim 32, 3 blocks, PAN at the input and a gated fusion, 48.3K params."""
    return PanRestormer(bands, dim=32, heads=2, depth=3, ffn_factor=2.66, fusion=fusion,
                        fusion_options=fusion_options)


def pantiny_big(bands: int = 4, fusion: str = "enhanced_conv", refine: str = "conv",
                fusion_options: dict | None = None, refine_options: dict | None = None) -> nn.Module:
    """PanTiny Big (the paper's PanTiny): dim 28, 3+3 blocks, enhanced-conv fusion, 81.7K params."""
    return PanTiny(bands, dim=28, heads=2, depths=(3, 3), ffn_factor=2.0, fusion=fusion, refine=refine,
                   fusion_options=fusion_options, refine_options=refine_options)


def pantiny_large(bands: int = 4, fusion: str = "gated_conv", refine: str = "conv",
                  fusion_options: dict | None = None, refine_options: dict | None = None) -> nn.Module:
    """PanTiny Large body: dim 40, 4 heads, 4+4 blocks, gated-conv fusion, 172.4K params."""
    return PanTiny(bands, dim=40, heads=4, depths=(4, 4), ffn_factor=2.0, fusion=fusion, refine=refine,
                   fusion_options=fusion_options, refine_options=refine_options)


def pantiny_huge(bands: int = 4, fusion: str = "enhanced_conv", refine: str = "conv",
                 fusion_options: dict | None = None, refine_options: dict | None = None) -> nn.Module:
    """PanTiny Huge body: dim 40, 4 heads, 4+4 blocks, enhanced-conv fusion, 195.9K params."""
    return PanTiny(bands, dim=40, heads=4, depths=(4, 4), ffn_factor=2.0, fusion=fusion, refine=refine,
                   fusion_options=fusion_options, refine_options=refine_options)


# name -> (factory, registration metadata); the counts are the reference code's, at 4 bands
_META = {"fixed_bands": None, "exportable": True, "family": "pantiny", "paper": PAPER, "code": CODE}
MODELS = {
    "pantiny_small": (pantiny_small, {**_META, "reference_params": 48_269}),
    "pantiny_big": (pantiny_big, {**_META, "reference_params": 81_744}),
    "pantiny_large": (pantiny_large, {**_META, "reference_params": 172_352}),
    "pantiny_huge": (pantiny_huge, {**_META, "reference_params": 195_912}),
}
