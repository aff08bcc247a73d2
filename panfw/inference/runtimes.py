"""The core's runtimes: ways to run a model ``runtime(lms, pan, ms) -> hrms``.

Registered through the ``register_runtimes`` hook like a plugin's (``panfw.inference.plugin`` is
loaded as a built-in plugin and calls ``register_all``). A factory is
``factory(model_or_path, device="cpu", **options)``: ``model_or_path`` is an ``nn.Module`` (a
checkpoint's or a registered model, see ``panfw.io.resolve``) or, for the runtimes that run files,
an exported file. Each entry's meta says:

- ``tolerance``: largest |runtime - eager PyTorch| expected in the [0, 1] scale (the contract tests
  hold every runtime to it);
- ``available``: a callable returning "" where the runtime can run here, else why not (with the fix);
- ``devices``: the device types it runs on; ``files``: the exported-file suffixes it runs directly.
"""

from __future__ import annotations

import hashlib
import importlib.util
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn

from panfw.errors import UserError


class Runtime:
    """A model ready to run on tiles: ``runtime(lms, pan, ms) -> hrms`` (float32, on ``device``).

    Inputs may live on any device; they are moved to ``device``. ``sizes`` is the (min, max) PAN-grid
    H and W an exported file accepts (None: any); ``bands`` the band count a file declares."""

    def __init__(self, name: str, device: str, fn: Callable[..., Any], *, sizes: tuple[int, int] | None = None,
                 module: nn.Module | None = None, bands: int | None = None) -> None:
        self.name, self.device, self.sizes, self.bands = name, str(device), sizes, bands
        self._fn, self.module = fn, module

    def __call__(self, lms: torch.Tensor, pan: torch.Tensor, ms: torch.Tensor) -> torch.Tensor:
        dev = self.device
        with torch.inference_mode():
            out = self._fn(lms.to(dev), pan.to(dev), ms.to(dev))
        return torch.as_tensor(out).float().to(dev)

    def __repr__(self) -> str:
        return f"Runtime({self.name!r}, device={self.device!r})"


def _per_sample(fn: Callable[..., Any]) -> Callable[..., torch.Tensor]:
    """Exported graphs take batch 1: a batch runs one sample at a time."""

    def run(lms: torch.Tensor, pan: torch.Tensor, ms: torch.Tensor) -> torch.Tensor:
        if lms.shape[0] == 1:
            return torch.as_tensor(fn(lms, pan, ms))
        return torch.cat([torch.as_tensor(fn(lms[i:i + 1], pan[i:i + 1], ms[i:i + 1])) for i in range(lms.shape[0])])

    return run


# ---- availability --------------------------------------------------------------------------------

def _cuda_reason(device: str) -> str:
    if str(device).startswith("cuda") and not torch.cuda.is_available():
        return (f"--device {device}: no CUDA device is available here (torch {torch.__version__}"
                f"{'' if torch.version.cuda else ', a CPU-only build'}); use --device cpu")
    return ""


def _always(device: str = "cpu") -> str:
    return _cuda_reason(device)


def _compile_available(device: str = "cpu") -> str:
    import shutil

    if str(device).startswith("cpu") and not any(shutil.which(c) for c in ("g++", "c++", "clang++")):
        return "torch.compile on CPU needs a C++ compiler (g++ or clang++) on PATH"
    return _cuda_reason(device)


def _onnx_available(device: str = "cpu") -> str:
    missing = [m for m in ("onnx", "onnxscript", "onnxruntime") if importlib.util.find_spec(m) is None]
    if missing:
        return f"onnxruntime needs {', '.join(missing)}: pip install 'panfw[onnx]'"
    if str(device).startswith("cuda"):
        import onnxruntime as ort

        if "CUDAExecutionProvider" not in ort.get_available_providers():
            return ("onnxruntime has no CUDA provider here (providers: "
                    f"{', '.join(ort.get_available_providers())}): pip install onnxruntime-gpu, or use --device cpu")
    return ""


def _trt_available(device: str = "cuda") -> str:
    from panfw.export.tensorrt import INSTALL_HINT, trt_missing

    missing = trt_missing()
    if missing:
        return f"TensorRT needs {missing}; {INSTALL_HINT}"
    if not str(device).startswith("cuda"):
        return f"TensorRT runs on CUDA only, not --device {device}; use --device cuda"
    return ""


# ---- the torch family ----------------------------------------------------------------------------

