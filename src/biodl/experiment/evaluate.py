"""Step 5: predict every row, score each split (and the classical baselines) into ``metrics.json``'s content."""

from __future__ import annotations

from typing import Any

import numpy as np

from biodl.baselines import run_baselines
from biodl.config import ExperimentConfig
from biodl.data.splits import Split
from biodl.data.store import StoreRows
from biodl.errors import DataError
from biodl.experiment.blend import paired_se
from biodl.experiment.prepare import BASELINE_BYTES, PREDICT_BYTES, row_budget, sample_rows
from biodl.experiment.results import Evaluation, Inputs, Prepared, Trained
from biodl.experiment.yardstick import compare_to_baseline
from biodl.metrics import compute_metrics, main_metric, to_jsonable

#: Rows per split used for the classical baseline on a streamed store.
MAX_BASELINE_ROWS = 20_000
#: Foreground thresholds tried by ``evaluate.select_threshold``.
THRESHOLD_GRID = tuple(round(0.2 + 0.05 * i, 2) for i in range(13))


def predict_rows(inputs: Inputs, prepared: Prepared, trained: Trained) -> np.ndarray:
    """The trained bundle's predictions for every row, ``(N, T)`` (chunk by chunk for a streamed store)."""
    bundle, data = trained.bundle, inputs.data
    if prepared.X is not None:
        return bundle.predict_arrays(prepared.X)
    step = row_budget(data.X, max(inputs.chunk_rows, 4096), PREDICT_BYTES)
    transform = inputs.modality.transform
    if getattr(data.X, "position", None) is None:  # rows stored in input order
        return np.concatenate([bundle.predict_arrays(transform(data.X[i : i + step])) for i in range(0, len(data), step)])
    # a shuffled store is read sequentially in its stored order, then the rows are put back in order
    assert isinstance(data.X, StoreRows)
    order = data.X.stored_order()
    stored = np.concatenate([bundle.predict_arrays(transform(data.X[order[i : i + step]])) for i in range(0, len(data), step)])
    preds = np.empty_like(stored)
    preds[order] = stored
    return preds


def evaluate_run(cfg: ExperimentConfig, inputs: Inputs, split: Split, prepared: Prepared, trained: Trained) -> Evaluation:
    """Scores of the network on each split, the baselines, and the task's own reports.

    Sets ``trained.bundle.meta["metrics"]`` (validation and test scores) and, with
    ``evaluate.select_threshold``, the model's chosen threshold.
    """
    targets = inputs.targets
    model, meta = trained.model, trained.bundle.meta
    tr, va, te = split.train, split.val, split.test
    X, y = prepared.X, targets.y
    preds = predict_rows(inputs, prepared, trained)
    chosen = cfg.evaluate.metrics
    metrics: dict[str, Any] = {}
    if cfg.evaluate.select_threshold and len(va):
        selected = select_threshold(model, cfg.evaluate.select_threshold, targets.kind, y[va], preds[va])
        if selected is not None:
            metrics["threshold"], preds = selected, shift_threshold(preds, selected["value"])
            meta["model"]["params"]["threshold"] = selected["value"]
    for part, idx in (("train", tr), ("val", va), ("test", te)):
        if not len(idx):
            metrics[part] = {}
        elif cfg.data.task == "multilabel":  # per-label scores + example-based scores (hamming, ranking, ...)
            from biodl.metrics.multilabel import multilabel_task_metrics

            metrics[part] = multilabel_task_metrics(y[idx], preds[idx], target_names=targets.names, metrics=chosen)
        else:
            names = targets.classes if targets.kind == "positions" else targets.names
            metrics[part] = compute_metrics(targets.kind, y[idx], preds[idx], target_names=names, metrics=chosen)
    if cfg.data.task == "reconstruction":  # one score over all reconstructed values + a PCA reference
        from biodl.models.autoencoder import reconstruction_report

        parts_idx = {"train": tr, "val": va, "test": te}
        code = int(getattr(model, "latent_size", 32))
        metrics.update(reconstruction_report(X, y, preds, parts_idx, metrics=chosen, n_components=code, seed=cfg.train.seed))
    if cfg.data.task == "multilabel":
        from biodl.metrics.multilabel import single_class_labels

        metrics["single_class_labels"] = single_class_labels(y[tr], targets.names)  # counted, not fatal
    base_val = add_baselines(cfg, inputs, split, prepared, metrics)
    if trained.two_step:
        metrics["label_encoder"] = model.label_encoder_report(y, {"train": tr, "val": va, "test": te})
    metrics["training"] = {"best_epoch": trained.best_epoch, "epochs": trained.epochs}
    if trained.monitor:  # what chose the kept epoch (train.monitor)
        metrics["training"]["best_epoch_by"] = trained.monitor
    metrics = to_jsonable(metrics)
    compare_to_baseline(metrics, targets.kind, standard_error=margin_se(inputs, va, preds, base_val, targets.kind))
    meta["metrics"] = {k: metrics[k] for k in ("val", "test") if k in metrics}
    return Evaluation(preds=preds, metrics=metrics)


