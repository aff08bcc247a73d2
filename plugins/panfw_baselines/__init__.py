"""panfw bundled plugin: the deep pan-sharpening baselines (PNN, PanNet, MSDCNN, DiCNN, FusionNet, LAGConv,
PanFlow, PSCINN, Pan-Mamba), one file per model family; see docs/models.md."""

import panfw


@panfw.hookimpl
def register_models(register):
    # imported here, not at the top: loading the plugin (panfw --help) stays free of torch
    from panfw_baselines import dicnn, fusionnet, lagconv, msdcnn, panflow, panmamba, pannet, pnn, pscinn

    for family in (pnn, pannet, msdcnn, dicnn, fusionnet, lagconv, panflow, pscinn, panmamba):
        for name, (factory, meta) in family.MODELS.items():
            register(name, factory, **meta)
