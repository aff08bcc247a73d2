"""panfw bundled plugin: datasets (PanCollection h5, TIFF folders, synthetic) and the ``panfw data`` commands.

``mix``, ``collate`` and ``MixedDataset`` are core services (``panfw.data``). The dataset modules
are imported inside the hooks, so loading the plugin (``panfw --help``) imports no torch.
"""

import panfw


@panfw.hookimpl
def register_datasets(register):
    from panfw_datasets.h5 import DATASETS as H5_DATASETS

    for name, factory in H5_DATASETS.items():
        register(name, factory)
    from panfw_datasets.synthetic import synthetic
    from panfw_datasets.tiff import tiff_folder

    register("synthetic", synthetic)
    register("tiff_folder", tiff_folder)


@panfw.hookimpl
def register_commands(cli):
    from panfw_datasets.cli import data

    cli.add_command(data)
