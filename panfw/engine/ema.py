"""Exponential moving average of a model's weights (``train.ema``)."""

from __future__ import annotations

import copy

import torch
from torch import nn


class EMA:
    """EMA of the weights with the usual warm-up ``min(decay, (1 + n) / (10 + n))`` so early averages
    are not dominated by the initialisation; buffers that are not floating point are copied."""

    def __init__(self, model: nn.Module, decay: float) -> None:
        self.decay = decay
        self.updates = 0
        self.shadow = {k: v.detach().clone() for k, v in model.state_dict().items()}

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        """Fold the model's current weights into the average."""
        self.updates += 1
        d = min(self.decay, (1 + self.updates) / (10 + self.updates))
        for k, v in model.state_dict().items():
            s = self.shadow[k]
            if v.dtype.is_floating_point:
                s.mul_(d).add_(v.detach(), alpha=1 - d)
            else:
                s.copy_(v)

    def copy_of(self, model: nn.Module) -> nn.Module:
        """A copy of ``model`` holding the averaged weights."""
        m = copy.deepcopy(model)
        m.load_state_dict(self.shadow)
        return m

    def state_dict(self) -> dict:
        return {"decay": self.decay, "updates": self.updates, "shadow": self.shadow}

    def load_state_dict(self, state: dict) -> None:
        self.updates = int(state["updates"])
        for k, v in state["shadow"].items():
            self.shadow[k].copy_(v)
