"""Export a model for deployment: torch.export (``.pt2``), ONNX, TensorRT; and load the results back.

Every export has dynamic H and W (multiples of the PAN/MS ratio), a fixed band count, FP32 inputs
and outputs named ``lms``, ``pan``, ``ms`` -> ``hrms``, ends with a parity check against PyTorch, and
leaves ``<file>.json`` beside the file with the model, data and parity figures (``panfw fuse`` reads it).
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import attrs
import torch
from torch import nn

from panfw.errors import UserError
from panfw.export.common import (
    INPUT_NAMES,
    OUTPUT_NAME,
    PRECISIONS,
    TOLERANCE,
    Parity,
    ShapeSpec,
    cast_model,
    parity,
    read_meta,
    write_meta,
)

__all__ = ["FORMATS", "ExportResult", "ShapeSpec", "export_model", "load_exported", "cast_model", "read_meta"]

# format -> default file suffix
FORMATS = {"exported_program": ".pt2", "onnx": ".onnx", "tensorrt": ".trt.ep"}


@attrs.define
class ExportResult:
    """What an export produced and how closely it matches PyTorch."""

    path: Path
    fmt: str
    precision: str
    parity: list[Parity]
    tolerance: float
    seconds: float
    meta: dict

    @property
    def max_abs(self) -> float:
        return max(p.max_abs for p in self.parity)

    @property
    def ok(self) -> bool:
        return self.max_abs <= self.tolerance

    def report(self) -> str:
        lines = [f"exported {self.fmt} ({self.precision}) -> {self.path}  [{self.seconds:.1f} s]",
                 f"  inputs lms (1,{self.meta['bands']},H,W), pan (1,1,H,W), ms (1,{self.meta['bands']},"
                 f"H/{self.meta['ratio']},W/{self.meta['ratio']}); H, W multiples of {self.meta['ratio']} in "
                 f"[{self.meta['min_size']}, {self.meta['max_size']}]"]
        for p in self.parity:
            lines.append(f"  parity vs PyTorch at {p.line()}")
        verdict = "OK" if self.ok else "ABOVE TOLERANCE"
        lines.append(f"  largest |diff| {self.max_abs:.3g} (tolerance {self.tolerance:g}): {verdict}")
        return "\n".join(lines)


def _version() -> str:
    import importlib.metadata

    try:
        return importlib.metadata.version("panfw")
    except importlib.metadata.PackageNotFoundError:  # a source tree that was never installed
        return "unknown"


def default_output(spec: Any, fmt: str, precision: str = "fp32") -> Path:
    """``runs/x/best.pt`` -> ``runs/x/best.onnx``; a model name -> ``<name>.onnx`` here."""
    p = Path(str(spec))
    tag = "" if precision == "fp32" else f".{precision}"
    base = p.with_suffix("") if p.suffix in (".pt", ".pth") else (p / "best" if p.is_dir() else Path(p.name))
    return base.with_name(base.name + tag + FORMATS[fmt])


def export_model(spec: str | Path | nn.Module, fmt: str, out: str | Path | None = None, *,
                 bands: int | None = None, ratio: int | None = None, min_size: int = 32,
                 opt_size: int = 512, max_size: int = 2048, precision: str = "fp32",
                 parity_sizes: list[tuple[int, int]] | None = None) -> ExportResult:
    """Export ``spec`` (checkpoint, run directory, registered name or module) to ``fmt``
    (exported_program, onnx, tensorrt) and check parity with PyTorch."""
    if fmt not in FORMATS:
        raise UserError(f"unknown export format {fmt!r}; accepted: {', '.join(FORMATS)}")
    if precision not in PRECISIONS:
        raise UserError(f"unknown precision {precision!r}; accepted: {', '.join(PRECISIONS)}")
    if fmt == "onnx" and precision != "fp32":
        raise UserError("ONNX export is FP32 only (onnxruntime on CPU has no FP16 convolutions); "
                        "use --trt or --exported-program for --fp16/--bf16")
    if fmt == "tensorrt":
        from panfw.export.tensorrt import require_trt

        require_trt()  # fail before loading anything
    from panfw.io.resolve import resolve_model

    res = resolve_model(spec, bands=bands, ratio=ratio)
    if not res.is_module:
        raise UserError(f"{res.source} is already an exported {res.kind} file; export its checkpoint instead")
    if bands is not None and res.kind == "checkpoint" and res.bands is not None and res.bands != bands:
        raise UserError(f"{res.source}: the checkpoint's model takes {res.bands} bands, not --bands {bands}")
    model = res.model_or_runtime
    data = {**res.data, "bands": int(res.bands or bands or 4), "ratio": int(ratio or res.data.get("ratio") or 4)}
    shape = ShapeSpec(bands=data["bands"], ratio=data["ratio"], min_size=min_size,
                      opt_size=opt_size, max_size=max_size)
    path = Path(out) if out else default_output(spec if not isinstance(spec, nn.Module) else res.name,
                                                fmt, precision)
    info = {"name": res.name, "options": res.options}
    meta = {"kind": fmt, "model": {"name": info["name"], "options": info["options"]},
            "source": res.source, "data": data, "bands": shape.bands, "ratio": shape.ratio,
            "precision": precision, "min_size": shape.min_size, "opt_size": shape.opt_size,
            "max_size": shape.max_size, "inputs": list(INPUT_NAMES), "output": OUTPUT_NAME,
            "panfw_version": _version()}
    start = time.perf_counter()
    deployed = cast_model(copy.deepcopy(model), precision)
    device = "cpu"
    if fmt == "exported_program":
        from panfw.export.torch_export import export_program, load_program, save_program

        ep = export_program(deployed, shape, name=info["name"])
        save_program(ep, path, meta)
        runner, _ = load_program(path)
    elif fmt == "onnx":
        from panfw.export.onnx import OnnxRunner, export_onnx

        export_onnx(deployed, shape, path, meta, name=info["name"])
        runner = OnnxRunner(path)
    else:
        from panfw.export.tensorrt import compile_trt, load_trt, save_trt

        device = "cuda"
        trt_module = compile_trt(deployed, shape, name=info["name"])
        save_trt(trt_module, shape, path, meta)
        runner, _ = load_trt(path)
        model = model.cuda()
    seconds = time.perf_counter() - start
    checks = parity(model.eval(), runner, shape, sizes=parity_sizes, device=device)
    result = ExportResult(path=path, fmt=fmt, precision=precision, parity=checks,
                          tolerance=TOLERANCE[precision], seconds=seconds, meta=meta)
    meta["parity"] = [attrs.asdict(p) for p in checks]
    meta["parity_ok"] = result.ok
    write_meta(path, meta)
    return result


def load_exported(path: str | Path, device: str = "cpu") -> tuple[Callable[..., torch.Tensor], dict]:
    """A callable ``f(lms, pan, ms) -> hrms`` for an exported file (.onnx, .pt2, TensorRT .ep) and
    its metadata ({} when none is stored); resolved by ``panfw.io.resolve`` like every model spec."""
    from panfw.io.resolve import resolve_model

    path = Path(path)
    if not path.is_file():
        raise UserError(f"exported model {str(path)!r} not found")
    res = resolve_model(path, device=device)
    model = res.model_or_runtime
    return (model.to(device) if isinstance(model, nn.Module) else model), read_meta(path)
