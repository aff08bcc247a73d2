"""panfw: a plugin-based PyTorch framework for pan-sharpening."""

from __future__ import annotations

from typing import Any

from panfw.hookspecs import hookimpl

__version__ = "0.1.0"
__all__ = ["hookimpl", "create", "create_model", "create_fusion", "create_loss", "create_metric",
           "create_dataset", "registry", "__version__"]


def registry(kind: str):
    """The registry of one kind: models, fusions, refines, losses, datasets or metrics."""
    from panfw.plugins import registry as _registry

    return _registry(kind)


def create(kind: str, name: str, *args: Any, **options: Any) -> Any:
    """Build a registered thing by kind and name, checking its options."""
    return registry(kind).build(name, *args, **options)


def create_model(name: str, **options: Any) -> Any:
    """Build a registered model, e.g. ``create_model("pantiny_big", bands=8)``."""
    return create("models", name, **options)


def create_fusion(name: str, dim: int, pan_channels: int = 1, **options: Any) -> Any:
    """Build a registered fusion block."""
    return create("fusions", name, dim, pan_channels=pan_channels, **options)


def create_loss(name: str, **options: Any) -> Any:
    """Build a registered loss."""
    return create("losses", name, **options)


def create_metric(name: str, **options: Any) -> Any:
    """Build a registered metric."""
    return create("metrics", name, **options)


def create_dataset(name: str, split: str, **options: Any) -> Any:
    """Build a registered dataset for a split (train, valid, test_rr, test_fr)."""
    return create("datasets", name, split, **options)
