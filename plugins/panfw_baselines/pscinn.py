"""PSCINN (Wang et al., 2024), the public ``psinn.py`` network (3,321,248 params at 4 bands, of which 320 are
the frozen Haar kernels): an invertible network between the HRMS (C x H x W) and a 16C x H/4 x W/4
tensor.

Eleven invertible operations: 3 InvBlockExp on C channels, Haar downsampling (C -> 4C, H/2), 3
InvBlockExp on 4C, Haar (4C -> 16C, H/4), 3 InvBlockExp on 16C. Each InvBlockExp splits its input in
halves x1, x2 and, with the PAN at that stage's resolution (bicubic) as one more channel c:
v1 = x1·exp(s1) + t1 with s1, t1 from [x2, c]; v2 = x2·exp(s2) + t2 with s2, t2 from [v1, c];
s = 2σ(·) − 1 (clamp 1), an exact inverse. Its four subnets are dense 5-conv blocks (growth 32, each
conv sees all earlier features, LeakyReLU 0.2, the last conv linear; Xavier-normal x 0.1 on the first
four). The reference fixes 4 bands by testing the channel count (4/16/64); here the split follows any
``bands`` >= 2 and the PAN scale follows the stage.

**Inference and training are panfw's (not published):** the reference code has neither. Following the
invertible-rescaling pattern (IRN) the architecture comes from, the first C channels of the forward
output are the LR-MS slot and the other 15C a latent z: ``forward`` decodes ``[ms, z]`` with z = 0
(``z_mode="zeros"``, deterministic) or z ~ N(0, temperature²) from a seeded generator
(``z_mode="gaussian"``). ``objective``: the recipe loss between the decoded ``[ms, z]`` and the GT,
plus ``lr_weight`` x MSE between the encoded GT's LR slot and ``ms``, plus ``latent_weight`` x 0.5·mean(z²)
(the latent prior). The PanTiny paper reports the model diverging in all-in-one training: clip the
gradients and lower the learning rate (see recipes/baselines/pscinn.toml). It needs the PAN grid to be
4 x the MS grid (two Haar levels).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from panfw.errors import DataError, UserError

PAPER = "Wang et al., PSCINN: pan-sharpening with an invertible neural network (2024)"
CODE = "github.com/jiaming-wang/PSCINN psinn.py (also PanTiny's model/PSCINN.py)"


class DenseBlock(nn.Module):
    """Five 3x3 convs, each on [input, all earlier outputs]; LeakyReLU 0.2 except after the last."""

    def __init__(self, cin: int, cout: int, growth: int = 32) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, growth, 3, padding=1)
        self.conv2 = nn.Conv2d(cin + growth, growth, 3, padding=1)
        self.conv3 = nn.Conv2d(cin + 2 * growth, growth, 3, padding=1)
        self.conv4 = nn.Conv2d(cin + 3 * growth, growth, 3, padding=1)
        self.conv5 = nn.Conv2d(cin + 4 * growth, cout, 3, padding=1)
        for conv in (self.conv1, self.conv2, self.conv3, self.conv4):
            nn.init.xavier_normal_(conv.weight)
            with torch.no_grad():
                conv.weight.mul_(0.1)
            nn.init.zeros_(conv.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feats = [x]
        for conv in (self.conv1, self.conv2, self.conv3, self.conv4):
            feats.append(F.leaky_relu(conv(torch.cat(feats, 1)), 0.2))
        return self.conv5(torch.cat(feats, 1))


class InvBlockExp(nn.Module):
    """Affine coupling of two channel groups with bounded log-scales 2σ(·) − 1, conditioned on the PAN."""

    def __init__(self, channels: int, split: int, clamp: float = 1.0) -> None:
        super().__init__()
        self.split1, self.split2 = split, channels - split
        self.clamp = clamp
        self.Fs1 = DenseBlock(self.split2 + 1, self.split1)
        self.Ft1 = DenseBlock(self.split2 + 1, self.split1)
        self.Fs2 = DenseBlock(self.split1 + 1, self.split2)
        self.Ft2 = DenseBlock(self.split1 + 1, self.split2)

    def scale(self, net: nn.Module, x: torch.Tensor) -> torch.Tensor:
        return self.clamp * (torch.sigmoid(net(x)) * 2 - 1)

    def forward(self, x: torch.Tensor, c: torch.Tensor, rev: bool = False) -> torch.Tensor:
        x1, x2 = x[:, :self.split1], x[:, self.split1:]
        if not rev:
            h = torch.cat([x2, c], 1)
            v1 = x1 * torch.exp(self.scale(self.Fs1, h)) + self.Ft1(h)
            h = torch.cat([v1, c], 1)
            v2 = x2 * torch.exp(self.scale(self.Fs2, h)) + self.Ft2(h)
        else:
            h = torch.cat([x1, c], 1)
            v2 = (x2 - self.Ft2(h)) * torch.exp(-self.scale(self.Fs2, h))
            h = torch.cat([v2, c], 1)
            v1 = (x1 - self.Ft1(h)) * torch.exp(-self.scale(self.Fs1, h))
        return torch.cat([v1, v2], 1)


class HaarDownsampling(nn.Module):
    """Orthogonal-up-to-scale 2x2 Haar transform: C x H x W <-> 4C x H/2 x W/2, sub-band-major channels.

    The kernels are a frozen Parameter, as in the reference (counted, never trained)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.channels = channels
        w = torch.ones(4, 1, 2, 2)
        w[1, 0, 0, 1] = w[1, 0, 1, 1] = -1
        w[2, 0, 1, 0] = w[2, 0, 1, 1] = -1
        w[3, 0, 1, 0] = w[3, 0, 0, 1] = -1
        self.haar_weights = nn.Parameter(torch.cat([w] * channels, 0), requires_grad=False)

    def forward(self, x: torch.Tensor, c: torch.Tensor | None = None, rev: bool = False) -> torch.Tensor:
        n = self.channels
        if not rev:
            out = F.conv2d(x, self.haar_weights, stride=2, groups=n) / 4.0
            return out.unflatten(1, (n, 4)).transpose(1, 2).flatten(1, 2)
        out = x.unflatten(1, (4, n)).transpose(1, 2).flatten(1, 2)
        return F.conv_transpose2d(out, self.haar_weights, stride=2, groups=n)


