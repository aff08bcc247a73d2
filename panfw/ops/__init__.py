"""Shared numerics: one implementation of each operator, used by datasets, metrics, losses and methods."""

from panfw.ops.ssim import gaussian_window, ssim, ssim_map  # noqa: F401