def _module_of(model_or_path: Any, device: str, what: str) -> nn.Module:
    """An eval-mode module on ``device``; an exported .pt2 file is loaded with torch.export."""
    if isinstance(model_or_path, nn.Module):
        net = model_or_path.to(device)
        try:
            net.eval()
        except NotImplementedError:  # an ExportedProgram's module() is fixed in eval mode and refuses eval()
            pass
        return net
    path = Path(str(model_or_path))
    if path.suffix in (".pt2", ".ep") and not path.name.endswith(".trt.ep"):
        from panfw.export.torch_export import load_program

        module, _ = load_program(path)
        return module.to(device)
    raise UserError(f"runtime {what!r} runs a PyTorch model or an exported .pt2 file, not {path}; "
                    "give a checkpoint, a run directory, a registered name or a .pt2 file")


def torch_runtime(model: Any, device: str = "cpu") -> Runtime:
    """Eager PyTorch, the reference every other runtime is compared with."""
    net = _module_of(model, device, "torch")
    return Runtime("torch", device, net, module=net)


def torch_channels_last(model: Any, device: str = "cpu") -> Runtime:
    """Eager PyTorch with weights and inputs in channels-last memory layout (faster convolutions on CPU)."""
    net = _module_of(model, device, "torch_channels_last").to(memory_format=torch.channels_last)

    def run(lms: torch.Tensor, pan: torch.Tensor, ms: torch.Tensor) -> torch.Tensor:
        cl = torch.channels_last
        out = net(lms.contiguous(memory_format=cl), pan.contiguous(memory_format=cl),
                  ms.contiguous(memory_format=cl))
        return out.contiguous()

    return Runtime("torch_channels_last", device, run, module=net)


def torch_compile(model: Any, device: str = "cpu", mode: str | None = None, dynamic: bool | None = None) -> Runtime:
    """``torch.compile`` (inductor) of the eager model; compiles on the first call of each shape."""
    net = _module_of(model, device, "torch_compile")
    try:
        compiled = torch.compile(net, mode=mode, dynamic=dynamic)
    except Exception as exc:  # noqa: BLE001 - e.g. an unsupported mode string
        raise UserError(f"torch.compile failed ({type(exc).__name__}: {exc})") from None
    return Runtime("torch_compile", device, compiled, module=net)


# ---- onnxruntime ---------------------------------------------------------------------------------

def _export_key(net: nn.Module, spec: Any) -> str:
    """A key that changes with the model's class, weights and the export's shape range: a cached graph
    is reused only for the same model and shapes, never silently stale."""
    h = hashlib.sha256(f"{type(net).__module__}.{type(net).__qualname__}|{spec!r}|{torch.__version__}".encode())
    for k, v in net.state_dict().items():
        h.update(k.encode())
        h.update(v.detach().cpu().contiguous().numpy().tobytes() if v.dtype != torch.bfloat16
                 else v.detach().float().cpu().numpy().tobytes())
    return h.hexdigest()[:16]


