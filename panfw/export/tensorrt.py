"""TensorRT through torch-tensorrt's dynamo compiler (optional extra ``panfw[trt]``, CUDA only).

torch-tensorrt is imported only here and only when asked for: importing it needs the TensorRT
libraries and a torch of the same minor version. The compiled module is saved as an
ExportedProgram (``torch_tensorrt.save(..., output_format="exported_program")``), which loads with
``torch.export.load(path).module()`` after ``import torch_tensorrt``, without panfw's model code.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from typing import Any

import torch
from torch import nn

from panfw.errors import UserError
from panfw.export.common import ShapeSpec

INSTALL_HINT = "pip install 'panfw[trt]' on a machine with an NVIDIA GPU and a CUDA build of torch"


def trt_missing() -> str:
    """What this machine lacks for TensorRT ("" when nothing), e.g. "a CUDA device (...) and the
    torch_tensorrt package"; the one check behind export's and the tensorrt runtime's messages."""
    missing = []
    if not torch.cuda.is_available():
        build = f"torch {torch.__version__}" + ("" if torch.version.cuda else ", a CPU-only build")
        missing.append(f"a CUDA device ({build}: torch.cuda.is_available() is False)")
    if importlib.util.find_spec("torch_tensorrt") is None:
        missing.append("the torch_tensorrt package (with TensorRT)")
    return " and ".join(missing)


def require_trt() -> Any:
    """Import torch_tensorrt, or raise a UserError that says what is missing and how to install it."""
    missing = trt_missing()
    if missing:
        raise UserError(f"TensorRT export needs {missing}; {INSTALL_HINT}")
    try:
        import torch_tensorrt
    except Exception as exc:  # noqa: BLE001 - import fails without the TensorRT libraries or on ABI skew
        raise UserError(f"torch_tensorrt is installed but cannot be imported ({type(exc).__name__}: {exc}); "
                        f"it needs TensorRT's libraries and torch {torch.__version__.split('+')[0]}'s "
                        f"matching release: {INSTALL_HINT}") from None
    return torch_tensorrt


def trt_inputs(spec: ShapeSpec, dtype: torch.dtype = torch.float32) -> list[Any]:
    """``torch_tensorrt.Input`` min/opt/max shapes for (lms, pan, ms)."""
    trt = require_trt()
    mins = spec.shapes(spec.min_size, spec.min_size)
    opts = spec.shapes(spec.opt_size, spec.opt_size)
    maxs = spec.shapes(spec.max_size, spec.max_size)
    return [trt.Input(min_shape=a, opt_shape=b, max_shape=c, dtype=dtype) for a, b, c in zip(mins, opts, maxs)]


def compile_trt(model: nn.Module, spec: ShapeSpec, name: str = "model") -> Any:
    """torch.export on CUDA, then ``torch_tensorrt.dynamo.compile`` with min/opt/max Inputs. The model
    is expected in its final precision (see ``cast_model``) with FP32 inputs and outputs."""
    trt = require_trt()
    from panfw.export.torch_export import export_program

    model = model.eval().cuda()
    ep = export_program(model, spec, name=name, device="cuda")
    try:
        return trt.dynamo.compile(ep, arg_inputs=trt_inputs(spec), min_block_size=1,
                                  attn_bias_is_causal=False)
    except TypeError:  # an older torch-tensorrt without attn_bias_is_causal
        return trt.dynamo.compile(ep, arg_inputs=trt_inputs(spec), min_block_size=1)


def save_trt(trt_module: Any, spec: ShapeSpec, path: str | Path, meta: dict | None = None) -> Path:
    """Save as an ExportedProgram with the same dynamic H, W (explicit ``torch.export.Dim``s, so lms,
    pan and ms keep their shared H, W), the panfw metadata inside as ``panfw.json``."""
    trt = require_trt()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    example = list(spec.example(spec.opt_size, spec.opt_size, device="cuda"))
    kwargs = {"output_format": "exported_program", "arg_inputs": example,
              "dynamic_shapes": spec.dynamic_shapes(), "retrace": True}
    try:
        trt.save(trt_module, str(path), extra_files={"panfw.json": json.dumps(meta or {})}, **kwargs)
    except TypeError:  # a torch-tensorrt whose save() has no extra_files (the .json beside it remains)
        trt.save(trt_module, str(path), **kwargs)
    return path


def load_trt(path: str | Path) -> tuple[nn.Module, dict]:
    """Load a saved TensorRT program (imports torch_tensorrt to register its runtime ops) and the
    metadata stored inside."""
    from panfw.export.torch_export import load_program

    require_trt()
    return load_program(path)
