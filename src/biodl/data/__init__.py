"""Data types, readers, splits and preprocessing."""

from biodl.data import bags as _bags  # noqa: F401  (registers "bags")
from biodl.data import cpg as _cpg  # noqa: F401  (registers "cpg", "multi" and the cpg input types)
from biodl.data import image as _image  # noqa: F401  (registers "image")
from biodl.data import molecule as _molecule  # noqa: F401  (registers "molecule")
from biodl.data import sequence as _sequence  # noqa: F401  (registers "sequence")
from biodl.data import tabular as _tabular  # noqa: F401  (registers "tabular")
from biodl.data import volume as _volume  # noqa: F401  (registers "volume")
from biodl.data.base import DATA_TYPES, LoadedData, Modality
from biodl.data.targets import Targets, encode_targets

__all__ = ["DATA_TYPES", "LoadedData", "Modality", "Targets", "encode_targets"]
