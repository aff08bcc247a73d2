"""Learning-rate schedules, applied per optimiser step: linear warm-up, then cosine or constant."""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

KINDS = ("cosine", "constant")


def lr_lambda(total_steps: int, warmup_steps: int, base_lr: float, min_lr: float,
              kind: str) -> Callable[[int], float]:
    """Learning-rate factor per optimiser step: linear warm-up, then cosine to ``min_lr`` (or constant)."""

    def f(step: int) -> float:
        if warmup_steps and step < warmup_steps:
            return (step + 1) / warmup_steps
        if kind != "cosine" or base_lr <= 0:
            return 1.0
        span = max(1, total_steps - warmup_steps)
        t = min(1.0, (step - warmup_steps) / span)
        return (min_lr + (base_lr - min_lr) * 0.5 * (1.0 + math.cos(math.pi * t))) / base_lr

    return f


def build_scheduler(optimizer: torch.optim.Optimizer, total_steps: int, warmup_steps: int, min_lr: float,
                    kind: str) -> torch.optim.lr_scheduler.LambdaLR:
    """A per-step LambdaLR over the optimiser's first group's learning rate."""
    base = float(optimizer.param_groups[0]["lr"])
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lr_lambda(total_steps, warmup_steps, base, min_lr, kind))
