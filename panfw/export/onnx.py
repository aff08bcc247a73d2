"""ONNX: ``torch.onnx.export(dynamo=True)`` with dynamic H and W, checked with onnxruntime."""

from __future__ import annotations

import contextlib
import io
import json
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from panfw.errors import UserError
from panfw.export.common import INPUT_NAMES, OUTPUT_NAME, ShapeSpec


def _require_onnx() -> None:
    import importlib.util

    missing = [m for m in ("onnx", "onnxscript", "onnxruntime") if importlib.util.find_spec(m) is None]
    if missing:
        raise UserError(f"ONNX export needs {', '.join(missing)}: pip install 'panfw[onnx]'")


def export_onnx(model: nn.Module, spec: ShapeSpec, path: str | Path, meta: dict, name: str = "model") -> Path:
    """Write ``model(lms, pan, ms)`` to a single ONNX file (opset of the dynamo exporter), inputs
    ``lms``, ``pan``, ``ms`` with dynamic H, W; the panfw metadata goes in ``metadata_props``."""
    _require_onnx()
    import onnx

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    args = spec.example(spec.opt_size, spec.opt_size)
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            program = torch.onnx.export(model.eval(), args, dynamo=True, input_names=list(INPUT_NAMES),
                                        output_names=[OUTPUT_NAME], dynamic_shapes=spec.dynamic_shapes(),
                                        external_data=False, verbose=False)
    except Exception as exc:  # noqa: BLE001
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise UserError(f"model {name!r} cannot be exported to ONNX with dynamic H, W: "
                        f"{type(exc).__name__}: {first}") from exc
    proto = program.model_proto
    entry = proto.metadata_props.add()
    entry.key, entry.value = "panfw", json.dumps(meta)
    onnx.save_model(proto, str(path))
    return path


class OnnxRunner:
    """Run an exported ONNX file with onnxruntime like the PyTorch model: ``runner(lms, pan, ms)``."""

    def __init__(self, path: str | Path, device: str = "cpu", threads: int | None = None) -> None:
        _require_onnx()
        import onnxruntime as ort

        providers = ["CPUExecutionProvider"]
        if str(device).startswith("cuda"):
            if "CUDAExecutionProvider" not in ort.get_available_providers():
                raise UserError("onnxruntime has no CUDA provider here: pip install onnxruntime-gpu, "
                                "or use --device cpu")
            providers.insert(0, "CUDAExecutionProvider")
        opts = ort.SessionOptions()
        if threads:
            opts.intra_op_num_threads = threads
        try:
            self.session = ort.InferenceSession(str(path), sess_options=opts, providers=providers)
        except Exception as exc:  # noqa: BLE001
            raise UserError(f"{path}: onnxruntime cannot load it ({type(exc).__name__}: {exc})") from None
        self.inputs = [i.name for i in self.session.get_inputs()]
        missing = [n for n in INPUT_NAMES[:2] if n not in self.inputs]  # an unused ms may be dropped
        if missing:
            raise UserError(f"{path}: ONNX inputs are {self.inputs}; panfw expects {list(INPUT_NAMES)}")

    @property
    def bands(self) -> int | None:
        dim = self.session.get_inputs()[self.inputs.index("lms")].shape[1]
        return dim if isinstance(dim, int) else None

    def __call__(self, lms: Any, pan: Any, ms: Any) -> torch.Tensor:
        feed = {n: np.ascontiguousarray(torch.as_tensor(t).detach().float().cpu().numpy())
                for n, t in zip(INPUT_NAMES, (lms, pan, ms)) if n in self.inputs}
        return torch.from_numpy(self.session.run([OUTPUT_NAME], feed)[0])
