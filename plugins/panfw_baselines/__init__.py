"""panfw bundled plugin: the deep pan-sharpening baselines (PNN, PanNet, MSDCNN, DiCNN, FusionNet, LAGConv,
PanFlow, PSCINN, Pan-Mamba), one file per model family; see docs/models.md."""

import importlib

import panfw

# the family modules are imported inside the hook: loading the plugin (panfw --help) imports no torch
FAMILIES = ("pnn", "pannet", "msdcnn", "dicnn", "fusionnet", "lagconv", "panflow", "pscinn", "panmamba")


@panfw.hookimpl
def register_models(register):
    for family in FAMILIES:
        module = importlib.import_module(f"panfw_baselines.{family}")
        for name, (factory, meta) in module.MODELS.items():
            register(name, factory, **meta)
