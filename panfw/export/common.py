"""What every export path shares: the input layout, dynamic shapes, precision casting, the parity
check and the metadata stored beside an exported file."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import attrs
import torch
from torch import nn

from panfw.errors import UserError

INPUT_NAMES = ("lms", "pan", "ms")
OUTPUT_NAME = "hrms"
PRECISIONS = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}
# largest |exported - PyTorch| accepted, in the [0, 1] image scale
TOLERANCE = {"fp32": 1e-4, "fp16": 1e-2, "bf16": 5e-2}
META_FORMAT = "panfw-export"


@attrs.define
class ShapeSpec:
    """Input layout: ``bands`` fixed, PAN-grid H and W dynamic in [min_size, max_size], multiples of
    ``ratio``; ``opt_size`` is what TensorRT optimises for and the first parity size."""

    bands: int
    ratio: int = 4
    min_size: int = 32
    opt_size: int = 512
    max_size: int = 2048

    def __attrs_post_init__(self) -> None:
        r = self.ratio
        for name in ("min_size", "opt_size", "max_size"):
            v = getattr(self, name)
            if v <= 0 or v % r:
                raise UserError(f"--{name.replace('_', '-')} {v}: must be a positive multiple of the "
                                f"ratio {r}")
        if self.min_size < 2 * r:
            raise UserError(f"--min-size {self.min_size}: must be at least {2 * r} (2 MS pixels at "
                            f"ratio {r}; torch.export fixes sizes of 0 and 1)")
        if not self.min_size <= self.opt_size <= self.max_size:
            raise UserError(f"sizes must satisfy min <= opt <= max, got {self.min_size}, {self.opt_size}, "
                            f"{self.max_size}")
        if self.bands < 1:
            raise UserError(f"--bands {self.bands}: must be >= 1")

    def dynamic_shapes(self) -> tuple[dict, dict, dict]:
        """torch.export dynamic shapes for (lms, pan, ms): ms is (h, w), lms and pan (r*h, r*w)."""
        from torch.export import Dim

        r = self.ratio
        h = Dim("h", min=self.min_size // r, max=self.max_size // r)
        w = Dim("w", min=self.min_size // r, max=self.max_size // r)
        return {2: r * h, 3: r * w}, {2: r * h, 3: r * w}, {2: h, 3: w}

    def shapes(self, height: int, width: int) -> tuple[tuple[int, ...], ...]:
        r, c = self.ratio, self.bands
        return (1, c, height, width), (1, 1, height, width), (1, c, height // r, width // r)

    def example(self, height: int, width: int, seed: int = 0, device: Any = "cpu") -> tuple[torch.Tensor, ...]:
        """Random inputs in [0, 1] on the PAN grid of ``height`` x ``width``."""
        g = torch.Generator().manual_seed(seed)
        return tuple(torch.rand(s, generator=g).to(device) for s in self.shapes(height, width))

    def parity_sizes(self) -> list[tuple[int, int]]:
        """Two input sizes for the parity check: opt x opt and a non-square one inside the range."""
        r = self.ratio

        def clamp(v: int) -> int:
            return max(self.min_size, min(self.max_size, (v // r) * r))

        second = (clamp(self.opt_size // 2), clamp(self.opt_size + self.opt_size // 2))
        sizes = [(self.opt_size, self.opt_size)]
        if second != sizes[0]:
            sizes.append(second)
        else:
            sizes.append((self.min_size, self.max_size))
        return sizes


class _Fp32(nn.Module):
    """Runs the wrapped module in FP32 and returns the caller's dtype."""

    def __init__(self, inner: nn.Module) -> None:
        super().__init__()
        self.inner = inner.float()

    def forward(self, x: torch.Tensor, *args: Any, **kwargs: Any) -> torch.Tensor:
        return self.inner(x.float(), *args, **kwargs).to(x.dtype)


