"""An example third-party panfw plugin: registers the ``example_gate`` fusion block."""

from __future__ import annotations

import torch
from torch import nn

import panfw
from panfw.layers import resize_to


class ExampleGate(nn.Module):
    """PAN-gated fusion: feat + sigmoid(conv([feat, pan])) * conv(pan)."""

    def __init__(self, dim: int, pan_channels: int = 1, hidden: int = 8) -> None:
        super().__init__()
        self.gate = nn.Sequential(nn.Conv2d(dim + pan_channels, hidden, 1), nn.ReLU(),
                                  nn.Conv2d(hidden, dim, 1))
        self.detail = nn.Conv2d(pan_channels, dim, 3, padding=1)

    def forward(self, feat: torch.Tensor, pan: torch.Tensor) -> torch.Tensor:
        pan = resize_to(pan, feat)  # the shared building block: a no-op when the grids already match
        gate = torch.sigmoid(self.gate(torch.cat([feat, pan], dim=1)))
        return feat + gate * self.detail(pan)


@panfw.hookimpl
def register_fusions(register):
    register("example_gate", ExampleGate, summary="Example third-party block: a PAN-gated detail injection")
