"""panfw bundled plugin: loss terms. Reference: l1, charbonnier, ssim, focal; no-reference (full
resolution): spectral_consistency, spatial_consistency. The core composes a recipe's weighted terms."""

import panfw


@panfw.hookimpl
def register_losses(register):
    from panfw_losses.losses import LOSSES  # here: loading the plugin imports no torch

    for name, factory in LOSSES.items():
        register(name, factory, kind="reference")  # forward(pred, target)
    from panfw_losses.no_reference import NO_REFERENCE_LOSSES  # full-resolution consistency (panfw adapt)

    for name, factory in NO_REFERENCE_LOSSES.items():
        register(name, factory, kind="no_reference")
