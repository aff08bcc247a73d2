"""A fast CPU inference path for the Restormer ``TransformerBlock`` (no autograd, float32).

The plain block runs every operator over the whole image: at 512² a 170-channel hidden tensor is
178 MB, so each of its passes (1x1, depth-wise 3x3, GELU, gate, 1x1) streams through memory and
allocates fresh pages. Here the image stays channels-last ((H, W, C) rows of pixels) and the block
runs over stripes of a few rows (STRIPE_PIXELS) whose intermediates stay in cache:

- pass A: LN -> q, k (1x1 as a matrix product) -> depth-wise 3x3 per stripe; only the per-head
  Gram matrices q k^T and the squared norms are kept (float64 sums over stripes). The attention
  map follows from them: softmax(q k^T / (|q| |k|) * temperature), the same numbers as normalising q
  and k first;
- the attention map and ``project_out`` fold into one C x C matrix W' = W_p blockdiag(attn);
- pass B: LN -> v -> depth-wise per stripe, x += v W'^T;
- pass C: LN -> the two FFN halves (each its own contiguous buffer, so GELU vectorises) ->
  depth-wise -> GELU(x1) x2 -> 1x1, x += .

Each stage keeps a ring buffer of ``rows + 2`` rows of its 1x1 output, so every 1x1 row is computed
once and the depth-wise 3x3 sees its neighbours (zeros beyond the image: the convolution's zero
padding). Pass B writes x + attention into the block's output, pass C updates it in place (its
stage reads rows ahead of the rows it writes). Outputs agree with the plain block to float32
rounding (about 1e-6 relative).

``TransformerBlock.forward`` takes this path when ``applies(block, x)`` holds: CPU, float32, no
gradients needed, not tracing/exporting/compiling, bias-free block (PanTiny's), large enough
images; ``enabled(False)`` switches it off (tests compare both). PanTiny Small's gated fusion has
one too (``gated_fusion``). Export, GPUs and training use the plain modules.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch
import torch.nn.functional as F
from torch import nn

MIN_PIXELS = 96 * 96  # below this the stripe loop's per-call overhead outweighs the cache gain
STRIPE_PIXELS = 8192  # pixels per stripe (16 rows at 512): 5-7% faster than 4096 or 16384 here

_state = {"enabled": True}


@contextlib.contextmanager
def enabled(flag: bool) -> Iterator[None]:
    """Within the block, the fast CPU path is used (True, the default) or never (False)."""
    old = _state["enabled"]
    _state["enabled"] = bool(flag)
    try:
        yield
    finally:
        _state["enabled"] = old


def _tracing() -> bool:
    return (torch.jit.is_tracing() or torch.jit.is_scripting() or torch.compiler.is_compiling()
            or torch.onnx.is_in_onnx_export())


def inference(module: nn.Module, x: torch.Tensor) -> bool:
    """Whether ``module`` may run ``x`` on a fast CPU path at all: enabled, a float32 (B, C, H, W)
    CPU tensor of at least MIN_PIXELS pixels, no gradient needed, not being traced or exported."""
    if not _state["enabled"] or _tracing() or x.device.type != "cpu" or x.dtype != torch.float32:
        return False
    if x.dim() != 4 or x.shape[-2] * x.shape[-1] < MIN_PIXELS:
        return False
    return not (torch.is_grad_enabled() and (x.requires_grad or any(p.requires_grad for p in module.parameters())))


def applies(block: nn.Module, x: torch.Tensor) -> bool:
    """Whether ``block`` (a TransformerBlock) can run ``x`` on the fast CPU path."""
    if not inference(block, x):
        return False
    convs = (block.attn.qkv, block.attn.qkv_dwconv, block.attn.project_out, block.ffn.project_in,
             block.ffn.dwconv, block.ffn.project_out)
    return all(c.bias is None for c in convs)


class _Stage:
    """LN -> 1x1 -> depth-wise 3x3 over stripes of ``rows`` image rows, for channel groups that
    each get their own contiguous ring buffer; the output of a step lags its newest row by one."""

    def __init__(self, x: torch.Tensor, norm: nn.Module, w1s: list[torch.Tensor],
                 wdws: list[torch.Tensor], rows: int) -> None:
        self.x, self.norm, self.rows, self.height = x, norm, rows, x.shape[0]
        self.w1t = [w.t() for w in w1s]
        self.wdw = wdws
        # (1, rows + 2, W, ch): a size-1 batch with a full stride, so the channels-last view below is
        # one oneDNN accepts without a reorder copy
        self.bufs = [x.new_empty(1, rows + 2, x.shape[1], w.shape[0]) for w in w1s]
        for buf in self.bufs:
            buf[:, 0].zero_()  # the row above the image
        self._pointwise(0, 1, 1)

    def _pointwise(self, r0: int, r1: int, at: int) -> None:
        xs = self.x[r0:r1]
        xh = F.layer_norm(xs, self.norm.normalized_shape, self.norm.weight, self.norm.bias, self.norm.eps)
        xh = xh.view(-1, xh.shape[-1])
        for buf, wt in zip(self.bufs, self.w1t):
            torch.mm(xh, wt, out=buf[0, at:at + r1 - r0].view(-1, wt.shape[1]))

    def step(self, r0: int) -> list[torch.Tensor]:
        """The depth-wise outputs (n, W, ch) of rows [r0, r0 + n); r0 advances by ``rows``."""
        n = min(self.rows, self.height - r0)
        lo, hi = r0 + 1, min(r0 + n + 1, self.height)
        if hi > lo:
            self._pointwise(lo, hi, 2)
        outs = []
        for buf, w in zip(self.bufs, self.wdw):
            if hi - lo < n:
                buf[:, 2 + hi - lo].zero_()  # the row below the image
            y = F.conv2d(buf[:, :n + 2].permute(0, 3, 1, 2), w, padding=(0, 1), groups=w.shape[0])
            outs.append(y[0].permute(1, 2, 0))
            keep = buf[:, n:n + 2]
            buf[:, 0:2].copy_(keep if n >= 2 else keep.clone())  # the last two rows lead the next step
        return outs


def _image(block: nn.Module, x: torch.Tensor, out: torch.Tensor, rows: int) -> None:
    """One image: x (H, W, C) contiguous -> out (H, W, C): pass B writes x + attention into out,
    pass C updates out in place."""
    h, c = x.shape[0], x.shape[-1]
    attn, ffn = block.attn, block.ffn
    heads = attn.heads
    d = c // heads
    wqkv, wdw = attn.qkv.weight.flatten(1), attn.qkv_dwconv.weight
    stage = _Stage(x, block.norm1, [wqkv[:c], wqkv[c:2 * c]], [wdw[:c], wdw[c:2 * c]], rows)
    gram = x.new_zeros(heads, d, d, dtype=torch.float64)
    nq = x.new_zeros(c, dtype=torch.float64)
    nk = x.new_zeros(c, dtype=torch.float64)
    for r0 in range(0, h, rows):
        q, k = (t.reshape(-1, c) for t in stage.step(r0))
        for i in range(heads):
            gram[i] += q[:, i * d:(i + 1) * d].t() @ k[:, i * d:(i + 1) * d]
        nq += (q * q).sum(0)
        nk += (k * k).sum(0)
    # F.normalize's max(|v|, 1e-12)
    nq, nk = nq.sqrt().clamp_min(1e-12).view(heads, d, 1), nk.sqrt().clamp_min(1e-12).view(heads, 1, d)
    att = (gram / (nq * nk) * attn.temperature.double()).softmax(-1)
    wp = attn.project_out.weight.flatten(1).double().view(c, heads, d)
    wpt = torch.einsum("chi,hij->chj", wp, att).reshape(c, c).to(x.dtype).t().contiguous()
    stage = _Stage(x, block.norm1, [wqkv[2 * c:]], [wdw[2 * c:]], rows)
    for r0 in range(0, h, rows):
        (v,) = stage.step(r0)
        n = v.shape[0]  # out = x + v W'^T, written once (no copy of x first)
        torch.addmm(x[r0:r0 + n].view(-1, c), v.view(-1, c), wpt, out=out[r0:r0 + n].view(-1, c))
    hid = ffn.project_out.weight.shape[1]
    wi, wd = ffn.project_in.weight.flatten(1), ffn.dwconv.weight
    stage = _Stage(out, block.norm2, [wi[:hid], wi[hid:]], [wd[:hid], wd[hid:]], rows)
    wo = ffn.project_out.weight.flatten(1).t()
    for r0 in range(0, h, rows):
        x1, x2 = stage.step(r0)
        out[r0:r0 + x1.shape[0]].view(-1, c).addmm_(F.gelu(x1).mul_(x2).view(-1, hid), wo)


def transformer_block(block: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """``block(x)`` on the fast path: x (B, C, H, W) in any layout; the result is channels-last."""
    x = x.contiguous(memory_format=torch.channels_last)
    b, c, h, w = x.shape
    out = torch.empty_like(x)  # channels-last too
    xs, outs = x.permute(0, 2, 3, 1), out.permute(0, 2, 3, 1)  # (B, H, W, C) contiguous views
    rows = max(1, min(h, STRIPE_PIXELS // max(w, 1)))
    for i in range(b):
        _image(block, xs[i], outs[i], rows)
    return out


def gated_fusion(gate0: nn.Conv2d, gate2: nn.Conv2d, proj: nn.Conv2d, feat: torch.Tensor,
                 pan: torch.Tensor) -> torch.Tensor:
    """PanTiny Small's fusion ``proj(x) * w + feat * (1 - w)``, x = [feat, pan],
    w = sigmoid(gate2(relu(gate0(x)))), over channels-last stripes: the three 1x1 convolutions as
    two matrix products (gate0 and proj stacked), the concatenation never built (pan's column
    enters as a rank-1 update). ``pan`` already on feat's grid."""
    feat = feat.contiguous(memory_format=torch.channels_last)
    pan = pan.contiguous(memory_format=torch.channels_last)
    b, c, h, w = feat.shape
    hidden = gate0.weight.shape[0]
    w1 = torch.cat([gate0.weight.flatten(1), proj.weight.flatten(1)])  # (hidden + C, C + P)
    w1f, w1p = w1[:, :c].t(), w1[:, c:].t().contiguous()  # feature and PAN parts
    w2 = gate2.weight.flatten(1).t()
    out = torch.empty_like(feat)
    fs, ps, os_ = feat.permute(0, 2, 3, 1), pan.permute(0, 2, 3, 1), out.permute(0, 2, 3, 1)
    rows = max(1, min(h, STRIPE_PIXELS // max(w, 1)))
    for i in range(b):
        for r0 in range(0, h, rows):
            f = fs[i, r0:r0 + rows].reshape(-1, c)
            p = ps[i, r0:r0 + rows].reshape(-1, ps.shape[-1])
            y = torch.mm(f, w1f).addmm_(p, w1p)
            g = torch.relu_(y[:, :hidden] + gate0.bias)
            s = torch.sigmoid_(torch.addmm(gate2.bias, g, w2))
            os_[i, r0:r0 + rows].view(-1, c).copy_(y[:, hidden:] * s + f * (1 - s))
    return out
