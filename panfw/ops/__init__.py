"""Shared numerics (one implementation each): MTF filters, resampling, Wald's protocol, SSIM, tiling.

Other owners append their own import line at the end (order-free: isort is off here)."""
# ruff: noqa: I001

from panfw.ops.mtf import (  # noqa: F401
    filter2d,
    lowpass_gauss,
    mtf_filter,
    mtf_filter_pan,
    mtf_kernel,
    mtf_kernels,
    pad2d,
)
from panfw.ops.resample import (  # noqa: F401
    decimate,
    downsample_bicubic,
    imresize,
    interp23tap,
    upsample_bicubic,
)
from panfw.ops.wald import simulate_rr, wald_degrade  # noqa: F401

# other owners' operators
from panfw.ops.ssim import gaussian_window, ssim, ssim_map  # noqa: F401
from panfw.ops.lowpass import lowpass_wavelet  # noqa: F401
from panfw.ops.tiling import RowBlender, tile_grid, tile_starts, tile_weight, tiled_call  # noqa: F401
