"""PanFlow (Yang et al., "PanFlowNet: A Flow-Based Deep Network for Pan-Sharpening", ICCV 2023), the public
``pan_inn9`` network (87,322 params at 4 bands, any number of steps T).

A normalising flow between the HRMS and a Gaussian, conditioned on the bilinearly upsampled LR MS and
the PAN. **One** conditional affine coupling block is applied T times (T = 4) with **shared weights**:
split x into x1 (C//2 bands) and x2; y1 = e(s2)·x1 + t2 with (s2, t2) = S2([x2, cond]); y2 = e(s1)·x2 + t1
with (s1, t1) = S1([y1, cond]); e(s) = exp(5·0.636·atan(s/5)), log-det = the sum of its log. Each
subnet: conv 3x3 -> 64, LeakyReLU 0.2, half instance norm (affine IN on 32 of the 64 channels),
conv 3x3, LeakyReLU, conv 3x3 on [input, features], then channel attention (squeeze 4:1, Kaiming x 0.1).

Training (``objective``): the GT flows forward to z; NLL = mean over the batch of
Σ_T (0.5‖z_k‖² − logdet_k) / (2HW) (on every intermediate output, as the reference); a sample
ε ~ N(μ, σ²) (μ, σ: the upsampled LR MS's mean and std) flows back to a prediction, scored by the
recipe's loss (L1 when there is none). The reference minimises L1_sum/(2B) + NLL; panfw divides that by
C·H·W/2 (the element count over 2), so a mean-reduced recipe loss keeps the reference's balance
between the two terms and the logged loss compares with other models'. The reference's switch to NLL
alone after epoch 1000 (of 1100) is not reproduced.

Inference (``forward``): the reference draws one ε with a CUDA-only call and the whole batch's μ, σ;
panfw draws from a ``torch.Generator`` seeded by ``seed`` on the input's device, with each sample's own
μ, σ (a sample's output does not depend on its batch-mates). ``temperature`` scales σ (0 gives the
noise-free ε = μ, deterministic and exportable); ``num_samples`` > 1 averages that many reverse passes
(a labelled deviation from the one-sample reference, trading diversity for a lower-variance estimate).
The reference hard-codes 4 bands and a 5-channel condition; here both follow ``bands``.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from panfw.errors import DataError, UserError
from panfw.layers import HalfInstanceNorm
from panfw_baselines._common import check_upsample, upsample

PAPER = "Yang, Cao, Xiao, Zhou, Liu, Chen, Meng, PanFlowNet: A Flow-Based Deep Network for Pan-Sharpening, ICCV 2023"
CODE = "github.com/yggame/PanFlowNet pan_inn9.py"


class HinResBlock(nn.Module):
    """conv -> LeakyReLU -> half instance norm -> conv -> LeakyReLU, then conv on [input, features]."""

    def __init__(self, cin: int, cout: int, features: int = 64) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, features, 3, padding=1)
        self.conv2 = nn.Conv2d(features, features, 3, padding=1)
        self.conv3 = nn.Conv2d(features + cin, cout, 3, padding=1)
        self.norm = HalfInstanceNorm(features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        r = F.leaky_relu(self.conv2(self.norm(F.leaky_relu(self.conv1(x), 0.2))), 0.2)
        return self.conv3(torch.cat([x, r], 1))


class CALayer(nn.Module):
    """x * sigmoid(1x1(ReLU(1x1(mean over H, W)))), the squeeze initialised Kaiming x 0.1, zero biases."""

    def __init__(self, dim: int, reduction: int = 4) -> None:
        super().__init__()
        hidden = max(1, dim // reduction)
        self.conv_du = nn.Sequential(nn.Conv2d(dim, hidden, 1), nn.ReLU(), nn.Conv2d(hidden, dim, 1), nn.Sigmoid())
        for m in self.conv_du:
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, a=0, mode="fan_in")
                with torch.no_grad():
                    m.weight.mul_(0.1)
                nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.conv_du(x.mean(dim=(2, 3), keepdim=True))


class Subnet(nn.Module):
    """The coupling's scale/shift network: HinResBlock then channel attention."""

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.hin = HinResBlock(cin, cout)
        self.ca = CALayer(cout, reduction=4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.ca(self.hin(x))


class ConditionalCoupling(nn.Module):
    """Affine coupling of two band groups, each scaled/shifted from the other and the condition."""

    def __init__(self, bands: int, cond_channels: int, clamp: float = 5.0) -> None:
        super().__init__()
        self.split1, self.split2 = bands // 2, bands - bands // 2
        self.clamp = clamp
        self.s1 = Subnet(self.split1 + cond_channels, 2 * self.split2)
        self.s2 = Subnet(self.split2 + cond_channels, 2 * self.split1)

    def log_e(self, s: torch.Tensor) -> torch.Tensor:
        # soft clamp of the log-scale to ±clamp·0.636·π/2 ≈ ±5
        return self.clamp * 0.636 * torch.atan(s / self.clamp)

    def forward(self, x: torch.Tensor, cond: torch.Tensor, rev: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
        """(output, per-sample log|det J|) of the forward (or, with ``rev``, the inverse) map."""
        x1, x2 = x[:, :self.split1], x[:, self.split1:]
        if not rev:
            s2, t2 = self.s2(torch.cat([x2, cond], 1)).split([self.split1, self.split1], 1)
            y1 = torch.exp(self.log_e(s2)) * x1 + t2
            s1, t1 = self.s1(torch.cat([y1, cond], 1)).split([self.split2, self.split2], 1)
            y2 = torch.exp(self.log_e(s1)) * x2 + t1
            sign = 1.0
        else:  # x holds (y1, y2)
            s1, t1 = self.s1(torch.cat([x1, cond], 1)).split([self.split2, self.split2], 1)
            y2 = (x2 - t1) * torch.exp(-self.log_e(s1))
            s2, t2 = self.s2(torch.cat([y2, cond], 1)).split([self.split1, self.split1], 1)
            y1 = (x1 - t2) * torch.exp(-self.log_e(s2))
            sign = -1.0
        logdet = sign * (self.log_e(s1).flatten(1).sum(1) + self.log_e(s2).flatten(1).sum(1))
        return torch.cat([y1, y2], 1), logdet


class PanFlow(nn.Module):
    """T applications of one conditional coupling (shared weights) between HRMS and N(μ, σ²) noise."""

    def __init__(self, bands: int = 4, steps: int = 4, num_samples: int = 1, temperature: float = 1.0,
                 seed: int = 0, upsample: str = "bilinear", nll_weight: float = 1.0) -> None:
        super().__init__()
        if steps < 1 or num_samples < 1 or temperature < 0:
            raise UserError(f"panflow: steps={steps}, num_samples={num_samples}, temperature={temperature}: "
                            "steps and num_samples must be >= 1, temperature >= 0")
        self.steps, self.num_samples, self.temperature, self.seed = steps, num_samples, temperature, seed
        self.upsample, self.nll_weight = check_upsample(upsample, "panflow"), nll_weight
        self.coupling = ConditionalCoupling(bands, bands + 1)

    def condition(self, lms: torch.Tensor, pan: torch.Tensor, ms: torch.Tensor | None) -> torch.Tensor:
        """[upsampled MS (bilinear from the LR MS, as the reference), PAN]."""
        return torch.cat([upsample(lms, ms, pan, self.upsample), pan], 1)

    def flow(self, x: torch.Tensor, cond: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """HRMS -> z and the reference's NLL: mean over the batch of Σ_k (0.5‖z_k‖² − logdet_k), / (2HW)."""
        nll = x.new_zeros(x.shape[0])
        for _ in range(self.steps):
            x, logdet = self.coupling(x, cond)
            nll = nll + 0.5 * x.pow(2).flatten(1).sum(1) - logdet
        return x, nll.mean() / (2 * x.shape[-2] * x.shape[-1])

    def reverse(self, z: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        """z -> HRMS through the T inverse steps."""
        for _ in range(self.steps):
            z, _ = self.coupling(z, cond, rev=True)
        return z

    @staticmethod
    def noise_stats(up: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Each sample's scalar mean and (unbiased) std of its upsampled MS, shaped to broadcast."""
        flat = up.flatten(1)
        return flat.mean(1).view(-1, 1, 1, 1), flat.std(1).view(-1, 1, 1, 1)

    def forward(self, lms: torch.Tensor, pan: torch.Tensor, ms: torch.Tensor | None = None) -> torch.Tensor:
        cond = self.condition(lms, pan, ms)
        up = cond[:, :-1]
        mu, sigma = self.noise_stats(up)
        if self.temperature == 0:
            return self.reverse(mu.expand_as(up), cond)
        gen = torch.Generator(device=up.device)
        gen.manual_seed(self.seed)
        out = 0
        for _ in range(self.num_samples):
            eps = torch.randn(up.shape, generator=gen, device=up.device, dtype=up.dtype)
            out = out + self.reverse(mu + self.temperature * sigma * eps, cond)
        return out / self.num_samples

    def objective(self, batch: dict[str, torch.Tensor], loss=None) -> torch.Tensor:
        """The reference objective / (C·H·W/2): loss(sample, gt) + nll_weight · 2·NLL / (C·H·W)."""
        gt = batch.get("gt")
        if gt is None:
            raise DataError("panflow trains its flow on the reference image, but the batch has no 'gt'; "
                            "train on a reduced-resolution split")
        cond = self.condition(batch["lms"], batch["pan"], batch.get("ms"))
        _, nll = self.flow(gt, cond)
        mu, sigma = self.noise_stats(cond[:, :-1])
        pred = self.reverse(mu + sigma * torch.randn_like(gt), cond)
        rec = F.l1_loss(pred, gt) if loss is None else loss(pred, batch)
        return rec + self.nll_weight * nll * (2.0 / math.prod(gt.shape[1:]))


def panflow(bands: int = 4, steps: int = 4, num_samples: int = 1, temperature: float = 1.0, seed: int = 0,
            upsample: str = "bilinear", nll_weight: float = 1.0) -> nn.Module:
    """PanFlow (PanFlowNet pan_inn9): one shared conditional affine coupling x 4, NLL + L1, 87.3K params."""
    return PanFlow(bands, steps=steps, num_samples=num_samples, temperature=temperature, seed=seed,
                   upsample=upsample, nll_weight=nll_weight)


_WHY = ("only with temperature=0: inference draws its noise from a seeded torch.Generator, which torch.export "
        "cannot trace with dynamic H, W")
MODELS = {"panflow": (panflow, {"fixed_bands": None, "exportable": _WHY, "family": "panflow", "paper": PAPER,
                                "code": CODE, "reference_params": 87_322})}
