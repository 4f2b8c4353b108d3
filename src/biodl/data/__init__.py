"""Data types, readers, splits and preprocessing."""

from biodl.data import tabular as _tabular  # noqa: F401  (registers "tabular")
from biodl.data.base import DATA_TYPES, LoadedData, Modality
from biodl.data.targets import Targets, encode_targets

__all__ = ["DATA_TYPES", "LoadedData", "Modality", "Targets", "encode_targets"]
