"""Metric objects (the panfw Metric contract) over the toolbox-exact functions of ``functional``.

Inputs are [0,1] images; metrics the toolbox computes in digital numbers multiply by the sensor's
maximum DN first (``scale="sensor"``), or by a given number (``scale=1`` for inputs already in DN).
Every metric returns one float64 value per image, shape (B,), on the inputs' device, and accepts
``sensor`` as one name / Sensor for the batch or one per image.
"""

from __future__ import annotations

import math
from typing import Any

import torch

from panfw.errors import UserError
from panfw.evaluation import group_by_sensor
from panfw.sensors import Sensor, get_sensor
from panfw_metrics import functional as Fm


def _check_scale(scale: Any) -> Any:
    if scale == "sensor":
        return scale
    if isinstance(scale, bool) or not isinstance(scale, (int, float)) or not scale > 0:
        raise UserError(f"metric option scale={scale!r} is not accepted; accepted: \"sensor\" (the sensor's "
                        "max DN, for [0,1] inputs) or a positive number (1 for inputs already in DN)")
    return float(scale)


def _check_int(name: str, value: Any, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise UserError(f"metric option {name}={value!r} is not accepted; accepted: an integer >= {minimum}")
    return value


class _Metric:
    """Shared plumbing: sensor look-up, DN scaling, thresholding, per-sensor grouping."""

    name = ""
    kind = "reference"
    higher_is_better = True
    # registry metadata the report reads: table title, decimals shown, value of a perfect fusion, unit
    title = ""
    decimals = 4
    ideal = 1.0
    unit = ""
    accepts_cache = True  # the Evaluator hands metrics scoring the same images one dict to share work

    accepts_ratio = True  # __call__ takes ratio= (the data's, from the MS and PAN shapes)

    def __init__(self, *, scale: Any = "sensor", threshold: bool = False, ratio: int | None = None,
                 bit_depth: int | None = None) -> None:
        self.scale = _check_scale(scale)
        self.threshold = bool(threshold)
        self.ratio = None if ratio is None else _check_int("ratio", ratio, 1)
        self.bit_depth = None if bit_depth is None else _check_int("bit_depth", bit_depth, 1)
        self._data_ratio: int | None = None  # set by __call__ from the data for the metrics that use one

    def __repr__(self) -> str:
        opts = ", ".join(f"{k}={v!r}" for k, v in vars(self).items())
        return f"{type(self).__name__}({opts})"

    needs_dn = False  # True where the value depends on the DN scale (the uint16 cast of Q2n)

    def _sensor(self, sensor: Any, need: str) -> Sensor | None:
        if sensor is None:
            if need:
                raise UserError(f"metric {self.name!r} needs the sensor for {need}: pass sensor=\"wv3\" "
                                "(or another sensor name)")
            return None
        return get_sensor(sensor)

    def _factor(self, sensor: Sensor | None) -> float:
        if self.scale != "sensor":
            return self.scale
        if self.bit_depth is not None:  # 16-bit data of a sensor listed at 11 bits: the data's depth wins
            return float(2 ** self.bit_depth - 1)
        return 1.0 if sensor is None else float(sensor.max_dn)  # scale-free metrics need no sensor

    def _bits(self, sensor: Sensor | None) -> int:
        return int(self.bit_depth if self.bit_depth is not None else sensor.bit_depth)

    def _needs(self) -> str:
        needs = []
        if self.needs_dn and self.scale == "sensor" and self.bit_depth is None:
            needs.append("its DN scale (or set scale=<number> or bit_depth=<bits>)")
        if self.threshold and self.bit_depth is None:
            needs.append("its bit depth (thresholding; or set bit_depth=<bits>)")
        return ", ".join(needs)

    def _set_data_ratio(self, ratio: int | None) -> None:
        """The ratio the data has (from the MS/PAN shapes, or the caller's): it wins over the sensor's;
        a ``ratio`` option that contradicts it is an error."""
        if ratio is not None and self.ratio is not None and int(ratio) != self.ratio:
            raise UserError(f"metric {self.name!r}: the option ratio={self.ratio} contradicts the data, whose "
                            f"PAN/MS ratio is {int(ratio)}; drop the option (the ratio is read from the data)")
        self._data_ratio = None if ratio is None else int(ratio)

    def _ratio(self, sensor: Sensor | None) -> int:
        if self._data_ratio is not None:
            return self._data_ratio
        if self.ratio is not None:
            return self.ratio
        if sensor is None:
            raise UserError(f"metric {self.name!r} needs the PAN/MS ratio: pass the MS (the ratio is read from its "
                            "shape), ratio=, or the sensor")
        return sensor.ratio

    def _dn_fused(self, fused: torch.Tensor, sensor: Sensor | None) -> torch.Tensor:
        x = fused.detach().to(torch.float64) * self._factor(sensor)
        return Fm.threshold_dn(x, self._bits(sensor)) if self.threshold else x

    def _by_sensor(self, sensor: Any, n: int, fn) -> torch.Tensor:
        groups = group_by_sensor(sensor, n)
        if len(groups) == 1:
            return fn(groups[0][0], None)
        out = None
        for s, idx in groups:
            v = fn(s, idx)
            if out is None:
                out = v.new_empty(n)
            out[idx.to(v.device)] = v
        return out


def data_ratio(ms: torch.Tensor, pan: torch.Tensor, what: str = "metric") -> int:
    """The PAN/MS ratio of the data: PAN size / MS size, one integer >= 1 in both dimensions."""
    (ph, pw), (mh, mw) = pan.shape[-2:], ms.shape[-2:]
    if mh == 0 or mw == 0 or ph % mh or pw % mw or ph // mh != pw // mw:
        raise UserError(f"{what}: PAN {ph}x{pw} and MS {mh}x{mw} are not one integer ratio apart")
    return ph // mh


def _as4(x: torch.Tensor, what: str) -> torch.Tensor:
    x = torch.as_tensor(x)
    if x.dim() == 3:
        return x[None]
    if x.dim() != 4:
        raise UserError(f"{what}: expected (B,C,H,W) or (C,H,W), got shape {tuple(x.shape)}")
    return x


def _sel(x: torch.Tensor | None, idx: torch.Tensor | None) -> torch.Tensor | None:
    return x if x is None or idx is None else x[idx.to(x.device)]


# ---- reference metrics ---------------------------------------------------------------------------

class ReferenceMetric(_Metric):
    """``metric(fused, reference, sensor=...)`` on the toolbox's cropped DN images."""

    kind = "reference"

    def __init__(self, *, cut: int = 21, **kw: Any) -> None:
        super().__init__(**kw)
        self.cut = _check_int("cut", cut, 0)

    @torch.no_grad()
    def __call__(self, fused: torch.Tensor, reference: torch.Tensor, sensor: Any = None,
                 cache: dict | None = None, ratio: int | None = None) -> torch.Tensor:
        """``ratio``: the data's PAN/MS ratio (the evaluator passes it from the MS and PAN shapes);
        metrics that use none ignore it."""
        f, r = _as4(fused, self.name), _as4(reference, self.name)
        self._set_data_ratio(ratio)
        if f.shape != r.shape:
            raise UserError(f"metric {self.name!r}: fused {tuple(f.shape)} and reference {tuple(r.shape)} must "
                            "have the same shape")

        cache = {} if cache is None else cache

        def run(s: Any, idx: torch.Tensor | None) -> torch.Tensor:
            sens = self._sensor(s, self._needs())
            k = self._factor(sens)
            # the cropped DN images, shared with the other metrics scoring the same batch
            state = cache.setdefault((getattr(sens, "name", None), None if idx is None else tuple(idx.tolist())), {})
            th = self._bits(sens) if self.threshold else False
            fd_key, rd_key = ("fused", k, th, "cut", self.cut), ("ref", k, "cut", self.cut)
            if fd_key not in state:
                state[fd_key] = Fm.cut_bounds(self._dn_fused(_sel(f, idx), sens), self.cut)
            if rd_key not in state:
                state[rd_key] = Fm.cut_bounds(_sel(r, idx).to(torch.float64) * k, self.cut)
            return self.compute(state[fd_key], state[rd_key], sens)

        return self._by_sensor(sensor, f.shape[0], run)

    def compute(self, fused: torch.Tensor, ref: torch.Tensor, sensor: Sensor | None) -> torch.Tensor:
        raise NotImplementedError


class PSNR(ReferenceMetric):
    """PSNR in dB on the images as given ([0,1]: data_range 1), over all bands and pixels."""

    name, higher_is_better = "psnr", True
    title, decimals, ideal, unit = "PSNR", 2, math.inf, "dB"

    def __init__(self, data_range: float = 1.0, cut: int = 0, ratio: int | None = None,
                 bit_depth: int | None = None) -> None:
        super().__init__(cut=cut, scale=1)  # on the images as given: ratio and bit_depth accepted, unused
        self.data_range = float(data_range)

    def compute(self, fused, ref, sensor):
        return Fm.psnr(fused, ref, self.data_range)


class SSIM(ReferenceMetric):
    """Mean SSIM per image: 11x11 Gaussian window (sigma 1.5), reflect padding (torchmetrics, kornia)."""

    name, higher_is_better = "ssim", True
    title = "SSIM"

    def __init__(self, data_range: float = 1.0, window_size: int = 11, sigma: float = 1.5,
                 padding: str = "reflect", clamp: bool = False, cut: int = 0, ratio: int | None = None,
                 bit_depth: int | None = None) -> None:
        from panfw.ops.ssim import PADDINGS

        super().__init__(cut=cut, scale=1)
        if padding not in PADDINGS:
            raise UserError(f"metric 'ssim' padding={padding!r} is not accepted; accepted: {', '.join(PADDINGS)}")
        self.data_range, self.window_size, self.sigma = float(data_range), int(window_size), float(sigma)
        self.padding, self.clamp = padding, bool(clamp)

    def compute(self, fused, ref, sensor):
        from panfw.ops.ssim import ssim_map

        m = ssim_map(fused, ref, self.data_range, self.window_size, self.sigma, self.padding)
        if self.clamp:
            m = m.clamp(0, 1)
        return m.flatten(1).mean(1)


class SAM(ReferenceMetric):
    """Spectral angle mapper (toolbox SAM), degrees by default."""

    name, higher_is_better = "sam", False
    title, decimals, ideal, unit = "SAM", 3, 0.0, "deg"

    def __init__(self, units: str = "deg", cut: int = 21, threshold: bool = False, scale: Any = "sensor",
                 ratio: int | None = None, bit_depth: int | None = None) -> None:
        if units not in ("deg", "rad"):
            raise UserError(f"metric 'sam' units={units!r} is not accepted; accepted: deg, rad")
        super().__init__(cut=cut, threshold=threshold, scale=scale, bit_depth=bit_depth)
        self.units = units

    def compute(self, fused, ref, sensor):
        return Fm.sam(fused, ref, self.units)


class ERGAS(ReferenceMetric):
    """ERGAS with the 100/ratio factor (toolbox ERGAS)."""

    name, higher_is_better = "ergas", False
    title, decimals, ideal = "ERGAS", 3, 0.0

    def __init__(self, ratio: int | None = None, cut: int = 21, threshold: bool = False,
                 scale: Any = "sensor", bit_depth: int | None = None) -> None:
        super().__init__(cut=cut, threshold=threshold, scale=scale, ratio=ratio, bit_depth=bit_depth)

    def compute(self, fused, ref, sensor):
        return Fm.ergas(fused, ref, self._ratio(sensor))


class Q(ReferenceMetric):
    """Q_avg: UIQI per band on 32x32 sliding windows, mean over windows and bands (toolbox Q)."""

    name, higher_is_better = "q", True
    title = "Q"

    def __init__(self, block_size: int = 32, cut: int = 21, threshold: bool = False, scale: Any = "sensor",
                 ratio: int | None = None, bit_depth: int | None = None) -> None:
        super().__init__(cut=cut, threshold=threshold, scale=scale, bit_depth=bit_depth)
        self.block_size = _check_int("block_size", block_size, 2)

    def compute(self, fused, ref, sensor):
        if min(fused.shape[-2:]) < self.block_size:
            raise UserError(f"metric 'q': after the {self.cut}-pixel cut the images are {fused.shape[-2]}x"
                            f"{fused.shape[-1]}, smaller than the {self.block_size}x{self.block_size} window; "
                            "pass cut=0 or a smaller block_size")
        return Fm.q_avg(fused, ref, self.block_size)


class Q2n(ReferenceMetric):
    """Q2^n (Q4/Q8) hypercomplex quality index on 32x32 blocks, in DN (toolbox q2n)."""

    name, higher_is_better, needs_dn = "q2n", True, True
    title = "Q2n"

    def __init__(self, block_size: int = 32, cut: int = 21, threshold: bool = False, scale: Any = "sensor",
                 ratio: int | None = None, bit_depth: int | None = None) -> None:
        super().__init__(cut=cut, threshold=threshold, scale=scale, bit_depth=bit_depth)
        self.block_size = _check_int("block_size", block_size, 2)

    def compute(self, fused, ref, sensor):
        return Fm.q2n(fused, ref, self.block_size)


class SCC(ReferenceMetric):
    """Spatial correlation coefficient of Sobel gradient magnitudes (toolbox SCC)."""

    name, higher_is_better = "scc", True
    title = "SCC"

    def __init__(self, cut: int = 21, threshold: bool = False, scale: Any = "sensor", ratio: int | None = None,
                 bit_depth: int | None = None) -> None:
        super().__init__(cut=cut, threshold=threshold, scale=scale, bit_depth=bit_depth)

    def compute(self, fused, ref, sensor):
        return Fm.scc(fused, ref)


# ---- no-reference metrics ------------------------------------------------------------------------

class NoReferenceMetric(_Metric):
    """``metric(fused, ms, pan, sensor=..., lms=None)`` at full resolution; ``lms`` (the MS on the
    PAN grid, I_MS) defaults to interp23tap(ms, ratio)."""

    kind = "no_reference"
    higher_is_better = False

    def __init__(self, *, block_size: int = 32, **kw: Any) -> None:
        super().__init__(**kw)
        self.block_size = _check_int("block_size", block_size, 2)

    @torch.no_grad()
    def __call__(self, fused: torch.Tensor, ms: torch.Tensor | None, pan: torch.Tensor, sensor: Any = None,
                 lms: torch.Tensor | None = None, cache: dict | None = None, ratio: int | None = None) -> torch.Tensor:
        """The PAN/MS ratio is read from the ``ms`` and ``pan`` shapes; a ``ratio`` given here or as
        the option that contradicts them is an error (without ``ms``: ``ratio``, the option, the sensor)."""
        f = _as4(fused, self.name)
        p = torch.as_tensor(pan)
        p = p[None, None] if p.dim() == 2 else (p[None] if p.dim() == 3 else p)
        m = None if ms is None else _as4(ms, self.name)
        lm = None if lms is None else _as4(lms, self.name)
        if m is None and lm is None:
            raise UserError(f"metric {self.name!r} needs ms or lms")
        if m is not None:
            shape_ratio = data_ratio(m, p, self.name)
            if ratio is not None and int(ratio) != shape_ratio:
                raise UserError(f"metric {self.name!r}: ratio={ratio} contradicts the data: PAN "
                                f"{tuple(p.shape[-2:])} / MS {tuple(m.shape[-2:])} = {shape_ratio}")
            ratio = shape_ratio
        self._set_data_ratio(ratio)
        cache = {} if cache is None else cache

        def run(s: Any, idx: torch.Tensor | None) -> torch.Tensor:
            sens = self._sensor(s, self._needs())
            k = self._factor(sens)
            # one memo per sensor group: the caller's cache holds the same images for every metric
            key = (getattr(sens, "name", None), None if idx is None else tuple(idx.tolist()))
            state = cache.setdefault(key, {})
            fd_key, pd_key = ("fused", k, self._bits(sens) if self.threshold else False), ("pan", k)
            if fd_key not in state:
                state[fd_key] = self._dn_fused(_sel(f, idx), sens)
            fd = state[fd_key]
            if pd_key not in state:
                state[pd_key] = _sel(p, idx).to(fd.device, torch.float64) * k
            pd = state[pd_key]
            lms_key = ("lms", k, self._ratio(sens) if lm is None else None)
            if lms_key not in state:
                if lm is not None:
                    state[lms_key] = _sel(lm, idx).to(fd.device, torch.float64) * k
                else:
                    from panfw.ops.resample import interp23tap

                    state[lms_key] = interp23tap(_sel(m, idx).to(fd.device, torch.float64) * k, self._ratio(sens))
            ld = state[lms_key]
            if ld.shape != fd.shape:
                raise UserError(f"metric {self.name!r}: lms {tuple(ld.shape)} and fused {tuple(fd.shape)} must "
                                "have the same shape (ms upsampled by the ratio)")
            return self.compute(_Context(self, state, fd, ld, pd, sens, k))

        return self._by_sensor(sensor, f.shape[0], run)

    def compute(self, ctx: _Context) -> torch.Tensor:
        raise NotImplementedError


class _Context:
    """One sensor group's DN images and a memo shared by the FR metrics (D_S serves D_s, QNR and
    HQNR; the low-pass PAN every D_S)."""

    def __init__(self, metric: NoReferenceMetric, state: dict, fused: torch.Tensor, lms: torch.Tensor,
                 pan: torch.Tensor, sensor: Sensor | None, factor: float) -> None:
        self.metric, self.state, self.fused, self.lms, self.pan, self.sensor = metric, state, fused, lms, pan, sensor
        self.block = metric.block_size
        self.base = (factor, metric.threshold, metric.block_size)

    @property
    def ratio(self) -> int:
        return self.metric._ratio(self.sensor)

    def memo(self, key: tuple, fn) -> torch.Tensor:
        key = key + self.base
        if key not in self.state:
            self.state[key] = fn()
        return self.state[key]

    def d_lambda(self, p: float = 1) -> torch.Tensor:
        return self.memo(("d_lambda", p), lambda: Fm.d_lambda(self.fused, self.lms, self.block, p))

    def d_s(self, q: float = 1) -> torch.Tensor:
        ratio = self.ratio
        pan_low = self.memo(("pan_low", ratio), lambda: Fm.pan_lowpass(self.pan, ratio))
        return self.memo(("d_s", q, ratio),
                         lambda: Fm.d_s(self.fused, self.lms, self.pan, ratio, self.block, q, pan_low=pan_low))

    def d_lambda_k(self) -> torch.Tensor:
        gains, ratio = self.sensor.gains(self.fused.shape[1]), self.ratio
        return self.memo(("d_lambda_k", gains, ratio),
                         lambda: Fm.d_lambda_k(self.fused, self.lms, gains, ratio, self.block))


class DLambda(NoReferenceMetric):
    """Spectral distortion D_lambda (toolbox 1.0: band-pair UIQI on 32x32 blocks, fused vs lms)."""

    name = "d_lambda"
    title, ideal = "D_λ", 0.0

    def __init__(self, block_size: int = 32, p: float = 1, ratio: int | None = None, threshold: bool = False,
                 scale: Any = "sensor", bit_depth: int | None = None) -> None:
        super().__init__(block_size=block_size, threshold=threshold, scale=scale, ratio=ratio, bit_depth=bit_depth)
        self.p = p

    def compute(self, ctx):
        return ctx.d_lambda(self.p)


class DS(NoReferenceMetric):
    """Spatial distortion D_s (toolbox 1.0: UIQI with PAN vs lms with the low-passed PAN, 32x32 blocks)."""

    name = "d_s"
    title, ideal = "D_s", 0.0

    def __init__(self, block_size: int = 32, q: float = 1, ratio: int | None = None, threshold: bool = False,
                 scale: Any = "sensor", bit_depth: int | None = None) -> None:
        super().__init__(block_size=block_size, threshold=threshold, scale=scale, ratio=ratio, bit_depth=bit_depth)
        self.q = q

    def compute(self, ctx):
        return ctx.d_s(self.q)


class QNR(NoReferenceMetric):
    """QNR = (1 - D_lambda)^alpha (1 - D_s)^beta (toolbox 1.0 options)."""

    name, higher_is_better = "qnr", True
    title = "QNR"

    def __init__(self, block_size: int = 32, p: float = 1, q: float = 1, alpha: float = 1, beta: float = 1,
                 ratio: int | None = None, threshold: bool = False, scale: Any = "sensor",
                 bit_depth: int | None = None) -> None:
        super().__init__(block_size=block_size, threshold=threshold, scale=scale, ratio=ratio, bit_depth=bit_depth)
        self.p, self.q, self.alpha, self.beta = p, q, alpha, beta

    def compute(self, ctx):
        return (1 - ctx.d_lambda(self.p)) ** self.alpha * (1 - ctx.d_s(self.q)) ** self.beta


class DLambdaK(NoReferenceMetric):
    """Khan's spectral distortion D_lambda^K = 1 - Q2n(lms, MTF(fused)) (toolbox D_lambda_K)."""

    name, needs_dn = "d_lambda_k", True
    title, ideal = "D_λ^K", 0.0

    def __init__(self, block_size: int = 32, ratio: int | None = None, threshold: bool = False,
                 scale: Any = "sensor", bit_depth: int | None = None) -> None:
        super().__init__(block_size=block_size, threshold=threshold, scale=scale, ratio=ratio, bit_depth=bit_depth)

    def _needs(self) -> str:
        return ", ".join(filter(None, [super()._needs(), "its MTF gains"]))

    def compute(self, ctx):
        return ctx.d_lambda_k()


class HQNR(NoReferenceMetric):
    """Hybrid QNR = (1 - D_lambda^K)(1 - D_s), the toolbox's default full-resolution index."""

    name, higher_is_better, needs_dn = "hqnr", True, True
    title = "HQNR"

    def __init__(self, block_size: int = 32, ratio: int | None = None, threshold: bool = False,
                 scale: Any = "sensor", bit_depth: int | None = None) -> None:
        super().__init__(block_size=block_size, threshold=threshold, scale=scale, ratio=ratio, bit_depth=bit_depth)

    def _needs(self) -> str:
        return ", ".join(filter(None, [super()._needs(), "its MTF gains"]))

    def compute(self, ctx):
        return (1 - ctx.d_lambda_k()) * (1 - ctx.d_s())


META_KEYS = ("kind", "higher_is_better", "title", "decimals", "ideal", "unit")
METRICS = {cls.name: cls for cls in (PSNR, SSIM, SAM, ERGAS, Q, Q2n, SCC, DLambda, DS, QNR, DLambdaK, HQNR)}


def metric_meta(cls: type) -> dict[str, Any]:
    """The registry metadata of a metric class (kind, better direction, title, decimals, ideal, unit)."""
    return {key: getattr(cls, key) for key in META_KEYS}
