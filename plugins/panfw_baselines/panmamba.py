"""Pan-Mamba (He et al., "Pan-Mamba: Effective pan-sharpening with state space model", Information Fusion
2025), the public final version (``panmamba_baseline_finalversion.py``, 478,444 params at 4 bands), with
the selective scan in pure PyTorch.

Tokens are every PAN-grid pixel (L = H·W, row-major). The MS is upsampled by nearest neighbour; each
stream has an encoder (conv 3x3 -> 32, 3 HinResBlocks) and a 1x1 token embedding; 8 single Mamba
blocks per stream (pre-norm residual stream; the last block's output goes on without the residual);
2 token-swap blocks (the streams swap their first 16 channels, one Mamba each); a shallow conv fusion
of the two streams; 5 cross Mamba blocks ("v3": two selective scans, over the MS tokens and over the
PAN tokens, each gated by SiLU(z), summed, one output projection; then a depth-wise 3x3 conv plus
residual; the same PAN tokens for all 5); a refine head (conv, channel attention, conv -> C); + the
upsampled MS. Mamba: d_model 32, d_state 16, d_conv 4, expand 2, dt_rank 2, forward scan only.

What panfw changed and why:

- **The selective scan is pure PyTorch** (``mamba_ssm`` and ``causal_conv1d`` need CUDA to import). The
  recurrence h_t = exp(Δ_t A)·h_{t−1} + Δ_t B_t x_t has four implementations, all giving the same numbers
  (tests: 1e-5 in float32 against a sequential reference, values and gradients):

  - ``scan="chunked"`` (the CPU default): the H·W tokens cut into chunks, every chunk scanned step by step
    with all chunks and all (batch, channel, state) lanes in one op, the chunk carries combined by the
    log-depth scan below, then each chunk rescanned from its true start state while y = C·h is formed
    group by group. No (B, d, n, L) tensor is ever stored, so it runs in cache: 4x the parallel scan's
    speed on this CPU, and its own memory is a fraction of the parallel scan's. Its backward is the
    adjoint recurrence scanned the same way, backwards, with the states recomputed from the saved chunk
    starts.
  - ``scan="parallel"`` (CUDA without ``mamba_ssm``): a blocked log-depth scan, blocks of 8 steps scanned
    by recursive doubling, the block ends scanned the same way one level up (up to 9 levels), carries
    pushed back down: a few big ops per layer, the shape a GPU wants.
  - ``scan="sequential"``: the plain loop (the reference semantics, for tests and timing).
  - ``scan="mamba_ssm"``: the CUDA kernel; fails loudly where it cannot run. ``scan="auto"`` takes it on
    CUDA when it imports, else ``parallel`` on CUDA and ``chunked`` on a CPU.

  The layer is never replaced by another (PanTiny's copy silently swaps Mamba for one ``nn.Linear``
  when the import fails).
- The reference reshapes tokens with a hard-coded ``view(B, C, 128, 128)`` (``128*8`` in one copy);
  panfw uses the input's own H, W, so any size works.
- **Export**: while torch.export (or torch.compile) traces, the scan is torch's ``scan`` operator over
  the tokens, a graph loop whose trip count is H·W, so the exported program and the ONNX graph take any
  H, W (onnxruntime runs its Scan). That loop is slower than the eager chunked scan (onnxruntime: 4.3 s
  against 2.6 s at PAN 128² on this CPU; a ``.pt2`` run in Python far slower), so the model registers
  ``prefers_eager`` and the default runtime stays eager PyTorch; whether TensorRT converts the loop is
  untested (no GPU here).
- Parameters the reference builds but never uses in its forward (each HinResBlock's 1x1 ``identity``
  conv and each token embedding's bias-free norm: 6,400 values) are kept, frozen, so the count and the
  state_dict keys are the public code's; they get no gradient, as in the reference.
- Any band count (the reference fixes 4); the upsampler is an option (``upsample="lms"`` uses the
  data's upsampled MS instead of nearest). ``checkpoint=True`` recomputes each Mamba block in the
  backward instead of keeping its activations (the training memory, which they dominate, about halves).

PanTiny's Table 1 lists 488.8K parameters (10,400 more, one 3x3 conv 36 -> 32 with bias); its modified
copy is not public and the facts do not place that layer, so no "PanTiny variant" is registered.
"""

from __future__ import annotations

import math
from functools import cache

import torch
import torch.nn.functional as F
from torch import nn

from panfw.errors import UserError
from panfw.layers import HalfInstanceNorm
from panfw_baselines._common import check_upsample, upsample

PAPER = ("He, Cao, Zhang, Yan, Wang, Li, Xie, Hong, Zhou, Pan-Mamba: Effective pan-sharpening with state "
         "space model, Information Fusion 115 (2025) 102779")
CODE = "github.com/alexhe101/Pan-Mamba pan-sharpening/model/panmamba_baseline_finalversion.py"

