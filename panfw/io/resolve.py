"""What a user means by "the model": the ONE place that turns a spec into something that runs.

A spec is an ``nn.Module``; a checkpoint file (``.pt``/``.pth``); a run directory (its ``best.pt``,
else ``last.pt``); an exported file (``.pt2``/``.ep`` ExportedProgram, ``.onnx``, TensorRT
``.trt.ep``); or a registered model name (an untrained network or a parameter-free method). ``fuse``,
``eval``, ``export`` and ``panfw.load_model`` all call ``resolve_model``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import attrs
from torch import nn

from panfw.errors import UserError

EXPORTED_SUFFIXES = (".pt2", ".ep", ".onnx")
CHECKPOINT_SUFFIXES = (".pt", ".pth")


@attrs.define
class Resolved:
    """A resolved spec: the module (or, for an .onnx/TensorRT file, a ready ``Runtime``) and what is
    known about it. ``kind``: module, checkpoint, registered, exported_program, onnx or tensorrt;
    ``data``: the training data's sensor, bands, ratio, bit_depth as far as known; ``sizes``: the
    (min, max) H, W an exported file accepts; ``checkpoint``: the loaded checkpoint dict, if any."""

    model_or_runtime: Any
    name: str
    options: dict
    data: dict
    kind: str
    source: str
    sizes: tuple[int, int] | None = None
    checkpoint: dict | None = None

    @property
    def is_module(self) -> bool:
        return isinstance(self.model_or_runtime, nn.Module)

    @property
    def bands(self) -> int | None:
        value = self.data.get("bands") or self.options.get("bands")
        return int(value) if value else None


def _context(bands: int | None, sensor: str | None, ratio: int | None, data: dict | None = None,
             bit_depth: int | None = None) -> dict:
    """Build context for a registered factory: given values first, else the checkpoint's data."""
    data = data or {}
    ctx = {"bands": bands or data.get("bands"), "sensor": sensor or data.get("sensor"),
           "ratio": ratio or data.get("ratio"), "bit_depth": bit_depth or data.get("bit_depth")}
    return {k: v for k, v in ctx.items() if v is not None}


def build_registered(name: str, options: dict | None = None, context: dict | None = None) -> nn.Module:
    """A registered model with its options; ``context`` (bands, sensor, ratio, ...) reaches it where
    its factory takes those keywords (the registry's one rule), options winning over context."""
    from panfw.plugins import registry

    options = dict(options or {})
    context = {k: v for k, v in (context or {}).items() if k not in options}
    return registry("models").build(name, context=context, **options)


def _exported(path: Path, device: str) -> Resolved:
    from panfw.export.common import read_meta

    if not path.is_file():
        raise UserError(f"exported model {str(path)!r} not found")
    meta = read_meta(path)
    kind = meta.get("kind") or ("onnx" if path.suffix == ".onnx" else
                                "tensorrt" if path.name.endswith(".trt.ep") else "exported_program")
    if kind == "onnx" or path.suffix == ".onnx":
        from panfw.inference.build import build_runtime

        model = build_runtime("onnxruntime", path, device=device)
        kind = "onnx"
        if "bands" not in meta and model.bands:
            meta["bands"] = model.bands
    elif kind == "tensorrt":
        from panfw.inference.build import build_runtime

        model = build_runtime("tensorrt", path, device=device)
    else:
        from panfw.export.torch_export import load_program

        model, inner = load_program(path)
        meta = {**inner, **meta}
    data = dict(meta.get("data") or {})
    if meta.get("bands"):
        data["bands"] = int(meta["bands"])
    if meta.get("ratio"):
        data.setdefault("ratio", int(meta["ratio"]))
    sizes = (int(meta["min_size"]), int(meta["max_size"])) if "min_size" in meta and "max_size" in meta else None
    spec = meta.get("model") or {}
    return Resolved(model, spec.get("name", path.name), dict(spec.get("options") or {}), data, kind,
                    str(path), sizes)


