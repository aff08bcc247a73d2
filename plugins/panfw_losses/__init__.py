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
        register(name, factory, kind="no_reference", **NO_REFERENCE_META.get(name, {}))


# What a no-reference term scores on an image consistent with its MS and PAN (``consistent_floor``,
# default 2e-3) and which errors it does not see by design (``blind_to``). D_s compares Q of the
# fused bands with the PAN against Q of the upsampled MS with a low-passed PAN: the two sides differ
# even for a consistent image, and a global gain leaves Q unchanged (the spectral term sees it).
NO_REFERENCE_META = {"spatial_quality": {"consistent_floor": 0.05, "blind_to": ("gain",)}}