_EAGER = "its exported graph loops over the H*W tokens, slower than the eager chunked scan (4.3 s vs 2.6 s at 128x128)"
SCANS = ("auto", "chunked", "parallel", "sequential", "mamba_ssm")
BLOCK = 8  # steps per block of the parallel scan (3 doubling steps)
LEVELS = 9  # block levels: sequences up to BLOCK**LEVELS (134M tokens, an 11585 x 11585 PAN)


# ---------------------------------------------------------------------------------------------------
# the linear recurrence h_t = a_t * h_{t-1} + b_t along the last axis (h_{-1} = 0)


def scan_sequential(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """The recurrence one step at a time (O(L) Python steps)."""
    h = torch.zeros_like(b[..., 0])
    out = []
    for t in range(b.shape[-1]):
        h = a[..., t] * h + b[..., t]
        out.append(h)
    return torch.stack(out, -1)


def _tracing(x: torch.Tensor) -> bool:
    """Whether torch.compile / torch.export is tracing (symbolic sizes included)."""
    return torch.compiler.is_compiling() or torch.compiler.is_exporting() or isinstance(x.shape[-1], torch.SymInt)


def _scan_blocks(a: torch.Tensor, b: torch.Tensor, levels: int) -> torch.Tensor:
    length = a.shape[-1]
    n = (length + BLOCK - 1) // BLOCK
    pad = n * BLOCK - length  # the padding (a = 1, b = 0) comes after the sequence: earlier h unchanged
    # F.pad copies, so the in-place updates below never touch the caller's tensors
    a = F.pad(a, (0, pad), value=1.0).unflatten(-1, (n, BLOCK))
    b = F.pad(b, (0, pad)).unflatten(-1, (n, BLOCK))
    off = 1
    while off < BLOCK:  # recursive doubling inside each block: b -> local h, a -> running product
        b[..., off:] += a[..., off:] * b[..., :-off]  # the product is formed from the old b first
        a[..., off:] = a[..., off:] * a[..., :-off]
        off *= 2
    if levels > 1 and n > 1:  # the block ends form the same recurrence one level up
        carry = _scan_blocks(a[..., -1], b[..., -1], levels - 1)
        b[..., 1:, :] += a[..., 1:, :] * carry[..., :-1, None]
    return b.flatten(-2)[..., :length]


def scan_parallel(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """The recurrence as a blocked log-depth scan: 3 doubling steps per level, ceil(log8 L) levels."""
    if isinstance(a.shape[-1], torch.SymInt):
        # the padding to whole blocks gives guards that fail at every other size: traced graphs use ssm_traced
        raise UserError("scan_parallel cannot be traced with a dynamic token count; trace ssm_traced instead")
    torch._check(a.shape[-1] <= BLOCK ** LEVELS,
                 lambda: f"the parallel scan handles sequences up to {BLOCK ** LEVELS} tokens; tile the scene")
    return _scan_blocks(a, b, LEVELS)


_SCAN_FNS = {"parallel": scan_parallel, "sequential": scan_sequential}


# ---------------------------------------------------------------------------------------------------
# the chunked scan (the CPU default): the tokens cut into chunks; every chunk scanned step by step, all
# chunks (and all batch x channel x state lanes) at once; the chunk carries combined by the log-depth scan
# above; then each chunk rescanned from its true start state, producing y. Nothing of size (b, d, n, L)
# is ever stored: one op handles a cache-sized group of steps, and y = C.h is formed group by group.

STEP = 1 << 15  # elements of one step's state (b, chunks, d, n): enough chunks that each op amortises its call
GROUP = 1 << 17  # elements of a group of steps, computed by one op each (a few tensors that stay in cache)


def _chunk_plan(b: int, d: int, n: int, length: int) -> tuple[int, int, int]:
    """(chunks, steps per chunk, steps per group) for a (b, d, n) state over ``length`` tokens."""
    chunks = max(1, min(length, -(-STEP // (b * d * n))))
    steps = -(-length // chunks)
    chunks = -(-length // steps)  # as few padded steps as possible
    return chunks, steps, max(1, min(steps, GROUP // (b * chunks * d * n)))


def _to_steps(x: torch.Tensor, chunks: int, steps: int) -> torch.Tensor:
    """(b, c, L) -> (steps, b, chunks, c), step-major; padded with zeros (delta 0: decay 1, no input)."""
    b, c, length = x.shape
    x = F.pad(x, (0, chunks * steps - length))
    return x.view(b, c, chunks, steps).permute(3, 0, 2, 1).contiguous()


def _from_steps(y: torch.Tensor, length: int) -> torch.Tensor:
    steps, b, chunks, c = y.shape
    return y.permute(1, 3, 2, 0).reshape(b, c, chunks * steps)[..., :length]


def _group(dl: torch.Tensor, dul: torch.Tensor, Bk: torch.Tensor, A: torch.Tensor,
           sl: slice) -> tuple[torch.Tensor, torch.Tensor]:
    """Decays exp(delta A) and inputs delta u B of a group of steps, (G, b, chunks, d, n) each."""
    return torch.exp(dl[sl, ..., None] * A), dul[sl, ..., None] * Bk[sl, :, :, None, :]


def _run(a: torch.Tensor, x: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
    """h_j = a_j h_{j-1} + x_j over a group, in place in x (x becomes the states); the last state."""
    for aj, xj in zip(a.unbind(0), x.unbind(0)):
        h = xj.addcmul_(aj, h)
    return h


def _run_back(a: torch.Tensor, e: torch.Tensor, carry: torch.Tensor) -> torch.Tensor:
    """g_j = e_j + a_{j+1} g_{j+1} backwards over a group, in place in e (e becomes the adjoints), from
    carry = a g entering after its last step; returns a_0 g_0, the carry into the group before."""
    e[-1].add_(carry)
    for j in range(a.shape[0] - 2, -1, -1):
        e[j].addcmul_(a[j + 1], e[j + 1])
    return a[0] * e[0]


def _slices(steps: int, group: int) -> list[slice]:
    return [slice(k, min(k + group, steps)) for k in range(0, steps, group)]


def _chunk_starts(dl: torch.Tensor, dul: torch.Tensor, Bk: torch.Tensor, A: torch.Tensor,
                  group: int) -> torch.Tensor:
    """Every chunk's true start state (b, chunks, d, n): its local end states (scanned from zero), then the
    carries H_c = decay_c H_{c-1} + end_c by the log-depth scan over the chunks."""
    h = dl.new_zeros(*dl.shape[1:], A.shape[1])
    for sl in _slices(dl.shape[0], group):
        h = _run(*_group(dl, dul, Bk, A, sl), h)  # a view of the group's x, which nothing changes later
    decay = torch.exp(dl.sum(0)[..., None] * A).movedim(1, -1)  # a chunk's decay: exp(A sum(delta))
    carries = scan_parallel(decay, h.movedim(1, -1))
    return F.pad(carries[..., :-1], (1, 0)).movedim(-1, 1)


def ssm_chunked(u: torch.Tensor, delta: torch.Tensor, A: torch.Tensor, B: torch.Tensor, C: torch.Tensor,
                ) -> tuple[torch.Tensor, torch.Tensor]:
    """``ssm`` by the chunked scan; also returns the chunk start states (for the backward)."""
    b, d, length = u.shape
    chunks, steps, group = _chunk_plan(b, d, A.shape[1], length)
    dl, dul = _to_steps(delta, chunks, steps), _to_steps(delta * u, chunks, steps)
    Bk, Ck = _to_steps(B, chunks, steps), _to_steps(C, chunks, steps)
    starts = _chunk_starts(dl, dul, Bk, A, group)
    y, h = dl.new_empty(*dl.shape, 1), starts
    for sl in _slices(steps, group):
        a, x = _group(dl, dul, Bk, A, sl)
        h = _run(a, x, h)
        torch.matmul(x, Ck[sl, ..., None], out=y[sl])  # y = C.h: a matmul, as the einsum of the other scans
    return _from_steps(y[..., 0], length), starts


def ssm_traced(u: torch.Tensor, delta: torch.Tensor, A: torch.Tensor, B: torch.Tensor, C: torch.Tensor,
               ) -> torch.Tensor:
    """``ssm`` for torch.export / ONNX: the recurrence as torch's ``scan`` operator over the tokens (one
    graph loop whose trip count is the input's H*W, so the exported graph takes any size)."""
    from torch._higher_order_ops.scan import scan as scan_op

    def step(h: torch.Tensor, xs: tuple) -> tuple[torch.Tensor, torch.Tensor]:
        d_t, du_t, b_t, c_t = xs  # (b, d), (b, d), (b, n), (b, n)
        h = torch.exp(d_t[..., None] * A) * h + du_t[..., None] * b_t[:, None, :]
        return h, (h * c_t[:, None, :]).sum(-1)

    h0 = u.new_zeros(u.shape[0], u.shape[1], A.shape[1])
    _, y = scan_op(step, h0, (delta.movedim(-1, 0), (delta * u).movedim(-1, 0), B.movedim(-1, 0), C.movedim(-1, 0)))
    return y.movedim(0, -1)


def _ssm_chunked_backward(gy, u, delta, A, B, C, starts):  # noqa: ANN001, ANN202 - the forward's tensors
    """The adjoint g_t = C_t gy_t + a_{t+1} g_{t+1} by the chunked scan run backwards, with each group's
    states recomputed from the chunk starts; every gradient reduced group by group."""
    b, d, length = u.shape
    n = A.shape[1]
    chunks, steps, group = _chunk_plan(b, d, n, length)
    dl, dul = _to_steps(delta, chunks, steps), _to_steps(delta * u, chunks, steps)
    Bk, Ck, gk = _to_steps(B, chunks, steps), _to_steps(C, chunks, steps), _to_steps(gy, chunks, steps)
    slices = _slices(steps, group)
    h, states = starts, []  # each group's start state
    for sl in slices:
        states.append(h)
        h = _run(*_group(dl, dul, Bk, A, sl), h).clone()  # kept: a copy, not a view of the whole group
    # each chunk's local adjoint from a zero end, carried back as a_start g_start
    carry = torch.zeros_like(starts)
    for sl in reversed(slices):
        carry = _run_back(torch.exp(dl[sl, ..., None] * A), gk[sl, ..., None] * Ck[sl, :, :, None, :], carry)
    decay = torch.exp(dl.sum(0)[..., None] * A).movedim(1, -1).flip(-1)
    back = scan_parallel(decay, carry.movedim(1, -1).flip(-1)).flip(-1)  # what enters chunk c - 1
    carry = F.pad(back[..., 1:], (0, 1)).movedim(-1, 1)  # a_{t+1} g_{t+1} entering each chunk's end
    g_du, g_dA = dl.new_empty(steps, b, chunks, d), dl.new_empty(steps, b, chunks, d)
    gB, gC = dl.new_empty(steps, b, chunks, n), dl.new_empty(steps, b, chunks, n)
    gA = torch.zeros_like(A)
    for sl, h0 in zip(reversed(slices), reversed(states)):
        a, x = _group(dl, dul, Bk, A, sl)
        hs = torch.cat([h0[None], x])  # states h_{j-1} (hs[:-1]) and h_j (hs[1:])
        _run(a, hs[1:], h0)
        e = gk[sl, ..., None] * Ck[sl, :, :, None, :]
        carry = _run_back(a, e, carry)
        gC[sl] = torch.matmul(gk[sl, :, :, None, :], hs[1:])[..., 0, :]
        g_du[sl] = torch.matmul(e, Bk[sl, ..., None])[..., 0]
        gB[sl] = torch.matmul(dul[sl, :, :, None, :], e)[..., 0, :]
        g_loga = e.mul_(hs[:-1]).mul_(a)  # dL/d(delta A) through a = exp(delta A)
        g_dA[sl] = (g_loga * A).sum(-1)
        gA += g_loga.mul_(dl[sl, ..., None]).sum((0, 1, 2))
    g_du = _from_steps(g_du, length)
    return g_du * delta, g_du * u + _from_steps(g_dA, length), gA, _from_steps(gB, length), _from_steps(gC, length)


# ---------------------------------------------------------------------------------------------------
# the selective scan: y_t = C_t · h_t with h_t = exp(Δ_t A) h_{t-1} + Δ_t B_t u_t


CHANNEL_GROUP = 2 ** 18  # elements of one (b, d, n, L) state slice: channel groups this size stay in cache


def _groups(u: torch.Tensor, n: int, scan: str) -> list[slice]:
    """Channel groups whose state tensors hold about CHANNEL_GROUP elements (one group for the sequential
    scan, whose cost is its Python loop over the tokens)."""
    b, d, length = u.shape
    if scan == "sequential":
        return [slice(0, d)]
    dc = max(1, min(d, CHANNEL_GROUP // max(1, b * n * length)))
    return [slice(s, min(s + dc, d)) for s in range(0, d, dc)]


def _ssm(u: torch.Tensor, delta: torch.Tensor, A: torch.Tensor, B: torch.Tensor, C: torch.Tensor,
         scan: str) -> torch.Tensor:
    a = torch.exp(delta.unsqueeze(2) * A[None, :, :, None])
    h = _SCAN_FNS[scan](a, (delta * u).unsqueeze(2) * B.unsqueeze(1))
    return torch.einsum("bdnl,bnl->bdl", h, C)


def ssm(u: torch.Tensor, delta: torch.Tensor, A: torch.Tensor, B: torch.Tensor, C: torch.Tensor,
        scan: str = "parallel") -> torch.Tensor:
    """Σ_n C h over the state; u, delta (b, d, L), A (d, n), B, C (b, n, L) -> (b, d, L).

    The channels run in groups (the recurrence is per channel): a few cache-sized (b, d', n, L) state
    tensors instead of one large one, 2-4x faster on a CPU and a fraction of the memory (the chunked scan
    needs no groups: it never forms those tensors)."""
    if scan == "chunked":
        return ssm_chunked(u, delta, A, B, C)[0]
    parts = [_ssm(u[:, g], delta[:, g], A[g], B, C, scan) for g in _groups(u, A.shape[1], scan)]
    return parts[0] if len(parts) == 1 else torch.cat(parts, 1)


def _ssm_backward(gy, u, delta, A, B, C, scan):  # noqa: ANN001, ANN202 - tensors of one channel group
    run = _SCAN_FNS[scan]
    a = torch.exp(delta.unsqueeze(2) * A[None, :, :, None])
    du = delta * u
    h = run(a, du.unsqueeze(2) * B.unsqueeze(1))
    gC = torch.einsum("bdl,bdnl->bnl", gy, h)
    g = run(F.pad(a[..., 1:], (0, 1)).flip(-1), (gy.unsqueeze(2) * C.unsqueeze(1)).flip(-1)).flip(-1)
    g_loga = g * F.pad(h[..., :-1], (1, 0)) * a  # ∂/∂(Δ A) through a = exp(Δ A)
    del h, a
    g_du = torch.einsum("bdnl,bnl->bdl", g, B)
    gB = torch.einsum("bdnl,bdl->bnl", g, du)
    g_delta = g_du * u + torch.einsum("bdnl,dn->bdl", g_loga, A)
    gA = torch.einsum("bdnl,bdl->dn", g_loga, delta)
    return g_du * delta, g_delta, gA, gB, gC


class _SSMFunction(torch.autograd.Function):
    """``ssm`` with a hand-written backward: the adjoint recurrence g_t = ∂y/∂h_t + a_{t+1} g_{t+1}, run
    by the same scan on the reversed sequence; the (b, d, n, L) tensors are recomputed, not stored."""

    @staticmethod
    def forward(ctx, u, delta, A, B, C, scan):  # noqa: ANN001, ANN205 - autograd.Function signature
        ctx.scan = scan
        if scan == "chunked":  # keeps the chunk start states (1/steps of the state) for the backward
            y, starts = ssm_chunked(u, delta, A, B, C)
            ctx.save_for_backward(u, delta, A, B, C, starts)
            return y
        ctx.save_for_backward(u, delta, A, B, C)
        return ssm(u, delta, A, B, C, scan)

    @staticmethod
    def backward(ctx, gy):  # noqa: ANN001, ANN205
        if ctx.scan == "chunked":
            return (*_ssm_chunked_backward(gy.contiguous(), *ctx.saved_tensors), None)
        u, delta, A, B, C = ctx.saved_tensors
        gu, gdelta, gA = torch.empty_like(u), torch.empty_like(delta), torch.empty_like(A)
        gB, gC = torch.zeros_like(B), torch.zeros_like(C)
        for g in _groups(u, A.shape[1], ctx.scan):
            gu[:, g], gdelta[:, g], gA[g], gB_part, gC_part = _ssm_backward(
                gy[:, g], u[:, g], delta[:, g], A[g], B, C, ctx.scan)
            gB += gB_part
            gC += gC_part
        return gu, gdelta, gA, gB, gC, None


@cache
def _mamba_ssm_scan():
    """mamba_ssm's CUDA selective scan, or None when it does not import."""
    try:
        from mamba_ssm.ops.selective_scan_interface import selective_scan_fn
    except Exception:  # noqa: BLE001 - any import failure (no CUDA, ABI mismatch) means "not available"
        return None
    return selective_scan_fn


def selective_scan(u: torch.Tensor, delta: torch.Tensor, A: torch.Tensor, B: torch.Tensor, C: torch.Tensor,
                   D: torch.Tensor, z: torch.Tensor, delta_bias: torch.Tensor, scan: str = "auto") -> torch.Tensor:
    """Mamba's selective scan (``mamba_ssm.selective_scan_fn`` with delta_softplus=True): softplus(delta +
    bias) steps, + D·u skip, gated by SiLU(z). Shapes as mamba_ssm: u, delta, z (b, d, L); A (d, n);
    B, C (b, n, L); D, delta_bias (d)."""
    exporting = _tracing(u)  # traced graphs take the plain ops: no custom kernel, no autograd.Function
    if scan == "mamba_ssm" or (scan == "auto" and u.is_cuda and not exporting):
        fn = _mamba_ssm_scan()
        if fn is not None and u.is_cuda and not exporting:
            return fn(u, delta, A, B, C, D.float(), z=z, delta_bias=delta_bias.float(), delta_softplus=True)
        if scan == "mamba_ssm":
            raise UserError("panmamba: scan='mamba_ssm' needs the mamba_ssm package importable and a CUDA "
                            f"input (importable: {fn is not None}, input on {u.device}); use scan='chunked'")
        scan = "parallel"  # CUDA without mamba_ssm: the log-depth scan's few big ops suit a GPU
    if scan == "auto":
        scan = "chunked"  # a CPU: the chunked scan keeps its tensors in cache
    if u.dtype in (torch.float16, torch.bfloat16) or torch.is_autocast_enabled(u.device.type):
        # the state runs in float32 (as mamba_ssm's kernel does): a half-precision state drifts over H*W steps
        with torch.autocast(u.device.type, enabled=False):
            out = _selective_scan(*(t.float() for t in (u, delta, A, B, C, D, z, delta_bias)), scan, exporting)
        return out.to(u.dtype)
    return _selective_scan(u, delta, A, B, C, D, z, delta_bias, scan, exporting)


def _selective_scan(u, delta, A, B, C, D, z, delta_bias, scan, exporting):  # noqa: ANN001, ANN202 - as above
    delta = F.softplus(delta + delta_bias[:, None])
    if exporting and scan != "sequential":  # a graph loop over the tokens: any H, W, the same numbers
        return (ssm_traced(u, delta, A, B, C) + D[:, None] * u) * F.silu(z)
    needs_grad = torch.is_grad_enabled() and any(t.requires_grad for t in (u, delta, A, B, C))
    y = _SSMFunction.apply(u, delta, A, B, C, scan) if needs_grad and not exporting else ssm(u, delta, A, B, C, scan)
    return (y + D[:, None] * u) * F.silu(z)


# ---------------------------------------------------------------------------------------------------
# blocks (module and parameter names follow the public code, so its state_dict keys load)


class Mamba(nn.Module):
    """Mamba mixer on (B, L, d_model) tokens; ``cross`` (the reference's bimamba "v3") adds a second
    branch over ``extra`` tokens with its own input projection, conv, projections and A, D."""

    def __init__(self, d_model: int, d_state: int = 16, d_conv: int = 4, expand: int = 2, cross: bool = False,
                 scan: str = "auto", dt_min: float = 1e-3, dt_max: float = 0.1, dt_floor: float = 1e-4) -> None:
        super().__init__()
        self.d_inner, self.d_state = expand * d_model, d_state
        self.dt_rank = math.ceil(d_model / 16)
        self.scan, self.cross = scan, cross
        self.in_proj = nn.Linear(d_model, 2 * self.d_inner, bias=False)
        suffixes = ("", "_b") if cross else ("",)
        for s in suffixes:
            setattr(self, f"conv1d{s}", nn.Conv1d(self.d_inner, self.d_inner, d_conv, groups=self.d_inner,
                                                  padding=d_conv - 1))
            setattr(self, f"x_proj{s}", nn.Linear(self.d_inner, self.dt_rank + 2 * d_state, bias=False))
            dt_proj = nn.Linear(self.dt_rank, self.d_inner)
            nn.init.uniform_(dt_proj.weight, -self.dt_rank ** -0.5, self.dt_rank ** -0.5)
            # softplus(bias) log-uniform in [dt_min, dt_max]: the bias is its inverse softplus
            dt = torch.exp(torch.rand(self.d_inner) * (math.log(dt_max) - math.log(dt_min)) + math.log(dt_min))
            dt = dt.clamp(min=dt_floor)
            with torch.no_grad():
                dt_proj.bias.copy_(dt + torch.log(-torch.expm1(-dt)))
            setattr(self, f"dt_proj{s}", dt_proj)
            A = torch.arange(1, d_state + 1, dtype=torch.float32).repeat(self.d_inner, 1)
            setattr(self, "A_log" if not s else "A_b_log", nn.Parameter(torch.log(A)))
            setattr(self, f"D{s}", nn.Parameter(torch.ones(self.d_inner)))
        if cross:
            self.in_proj_extra = nn.Linear(d_model, 2 * self.d_inner, bias=False)
        self.out_proj = nn.Linear(self.d_inner, d_model, bias=False)

    def _branch(self, xz: torch.Tensor, s: str) -> torch.Tensor:
        length = xz.shape[-1]
        x, z = xz.chunk(2, dim=1)  # (B, d_inner, L) each
        x = F.silu(getattr(self, f"conv1d{s}")(x)[..., :length])  # causal: the left padding only
        dt, B, C = getattr(self, f"x_proj{s}")(x.transpose(1, 2)).split(
            [self.dt_rank, self.d_state, self.d_state], dim=-1)
        dt_proj = getattr(self, f"dt_proj{s}")
        delta = (dt @ dt_proj.weight.t()).transpose(1, 2)  # the bias goes in as delta_bias
        A = -torch.exp(getattr(self, "A_log" if not s else "A_b_log").float())
        return selective_scan(x, delta, A, B.transpose(1, 2), C.transpose(1, 2), getattr(self, f"D{s}"), z,
                              dt_proj.bias, self.scan)

    def forward(self, tokens: torch.Tensor, extra: torch.Tensor | None = None) -> torch.Tensor:
        y = self._branch(self.in_proj(tokens).transpose(1, 2), "")
        if self.cross:
            y = y + self._branch(self.in_proj_extra(extra).transpose(1, 2), "_b")
        return self.out_proj(y.transpose(1, 2))


class TokenNorm(nn.Module):
    """LayerNorm over the channels of (B, L, C) tokens (the reference's "WithBias" norm, eps 1e-5)."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.body = nn.LayerNorm(dim, eps=1e-5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


def _frozen_unused(module: nn.Module) -> nn.Module:
    # built by the reference but never called: counted and loadable, never trained
    for p in module.parameters():
        p.requires_grad_(False)
    return module


class PatchEmbed(nn.Module):
    """1x1 conv, then (B, C, H, W) -> (B, HW, C) tokens."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.proj = nn.Conv2d(dim, dim, 1)
        self.norm = nn.Module()  # the reference's bias-free LayerNorm, built but unused
        self.norm.body = nn.Module()
        self.norm.body.weight = nn.Parameter(torch.ones(dim), requires_grad=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(x).flatten(2).transpose(1, 2)


def unembed(tokens: torch.Tensor, hw: tuple) -> torch.Tensor:
    """(B, HW, C) tokens -> (B, C, H, W) on the input's own grid."""
    return tokens.transpose(1, 2).unflatten(-1, hw)


class HinResBlock(nn.Module):
    """x + LeakyReLU(conv(half-IN(LeakyReLU(conv(x))))), half-IN: affine InstanceNorm on half the channels."""

    def __init__(self, dim: int, slope: float = 0.2) -> None:
        super().__init__()
        self.identity = _frozen_unused(nn.Conv2d(dim, dim, 1))
        self.conv_1 = nn.Conv2d(dim, dim, 3, padding=1)
        self.conv_2 = nn.Conv2d(dim, dim, 3, padding=1)
        self.norm = HalfInstanceNorm(dim)
        self.slope = slope

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        r = F.leaky_relu(self.conv_1(x), self.slope)
        return x + F.leaky_relu(self.conv_2(self.norm(r)), self.slope)


class SingleMambaBlock(nn.Module):
    """(x, residual) -> (Mamba(LN(x + residual)), x + residual)."""

    def __init__(self, dim: int, scan: str) -> None:
        super().__init__()
        self.encoder = Mamba(dim, scan=scan)
        self.norm = TokenNorm(dim)

    def forward(self, x: torch.Tensor, residual: torch.Tensor | float) -> tuple[torch.Tensor, torch.Tensor]:
        residual = x + residual
        return self.encoder(self.norm(residual)), residual


class TokenSwapMamba(nn.Module):
    """Both streams add their residuals, are normalised, swap their first half channels, get a Mamba each."""

    def __init__(self, dim: int, scan: str) -> None:
        super().__init__()
        self.msencoder = Mamba(dim, scan=scan)
        self.panencoder = Mamba(dim, scan=scan)
        self.norm1 = TokenNorm(dim)
        self.norm2 = TokenNorm(dim)

    def forward(self, ms, pan, ms_residual, pan_residual):  # noqa: ANN001, ANN201 - four token tensors
        ms_residual = ms + ms_residual
        pan_residual = pan + pan_residual
        ms, pan = self.norm1(ms_residual), self.norm2(pan_residual)
        half = ms.shape[-1] // 2
        ms_swap = torch.cat([pan[..., :half], ms[..., half:]], -1)
        pan_swap = torch.cat([ms[..., :half], pan[..., half:]], -1)
        return self.msencoder(ms_swap), self.panencoder(pan_swap), ms_residual, pan_residual


class CrossMamba(nn.Module):
    """Cross Mamba over (MS tokens, PAN tokens), then a depth-wise 3x3 conv plus residual on the grid."""

    def __init__(self, dim: int, scan: str) -> None:
        super().__init__()
        self.cross_mamba = Mamba(dim, cross=True, scan=scan)
        self.norm1 = TokenNorm(dim)
        self.norm2 = TokenNorm(dim)
        self.dwconv = nn.Conv2d(dim, dim, 3, padding=1, groups=dim)

    def forward(self, ms: torch.Tensor, ms_resi: torch.Tensor | float, pan: torch.Tensor,
                hw: tuple) -> tuple[torch.Tensor, torch.Tensor]:
        ms_resi = ms + ms_resi
        # the reference normalises twice (norm1 of norm1, norm2 of norm2): kept, it changes the numbers
        ms, pan = self.norm1(ms_resi), self.norm2(pan)
        g = unembed(self.cross_mamba(self.norm1(ms), extra=self.norm2(pan)), hw)
        return (self.dwconv(g) + g).flatten(2).transpose(1, 2), ms_resi


class ChannelAttention(nn.Module):
    """x + gate(res) * res with res = conv-ReLU-conv(x), gate = SE (average pool, 1x1 C -> C/4 -> C)."""

    def __init__(self, dim: int, reduction: int = 4) -> None:
        super().__init__()
        self.conv_du = nn.Sequential(nn.Conv2d(dim, dim // reduction, 1), nn.ReLU(),
                                     nn.Conv2d(dim // reduction, dim, 1), nn.Sigmoid())
        self.process = nn.Sequential(nn.Conv2d(dim, dim, 3, padding=1), nn.ReLU(), nn.Conv2d(dim, dim, 3, padding=1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        res = self.process(x)
        return self.conv_du(res.mean(dim=(2, 3), keepdim=True)) * res + x


class Refine(nn.Module):
    """conv 3x3 -> channel attention -> conv 3x3 to the bands."""

    def __init__(self, dim: int, out: int) -> None:
        super().__init__()
        self.conv_in = nn.Conv2d(dim, dim, 3, padding=1)
        self.process = nn.Sequential(ChannelAttention(dim, 4))
        self.conv_last = nn.Conv2d(dim, out, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv_last(self.process(self.conv_in(x)))


class PanMamba(nn.Module):
    """Encoders -> 8+8 Mamba blocks -> 2 token swaps -> shallow fusion -> 5 cross Mambas -> refine, + MS."""

    def __init__(self, bands: int = 4, dim: int = 32, depth: int = 8, swaps: int = 2, cross: int = 5,
                 scan: str = "auto", upsample: str = "nearest", checkpoint: bool = False) -> None:
        super().__init__()
        self.checkpoint = bool(checkpoint)
        if scan not in SCANS:
            raise UserError(f"panmamba: scan={scan!r} is not accepted; use one of {', '.join(SCANS)}")
        self.upsample = check_upsample(upsample, "panmamba")
        self.pan_encoder = nn.Sequential(nn.Conv2d(1, dim, 3, padding=1), *[HinResBlock(dim) for _ in range(3)])
        self.ms_encoder = nn.Sequential(nn.Conv2d(bands, dim, 3, padding=1), *[HinResBlock(dim) for _ in range(3)])
        self.shallow_fusion1 = nn.Conv2d(2 * dim, dim, 3, padding=1)
        self.shallow_fusion2 = nn.Conv2d(2 * dim, dim, 3, padding=1)
        self.ms_to_token = PatchEmbed(dim)
        self.pan_to_token = PatchEmbed(dim)
        for i in range(cross):
            setattr(self, f"deep_fusion{i + 1}", CrossMamba(dim, scan))
        self.cross = cross
        self.pan_feature_extraction = nn.ModuleList([SingleMambaBlock(dim, scan) for _ in range(depth)])
        self.ms_feature_extraction = nn.ModuleList([SingleMambaBlock(dim, scan) for _ in range(depth)])
        for i in range(swaps):
            setattr(self, f"swap_mamba{i + 1}", TokenSwapMamba(dim, scan))
        self.swaps = swaps
        self.output = Refine(dim, bands)

    def set_scan(self, scan: str) -> None:
        """Switch every Mamba layer's scan implementation (e.g. "sequential" for a reference run)."""
        if scan not in SCANS:
            raise UserError(f"panmamba: scan={scan!r} is not accepted; use one of {', '.join(SCANS)}")
        for m in self.modules():
            if isinstance(m, Mamba):
                m.scan = scan

    def forward(self, lms: torch.Tensor, pan: torch.Tensor, ms: torch.Tensor | None = None) -> torch.Tensor:
        ms_bic = upsample(lms, ms, pan, self.upsample)
        ms_f, pan_f = self.ms_encoder(ms_bic), self.pan_encoder(pan)
        hw = tuple(ms_f.shape[-2:])
        ms_t, pan_t = self.ms_to_token(ms_f), self.pan_to_token(pan_f)
        ms_r: torch.Tensor | float = 0.0
        pan_r: torch.Tensor | float = 0.0
        run = self._run
        for block in self.ms_feature_extraction:
            ms_t, ms_r = run(block, ms_t, ms_r)
        for block in self.pan_feature_extraction:
            pan_t, pan_r = run(block, pan_t, pan_r)
        for i in range(self.swaps):
            ms_t, pan_t, ms_r, pan_r = run(getattr(self, f"swap_mamba{i + 1}"), ms_t, pan_t, ms_r, pan_r)
        ms_f, pan_f = unembed(ms_t, hw), unembed(pan_t, hw)
        ms_f = self.shallow_fusion1(torch.cat([ms_f, pan_f], 1)) + ms_f
        pan_f = self.shallow_fusion2(torch.cat([pan_f, ms_f], 1)) + pan_f  # with the fused MS, as the reference
        ms_t, pan_t = self.ms_to_token(ms_f), self.pan_to_token(pan_f)
        ms_r = 0.0
        for i in range(self.cross):
            ms_t, ms_r = run(getattr(self, f"deep_fusion{i + 1}"), ms_t, ms_r, pan_t, hw)
        return self.output(unembed(ms_t, hw)) + ms_bic

    def _run(self, block: nn.Module, *args: object) -> tuple:
        """A Mamba block, with ``checkpoint`` recomputed in the backward instead of keeping its activations."""
        if self.checkpoint and torch.is_grad_enabled() and not _tracing(args[0]):
            from torch.utils.checkpoint import checkpoint

            return checkpoint(block, *args, use_reentrant=False)
        return block(*args)


def panmamba(bands: int = 4, scan: str = "auto", upsample: str = "nearest", checkpoint: bool = False) -> nn.Module:
    """Pan-Mamba (public final version), pure-PyTorch selective scan (chunked on a CPU), 478.4K params."""
    return PanMamba(bands, dim=32, depth=8, swaps=2, cross=5, scan=scan, upsample=upsample, checkpoint=checkpoint)


MODELS = {"panmamba": (panmamba, {"fixed_bands": None, "exportable": True, "prefers_eager": _EAGER,
                                  "family": "panmamba", "paper": PAPER,
                                  "code": CODE, "reference_params": 478_444})}
