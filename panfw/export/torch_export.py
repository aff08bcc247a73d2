"""torch.export: an ExportedProgram with dynamic H and W, saved as ``.pt2``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from torch import nn

from panfw.errors import UserError
from panfw.export.common import ShapeSpec


def export_program(model: nn.Module, spec: ShapeSpec, name: str = "model",
                   device: Any = "cpu") -> torch.export.ExportedProgram:
    """``torch.export.export`` of ``model(lms, pan, ms)`` with dynamic H, W (multiples of the ratio)."""
    args = spec.example(spec.opt_size, spec.opt_size, device=device)
    try:
        return torch.export.export(model.eval(), args, dynamic_shapes=spec.dynamic_shapes(), strict=False)
    except Exception as exc:  # noqa: BLE001 - a model that cannot be traced is reported, not crashed on
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise UserError(
            f"model {name!r} cannot be exported with dynamic H, W (multiples of {spec.ratio}, "
            f"{spec.min_size}..{spec.max_size}): {type(exc).__name__}: {first}. Models must size "
            "resampling by the input shape (F.interpolate(x, size=pan.shape[-2:])), not by a scale "
            "factor, and avoid Python branches on the image size") from exc


def save_program(ep: torch.export.ExportedProgram, path: str | Path, meta: dict) -> Path:
    """``torch.export.save`` with the panfw metadata inside (``extra_files['panfw.json']``)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.export.save(ep, path, extra_files={"panfw.json": json.dumps(meta)})
    return path


def load_program(path: str | Path) -> tuple[nn.Module, dict]:
    """A saved ``.pt2``/``.ep`` program as a callable module and the metadata stored inside (or {})."""
    extra = {"panfw.json": ""}
    try:
        ep = torch.export.load(str(path), extra_files=extra)
    except Exception as exc:  # noqa: BLE001
        raise UserError(f"{path}: cannot be loaded with torch.export.load ({type(exc).__name__}: "
                        f"{str(exc).strip().splitlines()[0] if str(exc).strip() else ''})") from None
    meta = json.loads(extra["panfw.json"]) if extra.get("panfw.json") else {}
    return ep.module(), meta
