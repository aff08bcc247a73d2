"""panfw bundled plugin: l1, charbonnier, ssim, focal and weighted composite losses."""

import panfw
from panfw_losses.losses import LOSSES, WeightedLoss, build_loss

__all__ = ["build_loss", "WeightedLoss"]


@panfw.hookimpl
def register_losses(register):
    for name, factory in LOSSES.items():
        register(name, factory)
    from panfw_losses.no_reference import NO_REFERENCE_LOSSES  # full-resolution consistency (panfw adapt)

    for name, factory in NO_REFERENCE_LOSSES.items():
        register(name, factory, kind="no_reference")
