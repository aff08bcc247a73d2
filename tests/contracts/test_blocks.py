"""The fusion- and refine-block contracts, over every registered block.

Fusion: ``factory(dim, pan_channels=1, **options)``, ``forward(feat, pan) -> feat``; refine:
``factory(dim, **options)``, ``forward(feat) -> feat``. Each keeps the feature shape on an odd,
non-square grid, stays finite, and passes gradients to every parameter and to the input feature
(fusion blocks to the PAN as well: a fusion block that ignores the PAN is no fusion).
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

import panfw

DIM = 16  # divisible by the usual head counts (2, 4) and SE reductions (4, 8)
HW = (9, 13)
FUSIONS = panfw.registry("fusions").names()
REFINES = panfw.registry("refines").names()


def _missing_grads(block: nn.Module) -> list[str]:
    return [n for n, p in block.named_parameters() if p.requires_grad and p.grad is None]


def _check_grads(name: str, block: nn.Module, **inputs: torch.Tensor) -> None:
    missing = _missing_grads(block)
    assert not missing, f"{name}: some parameters are missing gradients: {missing}"
    for n, p in block.named_parameters():
        assert torch.isfinite(p.grad).all(), f"{name}: non-finite gradient of {n}"
    for key, x in inputs.items():
        assert x.grad is not None and x.grad.abs().sum() > 0, f"{name}: no gradient reaches the input {key}"
        assert torch.isfinite(x.grad).all(), f"{name}: non-finite gradient of the input {key}"


@pytest.mark.parametrize("pan_channels", [1, 3])
@pytest.mark.parametrize("name", FUSIONS)
def test_fusion_block_contract(name, pan_channels):
    torch.manual_seed(0)
    block = panfw.create("fusions", name, DIM, pan_channels=pan_channels).train()
    feat = torch.randn(2, DIM, *HW, requires_grad=True)
    pan = torch.rand(2, pan_channels, *HW, requires_grad=True)
    out = block(feat, pan)
    assert out.shape == feat.shape, f"{name}: {tuple(out.shape)} from features {tuple(feat.shape)}"
    assert torch.isfinite(out).all(), name
    out.square().mean().backward()
    _check_grads(name, block, feat=feat, pan=pan)


@pytest.mark.parametrize("name", REFINES)
def test_refine_block_contract(name):
    torch.manual_seed(0)
    block = panfw.create("refines", name, DIM).train()
    feat = torch.randn(2, DIM, *HW, requires_grad=True)
    out = block(feat)
    assert out.shape == feat.shape, f"{name}: {tuple(out.shape)} from features {tuple(feat.shape)}"
    assert torch.isfinite(out).all(), name
    out.square().mean().backward()
    _check_grads(name, block, feat=feat)
