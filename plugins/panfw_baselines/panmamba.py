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
  recurrence h_t = exp(Δ_t A)·h_{t−1} + Δ_t B_t x_t runs as a blocked parallel scan: blocks of 8
  steps scanned by recursive doubling (3 steps), the block ends scanned the same way one level up, up to 9
  levels (log-depth; any L up to 8^9), the carries pushed back down. Its backward is the adjoint scan
  run backwards (an autograd Function that recomputes the big (B, D, N, L) tensors instead of storing
  them). ``scan="sequential"`` runs the plain loop (the reference semantics, for tests and timing);
  ``scan="mamba_ssm"`` uses the CUDA kernel and fails loudly where it cannot; ``scan="auto"`` takes
  ``mamba_ssm`` on CUDA when it imports, else the parallel scan. The layer is never replaced by another
  (PanTiny's copy silently swaps Mamba for one ``nn.Linear`` when the import fails).
- The reference reshapes tokens with a hard-coded ``view(B, C, 128, 128)`` (``128*8`` in one copy);
  panfw uses the input's own H, W, so any size works.
- **Export**: torch.export at a fixed size works; with dynamic H, W it does not. Each level of the scan
  pads the H·W tokens to whole blocks (ceil(L/8)·8), and torch.export's symbolic shapes cannot prove the
  relations between those padded lengths for every H, W (it reports "Constraints violated"), so the
  registration says ``exportable`` = why. A padding-free formulation (log-space cumulative sums) would
  trace, but loses about 1e-3 relative precision in float32 on long sequences.
- Parameters the reference builds but never uses in its forward (each HinResBlock's 1x1 ``identity``
  conv and each token embedding's bias-free norm: 6,400 values) are kept, frozen, so the count and the
  state_dict keys are the public code's; they get no gradient, as in the reference.
- Any band count (the reference fixes 4); the upsampler is an option (``upsample="lms"`` uses the
  data's upsampled MS instead of nearest).

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
from panfw_baselines._common import check_upsample, upsample

PAPER = ("He, Cao, Zhang, Yan, Wang, Li, Xie, Hong, Zhou, Pan-Mamba: Effective pan-sharpening with state "
         "space model, Information Fusion 115 (2025) 102779")
CODE = "github.com/alexhe101/Pan-Mamba pan-sharpening/model/panmamba_baseline_finalversion.py"

_WHY = ("not with dynamic H, W: the parallel scan pads the H*W tokens to whole blocks at each level and "
        "torch.export cannot prove the padded lengths' relations symbolically; a fixed-size torch.export works")
SCANS = ("auto", "parallel", "sequential", "mamba_ssm")
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
        # tracing would "succeed" with guards that fail at every other size: refuse at export time instead
        raise UserError(f"panmamba cannot be traced with a dynamic token count: {_WHY}")
    torch._check(a.shape[-1] <= BLOCK ** LEVELS,
                 lambda: f"the parallel scan handles sequences up to {BLOCK ** LEVELS} tokens; tile the scene")
    return _scan_blocks(a, b, LEVELS)


_SCAN_FNS = {"parallel": scan_parallel, "sequential": scan_sequential}


# ---------------------------------------------------------------------------------------------------
# the selective scan: y_t = C_t · h_t with h_t = exp(Δ_t A) h_{t-1} + Δ_t B_t u_t


CHUNK = 2 ** 18  # elements of one (b, d, n, L) state slice: channel groups this size stay in cache


def _groups(u: torch.Tensor, n: int, scan: str) -> list[slice]:
    """Channel groups whose state tensors hold about CHUNK elements (one group while tracing, and for the
    sequential scan, whose cost is its Python loop over the tokens)."""
    b, d, length = u.shape
    if scan == "sequential" or _tracing(u):
        return [slice(0, d)]
    dc = max(1, min(d, CHUNK // max(1, b * n * length)))
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
    tensors instead of one large one, 2-4x faster on a CPU and a fraction of the memory."""
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
        ctx.save_for_backward(u, delta, A, B, C)
        return ssm(u, delta, A, B, C, scan)

    @staticmethod
    def backward(ctx, gy):  # noqa: ANN001, ANN205
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
                            f"input (importable: {fn is not None}, input on {u.device}); use scan='parallel'")
        scan = "parallel"
    if scan == "auto":
        scan = "parallel"
    delta = F.softplus(delta + delta_bias[:, None])
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
        self.norm = nn.InstanceNorm2d(dim // 2, affine=True)
        self.slope = slope

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        r1, r2 = F.leaky_relu(self.conv_1(x), self.slope).chunk(2, dim=1)
        r = F.leaky_relu(self.conv_2(torch.cat([self.norm(r1), r2], 1)), self.slope)
        return x + r


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
                 scan: str = "auto", upsample: str = "nearest") -> None:
        super().__init__()
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
        for block in self.ms_feature_extraction:
            ms_t, ms_r = block(ms_t, ms_r)
        for block in self.pan_feature_extraction:
            pan_t, pan_r = block(pan_t, pan_r)
        for i in range(self.swaps):
            ms_t, pan_t, ms_r, pan_r = getattr(self, f"swap_mamba{i + 1}")(ms_t, pan_t, ms_r, pan_r)
        ms_f, pan_f = unembed(ms_t, hw), unembed(pan_t, hw)
        ms_f = self.shallow_fusion1(torch.cat([ms_f, pan_f], 1)) + ms_f
        pan_f = self.shallow_fusion2(torch.cat([pan_f, ms_f], 1)) + pan_f  # with the fused MS, as the reference
        ms_t, pan_t = self.ms_to_token(ms_f), self.pan_to_token(pan_f)
        ms_r = 0.0
        for i in range(self.cross):
            ms_t, ms_r = getattr(self, f"deep_fusion{i + 1}")(ms_t, ms_r, pan_t, hw)
        return self.output(unembed(ms_t, hw)) + ms_bic


def panmamba(bands: int = 4, scan: str = "auto", upsample: str = "nearest") -> nn.Module:
    """Pan-Mamba (public final version), pure-PyTorch parallel selective scan, 478.4K params."""
    return PanMamba(bands, dim=32, depth=8, swaps=2, cross=5, scan=scan, upsample=upsample)


MODELS = {"panmamba": (panmamba, {"fixed_bands": None, "exportable": _WHY, "family": "panmamba", "paper": PAPER,
                                  "code": CODE, "reference_params": 478_444})}
