"""panfw bundled plugin: the PanTiny model family, its fusion blocks and refine heads."""

import panfw

# the family's module is imported inside the hooks: loading the plugin (panfw --help) imports no torch


@panfw.hookimpl
def register_models(register):
    from panfw_pantiny.pantiny import MODELS

    for name, (factory, meta) in MODELS.items():
        register(name, factory, **meta)


@panfw.hookimpl
def register_fusions(register):
    from panfw_pantiny.pantiny import FUSIONS

    for name, factory in FUSIONS.items():
        register(name, factory)


@panfw.hookimpl
def register_refines(register):
    from panfw_pantiny.pantiny import REFINES

    for name, factory in REFINES.items():
        register(name, factory)
