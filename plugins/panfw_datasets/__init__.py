"""panfw bundled plugin: datasets (PanCollection h5, TIFF folders, synthetic) and the ``panfw data`` commands.

``mix``, ``collate`` and ``MixedDataset`` are core services (``panfw.data``), re-exported here for
code that imported them from this plugin.
"""

import panfw
from panfw.data import MixedDataset, collate, mix
from panfw_datasets.h5 import DATASETS as H5_DATASETS
from panfw_datasets.h5 import PanCollectionH5
from panfw_datasets.synthetic import SyntheticDataset

__all__ = ["mix", "collate", "MixedDataset", "PanCollectionH5", "SyntheticDataset"]


@panfw.hookimpl
def register_datasets(register):
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