class PSCINN(nn.Module):
    """Invertible HRMS <-> [LR slot, latent]: three stages of 3 couplings, Haar between stages."""

    def __init__(self, bands: int = 4, blocks: int = 3, z_mode: str = "zeros", temperature: float = 1.0,
                 seed: int = 0, lr_weight: float = 1.0, latent_weight: float = 1.0) -> None:
        super().__init__()
        if bands < 2:
            raise UserError(f"pscinn: bands={bands}; the couplings split the bands in two, so at least 2")
        if z_mode not in ("zeros", "gaussian"):
            raise UserError(f"pscinn: z_mode={z_mode!r} is not accepted; use 'zeros' or 'gaussian'")
        self.bands, self.z_mode, self.temperature, self.seed = bands, z_mode, temperature, seed
        self.lr_weight, self.latent_weight = lr_weight, latent_weight
        ops: list[nn.Module] = []
        ch = bands
        for stage in range(3):
            if stage:
                ops.append(HaarDownsampling(ch))
                ch *= 4
            ops.extend(InvBlockExp(ch, ch // 2) for _ in range(blocks))
        self.operations = nn.ModuleList(ops)
        self.stage = []  # which PAN scale each operation takes
        s = 0
        for op in ops:
            s += isinstance(op, HaarDownsampling)
            self.stage.append(s)

    def pan_pyramid(self, pan: torch.Tensor) -> list[torch.Tensor]:
        """The PAN at full, 1/2 and 1/4 resolution (bicubic, no antialiasing, as the reference)."""
        h, w = pan.shape[-2:]
        return [pan] + [F.interpolate(pan, size=(h // f, w // f), mode="bicubic", align_corners=False)
                        for f in (2, 4)]

    def encode(self, x: torch.Tensor, pan: torch.Tensor) -> torch.Tensor:
        """HRMS (B, C, H, W) -> (B, 16C, H/4, W/4); the first C channels are the LR-MS slot."""
        pans = self.pan_pyramid(pan)
        for op, s in zip(self.operations, self.stage):
            x = op(x, pans[s])
        return x

    def decode(self, y: torch.Tensor, pan: torch.Tensor) -> torch.Tensor:
        """The exact inverse of ``encode``."""
        pans = self.pan_pyramid(pan)
        for op, s in zip(reversed(self.operations), reversed(self.stage)):
            y = op(y, pans[s], rev=True)
        return y

    def _check(self, pan: torch.Tensor, ms: torch.Tensor | None) -> torch.Tensor:
        if ms is None:
            raise UserError("pscinn decodes from the LR MS: pass ms as well as lms and pan")
        if pan.shape[-2] != 4 * ms.shape[-2] or pan.shape[-1] != 4 * ms.shape[-1]:
            raise UserError(f"pscinn needs the PAN grid to be 4 x the MS grid (two Haar levels); got PAN "
                            f"{tuple(pan.shape[-2:])} for MS {tuple(ms.shape[-2:])}")
        return ms

    def latent(self, ms: torch.Tensor, gen: torch.Generator | None = None) -> torch.Tensor:
        shape = (ms.shape[0], 15 * self.bands, *ms.shape[-2:])
        if self.z_mode == "zeros":
            return ms.new_zeros(shape)
        z = torch.randn(shape, generator=gen, device=ms.device, dtype=ms.dtype)
        return self.temperature * z

    def forward(self, lms: torch.Tensor, pan: torch.Tensor, ms: torch.Tensor | None = None) -> torch.Tensor:
        ms = self._check(pan, ms)
        gen = None
        if self.z_mode == "gaussian":
            gen = torch.Generator(device=ms.device)
            gen.manual_seed(self.seed)
        return self.decode(torch.cat([ms, self.latent(ms, gen)], 1), pan)

    def objective(self, batch: dict[str, torch.Tensor], loss=None) -> torch.Tensor:
        """loss(decode([ms, z]), gt) + lr_weight·MSE(LR slot, ms) + latent_weight·0.5·mean(z²)."""
        gt, pan = batch.get("gt"), batch["pan"]
        if gt is None:
            raise DataError("pscinn trains on the reference image, but the batch has no 'gt'; train on a "
                            "reduced-resolution split")
        ms = self._check(pan, batch.get("ms"))
        y = self.encode(gt, pan)
        lr_fit = F.mse_loss(y[:, :self.bands], ms)
        prior = 0.5 * y[:, self.bands:].pow(2).mean()
        pred = self.decode(torch.cat([ms, self.latent(ms)], 1), pan)
        rec = F.l1_loss(pred, gt) if loss is None else loss(pred, batch)
        return rec + self.lr_weight * lr_fit + self.latent_weight * prior


def pscinn(bands: int = 4, z_mode: str = "zeros", temperature: float = 1.0, seed: int = 0,
           lr_weight: float = 1.0, latent_weight: float = 1.0) -> nn.Module:
    """PSCINN: invertible couplings with Haar downsampling, PAN-conditioned, 3,321.2K params."""
    return PSCINN(bands, blocks=3, z_mode=z_mode, temperature=temperature, seed=seed, lr_weight=lr_weight,
                  latent_weight=latent_weight)


MODELS = {"pscinn": (pscinn, {"fixed_bands": None, "exportable": True, "family": "pscinn", "paper": PAPER,
                              "code": CODE, "reference_params": 3_321_248})}
