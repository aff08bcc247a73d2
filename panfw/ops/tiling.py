"""Tiled inference: overlapping tiles blended with a smooth weight so no seams show.

Geometry (one rule, used by ``tiled_call`` for in-memory tensors and by ``panfw fuse`` for scenes):

- tiles of ``tile`` pixels step by ``tile - overlap``; the last tile of a row or column is moved back
  so it ends at the image border (it then overlaps its neighbour by more than ``overlap``);
  starts and sizes are multiples of ``multiple`` (the PAN/MS ratio, so MS windows line up);
- along an edge shared with a neighbouring tile, the first ``overlap // 4`` pixels get weight 0
  (they are the pixels a model sees with padding instead of image content), the next
  ``overlap // 2`` ramp up with a raised cosine (Hann half-window), the rest weigh 1; along the image
  border the weight is 1. Two neighbours' ramps sum to 1 across an overlap of exactly ``overlap``;
- outputs are accumulated with their weights and divided by the summed weight.

A model whose receptive field reaches no further than ``overlap // 4`` pixels therefore gives the
same result tiled as untiled (up to float rounding); a model with image-wide statistics (channel
attention normalised over the whole tile) gives a close but not identical result.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence

import torch

__all__ = ["tile_starts", "tile_grid", "ramp_weights", "tile_weight", "RowBlender", "tiled_call"]


def tile_starts(size: int, tile: int, overlap: int, multiple: int = 1) -> list[int]:
    """Start offsets of tiles of length ``tile`` covering ``[0, size)`` with at least ``overlap`` shared
    pixels between neighbours; all starts are multiples of ``multiple``."""
    if tile <= 0 or overlap < 0:
        raise ValueError(f"tile must be > 0 and overlap >= 0, got tile={tile}, overlap={overlap}")
    if tile % multiple or overlap % multiple or size % multiple:
        raise ValueError(f"tile ({tile}), overlap ({overlap}) and size ({size}) must be multiples "
                         f"of {multiple}")
    if tile >= size:
        return [0]
    if overlap >= tile:
        raise ValueError(f"overlap ({overlap}) must be smaller than the tile ({tile})")
    step = tile - overlap
    n = math.ceil((size - tile) / step) + 1
    starts = [i * step for i in range(n - 1)] + [size - tile]
    return sorted(set(starts))


def tile_grid(height: int, width: int, tile: int, overlap: int,
              multiple: int = 1) -> list[tuple[int, int, int, int]]:
    """Tiles ``(y, x, h, w)`` in row-major order covering an image of ``height`` x ``width``."""
    ys = tile_starts(height, tile, overlap, multiple)
    xs = tile_starts(width, tile, overlap, multiple)
    return [(y, x, min(tile, height), min(tile, width)) for y in ys for x in xs]


def ramp_weights(length: int, overlap: int, lead: bool, trail: bool,
                 dtype: torch.dtype = torch.float32, device=None) -> torch.Tensor:
    """1-D tile weight: 0 for ``overlap // 4`` pixels, a raised-cosine ramp over ``overlap // 2``,
    then 1; applied at the leading and/or trailing end (ends on the image border stay at 1)."""
    w = torch.ones(length, dtype=torch.float64)
    if overlap > 0:
        skip = min(overlap // 4, length // 2)
        ramp = max(min(overlap - 2 * (overlap // 4), length // 2 - skip), 0)
        t = (torch.arange(ramp, dtype=torch.float64) + 0.5) / max(ramp, 1)
        up = torch.cat([torch.zeros(skip, dtype=torch.float64), torch.sin(0.5 * math.pi * t) ** 2])
        if lead:
            w[: up.numel()] = torch.minimum(w[: up.numel()], up)
        if trail:
            w[length - up.numel():] = torch.minimum(w[length - up.numel():], up.flip(0))
    return w.to(dtype=dtype, device=device)


def tile_weight(y: int, x: int, h: int, w: int, height: int, width: int, overlap: int,
                dtype: torch.dtype = torch.float32, device=None) -> torch.Tensor:
    """The (h, w) blending weight of the tile at (y, x) in an image of ``height`` x ``width``."""
    wy = ramp_weights(h, overlap, lead=y > 0, trail=y + h < height, dtype=dtype, device=device)
    wx = ramp_weights(w, overlap, lead=x > 0, trail=x + w < width, dtype=dtype, device=device)
    return wy[:, None] * wx[None, :]


class RowBlender:
    """Accumulates weighted tiles over a band of rows of a (C, height, width) output and hands back
    rows once no later tile can touch them: memory grows with the width and the tile height,
    never with the image height."""

    def __init__(self, channels: int, width: int, dtype: torch.dtype = torch.float32, device=None) -> None:
        self.channels, self.width, self.dtype, self.device = channels, width, dtype, device
        self.y0 = 0  # first row not yet handed back
        self.acc = torch.zeros(channels, 0, width, dtype=dtype, device=device)
        self.wsum = torch.zeros(0, width, dtype=dtype, device=device)

    def _grow(self, rows: int) -> None:
        extra = rows - self.acc.shape[1]
        if extra > 0:
            kw = {"dtype": self.dtype, "device": self.device}
            self.acc = torch.cat([self.acc, torch.zeros(self.channels, extra, self.width, **kw)], 1)
            self.wsum = torch.cat([self.wsum, torch.zeros(extra, self.width, **kw)], 0)

    def add(self, y: int, x: int, out: torch.Tensor, weight: torch.Tensor) -> None:
        """Add a (C, h, w) tile output at (y, x) with its (h, w) weight."""
        if y < self.y0:
            raise ValueError(f"tile at row {y} comes after rows up to {self.y0} were handed back")
        h, w = out.shape[-2:]
        r = y - self.y0
        self._grow(r + h)
        out = out.to(dtype=self.dtype, device=self.device)
        weight = weight.to(dtype=self.dtype, device=self.device)
        self.acc[:, r:r + h, x:x + w] += out * weight
        self.wsum[r:r + h, x:x + w] += weight

    def pop(self, upto: int) -> tuple[int, torch.Tensor]:
        """Finish rows ``[y0, upto)``: returns (y0, (C, rows, width) blended values)."""
        n = max(0, upto - self.y0)
        self._grow(n)
        wsum = self.wsum[:n]
        if n and bool((wsum <= 0).any()):
            raise RuntimeError("tiling left pixels without weight; overlap too large for the tile?")
        done = self.acc[:, :n] / wsum
        y0 = self.y0
        self.acc, self.wsum = self.acc[:, n:].clone(), self.wsum[n:].clone()
        self.y0 += n
        return y0, done


def _row_groups(tiles: Sequence[tuple[int, int, int, int]]) -> Iterator[list[tuple[int, int, int, int]]]:
    row: list[tuple[int, int, int, int]] = []
    for t in tiles:
        if row and t[0] != row[0][0]:
            yield row
            row = []
        row.append(t)
    if row:
        yield row


def tiled_call(fn: Callable[..., torch.Tensor], *inputs: torch.Tensor, tile: int = 512,
               overlap: int = 64, ratio: int = 4) -> torch.Tensor:
    """Run ``fn(*tiles)`` over overlapping tiles of (B, C, H, W) inputs and blend the (B, C', H, W)
    outputs. Inputs on the full grid (H, W) and on the low-resolution grid (H/ratio, W/ratio) are
    both accepted, e.g. ``tiled_call(model, lms, pan, ms, tile=256, overlap=32, ratio=4)``. For
    inference: outputs are detached; blending happens on the outputs' device."""
    height, width = inputs[0].shape[-2:]
    tiles = tile_grid(height, width, tile, overlap, multiple=ratio)
    out: torch.Tensor | None = None
    blenders: list[RowBlender] = []
    rows = list(_row_groups(tiles))
    for i, row in enumerate(rows):
        for y, x, h, w in row:
            parts = []
            for t in inputs:
                if t.shape[-2:] == (height, width):
                    parts.append(t[..., y:y + h, x:x + w])
                elif t.shape[-2] * ratio == height and t.shape[-1] * ratio == width:
                    parts.append(t[..., y // ratio:(y + h) // ratio, x // ratio:(x + w) // ratio])
                else:
                    raise ValueError(f"input of shape {tuple(t.shape)} is neither on the {height}x{width} "
                                     f"grid nor on the 1/{ratio} grid")
            res = fn(*parts)
            if out is None:
                out = res.new_empty(*res.shape[:-2], height, width)
                acc_dtype = torch.float64 if res.dtype == torch.float64 else torch.float32
                blenders = [RowBlender(res.shape[-3], width, acc_dtype, device=res.device)
                            for _ in range(res.shape[0])]
            weight = tile_weight(y, x, h, w, height, width, overlap, device=res.device)
            for b in range(res.shape[0]):
                blenders[b].add(y, x, res[b].detach(), weight)
        upto = rows[i + 1][0][0] if i + 1 < len(rows) else height
        for b, blender in enumerate(blenders):
            y0, done = blender.pop(upto)
            out[b, ..., y0:y0 + done.shape[1], :] = done.to(out.dtype)
    assert out is not None
    return out
