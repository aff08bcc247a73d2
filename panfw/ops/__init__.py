"""Shared numerics, one implementation each: MTF filters, resampling, Wald's protocol, SSIM, high-pass,
tiling and band selection."""

from panfw.ops.bands import select_bands
from panfw.ops.highpass import highpass_box
from panfw.ops.lowpass import lowpass_wavelet
from panfw.ops.mtf import filter2d, lowpass_gauss, mtf_filter, mtf_filter_pan, mtf_kernel, mtf_kernels, pad2d
from panfw.ops.resample import decimate, downsample_bicubic, imresize, interp23tap, upsample_bicubic
from panfw.ops.ssim import gaussian_window, ssim, ssim_map
from panfw.ops.tiling import RowBlender, tile_grid, tile_starts, tile_weight, tiled_call
from panfw.ops.wald import simulate_rr, wald_degrade

__all__ = [
    "RowBlender", "decimate", "downsample_bicubic", "filter2d", "gaussian_window", "highpass_box", "imresize",
    "interp23tap", "lowpass_gauss", "lowpass_wavelet", "mtf_filter", "mtf_filter_pan", "mtf_kernel", "mtf_kernels",
    "pad2d", "select_bands", "simulate_rr", "ssim", "ssim_map", "tile_grid", "tile_starts", "tile_weight", "tiled_call",
    "upsample_bicubic", "wald_degrade",
]
