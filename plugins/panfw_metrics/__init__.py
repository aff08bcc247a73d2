"""panfw bundled plugin: metrics, toolbox-exact (Vivone's pansharpening toolbox) and vectorised.

Reduced resolution: psnr, ssim, sam, ergas, q, q2n, scc. Full resolution: d_lambda, d_s, qnr,
d_lambda_k, hqnr. ``panfw_metrics.functional`` holds the plain functions on DN tensors.
"""

import panfw


@panfw.hookimpl
def register_metrics(register):
    from panfw_metrics.metrics import METRICS, metric_meta  # here: loading the plugin imports no torch

    for name, cls in METRICS.items():
        register(name, cls, **metric_meta(cls))
