"""Step 3: fit the data type's preprocessing (and the regression target scaler) on the training rows only."""

from __future__ import annotations

from typing import Any

import numpy as np

from biodl.config import ExperimentConfig
from biodl.data.normalise import TargetScaler
from biodl.data.splits import Split
from biodl.data.store import LazyRows
from biodl.data.store_stream import store_loader
from biodl.errors import DataError
from biodl.experiment.results import Inputs, Prepared

#: Training rows used to fit preprocessing statistics on a streamed store.
MAX_FIT_ROWS = 10_000
#: Dense float32 bytes of streamed rows held at once: preprocessing fit, each baseline split, a prediction step
#: (wide rows, e.g. 20,000 genes, get fewer rows).
FIT_BYTES, BASELINE_BYTES, PREDICT_BYTES = 256 << 20, 64 << 20, 64 << 20


def sample_rows(idx: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """At most ``k`` of the row indices ``idx`` (all of them when there are no more than ``k``)."""
    return idx if len(idx) <= k else rng.choice(idx, size=k, replace=False)


def row_budget(rows: LazyRows | np.ndarray, k: int, budget: int) -> int:
    """At most ``k`` rows, and no more than ``budget`` bytes of dense float32 (at least 256 rows)."""
    width = int(np.prod(rows.shape[1:])) if len(rows.shape) > 1 else 1
    return int(min(k, max(256, budget // max(4 * width, 1))))


def fit_preprocessing(cfg: ExperimentConfig, inputs: Inputs, split: Split) -> Prepared:
    """Fit ``inputs.modality`` on the training rows and transform the data (or set up streaming loaders)."""
    modality, data, targets = inputs.modality, inputs.data, inputs.targets
    tr, va = split.train, split.val
    if len(tr) == 0:
        raise DataError("the training split is empty")
    y = targets.y
    scaler = TargetScaler.fit(y[tr]) if targets.kind == "regression" else None
    y_fit = scaler.transform(y) if scaler is not None else y
    train_data: Any
    val_data: Any
    X: np.ndarray | None
    if isinstance(data.X, LazyRows):
        rng = np.random.default_rng(cfg.train.seed)
        modality.fit(data.X.fit_sample(np.sort(sample_rows(tr, row_budget(data.X, MAX_FIT_ROWS, FIT_BYTES), rng))))
        X = None
        in_shape = modality.input_shape(tuple(modality.transform(data.X[tr[:2]]).shape[1:]))
        train_data, val_data = (
            store_loader(
                data.X,
                y_fit,
                idx,
                modality.transform,
                chunk_rows=inputs.chunk_rows,
                batch_size=cfg.train.batch_size if part == "train" else max(cfg.train.batch_size, 256),
                shuffle=part == "train",
                num_workers=cfg.train.num_workers,
                seed=cfg.train.seed,
            )
            for part, idx in (("train", tr), ("val", va))
        )
        if not len(va):
            val_data = None
    else:
        modality.fit(data.X[tr])
        X = modality.transform(data.X)
        in_shape = modality.input_shape(tuple(X.shape[1:]))
        train_data, val_data = (X[tr], y_fit[tr]), ((X[va], y_fit[va]) if len(va) else None)
    return Prepared(X=X, in_shape=tuple(in_shape), scaler=scaler, y_fit=y_fit, train_data=train_data, val_data=val_data)