def onnxruntime_runtime(model: Any, device: str = "cpu", bands: int | None = None, ratio: int = 4,
                        size: int = 512, min_size: int | None = None, max_size: int | None = None,
                        cache_dir: str | Path | None = None, threads: int | None = None) -> Runtime:
    """onnxruntime (CPU, or CUDA with onnxruntime-gpu) on an .onnx file, or on a model exported to
    ONNX first for H, W up to ``max_size`` (default ``size``, the parity-checked size) in a temporary
    file, or in ``cache_dir/<key>.onnx``, reused while the model's weights and shapes are the same."""
    from panfw.export.onnx import OnnxRunner

    if not isinstance(model, nn.Module):
        path = Path(str(model))
        if path.suffix != ".onnx":
            raise UserError(f"runtime 'onnxruntime' runs .onnx files or PyTorch models, not {path}")
        if not path.is_file():
            raise UserError(f"ONNX file {str(path)!r} not found")
        from panfw.export.common import read_meta

        meta = read_meta(path)
        runner = OnnxRunner(path, device=device, threads=threads)
        sizes = (int(meta["min_size"]), int(meta["max_size"])) if "min_size" in meta and "max_size" in meta else None
        return Runtime("onnxruntime", device, _per_sample(runner), sizes=sizes, bands=runner.bands)
    from panfw.export.common import TOLERANCE, ShapeSpec, parity
    from panfw.export.onnx import export_onnx

    if bands is None:
        raise UserError("runtime 'onnxruntime' needs the band count to export a PyTorch model (bands=N)")
    size = max(2 * ratio, (int(size) // ratio) * ratio)
    top = max(size, (int(max_size or size) // ratio) * ratio)
    spec = ShapeSpec(bands=int(bands), ratio=int(ratio), min_size=min_size or 2 * ratio, opt_size=size,
                     max_size=top)
    net = model.cpu().eval()
    name = type(net).__name__

    def export_to(file: Path) -> None:
        meta = {"kind": "onnx", "model": {"name": name}, "bands": spec.bands, "ratio": spec.ratio,
                "min_size": spec.min_size, "opt_size": spec.opt_size, "max_size": spec.max_size}
        export_onnx(net, spec, file, meta, name=name)
        worst = max(c.max_abs for c in parity(net, OnnxRunner(file), spec, sizes=[(size, size)]))
        if worst > TOLERANCE["fp32"]:
            file.unlink(missing_ok=True)
            raise UserError(f"the ONNX export of {name} differs from PyTorch by {worst:.3g} at {size}x{size} "
                            f"(tolerance {TOLERANCE['fp32']:g}); use --backend torch")

    if cache_dir is not None:
        file = Path(cache_dir) / f"{type(net).__name__.lower()}-{_export_key(net, spec)}.onnx"
        if not file.is_file():
            partial = file.with_name(f".{file.name}.partial")  # never a truncated graph under the final name
            export_to(partial)
            partial.replace(file)
        runner = OnnxRunner(file, device=device, threads=threads)
    else:
        with tempfile.TemporaryDirectory(prefix="panfw-onnx-") as tmp:  # the session keeps the graph
            file = Path(tmp) / "model.onnx"
            export_to(file)
            runner = OnnxRunner(file, device=device, threads=threads)
    return Runtime("onnxruntime", device, _per_sample(runner), sizes=(spec.min_size, spec.max_size))


# ---- TensorRT ------------------------------------------------------------------------------------

def tensorrt_runtime(model: Any, device: str = "cuda", bands: int | None = None, ratio: int = 4,
                     size: int = 512, precision: str = "fp32") -> Runtime:
    """TensorRT through torch-tensorrt (CUDA): a ``panfw export --trt`` file, or a model compiled
    for H, W up to ``size`` on the fly."""
    from panfw.export.tensorrt import compile_trt, load_trt, require_trt

    require_trt()
    if not str(device).startswith("cuda"):
        raise UserError(f"runtime 'tensorrt' runs on CUDA only, not --device {device}; use --device cuda")
    if not isinstance(model, nn.Module):
        module, meta = load_trt(Path(str(model)))
        sizes = (int(meta["min_size"]), int(meta["max_size"])) if "min_size" in meta and "max_size" in meta else None
        return Runtime("tensorrt", device, _per_sample(module), sizes=sizes)
    from panfw.export.common import ShapeSpec, cast_model

    if bands is None:
        raise UserError("runtime 'tensorrt' needs the band count to compile a PyTorch model (bands=N)")
    size = max(2 * ratio, (int(size) // ratio) * ratio)
    spec = ShapeSpec(bands=int(bands), ratio=int(ratio), min_size=2 * ratio, opt_size=size, max_size=size)
    trt_module = compile_trt(cast_model(model, precision), spec, name=type(model).__name__)
    return Runtime("tensorrt", device, _per_sample(trt_module), sizes=(spec.min_size, spec.max_size))


def register_all(register: Callable[..., None]) -> None:
    """The core's runtimes: torch (eager and variants), onnxruntime, TensorRT (called by
    ``panfw.inference.plugin``'s ``register_runtimes`` hook)."""
    register("torch", torch_runtime, summary="Eager PyTorch (the reference); also runs .pt2 files",
             tolerance=0.0, available=_always, devices=("cpu", "cuda"), files=(".pt2",))
    register("torch_channels_last", torch_channels_last, summary="Eager PyTorch, channels-last weights and inputs",
             tolerance=1e-5, available=_always, devices=("cpu", "cuda"), files=(".pt2",))
    register("torch_compile", torch_compile, summary="torch.compile (inductor), compiled per input shape",
             tolerance=1e-4, available=_compile_available, devices=("cpu", "cuda"), files=(".pt2",))
    register("onnxruntime", onnxruntime_runtime,
             summary="onnxruntime on an .onnx file or a model exported to ONNX for the tile size",
             tolerance=1e-4, available=_onnx_available, devices=("cpu", "cuda"), files=(".onnx",))
    register("tensorrt", tensorrt_runtime,
             summary="TensorRT (torch-tensorrt, CUDA) on a .trt.ep file or a model compiled for the tile size",
             tolerance=1e-3, available=_trt_available, devices=("cuda",), files=(".trt.ep",))
