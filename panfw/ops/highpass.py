"""High-pass by a box filter: ``x - box(x)`` per band, reflect-101 borders (OpenCV's default)."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def _reflect101_index(n: int, pad: int, device: torch.device) -> torch.Tensor:
    """Indices of a reflect-101 padded axis (``gfedcb|abcdefgh|gfedcba``), valid for any n >= 1.

    F.pad's "reflect" is the same border but needs pad < n; the folded index works for short axes too
    (the reflection repeats with period 2(n - 1))."""
    i = torch.arange(-pad, n + pad, device=device)
    period = max(2 * (n - 1), 1)
    i = torch.remainder(i, period)
    return torch.where(i >= n, period - i, i)


def highpass_box(x: torch.Tensor, size: int = 5) -> torch.Tensor:
    """``x`` minus its ``size`` x ``size`` box mean (every channel alone), borders reflect-101.

    PanNet's detail input: OpenCV ``x - cv2.blur(x, (5, 5))`` (BORDER_REFLECT_101) on (B, C, H, W)."""
    if size % 2 != 1 or size < 1:
        raise ValueError(f"highpass_box: size must be an odd positive integer, got {size}")
    pad = size // 2
    h, w = x.shape[-2:]
    if h > pad and w > pad:
        padded = F.pad(x, (pad, pad, pad, pad), mode="reflect")
    else:
        padded = x.index_select(-2, _reflect101_index(h, pad, x.device))
        padded = padded.index_select(-1, _reflect101_index(w, pad, x.device))
    return x - F.avg_pool2d(padded, size, stride=1)
