"""Instance weights of multiple-instance models: which instances of a bag drove its prediction.

The ``mil`` model's pooling gives every real instance a weight (attention weights, the mean's
``1/K``, the share of embedding dimensions where an instance is the maximum, or its share of the
noisy-AND's instance probabilities) and the bag classifier scores each instance alone. These
are written as a table (one row per instance) and drawn: weights as a heat map over the image
of image bags, a bar chart per bag for table bags.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from biodl.data.bag_figures import bag_figures, instance_weights
from biodl.errors import ConfigError


def instance_table(bundle: Any, data: Any, X_model: np.ndarray | None = None) -> pd.DataFrame:
    """One row per real instance: ``bag``, ``instance`` (row number in the file, or tile ``y,x``),
    ``weight`` and the instance's own score (``instance_prob_<class>`` / ``instance_<target>``)."""
    X = bundle.modality.transform(data.X) if X_model is None else X_model
    got = instance_weights(bundle.model, X)
    if got is None:
        raise ConfigError(f"model {bundle.meta['model']['name']!r} gives no instance weights")
    weights, scores = got
    mask = X[:, :, -1]
    while mask.ndim > 2:
        mask = mask[..., 0]
    names = getattr(bundle.modality, "instance_names", None) or []
    rows: dict[str, list[Any]] = {"bag": [], "instance": [], "weight": []}
    b_idx, k_idx = np.nonzero(mask > 0.5)
    for b, k in zip(b_idx, k_idx):
        rows["bag"].append(str(data.ids[b]))
        rows["instance"].append(names[b][k] if b < len(names) and k < len(names[b]) else str(k + 1))
        rows["weight"].append(float(weights[b, k]))
    s = scores[b_idx, k_idx]
    kind = bundle.kind
    if kind == "binary":
        cols = {f"instance_prob_{bundle.classes[1] if bundle.classes else bundle.target_names[0]}": 1 / (1 + np.exp(-s[:, 0]))}
    elif kind == "multiclass":
        e = np.exp(s - s.max(axis=1, keepdims=True))
        p = e / e.sum(axis=1, keepdims=True)
        cols = {f"instance_prob_{c}": p[:, j] for j, c in enumerate(bundle.classes or [])}
    else:
        cols = {f"instance_{n}": s[:, j] for j, n in enumerate(bundle.target_names)}
    frame = pd.DataFrame(rows)
    for name, values in cols.items():
        frame[name] = values
    return frame


def explain_bags(bundle: Any, data: Any, output_dir: str | Path, *, max_bags: int = 6) -> dict[str, Any]:
    """Write ``OUTPUT_DIR/instances.csv`` and figures of the first ``max_bags`` bags."""
    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    X = bundle.modality.transform(data.X)
    table = instance_table(bundle, data, X)
    table.to_csv(out / "instances.csv", index=False)
    rows = np.arange(min(len(X), max_bags))
    figures = bag_figures(bundle.modality, bundle.model, X, data, rows, out / "figures")
    return {"instances": str(out / "instances.csv"), "figures": {k: str(v) for k, v in figures.items()}, "bags": len(X)}


def cmd_explain_bags(args: Any) -> int:
    """``biodl explain`` for ``mil`` models: instance weights (``--method attention``)."""
    from biodl.bundle import load
    from biodl.inference import load_data

    if args.method not in (None, "attention"):
        raise ConfigError(f"--method {args.method}: multiple-instance models explain with their instance weights (attention)")
    bundle = load(args.model_path)
    data = load_data(bundle, list(args.data_path), {}, require_targets=False)
    n = max(1, int(getattr(args, "plots", 6) or 6))
    summary = explain_bags(bundle, data, args.output_dir, max_bags=n)
    print(f"instance weights of {summary['bags']} bag(s) written to {summary['instances']} ({len(summary['figures'])} figure(s))")
    return 0
