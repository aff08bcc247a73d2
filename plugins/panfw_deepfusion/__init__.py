"""panfw bundled plugin: the Pan-Mamba style DeepFusion fusion block."""

import panfw


@panfw.hookimpl
def register_fusions(register):
    from panfw_deepfusion.deepfusion import deepfusion  # here: loading the plugin imports no torch

    register("deepfusion", deepfusion)