class CastIO(nn.Module):
    """FP32 in and out, ``dtype`` inside: callers (and saved programs) never see the low precision."""

    def __init__(self, model: nn.Module, dtype: torch.dtype) -> None:
        super().__init__()
        self.model, self.dtype = model, dtype

    def forward(self, lms: torch.Tensor, pan: torch.Tensor, ms: torch.Tensor) -> torch.Tensor:
        d = self.dtype
        return self.model(lms.to(d), pan.to(d), ms.to(d)).float()


def _keep_fp32(module: nn.Module, precision: str) -> bool:
    # the module says so (``keep_fp32``, see panfw.layers.keeps_fp32): no matching of class names
    from panfw.layers.precision import keeps_fp32

    return keeps_fp32(module, precision)


def cast_model(model: nn.Module, precision: str) -> nn.Module:
    """The model in ``precision`` (fp32, fp16, bf16) with FP32 inputs and outputs; modules that declare
    ``keep_fp32`` (LayerNorms; for FP16, channel attention) and torch's LayerNorm/GroupNorm stay FP32,
    since TensorRT 11 builds strongly typed networks."""
    if precision not in PRECISIONS:
        raise UserError(f"unknown precision {precision!r}; accepted: {', '.join(PRECISIONS)}")
    if precision == "fp32":
        return model.float()
    dtype = PRECISIONS[precision]
    model = model.to(dtype)

    def wrap(parent: nn.Module) -> None:
        for child_name, child in parent.named_children():
            if _keep_fp32(child, precision):
                setattr(parent, child_name, _Fp32(child))
            else:
                wrap(child)

    wrap(model)
    return CastIO(model, dtype)


@attrs.define
class Parity:
    """Largest absolute difference between an exported file and PyTorch at one input size."""

    height: int
    width: int
    max_abs: float
    mean_abs: float

    def line(self) -> str:
        return f"{self.height}x{self.width}: max |diff| {self.max_abs:.3g}, mean |diff| {self.mean_abs:.3g}"


def parity(reference: Callable[..., torch.Tensor], exported: Callable[..., torch.Tensor], spec: ShapeSpec,
           sizes: Sequence[tuple[int, int]] | None = None, device: Any = "cpu") -> list[Parity]:
    """Compare ``exported(lms, pan, ms)`` with ``reference`` on random inputs of two sizes."""
    out = []
    for i, (h, w) in enumerate(sizes or spec.parity_sizes()):
        inputs = spec.example(h, w, seed=i + 1, device=device)
        with torch.inference_mode():
            ref = reference(*inputs).float().cpu()
            got = torch.as_tensor(exported(*inputs)).float().cpu()
        if got.shape != ref.shape:
            raise RuntimeError(f"exported output shape {tuple(got.shape)} != PyTorch {tuple(ref.shape)} "
                               f"at {h}x{w}")
        diff = (got - ref).abs()
        out.append(Parity(h, w, float(diff.max()), float(diff.mean())))
    return out


def sidecar_path(path: str | Path) -> Path:
    """The metadata file beside an exported file: ``model.onnx`` -> ``model.onnx.json``."""
    path = Path(path)
    return path.with_name(path.name + ".json")


def write_meta(path: str | Path, meta: dict) -> Path:
    """Write the export metadata beside ``path``."""
    side = sidecar_path(path)
    side.write_text(json.dumps({"format": META_FORMAT, **meta}, indent=2) + "\n")
    return side


def read_meta(path: str | Path) -> dict:
    """The metadata stored beside (or, for ONNX and .pt2, inside) an exported file; {} if none."""
    path = Path(path)
    side = sidecar_path(path)
    if side.is_file():
        try:
            meta = json.loads(side.read_text())
        except ValueError as exc:
            raise UserError(f"{side}: not valid JSON ({exc})") from None
        return meta if meta.get("format") == META_FORMAT else {}
    if path.suffix == ".onnx":
        import onnx

        model = onnx.load(str(path), load_external_data=False)
        for prop in model.metadata_props:
            if prop.key == "panfw":
                return json.loads(prop.value)
    return {}
