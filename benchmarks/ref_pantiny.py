"""Reference-style PanTiny Small and Big, for timing only.

Written in the released code's block style (Restormer's ``restormer_arch.py``, which PanTiny
inherits): LayerNorm by rearranging (B, C, H, W) -> (B, HW, C), normalising the last dimension with
an explicit mean/variance, and rearranging back (two full copies per norm); attention and the gated
feed-forward as plain ``nn.Conv2d`` calls in NCHW. ``einops.rearrange`` is spelt as the equivalent
``reshape``/``permute`` (same copies) so the benchmark needs no extra package.

It loads a panfw state_dict (``load_panfw``: the key map is in ``_map_key``), so a benchmark can
check that both give the same output before it compares their speed. Not registered, not
exported: panfw's own models are the implementation; this file is the yardstick.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def to_3d(x: torch.Tensor) -> torch.Tensor:
    """rearrange(x, 'b c h w -> b (h w) c')."""
    b, c, h, w = x.shape
    return x.reshape(b, c, h * w).permute(0, 2, 1).contiguous()


def to_4d(x: torch.Tensor, h: int, w: int) -> torch.Tensor:
    """rearrange(x, 'b (h w) c -> b c h w')."""
    b, _, c = x.shape
    return x.permute(0, 2, 1).contiguous().reshape(b, c, h, w)


class WithBiasLayerNorm(nn.Module):
    """Restormer's WithBias_LayerNorm over the last dimension (biased variance, eps 1e-5)."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))
        self.bias = nn.Parameter(torch.zeros(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mu = x.mean(-1, keepdim=True)
        sigma = x.var(-1, keepdim=True, unbiased=False)
        return (x - mu) / torch.sqrt(sigma + 1e-5) * self.weight + self.bias


class LayerNorm(nn.Module):
    """to_3d -> LayerNorm over channels -> to_4d, as the released code."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.body = WithBiasLayerNorm(dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        return to_4d(self.body(to_3d(x)), h, w)


class FeedForward(nn.Module):
    def __init__(self, dim: int, ffn_factor: float) -> None:
        super().__init__()
        hidden = int(dim * ffn_factor)
        self.project_in = nn.Conv2d(dim, hidden * 2, 1, bias=False)
        self.dwconv = nn.Conv2d(hidden * 2, hidden * 2, 3, padding=1, groups=hidden * 2, bias=False)
        self.project_out = nn.Conv2d(hidden, dim, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.project_in(x)
        x1, x2 = self.dwconv(x).chunk(2, dim=1)
        x = F.gelu(x1) * x2
        return self.project_out(x)


class Attention(nn.Module):
    def __init__(self, dim: int, num_heads: int) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.temperature = nn.Parameter(torch.ones(num_heads, 1, 1))
        self.qkv = nn.Conv2d(dim, dim * 3, 1, bias=False)
        self.qkv_dwconv = nn.Conv2d(dim * 3, dim * 3, 3, padding=1, groups=dim * 3, bias=False)
        self.project_out = nn.Conv2d(dim, dim, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        qkv = self.qkv_dwconv(self.qkv(x))
        q, k, v = qkv.chunk(3, dim=1)
        # rearrange 'b (head c) h w -> b head c (h w)'
        q = q.reshape(b, self.num_heads, c // self.num_heads, h * w)
        k = k.reshape(b, self.num_heads, c // self.num_heads, h * w)
        v = v.reshape(b, self.num_heads, c // self.num_heads, h * w)
        q = F.normalize(q, dim=-1)
        k = F.normalize(k, dim=-1)
        attn = (q @ k.transpose(-2, -1)) * self.temperature
        attn = attn.softmax(dim=-1)
        out = attn @ v
        out = out.reshape(b, c, h, w)
        return self.project_out(out)


class TransformerBlock(nn.Module):
    def __init__(self, dim: int, num_heads: int, ffn_factor: float) -> None:
        super().__init__()
        self.norm1 = LayerNorm(dim)
        self.attn = Attention(dim, num_heads)
        self.norm2 = LayerNorm(dim)
        self.ffn = FeedForward(dim, ffn_factor)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.ffn(self.norm2(x))


class AttentionFusion(nn.Module):
    """Small's fusion: gate from [f, PAN], 1x1 projection blended with the features."""

    def __init__(self, dim: int, hidden: int = 8) -> None:
        super().__init__()
        self.gate_conv1 = nn.Conv2d(dim + 1, hidden, 1)
        self.gate_conv2 = nn.Conv2d(hidden, 1, 1)
        self.proj = nn.Conv2d(dim + 1, dim, 1, bias=False)

    def forward(self, feat: torch.Tensor, pan: torch.Tensor) -> torch.Tensor:
        if pan.shape[-2:] != feat.shape[-2:]:
            pan = F.interpolate(pan, size=feat.shape[-2:], mode="bilinear", align_corners=False)
        x = torch.cat([feat, pan], dim=1)
        w = torch.sigmoid(self.gate_conv2(F.relu(self.gate_conv1(x))))
        return self.proj(x) * w + feat * (1 - w)


class EnhancedConvFusion(nn.Module):
    def __init__(self, dim: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(dim + 1, dim, 3, padding=1, bias=False)
        self.conv2 = nn.Conv2d(dim, dim, 3, padding=1, bias=False)

    def forward(self, feat: torch.Tensor, pan: torch.Tensor) -> torch.Tensor:
        if pan.shape[-2:] != feat.shape[-2:]:
            pan = F.interpolate(pan, size=feat.shape[-2:], mode="bilinear", align_corners=False)
        return self.conv2(F.relu(self.conv1(torch.cat([feat, pan], dim=1))))


class RefPanRestormer(nn.Module):
    """PanTiny Small (panrestormer DS0), reference style."""

    def __init__(self, bands: int = 4, dim: int = 32, heads: int = 2, depth: int = 3,
                 ffn_factor: float = 2.66) -> None:
        super().__init__()
        self.patch_embed = nn.Conv2d(bands + 1, dim, 3, padding=1, bias=False)
        self.latent = nn.Sequential(*[TransformerBlock(dim, heads, ffn_factor) for _ in range(depth - 1)])
        self.refinement = TransformerBlock(dim, heads, ffn_factor)
        self.fusion = AttentionFusion(dim)
        self.output = nn.Conv2d(dim, bands, 3, padding=1, bias=False)

    def forward(self, lms: torch.Tensor, pan: torch.Tensor, ms: torch.Tensor | None = None) -> torch.Tensor:
        x = self.refinement(self.latent(self.patch_embed(torch.cat([lms, pan], dim=1))))
        return self.output(self.fusion(x, pan)) + lms


class RefPanTiny(nn.Module):
    """PanTiny Big (normal, enhanced_conv, simple refine), reference style."""

    def __init__(self, bands: int = 4, dim: int = 28, heads: int = 2, depths: tuple[int, int] = (3, 3),
                 ffn_factor: float = 2.0) -> None:
        super().__init__()
        self.patch_embed = nn.Conv2d(bands, dim, 3, padding=1, bias=False)
        self.encoder = nn.Sequential(*[TransformerBlock(dim, heads, ffn_factor) for _ in range(depths[0])])
        self.fusion = EnhancedConvFusion(dim)
        self.refinement = nn.Sequential(*[TransformerBlock(dim, heads, ffn_factor) for _ in range(depths[1])])
        self.advanced_refine = nn.Conv2d(dim, dim, 3, padding=1, bias=False)
        self.output = nn.Conv2d(dim, bands, 3, padding=1, bias=False)

    def forward(self, lms: torch.Tensor, pan: torch.Tensor, ms: torch.Tensor | None = None) -> torch.Tensor:
        x = self.encoder(self.patch_embed(lms))
        x = self.refinement(self.fusion(x, pan))
        return self.output(self.advanced_refine(x)) + lms


REF_MODELS = {"pantiny_small": RefPanRestormer, "pantiny_big": RefPanTiny}


def _map_key(name: str, key: str) -> str:
    """panfw state_dict key -> this file's key."""
    for norm in ("norm1", "norm2"):
        key = key.replace(f".{norm}.", f".{norm}.body.")
    if name == "pantiny_small":
        if key.startswith("body."):
            i, rest = key[len("body."):].split(".", 1)
            key = f"latent.{i}.{rest}" if int(i) < 2 else f"refinement.{rest}"
        key = key.replace("fusion.gate.0.", "fusion.gate_conv1.").replace("fusion.gate.2.", "fusion.gate_conv2.")
    else:
        key = key.replace("fusion.body.0.", "fusion.conv1.").replace("fusion.body.2.", "fusion.conv2.")
        if key.startswith("body."):
            key = "refinement." + key[len("body."):]
        if key.startswith("refine."):
            key = "advanced_refine." + key[len("refine."):]
    return key


def load_panfw(name: str, state_dict: dict[str, torch.Tensor]) -> nn.Module:
    """The reference-style model of ``name`` carrying a panfw model's weights (strict key match)."""
    model = REF_MODELS[name]()
    model.load_state_dict({_map_key(name, k): v for k, v in state_dict.items()}, strict=True)
    return model


def _gaussian(window_size: int, sigma: float) -> torch.Tensor:
    x = torch.arange(window_size, dtype=torch.float32) - window_size // 2
    g = torch.exp(-(x**2) / (2 * sigma**2))
    return g / g.sum()


class RefSSIMLoss(nn.Module):
    """1 - SSIM as the released training code (pytorch-ssim): a 2-D 11x11 Gaussian window applied as
    five depth-wise ``conv2d`` calls with zero padding 5, C1 = 0.01^2, C2 = 0.03^2, mean over all."""

    def __init__(self, channels: int = 4, window_size: int = 11, sigma: float = 1.5) -> None:
        super().__init__()
        g = _gaussian(window_size, sigma)
        window = (g[:, None] @ g[None, :]).expand(channels, 1, window_size, window_size).contiguous()
        self.register_buffer("window", window)
        self.pad, self.channels = window_size // 2, channels

    def forward(self, img1: torch.Tensor, img2: torch.Tensor) -> torch.Tensor:
        w, p, c = self.window, self.pad, self.channels
        mu1 = F.conv2d(img1, w, padding=p, groups=c)
        mu2 = F.conv2d(img2, w, padding=p, groups=c)
        mu1_sq, mu2_sq, mu1_mu2 = mu1.pow(2), mu2.pow(2), mu1 * mu2
        sigma1_sq = F.conv2d(img1 * img1, w, padding=p, groups=c) - mu1_sq
        sigma2_sq = F.conv2d(img2 * img2, w, padding=p, groups=c) - mu2_sq
        sigma12 = F.conv2d(img1 * img2, w, padding=p, groups=c) - mu1_mu2
        c1, c2 = 0.01**2, 0.03**2
        ssim_map = ((2 * mu1_mu2 + c1) * (2 * sigma12 + c2)) / ((mu1_sq + mu2_sq + c1) * (sigma1_sq + sigma2_sq + c2))
        return 1 - ssim_map.mean()


class RefLoss(nn.Module):
    """The released objective, 3 L1 + 4 (1 - SSIM), in the reference style."""

    def __init__(self, channels: int = 4) -> None:
        super().__init__()
        self.ssim = RefSSIMLoss(channels)

    def forward(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return 3 * F.l1_loss(pred, target) + 4 * self.ssim(pred, target)
