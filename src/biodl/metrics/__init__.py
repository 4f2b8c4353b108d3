"""Evaluation metrics: a ``METRICS`` registry of :class:`Metric` classes,
plain functions (``rmse(y_true, y_pred)``, ``auroc(...)``, ...) and
:func:`compute_metrics` for prediction matrices with missing labels.

Example
-------
>>> from biodl.metrics import METRICS, compute_metrics, rmse
>>> METRICS["auroc"]("binary")(y_true, y_prob)
>>> compute_metrics("binary", Y, P, target_names=["a", "b"])["per_task"]["a"]["auroc"]
"""

from __future__ import annotations

from biodl.metrics import multilabel as _multilabel  # noqa: F401  (registers the multi-label metrics)
from biodl.metrics import positions as _positions  # noqa: F401  (registers the per-position "sov")
from biodl.metrics import segmentation as _segmentation  # noqa: F401  (registers pixel/patch/instance metrics)
from biodl.metrics.base import KINDS, METRICS, Kind, Metric
from biodl.metrics.classification import (
    AUPRC,
    AUROC,
    F1,
    MCC,
    Accuracy,
    BalancedAccuracy,
    LogLoss,
    Precision,
    Recall,
    Specificity,
    accuracy,
    auprc,
    auroc,
    balanced_accuracy,
    f1,
    log_loss,
    mcc,
    precision,
    recall,
    specificity,
)
from biodl.metrics.compute import (
    compute_metrics,
    format_difference,
    main_metric,
    metric_names,
    to_jsonable,
)
from biodl.metrics.regression import (
    MAE,
    MSE,
    R2,
    RMSE,
    Pearson,
    Spearman,
    mae,
    mse,
    pearson,
    r2,
    rmse,
    spearman,
)

__all__ = [
    "AUPRC",
    "AUROC",
    "F1",
    "KINDS",
    "MAE",
    "MCC",
    "METRICS",
    "MSE",
    "R2",
    "RMSE",
    "Accuracy",
    "BalancedAccuracy",
    "Kind",
    "LogLoss",
    "Metric",
    "Pearson",
    "Precision",
    "Recall",
    "Spearman",
    "Specificity",
    "accuracy",
    "auprc",
    "auroc",
    "balanced_accuracy",
    "compute_metrics",
    "f1",
    "format_difference",
    "log_loss",
    "mae",
    "main_metric",
    "mcc",
    "metric_names",
    "mse",
    "pearson",
    "precision",
    "r2",
    "recall",
    "rmse",
    "spearman",
    "specificity",
    "to_jsonable",
]
