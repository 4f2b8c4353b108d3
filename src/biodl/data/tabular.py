"""Tables and matrices: CSV/TSV/Parquet rows, HDF5 and AnnData feature matrices."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import pandas as pd

from biodl.data.base import DATA_TYPES, LoadedData, Modality
from biodl.data.expression import resolve_columns
from biodl.data.normalise import Normaliser
from biodl.data.readers import RawTable, read_raw
from biodl.data.targets import encode_targets
from biodl.errors import DataError


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

    def __init__(self, cfg: Any) -> None:
        super().__init__(cfg)
        self.feature_names: list[str] | None = None
        self.normaliser: Normaliser | None = None

    # ------------------------------------------------------------------ reading
    def _features(self, raw: RawTable) -> tuple[np.ndarray, list[str]]:
        cfg = self.cfg
        wanted = self.feature_names or cfg.feature_columns
        if raw.matrix is not None:
            names = raw.matrix_names or [f"f{i}" for i in range(raw.matrix.shape[1])]
            if wanted is None:
                return raw.matrix, names
            pos = {n: i for i, n in enumerate(names)}
            missing = [w for w in wanted if w not in pos]
            if missing:
                raise DataError(f"{raw.path}: feature(s) not found: {missing[:10]} ({len(missing)} missing)")
            return raw.matrix[:, [pos[w] for w in wanted]], list(wanted)
        frame = raw.frame
        if wanted is None:
            reserved = set(cfg.target_columns) | {cfg.id_column, cfg.group_column, cfg.val_column, cfg.mask_column}
            wanted = [c for c in frame.columns if c not in reserved and pd.api.types.is_numeric_dtype(frame[c])]
            if not wanted:
                raise DataError(f"{raw.path}: no numeric feature columns besides the targets")
        missing = [w for w in wanted if w not in frame.columns]
        if missing:
            raise DataError(f"{raw.path}: feature column(s) not found: {missing[:10]}; columns are {list(frame.columns)[:20]}")
        sub = frame[wanted]
        bad = [c for c in wanted if not pd.api.types.is_numeric_dtype(sub[c])]
        if bad:
            col = bad[0]
            vals = pd.to_numeric(sub[col], errors="coerce")
            row = int(np.flatnonzero(vals.isna() & sub[col].notna())[0]) if (vals.isna() & sub[col].notna()).any() else 0
            raise DataError(f"{raw.path}: feature column {col!r} must be numeric; row {row + 1} has {sub[col].iloc[row]!r}")
        X = sub.to_numpy(dtype=np.float32)
        return X, list(wanted)

    def load(self, paths: list[str], *, require_targets: bool = True, classes: list[str] | None = None) -> LoadedData:
        cfg = self.cfg
        if not paths:
            raise DataError("no data file given (--data-path)")
        Xs, frames, ids, names = [], [], [], None
        for p in paths:
            raw = read_raw(p, hdf5_features=cfg.hdf5_features, h5ad_layer=cfg.h5ad_layer)
            raw, self.cfg = resolve_columns(raw, cfg)  # @FILE / @others lists; genes as targets (D-GEX)
            cfg = self.cfg
            absent = [c for c in cfg.target_columns if c not in raw.frame.columns]
            if require_targets and absent:
                raise DataError(f"{p}: target column {absent[0]!r} not found; columns are {list(raw.frame.columns)[:20]}")
            X, fnames = self._features(raw)
            if names is not None and fnames != names:
                raise DataError(f"{p}: feature columns differ from {paths[0]}")
            names = fnames
            nan_rows = np.flatnonzero(~np.isfinite(X).all(axis=1))
            if nan_rows.size:
                col = names[int(np.flatnonzero(~np.isfinite(X[nan_rows[0]]))[0])]
                raise DataError(
                    f"{p}: {nan_rows.size} row(s) have missing/non-finite feature values "
                    f"(first: row {nan_rows[0] + 1}, column {col!r}); impute or drop them first"
                )
            Xs.append(X)
            frames.append(raw.frame)
            ids.append(_ids(raw, cfg.id_column, sum(len(f) for f in frames[:-1])))
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
        summary = {"files": list(paths), "rows": len(X), "features": int(X.shape[1])}
        parts = None
        if cfg.val_column is not None and cfg.val_column in frame.columns:
            from biodl.data.splits import validation_parts

            parts = validation_parts(frame, cfg.val_column, source=", ".join(paths))
        return LoadedData(X, targets, np.concatenate(ids), groups, summary, parts)

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
