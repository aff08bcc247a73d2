"""Data services of the core: collation, all-in-one mixing and the data root ($PANFW_DATA)."""

from panfw.data.collate import collate
from panfw.data.mixing import MODES, MixedDataset, mix
from panfw.data.roots import ENV_VAR, data_root

__all__ = ["ENV_VAR", "MODES", "MixedDataset", "collate", "data_root", "mix"]
