"""panfw bundled plugin: the deep pan-sharpening baselines (PNN, PanNet, MSDCNN, DiCNN, FusionNet, LAGConv,
PanFlow, PSCINN, Pan-Mamba), one file per model family; see docs/models.md."""

import panfw
from panfw_baselines import dicnn, fusionnet, lagconv, msdcnn, panflow, panmamba, pannet, pnn, pscinn

FAMILIES = (pnn, pannet, msdcnn, dicnn, fusionnet, lagconv, panflow, pscinn, panmamba)


@panfw.hookimpl
def register_models(register):
    for family in FAMILIES:
        for name, (factory, meta) in family.MODELS.items():
            register(name, factory, **meta)
