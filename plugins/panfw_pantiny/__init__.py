"""panfw bundled plugin: the PanTiny model family, its fusion blocks and refine heads."""

import panfw
from panfw_pantiny.pantiny import FUSIONS, MODELS, REFINES


@panfw.hookimpl
def register_models(register):
    for name, (factory, meta) in MODELS.items():
        register(name, factory, **meta)


@panfw.hookimpl
def register_fusions(register):
    for name, factory in FUSIONS.items():
        register(name, factory)


@panfw.hookimpl
def register_refines(register):
    for name, factory in REFINES.items():
        register(name, factory)
