"""Step 1: read the input files (or a converted store) into :class:`~biodl.experiment.results.Inputs`."""

from __future__ import annotations

from typing import Any

from biodl.config import DataConfig, ExperimentConfig
from biodl.data import DATA_TYPES
from biodl.data.store import LazyRows, is_store, open_store
from biodl.errors import DataError
from biodl.experiment.results import Inputs


def load_inputs(cfg: ExperimentConfig) -> tuple[ExperimentConfig, Inputs]:
    """Read ``cfg.data.path`` with its data type.

    Returns the configuration actually run (a store brings its own data type, task and columns) and the inputs.
    Raises :class:`DataError` when there is nothing to train on.
    """
    if len(cfg.data.path) == 1 and is_store(cfg.data.path[0]):
        data, store_meta = open_store(cfg.data.path[0])
        cfg = config_for_store(cfg, store_meta)
        modality = DATA_TYPES[store_meta["data_type"]](store_data_config(cfg, store_meta))
        if data.targets is None:
            raise DataError(f"{cfg.data.path[0]}: the store has no targets to train on")
        inputs = Inputs(modality, data, chunk_rows=int(store_meta["chunk_rows"]))
    else:
        modality = DATA_TYPES[cfg.data.type](cfg.data)
        data = modality.load(cfg.data.path, require_targets=cfg.data.task != "reconstruction")
        # e.g. a sparse or backed AnnData matrix streams in its own chunks
        inputs = Inputs(modality, data, chunk_rows=data.X.chunk_rows) if isinstance(data.X, LazyRows) else Inputs(modality, data)
    if cfg.data.task == "reconstruction":
        from biodl.models.autoencoder import reconstruction_targets

        data.targets = reconstruction_targets(data.X)
    assert data.targets is not None
    return cfg, inputs


def store_data_config(cfg: ExperimentConfig, meta: dict[str, Any]) -> DataConfig:
    """The store's column mapping with this run's split and normalisation settings."""
    stored = DataConfig.model_validate(meta["data_config"])
    keep = {k: getattr(cfg.data, k) for k in ("split", "split_sizes", "cv", "normalize")}
    return stored.model_copy(update=keep)


def config_for_store(cfg: ExperimentConfig, meta: dict[str, Any]) -> ExperimentConfig:
    """Take the data type and task from the store (a model for another data type falls back to the default)."""
    raw = cfg.to_dict()
    stored = meta["data_config"]
    raw["data"]["type"] = meta["data_type"]
    raw["data"]["task"] = raw["data"]["task"] or stored.get("task")
    raw["data"]["target_columns"] = raw["data"]["target_columns"] or stored.get("target_columns", [])
    from biodl.models import MODELS

    if meta["data_type"] not in MODELS[str(cfg.model.name)].data_types:
        raw["model"] = {"name": None}
    return ExperimentConfig.from_dict(raw)
