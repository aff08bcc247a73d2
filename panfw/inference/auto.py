"""Defaults chosen from the model and the machine: the runtime and the tile overlap.

Runtime (``choose_backend``), measured on this project's CPU (docs/benchmarks.md, "PanTiny"):

- a model that registers ``prefers_eager`` (a reason: its exported graph is slower, e.g. Pan-Mamba's
  token loop): eager torch on every device;
- CUDA: TensorRT when torch-tensorrt is installed and the model exports, else eager torch;
- CPU, a model with panfw's fast CPU path (the Restormer ``TransformerBlock`` of the PanTiny
  family, panfw/layers/cpu.py): eager torch, which then runs 3-4x faster than onnxruntime;
- CPU, a checkpoint of any other model that exports: onnxruntime (graph optimisations on), its
  graph exported once and cached beside the checkpoint (``graph_cache``), keyed by the checkpoint's
  bytes, its options and the panfw/torch/onnxruntime versions (and, inside, by the weights and
  shapes), so a changed checkpoint is exported again, never a stale graph reused;
- else eager torch. ``--backend`` overrides.

Overlap (``default_overlap``): the blending ramp of ``panfw.ops.tiling`` gives a tiled result equal
to the untiled one for a model whose receptive field reaches no further than overlap // 4 pixels, so
the default is 4 x the model's reach, measured once per model (``measured_reach``), rounded up to
the ratio.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import torch
from torch import nn

REACH_TOLERANCE = 1e-4  # |d out(centre) / d in| below this share of its largest value counts as outside


def has_fast_cpu_path(module: Any) -> bool:
    """Whether ``module`` contains a block panfw runs on its fast CPU path."""
    from panfw.layers import TransformerBlock

    return isinstance(module, nn.Module) and any(isinstance(m, TransformerBlock) for m in module.modules())


def _meta(name: str | None) -> dict:
    if not name:
        return {}
    from panfw.plugins import registry

    try:
        return registry("models").get(name).meta
    except Exception:  # noqa: BLE001 - a module passed in directly, not a registered name
        return {}


def _exportable(name: str | None) -> bool:
    return _meta(name).get("exportable", True) is True


def choose_backend(module: Any, device: str, name: str | None = None, source: Any = None) -> tuple[str, str]:
    """(runtime name, why) for running ``module`` (registered as ``name``, loaded from the checkpoint
    ``source``) on ``device``. onnxruntime only for a checkpoint, whose exported graph is cached: an
    export per run (a registered, untrained model) costs more than it saves on a scene."""
    from panfw.inference.build import runtime_reason

    if not isinstance(module, nn.Module):
        return "torch", "not a PyTorch module"
    eager = _meta(name).get("prefers_eager")
    if eager:  # the model's own word: its exported graph runs slower than eager PyTorch
        return "torch", f"eager PyTorch: {eager}"
    if str(device).startswith("cuda"):
        if not runtime_reason("tensorrt", device) and _exportable(name):
            return "tensorrt", "TensorRT is installed and the model exports"
        return "torch", "eager PyTorch on the GPU (TensorRT not installed)"
    if has_fast_cpu_path(module):
        return "torch", "panfw's fast CPU path for this model (faster than onnxruntime here)"
    if graph_cache(source) is None:
        return "torch", "eager PyTorch (onnxruntime is chosen for checkpoints, whose exported graph is cached)"
    if not runtime_reason("onnxruntime", device) and _exportable(name):
        return "onnxruntime", ("onnxruntime with graph optimisations, faster than eager PyTorch on CPU for "
                               "models without panfw's fast path; the graph is cached beside the checkpoint")
    return "torch", "eager PyTorch (onnxruntime not installed or the model does not export)"


def graph_cache(source: Any, options: Any = None) -> Path | None:
    """The folder a checkpoint's exported graphs are cached in: ``<its folder>/exported/<key>/``,
    key = sha256 of the checkpoint file's bytes, its model options and the panfw, torch and
    onnxruntime versions; a changed checkpoint (or upgrade) gets a new folder, so a stale graph is
    never found. None for models that are not files (a registered name: a temporary export)."""
    import hashlib
    import importlib.metadata as md

    if source is None:
        return None
    path = Path(str(source))  # Resolved.source: the checkpoint file (a run directory's too)
    if not path.is_file() or path.suffix in (".onnx", ".pt2", ".ep"):
        return None
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)

    def version(dist: str) -> str:
        try:
            return md.version(dist)
        except md.PackageNotFoundError:
            return "-"

    h.update(f"|{options!r}|panfw {version('panfw')}|torch {torch.__version__}|ort {version('onnxruntime')}".encode())
    return path.parent / "exported" / h.hexdigest()[:16]


def measured_reach(module: nn.Module, bands: int, ratio: int = 4, size: int = 64) -> int:
    """PAN pixels around an output pixel whose inputs move it: the support of the gradient of the
    centre output (all bands) with respect to lms and pan, on a random ``size`` x ``size`` input,
    counting values above REACH_TOLERANCE of the largest and above 10x the largest value far from
    the centre: image-wide statistics (channel attention's normalisation over the tile) reach
    everywhere, but far less than the convolutions' neighbourhood, and fall below that floor."""
    size = max(size, 8 * ratio) // ratio * ratio
    return _reach(module, int(bands), int(ratio), size)


def _reach(module: nn.Module, bands: int, ratio: int, size: int) -> int:
    gen = torch.Generator().manual_seed(0)
    param = next(module.parameters(), None)
    dev = param.device if param is not None else torch.device("cpu")
    lms = torch.rand(1, bands, size, size, generator=gen).to(dev).requires_grad_(True)
    pan = torch.rand(1, 1, size, size, generator=gen).to(dev).requires_grad_(True)
    ms = torch.nn.functional.avg_pool2d(lms.detach(), ratio)
    was = module.training
    frozen = [p for p in module.parameters() if p.requires_grad]
    module.eval()
    try:
        for p in frozen:  # only the inputs' gradient is needed
            p.requires_grad_(False)
        with torch.enable_grad():
            out = module(lms, pan, ms)
            c = size // 2
            out[0, :, c, c].sum().backward()
    finally:
        for p in frozen:
            p.requires_grad_(True)
        module.train(was)
    g = (lms.grad.abs().sum(1)[0] + pan.grad.abs()[0, 0]).cpu()
    c = size // 2
    yy, xx = torch.meshgrid(torch.arange(size), torch.arange(size), indexing="ij")
    dist = torch.maximum((yy - c).abs(), (xx - c).abs())
    # the image-wide part (attention statistics) is the gradient far from the centre: 10x its
    # largest value there is the floor a pixel must pass to count as within reach
    far = g[dist >= 3 * size // 8]
    floor = 10 * float(far.max()) if far.numel() else 0.0
    inside = g > max(REACH_TOLERANCE * float(g.max()), floor)
    return int(dist[inside].max()) if inside.any() else 0


@functools.lru_cache(maxsize=32)
def _cached_overlap(key: str, reach: int, ratio: int) -> int:
    return max(ratio, -(-4 * reach // ratio) * ratio)


def default_overlap(module: Any, bands: int | None, ratio: int) -> tuple[int, str]:
    """(overlap in PAN pixels, why): 4 x the measured reach rounded up to the ratio; 64 (rounded to
    the ratio) for what cannot be measured (exported files, parameter-free methods)."""
    fallback = -(-64 // ratio) * ratio
    if not isinstance(module, nn.Module) or bands is None or next(module.parameters(), None) is None:
        return fallback, "the default for models whose reach is not measured"
    try:
        reach = measured_reach(module, bands, ratio)
    except Exception as exc:  # noqa: BLE001 - a model that does not backpropagate: keep the safe default
        return fallback, f"reach not measurable ({type(exc).__name__})"
    overlap = _cached_overlap(type(module).__qualname__, reach, ratio)
    return overlap, f"4 x the model's measured reach of {reach} px, rounded up to the ratio {ratio}"
