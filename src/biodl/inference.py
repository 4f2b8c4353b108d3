"""Predict with and evaluate a saved bundle on new files."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from biodl.bundle import Bundle
from biodl.data.base import LoadedData
from biodl.errors import DataError
from biodl.metrics import compute_metrics, to_jsonable


def load_data(
    bundle: Bundle, paths: list[str], overrides: Mapping[str, Any] | None = None, *, require_targets: bool
) -> LoadedData:
    """Read ``paths`` with the bundle's column mapping (optionally overridden for this file)."""
    cfg = bundle.data_config
    if overrides:
        cfg = cfg.model_copy(update={k: v for k, v in overrides.items() if v is not None})
    bundle.modality.cfg = cfg
    return bundle.modality.load(paths, require_targets=require_targets, classes=bundle.classes)


def predict_frame(bundle: Bundle, data: LoadedData) -> tuple[pd.DataFrame, np.ndarray]:
    """Predictions as a table (one row per input) and the raw output array ``(N, K)``."""
    X = bundle.modality.transform(data.X)
    out = bundle.predict_arrays(X)
    cols: dict[str, Any] = {"id": data.ids}
    if bundle.kind == "multiclass":
        classes = bundle.classes or []
        for j, c in enumerate(classes):
            cols[f"prob_{c}"] = out[:, j]
        cols["predicted"] = [classes[i] for i in out.argmax(axis=1)]
    elif bundle.kind == "binary" and bundle.classes is not None:
        pos = bundle.classes[1]
        cols[f"prob_{pos}"] = out[:, 0]
        cols["predicted"] = np.where(out[:, 0] >= 0.5, pos, bundle.classes[0])
    else:
        for j, name in enumerate(bundle.target_names):
            cols[name] = out[:, j]
    return pd.DataFrame(cols), out


def write_table(frame: pd.DataFrame, path: str | Path) -> Path:
    """Write CSV, TSV or Parquet by extension (atomically via a temporary file)."""
    import os

    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    suffix = p.suffix.lower()
    tmp = p.with_name(p.name + ".tmp")
    if suffix == ".parquet":
        frame.to_parquet(tmp, index=False)
    elif suffix in (".tsv", ".txt"):
        frame.to_csv(tmp, sep="\t", index=False)
    elif suffix == ".csv":
        frame.to_csv(tmp, index=False)
    else:
        raise DataError(f"{p}: unsupported output format {suffix!r}; use .csv, .tsv or .parquet")
    os.replace(tmp, p)
    return p


def evaluate(bundle: Bundle, data: LoadedData, metrics: list[str] | None = None) -> dict[str, Any]:
    """Metrics of the bundle on labelled data."""
    if data.targets is None:
        raise DataError("the file has no target columns to evaluate against")
    _, out = predict_frame(bundle, data)
    res = compute_metrics(data.targets.kind, data.targets.y, out, target_names=data.targets.names, metrics=metrics)
    return dict(to_jsonable(res))
