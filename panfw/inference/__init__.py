"""Inference: the registry of runtimes (kind ``runtimes``) and the tiled scene loop (``scene``).

A runtime runs a model as ``runtime(lms, pan, ms) -> hrms``; ``fuse``, ``eval`` and the benchmarks
get theirs from ``build_runtime`` or ``runtime_for``. The core's own runtimes (torch, torch_channels_last,
torch_compile, onnxruntime, tensorrt) are in ``panfw.inference.runtimes``; a plugin adds one with the
``register_runtimes`` hook.
"""

from __future__ import annotations

from typing import Any

from panfw.errors import UserError
from panfw.inference.build import (
    ALIASES,
    available_runtimes,
    build_runtime,
    describe_runtimes,
    largest_image,
    pick_device,
    runtime_reason,
)

__all__ = ["Runtime", "available_runtimes", "build_runtime", "describe_runtimes", "largest_image", "pick_device",
           "runtime_for", "runtime_reason"]


def __getattr__(name: str) -> Any:
    # lazy: the runtimes need torch (the scene loop is panfw.inference.scene, which imports this package)
    if name == "Runtime":
        from panfw.inference.runtimes import Runtime

        return Runtime
    raise AttributeError(f"module 'panfw.inference' has no attribute {name!r}")


def runtime_for(spec: Any, backend: str | None = None, device: str | None = None, *, bands: int | None = None,
                sensor: str | None = None, ratio: int | None = None, size: int = 512,
                model_options: dict | None = None, bit_depth: int | None = None, **options: Any) -> tuple[Any, Any]:
    """Resolve ``spec`` (module, checkpoint, run dir, registered name, exported file) and wrap it in
    runtime ``backend`` (default: the one an exported file needs, else the fastest here for the
    model, ``panfw.inference.auto.choose_backend``; ``runtime.why`` says why). Returns (runtime, Resolved)."""
    from panfw.io.resolve import resolve_model

    device = pick_device(device)
    res = resolve_model(spec, bands=bands, sensor=sensor, ratio=ratio, options=model_options, device=device,
                        bit_depth=bit_depth)
    model = res.model_or_runtime
    backend = ALIASES.get(backend, backend) if backend else None
    if not res.is_module:  # an .onnx or TensorRT file: its runtime is fixed
        if backend not in (None, model.name):
            raise UserError(f"{res.source} is a {res.kind} file: it runs with --backend {model.name}, not "
                            f"{backend!r}; give a checkpoint or model name to use another runtime")
        return model, res
    if backend:
        why = "--backend"
    else:  # the fastest runtime here for this model (panfw.inference.auto)
        from panfw.inference.auto import choose_backend

        backend, why = choose_backend(model, device, res.name, res.source)
        if backend == "onnxruntime":
            from panfw.inference.auto import graph_cache

            options.setdefault("cache_dir", graph_cache(res.source, res.options))
    if res.kind == "exported_program" and backend not in ("torch", "torch_channels_last", "torch_compile"):
        raise UserError(f"{res.source} is an ExportedProgram (.pt2): it runs with the torch runtimes, not "
                        f"{backend!r}; give the checkpoint to export it for another runtime")
    context = {"bands": res.bands, "ratio": res.data.get("ratio") or ratio, "size": size}
    runtime = build_runtime(backend, model, device=device, context=context, **options)
    if res.sizes is not None and runtime.sizes is None:
        runtime.sizes = res.sizes
    runtime.why = why
    return runtime, res
