"""Score a whole prediction matrix: mask missing labels, average over tasks."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from biodl.errors import ConfigError, DataError
from biodl.metrics.base import KIND_SCORERS, METRICS, Kind, Metric, check_kind

__all__ = [
    "check_task_metrics",
    "compute_metrics",
    "format_difference",
    "main_metric",
    "metric_names",
    "task_metric_names",
    "to_jsonable",
]

_MAIN: dict[Kind, tuple[str, bool]] = {
    "binary": ("auroc", True),
    "multiclass": ("accuracy", True),
    "regression": ("rmse", False),
    "segmentation": ("dice", True),
    "multilabel": ("average_precision", True),
    "positions": ("accuracy", True),
}


def main_metric(kind: str) -> tuple[str, bool]:
    """Return the headline metric of ``kind`` and whether higher is better.

    binary → ``("auroc", True)``, multiclass → ``("accuracy", True)``,
    regression → ``("rmse", False)``.
    """
    return _MAIN[check_kind(kind)]


def metric_names(kind: str) -> list[str]:
    """Names of all registered metrics supporting ``kind``, sorted."""
    checked = check_kind(kind)
    return [name for name in METRICS.names() if checked in METRICS[name].kinds]


#: Metric kinds that can score each task (``evaluate.metrics``): a multi-label task has per-label
#: (binary) metrics and metrics of the whole label matrix; the kind of a single-column
#: classification target (binary or multi-class) is only known once the data are read.
TASK_METRIC_KINDS: dict[str, tuple[Kind, ...]] = {
    "classification": ("binary", "multiclass", "positions"),
    "regression": ("regression",),
    "multilabel": ("binary", "multilabel"),
    "reconstruction": ("regression",),
    "segmentation": ("segmentation",),
}


def task_metric_names(task: str) -> list[str]:
    """Registered metrics that ``evaluate.metrics`` may list for ``task``, sorted."""
    kinds = TASK_METRIC_KINDS.get(task)
    if kinds is None:
        raise ConfigError(f"unknown task {task!r}; choose one of: {', '.join(TASK_METRIC_KINDS)}")
    return [name for name in METRICS.names() if any(k in METRICS[name].kinds for k in kinds)]


def check_task_metrics(names: Sequence[str] | None, task: str | None) -> None:
    """Raise :class:`ConfigError` naming the valid metrics when a name in ``names`` cannot score ``task``.

    Without a task only unknown names are errors.
    """
    from biodl.registry import suggest

    for name in names or []:
        if task is None:
            METRICS[name]
            continue
        valid = task_metric_names(task)
        if name not in METRICS:
            raise ConfigError(
                f"evaluate.metrics: unknown metric {name!r}{suggest(name, valid)}; metrics for task {task}: {', '.join(valid)}"
            )
        if name.strip().lower().replace("-", "_") not in valid:
            kinds = "/".join(METRICS[name].kinds)
            raise ConfigError(
                f"evaluate.metrics: {name!r} is a {kinds} metric and cannot score task {task}; "
                f"metrics for task {task}: {', '.join(valid)}"
            )


def _build(kind: Kind, names: Sequence[str] | None) -> list[Metric]:
    if names is None:
        names = metric_names(kind)
    metrics: list[Metric] = []
    for name in names:
        cls = METRICS[name]  # ConfigError with a suggestion when unknown
        if kind not in cls.kinds:
            raise ConfigError(
                f"metric {name!r} is a {'/'.join(cls.kinds)} metric and cannot score "
                f"{kind} tasks; {kind} metrics: {', '.join(metric_names(kind))}"
            )
        metrics.append(cls(kind))
    return metrics


def _macro(values: list[float]) -> float:
    finite = [v for v in values if not math.isnan(v)]
    return float(np.mean(finite)) if finite else float("nan")


def compute_metrics(
    kind: str,
    y_true: np.ndarray,
    y_pred: np.ndarray,
    *,
    target_names: list[str] | None = None,
    metrics: list[str] | None = None,
) -> dict[str, Any]:
    """Compute metrics for a prediction matrix with missing labels.

    Parameters
    ----------
    kind
        ``"binary"``, ``"multiclass"`` or ``"regression"``.
    y_true
        binary: (N, T) or (N,) floats in {0, 1, NaN}; regression: (N, T) or
        (N,) floats; NaN marks a missing label, masked per task.
        multiclass: (N,) int class indices, -1 (or NaN) marks a missing label.
    y_pred
        binary: probabilities of class 1, same shape as ``y_true``;
        regression: values, same shape as ``y_true``;
        multiclass: (N, C) class probabilities.
    target_names
        Names of the T tasks, keys of ``per_task`` (default ``task_0``, ...).
    metrics
        Metric names (default: every metric of ``kind``).

    Returns
    -------
    dict
        ``{metric: float}`` plus ``n``, the number of labelled rows (for
        T > 1, rows with at least one label). For T > 1 the metric values are
        macro means over tasks (NaN task values ignored, NaN if all are NaN)
        and ``per_task`` maps each target name to ``{metric: float}``.

    Raises
    ------
    ConfigError
        Unknown kind or metric, or a metric of another kind.
    DataError
        Inconsistent shapes or labels.
    """
    checked = check_kind(kind)
    if checked == "positions":
        from biodl.metrics.positions import positions_metrics

        return positions_metrics(y_true, y_pred, metrics=metrics, class_names=target_names)
    if checked in KIND_SCORERS:  # multilabel: registered by biodl.metrics.multilabel
        return KIND_SCORERS[checked](y_true, y_pred, metrics=metrics)
    if checked == "segmentation":
        from biodl.metrics.segmentation import segmentation_metrics

        _build(checked, metrics)  # unknown / wrong-kind names fail as for other kinds
        return segmentation_metrics(y_true, y_pred, metrics=metrics, class_names=target_names)
    scorers = _build(checked, metrics)
    yt = np.asarray(y_true)
    yp = np.asarray(y_pred, dtype=float)
    if checked == "multiclass":
        return _multiclass(scorers, yt, yp)
    return _multitask(scorers, yt.astype(float), yp, target_names)


def _multiclass(scorers: list[Metric], yt: np.ndarray, yp: np.ndarray) -> dict[str, Any]:
    if yt.ndim != 1 or yp.ndim != 2 or yp.shape[0] != yt.shape[0]:
        raise DataError(f"multiclass metrics need y_true (N,) and y_pred (N, C); got {yt.shape} and {yp.shape}")
    labels = yt.astype(float)
    mask = ~np.isnan(labels) & (labels >= 0)
    ints = labels[mask].astype(int)
    if not np.array_equal(ints, labels[mask]) or (ints.size and ints.max() >= yp.shape[1]):
        raise DataError(f"multiclass labels must be integers in [0, {yp.shape[1]}) or -1")
    out: dict[str, Any] = {m.name: m(ints, yp[mask]) for m in scorers}
    out["n"] = int(mask.sum())
    return out


def _multitask(scorers: list[Metric], yt: np.ndarray, yp: np.ndarray, target_names: list[str] | None) -> dict[str, Any]:
    if yt.ndim == 1:
        yt = yt[:, None]
    if yp.ndim == 1:
        yp = yp[:, None]
    if yt.ndim != 2 or yt.shape != yp.shape:
        raise DataError(f"y_true {yt.shape} and y_pred {yp.shape} must have equal (N, T) shapes")
    n_tasks = yt.shape[1]
    names = target_names if target_names is not None else [f"task_{t}" for t in range(n_tasks)]
    if len(names) != n_tasks:
        raise DataError(f"{len(names)} target names for {n_tasks} tasks")
    labelled = ~np.isnan(yt)
    per_task: dict[str, dict[str, float]] = {}
    for t, name in enumerate(names):
        m = labelled[:, t]
        per_task[name] = {s.name: s(yt[m, t], yp[m, t]) for s in scorers}
    out: dict[str, Any] = {s.name: _macro([pt[s.name] for pt in per_task.values()]) for s in scorers}
    out["n"] = int(labelled.any(axis=1).sum())
    if n_tasks > 1:
        out["per_task"] = per_task
    return out


def format_difference(x: float, *, sign: bool = False) -> str:
    """A difference of two scores with 4 decimals, or in scientific notation where 4 decimals would show 0
    (a margin of 4e-05 between two near-perfect scores)."""
    plus = "+" if sign else ""
    return f"{x:{plus}.4f}" if x == 0 or abs(x) >= 5e-4 else f"{x:{plus}.1e}"


def to_jsonable(d: Any) -> Any:
    """Recursively convert numpy values to Python ones and NaN/inf to ``None``.

    The result can be written with ``json.dumps(..., allow_nan=False)``.
    """
    if isinstance(d, Mapping):
        return {str(k): to_jsonable(v) for k, v in d.items()}
    if isinstance(d, (list, tuple)):
        return [to_jsonable(v) for v in d]
    if isinstance(d, np.ndarray):
        return [to_jsonable(v) for v in d.tolist()]
    if isinstance(d, (bool, np.bool_)):
        return bool(d)
    if isinstance(d, (int, np.integer)):
        return int(d)
    if isinstance(d, (float, np.floating)):
        f = float(d)
        return f if math.isfinite(f) else None
    return d
