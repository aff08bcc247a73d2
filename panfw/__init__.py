"""panfw: a plugin-based PyTorch framework for pan-sharpening."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from panfw.hookspecs import hookimpl

__version__ = "0.1.0"
__all__ = ["hookimpl", "create", "create_model", "create_fusion", "create_refine", "create_loss",
           "create_metric", "create_dataset", "load_model", "registry", "__version__"]


def registry(kind: str):
    """The registry of one kind: models, fusions, refines, losses, datasets, metrics or runtimes."""
    from panfw.plugins import registry as _registry

    return _registry(kind)


def create(kind: str, name: str, *args: Any, context: Mapping[str, Any] | None = None, **options: Any) -> Any:
    """Build a registered thing by kind and name: ``options`` are checked against the factory's,
    ``context`` values (bands, sensor, ratio, ...) are passed only where the factory declares them."""
    return registry(kind).build(name, *args, context=context, **options)


def create_model(name: str, *, context: Mapping[str, Any] | None = None, **options: Any) -> Any:
    """Build a registered model, e.g. ``create_model("pantiny_big", bands=8)``."""
    return create("models", name, context=context, **options)


def create_fusion(name: str, dim: int, pan_channels: int = 1, **options: Any) -> Any:
    """Build a registered fusion block."""
    return create("fusions", name, dim, pan_channels=pan_channels, **options)


def create_refine(name: str, dim: int, **options: Any) -> Any:
    """Build a registered refine block."""
    return create("refines", name, dim, **options)


def create_loss(name: str, **options: Any) -> Any:
    """Build a registered loss term."""
    return create("losses", name, **options)


def create_metric(name: str, **options: Any) -> Any:
    """Build a registered metric."""
    return create("metrics", name, **options)


def create_dataset(name: str, split: str, *, context: Mapping[str, Any] | None = None, **options: Any) -> Any:
    """Build a registered dataset for a split (train, valid, test_rr, test_fr)."""
    return create("datasets", name, split, context=context, **options)


def load_model(spec: Any, **options: Any) -> Any:
    """A ready model from a checkpoint, run directory, registered name or exported file (.pt2, .onnx,
    TensorRT .ep), e.g. ``load_model("runs/x/best.pt")``; see ``panfw.io.resolve.load_model``."""
    from panfw.io.resolve import load_model as _load

    return _load(spec, **options)
