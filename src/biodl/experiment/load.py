"""Step 1: read the input files (or a converted store) into :class:`~biodl.experiment.results.Inputs`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from biodl.config import DataConfig, ExperimentConfig, ModelConfig
from biodl.data import DATA_TYPES
from biodl.data.base import LoadedData
from biodl.data.store import LazyRows, is_store, open_store
from biodl.data.volume.modality import frame_label_names
from biodl.errors import ConfigError, DataError
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
    return resolve_frame_output(cfg, data), inputs


def resolve_frame_output(cfg: ExperimentConfig, data: LoadedData) -> ExperimentConfig:
    """``timelapse``'s ``model.output: auto`` (the default) from the labels: ``frame`` when clips have one
    label per frame (an NPZ ``labels`` array ``(N, T)``: targets ``frame_0 .. frame_{T-1}``; said in one
    console line), else ``clip``. An explicit ``model.output: clip`` with per-frame labels is a
    :class:`ConfigError` naming both (a per-clip network would give every frame the clip's score)."""
    if cfg.model.name != "timelapse" or data.targets is None:
        return cfg
    params = cfg.model.params()
    output = params.get("output", "auto")
    shape: tuple[int, ...] = tuple(getattr(data.X, "shape", ()))
    frames = int(shape[2]) if len(shape) == 5 else 0
    per_frame = (
        cfg.data.type == "volume" and bool(cfg.data.volume.time_axis) and frames > 1
        and list(data.targets.names) == frame_label_names(frames)
    )  # fmt: skip
    source = ", ".join(Path(p).name for p in cfg.data.path) or "the data"
    if per_frame and output == "clip":
        raise ConfigError(
            f"model.output=clip predicts one label per clip, but {source} has one label per frame (labels (N, {frames})); "
            "leave model.output unset (per-frame labels train a per-frame model, output: frame) or give one label per clip"
        )
    if output != "auto":
        return cfg
    resolved = "frame" if per_frame else "clip"
    if per_frame:
        print(
            f"note: {source} has one label per frame ({frames} frames): timelapse predicts every frame "
            "(model.output: frame, chosen from the labels)"
        )
    model = ModelConfig(name=cfg.model.name, **{**params, "output": resolved})
    return cfg.model_copy(update={"model": model})


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
