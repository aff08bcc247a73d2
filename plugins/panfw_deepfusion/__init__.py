"""panfw bundled plugin: the Pan-Mamba style DeepFusion fusion block."""

import panfw
from panfw_deepfusion.deepfusion import deepfusion


@panfw.hookimpl
def register_fusions(register):
    register("deepfusion", deepfusion)