def margin_se(inputs: Inputs, rows: np.ndarray, preds: np.ndarray, base_val: np.ndarray | None, kind: str) -> float | None:
    """Bootstrap standard error of the network's headline validation score minus the baseline's (the same
    resampled ``rows`` score both, :func:`biodl.experiment.blend.paired_se`); ``None`` without baseline predictions.

    ``preds`` are the network's predictions for every row, ``base_val`` the baseline's for ``rows``.
    """
    if base_val is None or not len(rows) or kind not in ("binary", "multiclass", "regression"):
        return None
    net = preds[rows]
    if net.shape != np.shape(base_val):
        return None
    se = paired_se(inputs, rows, net, np.asarray(base_val), main_metric(kind)[0])
    return se if np.isfinite(se) else None


def add_baselines(
    cfg: ExperimentConfig, inputs: Inputs, split: Split, prepared: Prepared, metrics: dict[str, Any]
) -> np.ndarray | None:
    """Fit ``evaluate.baselines`` on the training rows' baseline features; sets ``metrics["baseline"]``.

    Returns the selected baseline's predictions for the validation rows ``split.val`` (for the paired
    comparison with the network), or ``None`` (no baseline, no validation rows, or a sample of a streamed store).
    """
    modality, data, targets = inputs.modality, inputs.data, inputs.targets
    tr, va, te = split.train, split.val, split.test
    X, y = prepared.X, targets.y
    if cfg.evaluate.baselines and targets.kind == "positions":
        if X is None:
            raise DataError("per-position labels need in-memory data, not a streamed store")
        from biodl.baselines_positions import window_baseline

        metrics["baseline"] = window_baseline(X, y, tr, va, te, classes=list(targets.classes or []), seed=cfg.train.seed)
        return None
    if cfg.evaluate.baselines:
        n_classes = len(targets.classes) if targets.kind == "multiclass" and targets.classes else None
        if X is not None:
            F = modality.baseline_features(X)
            parts = [(F[i], y[i]) for i in (tr, va, te)]
        else:  # a bounded sample of each split keeps memory flat
            rng = np.random.default_rng(cfg.train.seed)
            k = row_budget(data.X, MAX_BASELINE_ROWS, BASELINE_BYTES)
            picked = [np.sort(sample_rows(i, k, rng)) for i in (tr, va, te)]
            parts = [(modality.baseline_features(modality.transform(data.X[i])), y[i]) for i in picked]
            metrics["baseline_rows"] = {p: len(i) for p, i in zip(("train", "val", "test"), picked)}
        metrics["baseline"] = run_baselines(
            targets.kind,
            *parts[0],
            *parts[1],
            *parts[2],
            names=tuple(cfg.evaluate.baselines),
            seed=cfg.train.seed,
            n_classes=n_classes,
            target_names=targets.names,
            multilabel=cfg.data.task == "multilabel",
            val_predictions=True,
        )
        val_preds = metrics["baseline"].pop("val_predictions", None)
        return val_preds if X is not None else None
    return None


def select_threshold(model: Any, metric: str, kind: str, y_val: np.ndarray, p_val: np.ndarray) -> dict[str, Any] | None:
    """The binary foreground threshold that maximises ``metric`` on the validation rows.

    Sets ``model.params.threshold`` (the model then shifts its logits) and returns what was
    tried, or ``None`` when the model has no threshold (multi-class masks, ensembles of anything but
    binary masks).
    """
    params = getattr(model, "params", None)
    if params is None or p_val.ndim < 2 or p_val.shape[1] != 1 or not hasattr(params, "threshold"):
        return None
    if getattr(params, "kind", "segmentation") != "segmentation":  # an ensemble shifts only binary-mask logits
        return None
    scores = {
        t: float(compute_metrics(kind, y_val, (p_val > t).astype(np.float32), metrics=[metric]).get(metric, np.nan))
        for t in THRESHOLD_GRID
    }
    best = max(scores, key=lambda t: (np.nan_to_num(scores[t], nan=-1.0), -abs(t - 0.5)))  # ties: nearest 0.5
    params.threshold = best
    return {"metric": metric, "value": best, "validation": {str(t): s for t, s in scores.items()}}


def shift_threshold(p: np.ndarray, threshold: float) -> np.ndarray:
    """Probabilities as the model gives them once its logits are shifted by ``-logit(threshold)``."""
    q = np.clip(p.astype(np.float64), 1e-7, 1 - 1e-7)
    z = np.log(q / (1 - q)) - np.log(threshold / (1 - threshold))
    return (1.0 / (1.0 + np.exp(-z))).astype(p.dtype)
