"""Tables and matrices: CSV/TSV/Parquet rows, HDF5 and AnnData feature matrices."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import pandas as pd

from biodl.data.base import DATA_TYPES, REFIT_ROWS, LoadedData, Modality
from biodl.data.columns import FeatureChoice, announce, bad_cell_error, default_features, not_found
from biodl.data.expression import resolve_columns
from biodl.data.h5ad import read_h5ad_inputs, uses_lazy_reader
from biodl.data.normalise import Normaliser
from biodl.data.readers import RawTable, read_raw
from biodl.data.split_columns import fold_column, validation_parts
from biodl.data.targets import encode_targets
from biodl.errors import DataError

if TYPE_CHECKING:
    from biodl.config import DataConfig


def _ids(raw: RawTable, id_column: str | None, offset: int) -> np.ndarray:
    if id_column is not None:
        if id_column not in raw.frame.columns:
            raise DataError(f"{raw.path}: id column {id_column!r} not found")
        return raw.frame[id_column].astype(str).to_numpy()
    if "obs_names" in raw.frame.columns:
        return raw.frame["obs_names"].astype(str).to_numpy()
    return np.array([str(offset + i) for i in range(len(raw.frame))])


@DATA_TYPES.register("tabular")
class Tabular(Modality):
    """Numeric feature vectors, one row per example."""

    name: ClassVar[str] = "tabular"
    input_hint: ClassVar[str] = "a feature row: a list of numbers in the feature-column order, or a {column: value} object"
    #: ``model.name: auto`` (the default for tables of every task, :attr:`auto_tasks`): candidate
    #: networks compared on validation; the best is kept, their average only when validation favours it by more
    #: than a standard error (``blend_prior`` single, docs/defaults-tables.md). Multi-label:
    #: the yeast recipe (one wide layer, dropout, weight decay), which beat the two-layer network and
    #: binary-relevance logistic regression in cross-validation, as ten averaged members alternating plain and
    #: piecewise-linear encoded features (the mix beat five of either kind in 5-fold CV on yeast). Classification: a linear
    #: softmax network fitted to convergence by L-BFGS with an L2 penalty (logistic regression's optimum, C ≈ 1) on
    #: winsorised features (standardised, clipped to ±2.5 sd, standardised again: the extreme z-scores of
    #: held-out cells no longer dominate), the PBMC winner (regression: ridge's optimum the same way). Every
    #: task: a regularised one-hidden-layer network (input dropout, no batch norm, weight decay); classification
    #: and regression also its five-member average, and five
    #: averaged networks of the model's defaults (two layers, batch norm, dropout) on the plain features and on
    #: piecewise-linear encoded ones (Gorishniy et al. 2022; tables of at most 256 features: on PBMC's 765 genes
    #: it won validation and lost test), the tables where trees beat the candidates above (scikit-learn's
    #: digits, river's image segments and phishing sites; docs/defaults-tables.md).
    refit_rows: ClassVar[int] = REFIT_ROWS
    portfolio: ClassVar[tuple[dict[str, object], ...]] = (
        {
            "name": "mlp", "hidden_sizes": [256], "dropout": 0.5, "tasks": ["multilabel"],
            "train": {"ensemble_size": 10, "ensemble_variants": [{}, {"numeric_encoding": "ple", "init": "torch_default"}],
                      "weight_decay": 1e-4, "batch_size": 64, "max_epochs": 200, "patience": 15},
        },
        {
            "name": "mlp", "hidden_sizes": [], "batch_norm": False, "tasks": ["classification", "regression"],
            "train": {"optimizer": "lbfgs", "batch_size": 4096, "weight_decay": 2.5e-3, "max_epochs": 30, "patience": 5},
            "data": {"normalize": {"clip": 2.5, "rescale": True}},
        },
        {"name": "mlp", "hidden_sizes": [128], "input_dropout": 0.5, "batch_norm": False, "train": {"weight_decay": 1e-3}},
        {
            "name": "mlp", "hidden_sizes": [128], "input_dropout": 0.5, "batch_norm": False,
            "tasks": ["classification", "regression"], "train": {"weight_decay": 1e-3, "ensemble_size": 5},
        },
        {"name": "mlp", "tasks": ["classification", "regression"], "train": {"ensemble_size": 5}},
        {
            "name": "mlp", "numeric_encoding": "ple", "tasks": ["classification", "regression"], "max_features": 256,
            "train": {"ensemble_size": 5},
        },
    )  # fmt: skip
    #: Settings (dotted config keys) that ``model.name: auto`` applies to keys the experiment leaves unset.
    auto_settings: ClassVar[Mapping[str, object]] = {}
    #: Tasks whose default model (``model.name`` unset) is ``auto``; the others train the default network.
    auto_tasks: ClassVar[tuple[str, ...]] = ("classification", "multilabel", "regression")

    def __init__(self, cfg: Any) -> None:
        super().__init__(cfg)
        self.feature_names: list[str] | None = None
        self.normaliser: Normaliser | None = None
        self.feature_choice: FeatureChoice | None = None

    def with_data(self, cfg: DataConfig) -> Tabular:
        """A fresh, unfitted instance with other options (a ``model.name: auto`` candidate's own normalisation),
        keeping the feature columns that reading the files chose (they go into the candidate's bundle)."""
        fresh = type(self)(cfg)
        fresh.feature_names = list(self.feature_names) if self.feature_names is not None else None
        fresh.feature_choice = self.feature_choice
        return fresh

    # ------------------------------------------------------------------ reading
    def _features(self, raw: RawTable) -> tuple[np.ndarray, list[str], list[dict[str, Any]]]:
        """Features ``(N, F)``, their names, and the cells skipped by ``data.bad_values: skip``
        (their rows hold NaN in ``X``)."""
        cfg = self.cfg
        skip = cfg.bad_values == "skip"
        wanted = self.feature_names or cfg.feature_columns
        if raw.matrix is not None:
            names = raw.matrix_names or [f"f{i}" for i in range(raw.matrix.shape[1])]
            if wanted is None:
                return raw.matrix, names, []
            pos = {n: i for i, n in enumerate(names)}
            missing = [w for w in wanted if w not in pos]
            if missing:
                raise DataError(f"{raw.path}: feature(s) not found: {missing[:10]} ({len(missing)} missing)")
            return raw.matrix[:, [pos[w] for w in wanted]], list(wanted), []
        frame = raw.frame
        if wanted is None:
            choice = default_features(
                raw,
                targets=list(cfg.target_columns),
                reserved=[cfg.id_column, cfg.group_column, cfg.cv_column, cfg.bag_column, cfg.val_column, cfg.mask_column],
                keep_bad=skip,
            )
            announce(choice)
            self.feature_choice = choice
            wanted = choice.features
        missing = [w for w in wanted if w not in frame.columns]
        if missing:
            raise not_found(raw.path, "feature", missing[0], list(frame.columns))
        sub = frame[wanted]
        skipped: list[dict[str, Any]] = []
        columns = {}
        for col in wanted:
            if pd.api.types.is_numeric_dtype(sub[col]):
                continue
            vals = pd.to_numeric(sub[col], errors="coerce")
            bad = (vals.isna() & sub[col].notna()).to_numpy()
            rows = np.flatnonzero(bad)
            if not skip or not rows.size:
                raise bad_cell_error(raw, col, int(rows[0]) if rows.size else 0, int(bad.sum()))
            skipped += [
                {"source": raw.path, "row": int(r) + 1, "line": raw.first_line + int(r) if raw.first_line else None,
                 "column": col, "input": str(sub[col].iloc[r]), "reason": "non-numeric value in a numeric feature column"}
                for r in rows
            ]  # fmt: skip
            columns[col] = vals
        if columns:
            sub = sub.assign(**columns)
        X = sub.to_numpy(dtype=np.float32)
        return X, list(wanted), skipped

    def load(self, paths: list[str], *, require_targets: bool = True, classes: list[str] | None = None) -> LoadedData:
        cfg = self.cfg
        if not paths:
            raise DataError("no data file given (--data-path)")
        if uses_lazy_reader(cfg, paths):
            return self._load_h5ad(paths[0], require_targets=require_targets, classes=classes)
        if cfg.h5ad_backed:
            raise DataError("data.h5ad_backed reads one .h5ad file; give a single --data-path")
        Xs, frames, ids, names = [], [], [], None
        skipped: list[dict[str, Any]] = []
        n_read = 0
        for p in paths:
            raw = read_raw(p, hdf5_features=cfg.hdf5_features, h5ad_layer=cfg.h5ad_layer)
            raw, self.cfg = resolve_columns(raw, cfg)  # @FILE / @others lists; genes as targets (D-GEX)
            cfg = self.cfg
            absent = [c for c in cfg.target_columns if c not in raw.frame.columns]
            if require_targets and absent:
                raise not_found(p, "target", absent[0], list(raw.frame.columns))
            X, fnames, bad_cells = self._features(raw)
            if names is not None and fnames != names:
                raise DataError(f"{p}: feature columns differ from {paths[0]}")
            names = fnames
            row_ids = _ids(raw, cfg.id_column, n_read)
            n_read += len(raw.frame)
            frame_p = raw.frame
            if bad_cells:  # data.bad_values: skip
                keep = np.ones(len(X), dtype=bool)
                keep[[c["row"] - 1 for c in bad_cells]] = False
                skipped += bad_cells
                X, frame_p, row_ids = X[keep], frame_p.loc[keep].reset_index(drop=True), row_ids[keep]
            nan_rows = np.flatnonzero(~np.isfinite(X).all(axis=1))
            if nan_rows.size:
                col = names[int(np.flatnonzero(~np.isfinite(X[nan_rows[0]]))[0])]
                raise DataError(
                    f"{p}: {nan_rows.size} row(s) have missing/non-finite feature values "
                    f"(first: row {nan_rows[0] + 1}, column {col!r}); impute or drop them first"
                )
            Xs.append(X)
            frames.append(frame_p)
            ids.append(row_ids)
        frame = pd.concat(frames, ignore_index=True)
        X = np.concatenate(Xs, axis=0)
        if len(X) == 0:
            raise DataError(f"{paths[0]}: no rows")
        self.feature_names = names
        targets = None
        has_targets = all(c in frame.columns for c in cfg.target_columns) and bool(cfg.target_columns)
        if require_targets or has_targets:
            if not cfg.target_columns:
                raise DataError("no target columns given (--target-columns)")
            if cfg.task is None:
                raise DataError("no task given (--task classification|regression|multilabel)")
            targets = encode_targets(frame, cfg.target_columns, cfg.task, source=", ".join(paths), classes=classes)
        groups = None
        if cfg.group_column is not None:
            if cfg.group_column not in frame.columns:
                raise DataError(f"{paths[0]}: group column {cfg.group_column!r} not found")
            groups = frame[cfg.group_column].astype(str).to_numpy()
        summary: dict[str, Any] = {"files": list(paths), "rows": len(X), "features": int(X.shape[1])}
        if self.feature_choice is not None:
            summary["feature_columns"] = self.feature_choice.summary()
        if skipped:
            rows = sorted({(c["source"], c["row"]) for c in skipped})
            summary["rows_skipped (non-numeric feature values)"] = len(rows)
            summary["skipped_rows"] = skipped
            first = skipped[0]
            print(
                f"note: skipped {len(rows)} row(s) with non-numeric feature values (data.bad_values=skip; first: "
                f"{first['source']} row {first['row']}, column {first['column']!r}: {first['input']!r})"
            )
        folds = fold_column(frame, cfg.cv_column, paths[0]) if cfg.cv_column else None
        parts = None
        if cfg.val_column is not None and cfg.val_column in frame.columns:
            parts = validation_parts(frame, cfg.val_column, source=", ".join(paths))
        return LoadedData(X, targets, np.concatenate(ids), groups, summary, parts, folds=folds)

    def _load_h5ad(self, path: str, *, require_targets: bool, classes: list[str] | None) -> LoadedData:
        """One AnnData file: inputs kept sparse / on disk (:mod:`biodl.data.h5ad`), obs columns as targets and groups."""
        cfg = self.cfg
        frame, rows, names = read_h5ad_inputs(path, cfg, self.feature_names)
        self.feature_names = names
        obs_cols = [c for c in frame.columns if c != "obs_names"]
        absent = [c for c in cfg.target_columns if c not in frame.columns]
        if require_targets and absent:
            raise DataError(f"{path}: obs has no target column {absent[0]!r}; obs columns are {obs_cols}")
        targets = None
        if cfg.target_columns and (require_targets or not absent):
            if cfg.task is None:
                raise DataError("no task given (--task classification|regression|multilabel)")
            targets = encode_targets(frame, cfg.target_columns, cfg.task, source=path, classes=classes)
        elif require_targets:
            raise DataError("no target columns given (--target-columns)")
        groups = None
        if cfg.group_column is not None:
            if cfg.group_column not in frame.columns:
                raise DataError(f"{path}: obs has no group column {cfg.group_column!r}; obs columns are {obs_cols}")
            groups = frame[cfg.group_column].astype(str).to_numpy()
        ids = _ids(RawTable(frame, None, None, path), cfg.id_column, 0)
        summary = {"files": [path], "rows": len(rows), "features": int(rows.shape[1]), "streamed": rows.backed}
        if len(rows) == 0:
            raise DataError(f"{path}: no cells")
        return LoadedData(rows, targets, ids, groups, summary)  # type: ignore[arg-type]

    def parse_inputs(self, inputs: list[Any]) -> np.ndarray:
        """Feature rows given as lists (in training column order) or ``{column: value}`` objects."""
        names = self.feature_names or []
        rows = np.empty((len(inputs), len(names)), dtype=np.float32)
        for i, rec in enumerate(inputs):
            if isinstance(rec, dict):
                missing = [n for n in names if n not in rec]
                if missing:
                    raise DataError(f"input {i}: missing feature(s) {missing[:5]} ({len(missing)} of {len(names)})")
                values = [rec[n] for n in names]
            elif isinstance(rec, (list, tuple)):
                if len(rec) != len(names):
                    raise DataError(f"input {i}: expected {len(names)} feature values, got {len(rec)}")
                values = list(rec)
            else:
                raise DataError(f"input {i}: expected a list of {len(names)} numbers or a column → value object")
            try:
                rows[i] = np.asarray(values, dtype=np.float32)
            except (TypeError, ValueError):
                raise DataError(f"input {i}: feature values must be numbers") from None
            if not np.isfinite(rows[i]).all():
                raise DataError(f"input {i}: feature values must be finite numbers")
        return rows

    # ------------------------------------------------------------ preprocessing
    def fit(self, X_train: np.ndarray) -> None:
        self.normaliser = Normaliser.fit(X_train, self.cfg.normalize)

    def transform(self, X: np.ndarray) -> np.ndarray:
        if self.normaliser is None:
            raise RuntimeError("fit() must be called before transform()")
        return self.normaliser.transform(X)

    def columns(self) -> dict[str, Any]:
        return {"feature_columns": self.feature_names}

    def state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        if self.normaliser is None:
            return {}, {}
        meta, arrays = self.normaliser.state()
        return {"normalize": meta, "feature_columns": self.feature_names}, arrays

    def load_state(self, meta: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
        self.feature_names = meta.get("feature_columns")
        if "normalize" in meta:
            self.normaliser = Normaliser.from_state(meta["normalize"], arrays)
