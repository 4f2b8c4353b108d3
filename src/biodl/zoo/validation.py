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
    save_file({"X": X, "y": y}, str(out))
    return out


def check_validation(model_dir: str | Path) -> dict[str, Any]:
    """Metrics of a zoo model on its shipped validation rows next to the card's validation metrics.

    Returns ``{"metric": name, "card": value, "measured": value, "measured_all": {...}}``.
    """
    from safetensors.numpy import load_file

    from biodl.bundle import load
    from biodl.metrics import compute_metrics, to_jsonable
    from biodl.model_card import headline_metric

    bundle = load(model_dir)
    assert bundle.path is not None
    f = bundle.path / VALIDATION
    if not f.is_file():
        raise BundleError(f"{bundle.path}: no shipped validation rows ({VALIDATION})")
    arrays = load_file(str(f))
    X, y = arrays["X"], arrays["y"]
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
