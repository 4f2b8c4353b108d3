"""Validation rows shipped with a zoo model (``validation.safetensors``) and the check that a model reproduces
its card's validation metric on them.

The file holds the *raw* model inputs of the run's validation split (``X``, before the bundle's fitted
preprocessing) and the encoded targets (``y``), so the check needs nothing outside the zoo folder.
It is written only when the training data's licence allows redistribution (``card.validation_rows``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from biodl.errors import BundleError

VALIDATION = "validation.safetensors"
#: Ids of the validation rows when the rows themselves may not be shipped (the data stay in their source).
VALIDATION_IDS = "validation_ids.json"


def write_validation_rows(run_dir: Path, out: Path) -> Path:
    """Re-read the run's data with its config and write the validation split's ``X`` / ``y`` to ``out``."""
    from safetensors.numpy import save_file

    from biodl.config import ExperimentConfig, load_yaml
    from biodl.experiment.load import load_inputs

    cfg = ExperimentConfig.from_dict(load_yaml(run_dir / "config.yaml"))
    splits = json.loads((run_dir / "splits.json").read_text())
    rows = np.asarray(splits["val"], dtype=np.int64)
    if not len(rows):
        raise BundleError(f"{run_dir}: the run has no validation rows to ship")
    _, inputs = load_inputs(cfg)
    data = inputs.data
    ids = np.asarray(data.ids).astype(str)
    want = np.asarray(splits.get("val_ids", ids[rows])).astype(str)
    if not np.array_equal(ids[rows], want):
        raise BundleError(f"{run_dir}: re-reading the data did not give the run's validation rows (ids differ)")
    X = np.ascontiguousarray(np.asarray(data.X[rows]))
    assert data.targets is not None
    y = np.ascontiguousarray(np.asarray(data.targets.y)[rows])
    arrays, meta = compact(X, y)
    save_file(arrays, str(out), metadata=meta)
    return out


def compact(X: np.ndarray, y: np.ndarray) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """Store 8-bit images (``v / 255`` floats) as ``uint8`` and small integer targets as ``uint8`` — only when the
    round trip gives back exactly the same arrays (so the card's metric is reproduced bit for bit)."""
    arrays, meta = {"X": X, "y": y}, {"X_dtype": str(X.dtype), "y_dtype": str(y.dtype)}
    if X.dtype.kind == "f" and X.size:
        q = np.round(X.astype(np.float64) * 255)
        if q.min() >= 0 and q.max() <= 255:
            u8 = q.astype(np.uint8)
            if np.array_equal(u8.astype(X.dtype) / X.dtype.type(255), X):
                arrays["X"], meta["X_scale"] = u8, "255"
    if y.dtype.kind in "iub" and y.size and y.min() >= 0 and y.max() <= 255:
        arrays["y"] = y.astype(np.uint8)
    return arrays, meta


def expand(arrays: dict[str, np.ndarray], meta: dict[str, str] | None) -> tuple[np.ndarray, np.ndarray]:
    """The inverse of :func:`compact`."""
    meta = meta or {}
    X, y = arrays["X"], arrays["y"]
    if meta.get("X_scale") == "255":
        dtype = np.dtype(meta.get("X_dtype", "float32"))
        X = X.astype(dtype) / dtype.type(255)
    if "y_dtype" in meta:
        y = y.astype(np.dtype(meta["y_dtype"]))
    return X, y


def check_validation(model_dir: str | Path, source_dir: str | Path | None = None) -> dict[str, Any]:
    """Metrics of a zoo model on its validation rows next to the card's validation metrics.

    The rows are the shipped ``validation.safetensors``, or (``validation_ids.json``: the data are not
    redistributed) the listed rows of the source table found in ``source_dir``.
    Returns ``{"metric": name, "card": value, "measured": value, "measured_all": {...}}``.
    """
    from biodl.bundle import load
    from biodl.metrics import compute_metrics, to_jsonable
    from biodl.model_card import headline_metric

    bundle = load(model_dir)
    assert bundle.path is not None
    X, y = _validation_rows(bundle, source_dir)
    out = bundle.predict_arrays(bundle.modality.transform(X))
    if bundle.meta.get("task") == "multilabel":
        from biodl.metrics.multilabel import multilabel_task_metrics

        res = multilabel_task_metrics(y, out, target_names=bundle.target_names)
    else:
        names = bundle.classes if bundle.kind == "positions" else bundle.target_names
        res = compute_metrics(bundle.kind, y, out, target_names=names)
    measured = dict(to_jsonable(res))
    card_val = bundle.meta.get("metrics", {}).get("val", {})
    metric = headline_metric(bundle.kind, bundle.meta.get("metrics", {}))
    return {"metric": metric, "card": card_val.get(metric), "measured": measured.get(metric), "measured_all": measured}


def _validation_rows(bundle: Any, source_dir: str | Path | None) -> tuple[Any, Any]:
    from safetensors.numpy import load_file

    f = bundle.path / VALIDATION
    if f.is_file():
        from safetensors import safe_open

        with safe_open(str(f), framework="numpy") as fh:
            meta = fh.metadata()
        return expand(load_file(str(f)), meta)
    ids_file = bundle.path / VALIDATION_IDS
    if not ids_file.is_file() or source_dir is None:
        raise BundleError(f"{bundle.path}: no shipped validation rows ({VALIDATION}) and no source folder to read them from")
    import tempfile

    import pandas as pd

    from biodl.inference import load_data

    spec = json.loads(ids_file.read_text())
    (name,) = spec["files"]
    table = pd.read_csv(Path(source_dir) / name, sep="\t" if name.endswith((".tsv", ".txt")) else ",")
    rows = table.iloc[[int(i) for i in spec["ids"]]]  # ids of table rows are their 0-based positions
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / name
        rows.to_csv(path, index=False, sep="\t" if name.endswith((".tsv", ".txt")) else ",")
        data = load_data(bundle, [str(path)], require_targets=True)
    assert data.targets is not None
    return data.X, data.targets.y
