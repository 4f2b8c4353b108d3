"""Step 2: assign rows to train / validation / test (or to cross-validation folds)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from biodl.config import ExperimentConfig
from biodl.data import LoadedData
from biodl.data.folds import cv_folds as data_cv_folds
from biodl.data.split_columns import hold_out_test
from biodl.data.splits import Split, make_split, save_splits
from biodl.errors import ConfigError, DataError
from biodl.experiment.results import Inputs
from biodl.training.fit import is_rank_zero


def stratify_labels(data: LoadedData) -> np.ndarray | None:
    """Class labels to stratify on (multi-class, or one binary target), else ``None``."""
    t = data.targets
    if t is None:
        return None
    if t.kind == "multiclass":
        return t.y
    if t.kind == "binary" and t.y.shape[1] == 1:
        return np.where(np.isnan(t.y[:, 0]), -1, t.y[:, 0]).astype(np.int64)
    return None


def apply_val_column(cfg: ExperimentConfig, data: LoadedData) -> None:
    """``--val-column``: the flagged rows validate, the others train (and test, when ``split_sizes`` is set);
    sets ``data.parts`` (which ``split: auto``/``predefined`` follow)."""
    if not cfg.data.val_column:
        return
    column = cfg.data.val_column
    if data.parts is None:
        raise DataError(
            f"validation column {column!r} (--val-column) not found in {', '.join(cfg.data.path)} "
            f"(or data type {cfg.data.type!r} cannot read it)"
        )
    if cfg.data.split not in ("auto", "predefined"):
        raise ConfigError(f"--val-column sets the validation rows itself; data.split must be auto, not {cfg.data.split!r}")
    parts = np.asarray(data.parts, dtype=object)
    files = ", ".join(cfg.data.path)
    if not (parts == "val").any():
        raise DataError(f"{files}: no row has {column!r} true: the validation split (--val-column) would be empty")
    if (parts == "val").all():
        raise DataError(f"{files}: every row has {column!r} true: the training split would be empty")
    if "split_sizes" in cfg.data.model_fields_set and cfg.data.split_sizes[2] > 0:
        parts = hold_out_test(parts, cfg.data.split_sizes, split_seed(cfg))
    data.parts = parts


def split_seed(cfg: ExperimentConfig) -> int:
    """``data.split_seed``, else ``train.seed``."""
    return cfg.train.seed if cfg.data.split_seed is None else cfg.data.split_seed


def split_rows(cfg: ExperimentConfig, inputs: Inputs, out: Path) -> Split:
    """One train/val/test split by ``data.split``; written to ``out/splits.json``."""
    data = inputs.data
    seed = split_seed(cfg)
    split = make_split(
        len(data),
        cfg.data.split_sizes,
        cfg.data.split,
        seed,
        labels=stratify_labels(data),
        groups=data.groups,
        test_chroms=cfg.data.test_chroms,
        val_chroms=cfg.data.val_chroms,
        parts=data.parts,
        sources=data.sources,
    )
    if is_rank_zero():
        save_splits(out / "splits.json", split.to_dict(list(data.ids), seed=seed, sizes_requested=list(cfg.data.split_sizes)))
    return split


def cv_folds(cfg: ExperimentConfig, inputs: Inputs, out: Path) -> list[Split]:
    """``data.cv`` folds (each with its own validation rows); written to ``out/splits.json``."""
    data = inputs.data
    folds = data_cv_folds(
        len(data), cfg.data.cv, cfg.data.cv_column, data.folds, cfg.data.split_sizes, split_seed(cfg),
        labels=stratify_labels(data), groups=data.groups, sources=data.sources,
    )  # fmt: skip
    if is_rank_zero():
        save_splits(
            out / "splits.json",
            {"method": f"{len(folds)}-fold", "folds": [f.to_dict(list(data.ids)) for f in folds]},
        )
    return folds
