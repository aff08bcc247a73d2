"""panfw.ops.tiling: tile geometry, blending weights, bounded row buffer, tiled == untiled."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from panfw.ops.tiling import RowBlender, ramp_weights, tile_grid, tile_starts, tile_weight, tiled_call


def test_tile_starts_cover_and_align():
    starts = tile_starts(1000, 256, 64, multiple=4)
    assert starts[0] == 0 and starts[-1] == 1000 - 256
    assert all(s % 4 == 0 for s in starts)
    assert all(b - a <= 256 - 64 for a, b in zip(starts, starts[1:]))  # neighbours share >= overlap
    assert tile_starts(100, 256, 64, multiple=4) == [0]
    assert tile_starts(512, 512, 64) == [0]
    with pytest.raises(ValueError, match="multiples"):
        tile_starts(1000, 250, 64, multiple=4)
    with pytest.raises(ValueError, match="smaller"):
        tile_starts(1000, 64, 64)


def test_ramps_are_complementary():
    """Across an overlap of exactly ``overlap`` pixels, the two neighbours' weights sum to 1."""
    tile, overlap = 64, 32
    left = ramp_weights(tile, overlap, lead=False, trail=True, dtype=torch.float64)
    right = ramp_weights(tile, overlap, lead=True, trail=False, dtype=torch.float64)
    assert torch.allclose(left[-overlap:] + right[:overlap], torch.ones(overlap, dtype=torch.float64))
    assert (left[-overlap // 4:] == 0).all() and (right[:overlap // 4] == 0).all()
    assert (left[:tile - overlap] == 1).all()
    assert (ramp_weights(tile, overlap, lead=False, trail=False) == 1).all()  # image borders keep weight 1


def test_tile_weight_positive_sum_everywhere():
    h, w, tile, overlap = 200, 136, 64, 32
    acc = torch.zeros(h, w)
    for y, x, th, tw in tile_grid(h, w, tile, overlap, multiple=4):
        acc[y:y + th, x:x + tw] += tile_weight(y, x, th, tw, h, w, overlap)
    assert acc.min() > 0.5


def test_row_blender_bounded_and_exact():
    """Row stripes are handed back as soon as complete; the buffer never holds more than a tile row."""
    torch.manual_seed(0)
    h, w, tile, overlap = 160, 96, 48, 16
    image = torch.rand(3, h, w)
    blender = RowBlender(3, w)
    out = torch.empty_like(image)
    tiles = tile_grid(h, w, tile, overlap, multiple=4)
    ys = sorted({t[0] for t in tiles})
    peak = 0
    for i, y in enumerate(ys):
        for ty, x, th, tw in tiles:
            if ty == y:
                blender.add(y, x, image[:, y:y + th, x:x + tw], tile_weight(y, x, th, tw, h, w, overlap))
        peak = max(peak, blender.acc.shape[1])
        y0, rows = blender.pop(ys[i + 1] if i + 1 < len(ys) else h)
        out[:, y0:y0 + rows.shape[1]] = rows
    assert torch.allclose(out, image, atol=1e-6)
    assert peak <= tile
    with pytest.raises(ValueError, match="handed back"):
        blender.add(0, 0, image[:, :8, :8], torch.ones(8, 8))


class Conv(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.a = nn.Conv2d(5, 6, 3, padding=1)
        self.b = nn.Conv2d(6, 4, 5, padding=2)  # receptive radius 3

    def forward(self, lms, pan, ms):
        return self.b(torch.tanh(self.a(torch.cat([lms, pan], 1)))) + lms


def test_tiled_call_equals_untiled_for_conv_model():
    torch.manual_seed(1)
    lms, pan, ms = torch.rand(2, 4, 96, 120), torch.rand(2, 1, 96, 120), torch.rand(2, 4, 24, 30)
    model = Conv().eval()
    with torch.no_grad():
        whole = model(lms, pan, ms)
        tiled = tiled_call(model, lms, pan, ms, tile=48, overlap=16, ratio=4)
    assert tiled.shape == whole.shape
    assert (tiled - whole).abs().max() < 1e-5


def test_tiled_call_passes_low_resolution_windows():
    seen = []

    def fn(lms, pan, ms):
        seen.append((tuple(lms.shape), tuple(ms.shape)))
        return lms

    lms = torch.rand(1, 4, 64, 64)
    out = tiled_call(fn, lms, torch.rand(1, 1, 64, 64), torch.rand(1, 4, 16, 16), tile=32, overlap=8, ratio=4)
    assert torch.allclose(out, lms)
    assert all(s == ((1, 4, 32, 32), (1, 4, 8, 8)) for s in seen)
    with pytest.raises(ValueError, match="grid"):
        tiled_call(fn, lms, torch.rand(1, 4, 10, 10), tile=32, overlap=8, ratio=4)
