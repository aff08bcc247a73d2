"""Shared building blocks for pan-sharpening models (timm's ``timm/layers`` is the model).

Models, fusion and refine blocks, bundled or third-party, import these instead of copying them."""

from panfw.layers.attention import ChannelAttention, channel_attention
from panfw.layers.blocks import ResBlock, SqueezeExcite, TransformerBlock
from panfw.layers.conv import conv1x1, conv3x3, resize_to
from panfw.layers.mlp import GatedFeedForward
from panfw.layers.norm import HalfInstanceNorm, LayerNorm2d
from panfw.layers.precision import keeps_fp32

__all__ = ["ChannelAttention", "GatedFeedForward", "HalfInstanceNorm", "LayerNorm2d", "ResBlock", "SqueezeExcite",
           "TransformerBlock", "channel_attention", "conv1x1", "conv3x3", "keeps_fp32", "resize_to"]