def _checkpoint(path: Path, sensor: str | None, ratio: int | None, options: dict | None) -> Resolved:
    from panfw.io.checkpoint import load_checkpoint

    state = load_checkpoint(path, map_location="cpu")
    spec = state["model"]
    data = dict(state.get("data") or {})
    opts = {**dict(spec.get("options") or {}), **dict(options or {})}
    model = build_registered(spec["name"], opts, _context(None, sensor, ratio, data))
    missing, unexpected = model.load_state_dict(spec["state_dict"], strict=False)
    if missing or unexpected:
        raise UserError(f"{path}: the weights do not fit model {spec['name']!r} "
                        f"(missing {list(missing)[:5]}, unexpected {list(unexpected)[:5]})")
    return Resolved(model.eval(), spec["name"], opts, data, "checkpoint", str(path), checkpoint=state)


def resolve_model(spec: str | Path | nn.Module, *, bands: int | None = None, sensor: str | None = None,
                  ratio: int | None = None, options: dict | None = None, device: str = "cpu",
                  bit_depth: int | None = None) -> Resolved:
    """Resolve a module, checkpoint, run directory, exported file or registered name (see the module
    docstring). ``bands``/``sensor``/``ratio`` build a registered model (a checkpoint or export knows
    its own; ``Resolved.bands`` says what the model takes, for the caller to compare); ``options`` are
    model options; ``device`` is where an .onnx/TensorRT runtime runs (modules stay on the CPU)."""
    from panfw.plugins import registry

    if isinstance(spec, nn.Module):
        res = Resolved(spec.eval(), type(spec).__name__, {}, {}, "module", "<module>")
    else:
        p = Path(str(spec))
        if p.suffix in EXPORTED_SUFFIXES and not p.is_dir():
            res = _exported(p, device)
        elif p.suffix in CHECKPOINT_SUFFIXES or p.exists():
            res = _checkpoint(p, sensor, ratio, options)
        elif str(spec) in registry("models"):
            ctx = _context(bands, sensor, ratio, bit_depth=bit_depth)
            model = build_registered(str(spec), options, ctx).eval()
            opts = dict(options or {})
            res = Resolved(model, str(spec), opts, {k: v for k, v in ctx.items() if k in ("bands", "ratio")},
                           "registered", "registered (untrained)")
        else:
            try:
                registry("models").get(str(spec))
            except UserError as exc:
                raise UserError(f"{str(spec)!r} is neither a checkpoint file, a run directory, an exported "
                                f"file (.pt2, .onnx, .trt.ep) nor a registered model: {exc}") from None
            raise AssertionError("unreachable: the registry knows the name")  # pragma: no cover
    if sensor and not res.data.get("sensor"):
        res.data["sensor"] = sensor
    if bands and not res.bands and res.kind in ("registered", "module"):
        res.data["bands"] = int(bands)
    if ratio and not res.data.get("ratio"):
        res.data["ratio"] = int(ratio)
    return res


def model_from_checkpoint(path: str | Path, map_location: str = "cpu") -> tuple[nn.Module, dict]:
    """The model stored in a checkpoint or run directory (weights loaded, eval mode) and the checkpoint dict."""
    res = _checkpoint(Path(path), None, None, None)
    return res.model_or_runtime.to(map_location), res.checkpoint


def load_model(spec: str | Path, *, device: str = "cpu", bands: int | None = None, sensor: str | None = None,
               ratio: int | None = None, **options: Any) -> Any:
    """``panfw.load_model``: the model (eval mode, on ``device``) for a checkpoint, run directory,
    registered name or exported file (a callable ``Runtime`` for .onnx and TensorRT files)."""
    res = resolve_model(spec, bands=bands, sensor=sensor, ratio=ratio, options=options, device=device)
    model = res.model_or_runtime
    return model.to(device) if isinstance(model, nn.Module) else model
