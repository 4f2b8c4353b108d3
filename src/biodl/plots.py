"""Diagnostic figures saved as small PNG files.

Every function draws on a standalone :class:`matplotlib.figure.Figure` (no
pyplot, no global state, safe in threads and on headless machines), writes
the PNG atomically and returns its path. matplotlib and scikit-learn are
imported inside the functions so that ``import biodl`` stays light.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from biodl.io_utils import atomic_write_figure

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = [
    "MAX_RESIDUAL_PANELS",
    "MAX_ROC_TASKS",
    "plot_confusion",
    "plot_learning_curves",
    "plot_residuals",
    "plot_roc_pr",
]

#: Width and height (inches) of a figure with a row of panels.
FIGSIZE = (8.0, 3.5)
#: Resolution of the saved PNGs.
DPI = 100
#: At most this many tasks get a curve in :func:`plot_roc_pr`.
MAX_ROC_TASKS = 20
#: At most this many tasks get a panel in :func:`plot_residuals`.
MAX_RESIDUAL_PANELS = 6
#: Scatter plots draw at most this many points per panel (a fixed subsample).
MAX_SCATTER_POINTS = 5000
#: Confusion matrices with at most this many classes get per-cell counts.
MAX_ANNOTATED_CLASSES = 20

PathLike = str | os.PathLike[str]


def _new_figure(figsize: tuple[float, float] = FIGSIZE) -> Figure:
    from matplotlib.figure import Figure

    return Figure(figsize=figsize, dpi=DPI, layout="constrained")


def _save(fig: Figure, path: PathLike) -> Path:
    """Render ``fig`` to PNG, write it atomically and release the figure."""
    return atomic_write_figure(fig, path, dpi=DPI)


def _column(history: Mapping[str, Sequence[float | None]], key: str) -> NDArray[np.float64] | None:
    values = history.get(key)
    if values is None:
        return None
    return np.asarray([np.nan if v is None else v for v in values], dtype=np.float64)


def _as_2d(name: str, array: NDArray[Any]) -> NDArray[np.float64]:
    out = np.asarray(array, dtype=np.float64)
    if out.ndim == 1:
        out = out[:, None]
    if out.ndim != 2:
        raise ValueError(f"{name} must be 1-D or 2-D, got shape {out.shape}")
    return out


def _check_names(names: Sequence[str], n_tasks: int) -> list[str]:
    if len(names) != n_tasks:
        raise ValueError(f"got {len(names)} task names for {n_tasks} tasks")
    return [str(n) for n in names]


def plot_learning_curves(
    history: Mapping[str, Sequence[float | None]],
    path: PathLike,
    *,
    metric: str | None = None,
) -> Path:
    """Plot training and validation loss per epoch (and optionally a metric).

    Parameters
    ----------
    history
        Per-epoch lists: ``train_loss`` and/or ``val_loss`` (NaN/None for
        epochs without a value), optional ``epoch`` (defaults to 1, 2, ...),
        optional ``train_<metric>`` / ``val_<metric>``.
    path
        Destination PNG.
    metric
        Name of a metric to draw in a second panel when ``train_<metric>`` or
        ``val_<metric>`` is in ``history``.

    Returns
    -------
    Path
        The written PNG. The best (lowest) validation-loss epoch is marked.

    Raises
    ------
    ValueError
        If ``history`` has neither ``train_loss`` nor ``val_loss``.
    """
    train = _column(history, "train_loss")
    val = _column(history, "val_loss")
    base = train if train is not None else val
    if base is None:
        raise ValueError("history has neither 'train_loss' nor 'val_loss'")
    n = len(base)
    epoch_col = _column(history, "epoch")
    epochs = epoch_col if epoch_col is not None else np.arange(1, n + 1, dtype=np.float64)

    metric_cols: dict[str, NDArray[np.float64]] = {}
    if metric:
        for split in ("train", "val"):
            col = _column(history, f"{split}_{metric}")
            if col is not None:
                metric_cols[split] = col
    for key, col in (
        ("epoch", epochs),
        ("train_loss", train),
        ("val_loss", val),
        *((f"{k}_{metric}", v) for k, v in metric_cols.items()),
    ):
        if col is not None and len(col) != n:
            raise ValueError(f"history[{key!r}] has {len(col)} values, expected {n}")

    best: int | None = None
    if val is not None and np.isfinite(val).any():
        best = int(np.nanargmin(val))

    n_panels = 2 if metric_cols else 1
    fig = _new_figure(FIGSIZE if n_panels == 2 else (5.0, 3.5))
    axes = fig.subplots(1, n_panels, squeeze=False)[0]
    panels: list[tuple[Axes, str, dict[str, NDArray[np.float64]]]] = [
        (
            axes[0],
            "loss",
            {k: v for k, v in (("train", train), ("val", val)) if v is not None},
        )
    ]
    if metric_cols:
        panels.append((axes[1], str(metric), metric_cols))
    for ax, label, cols in panels:
        for split, values in cols.items():
            mask = np.isfinite(values)
            ax.plot(epochs[mask], values[mask], marker="o", markersize=2.5, label=split)
        if best is not None:
            ax.axvline(
                epochs[best],
                color="grey",
                linestyle="--",
                linewidth=1,
                label=f"best val loss (epoch {epochs[best]:g})",
            )
        ax.set_xlabel("epoch")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    if best is not None and val is not None:
        axes[0].plot(epochs[best], val[best], marker="*", markersize=10, color="black")
    axes[0].set_title("learning curves", fontsize=9)
    return _save(fig, path)


def plot_roc_pr(
    y_true: NDArray[Any],
    y_score: NDArray[Any],
    path: PathLike,
    *,
    names: Sequence[str],
) -> Path:
    """ROC and precision-recall curves, one per (binary) task.

    Parameters
    ----------
    y_true
        Binary labels, shape ``(N,)`` or ``(N, T)``; NaN marks a missing label
        and is masked per task.
    y_score
        Scores or probabilities of the positive class, same shape.
    path
        Destination PNG.
    names
        One name per task (used in the legends).

    Returns
    -------
    Path
        The written PNG. Only the first :data:`MAX_ROC_TASKS` tasks are drawn;
        tasks without both classes are listed as ``n/a``.
    """
    from sklearn.metrics import (
        average_precision_score,
        precision_recall_curve,
        roc_auc_score,
        roc_curve,
    )

    truth = _as_2d("y_true", y_true)
    score = _as_2d("y_score", y_score)
    if truth.shape != score.shape:
        raise ValueError(f"y_true {truth.shape} and y_score {score.shape} differ in shape")
    labels = _check_names(names, truth.shape[1])

    fig = _new_figure()
    ax_roc, ax_pr = fig.subplots(1, 2)
    n_tasks = truth.shape[1]
    shown = min(n_tasks, MAX_ROC_TASKS)
    for t in range(shown):
        mask = np.isfinite(truth[:, t]) & np.isfinite(score[:, t])
        y, s = truth[mask, t], score[mask, t]
        if np.unique(y).size < 2:
            ax_roc.plot([], [], label=f"{labels[t]} (n/a)")
            ax_pr.plot([], [], label=f"{labels[t]} (n/a)")
            continue
        fpr, tpr, _ = roc_curve(y, s)
        precision, recall, _ = precision_recall_curve(y, s)
        auc = roc_auc_score(y, s)
        ap = average_precision_score(y, s)
        ax_roc.plot(fpr, tpr, linewidth=1, label=f"{labels[t]} (AUC={auc:.3f})")
        ax_pr.step(
            recall,
            precision,
            where="post",
            linewidth=1,
            label=f"{labels[t]} (AP={ap:.3f})",
        )
    ax_roc.plot([0, 1], [0, 1], color="grey", linestyle=":", linewidth=1)
    suffix = f" (first {shown} of {n_tasks} tasks)" if n_tasks > shown else ""
    for ax, title, xlabel, ylabel in (
        (ax_roc, "ROC", "false positive rate", "true positive rate"),
        (ax_pr, "precision-recall", "recall", "precision"),
    ):
        ax.set_xlim(-0.01, 1.01)
        ax.set_ylim(-0.01, 1.01)
        ax.set_title(title + suffix, fontsize=9)
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3)
        ax.legend(
            fontsize=6 if shown > 5 else 7,
            loc="lower right" if ax is ax_roc else "lower left",
        )
    return _save(fig, path)


def plot_confusion(
    y_true: NDArray[Any],
    y_pred: NDArray[Any],
    path: PathLike,
    *,
    classes: Sequence[str],
) -> Path:
    """Confusion matrix of a multi-class classifier.

    Parameters
    ----------
    y_true
        True class indices, shape ``(N,)``; ``-1`` marks a missing label.
    y_pred
        Predicted class indices, shape ``(N,)``.
    path
        Destination PNG.
    classes
        Class names, in index order.

    Returns
    -------
    Path
        The written PNG. Cell colour is the row-normalised fraction (recall
        per true class); cells show counts when there are few classes.

    Raises
    ------
    ValueError
        On shape mismatches or class indices outside ``[0, len(classes))``.
    """
    truth = np.asarray(y_true).reshape(-1)
    pred = np.asarray(y_pred).reshape(-1)
    if truth.shape != pred.shape:
        raise ValueError(f"y_true {truth.shape} and y_pred {pred.shape} differ in shape")
    k = len(classes)
    if k == 0:
        raise ValueError("classes must not be empty")
    keep = truth >= 0
    truth, pred = truth[keep].astype(np.int64), pred[keep].astype(np.int64)
    for name, arr in (("y_true", truth), ("y_pred", pred)):
        if arr.size and (arr.min() < 0 or arr.max() >= k):
            raise ValueError(f"{name} has class indices outside [0, {k})")
    counts = np.bincount(truth * k + pred, minlength=k * k).reshape(k, k)
    totals = counts.sum(axis=1, keepdims=True)
    fractions = np.divide(counts, totals, out=np.zeros((k, k)), where=totals > 0)

    side = min(8.0, 3.0 + 0.35 * k)
    fig = _new_figure((side + 1.0, side))
    ax = fig.subplots()
    image = ax.imshow(fractions, cmap="Blues", vmin=0.0, vmax=1.0)
    fig.colorbar(image, ax=ax, label="fraction of true class")
    if k <= MAX_ANNOTATED_CLASSES:
        for i in range(k):
            for j in range(k):
                ax.text(
                    j,
                    i,
                    str(counts[i, j]),
                    ha="center",
                    va="center",
                    fontsize=7,
                    color="white" if fractions[i, j] > 0.5 else "black",
                )
    ax.set_xticks(range(k), [str(c) for c in classes], rotation=45, ha="right", fontsize=7)
    ax.set_yticks(range(k), [str(c) for c in classes], fontsize=7)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(f"confusion matrix (n={int(counts.sum())})", fontsize=9)
    return _save(fig, path)


def plot_residuals(
    y_true: NDArray[Any],
    y_pred: NDArray[Any],
    path: PathLike,
    *,
    names: Sequence[str],
) -> Path:
    """Predicted-versus-observed scatter plots for regression tasks.

    Parameters
    ----------
    y_true
        Observed values, shape ``(N,)`` or ``(N, T)``; NaN marks a missing value.
    y_pred
        Predictions, same shape.
    path
        Destination PNG.
    names
        One name per task (panel titles).

    Returns
    -------
    Path
        The written PNG: one panel per task (the first
        :data:`MAX_RESIDUAL_PANELS`), with the identity line and Pearson r.
    """
    truth = _as_2d("y_true", y_true)
    pred = _as_2d("y_pred", y_pred)
    if truth.shape != pred.shape:
        raise ValueError(f"y_true {truth.shape} and y_pred {pred.shape} differ in shape")
    labels = _check_names(names, truth.shape[1])
    shown = min(truth.shape[1], MAX_RESIDUAL_PANELS)
    n_cols = min(shown, 3)
    n_rows = math.ceil(shown / n_cols) if shown else 1
    fig = _new_figure((FIGSIZE[0], FIGSIZE[1] * n_rows if n_rows > 1 else FIGSIZE[1]))
    axes = fig.subplots(n_rows, max(n_cols, 1), squeeze=False).ravel()
    rng = np.random.default_rng(0)
    for t, ax in enumerate(axes):
        if t >= shown:
            ax.set_axis_off()
            continue
        mask = np.isfinite(truth[:, t]) & np.isfinite(pred[:, t])
        x, y = truth[mask, t], pred[mask, t]
        r_text = "n/a"
        if x.size >= 2 and np.std(x) > 0 and np.std(y) > 0:
            r_text = f"{np.corrcoef(x, y)[0, 1]:.3f}"
        if x.size > MAX_SCATTER_POINTS:
            pick = rng.choice(x.size, MAX_SCATTER_POINTS, replace=False)
            x, y = x[pick], y[pick]
        ax.scatter(x, y, s=5, alpha=0.4, linewidths=0, rasterized=True)
        if x.size:
            low = float(min(x.min(), y.min()))
            high = float(max(x.max(), y.max()))
            ax.plot([low, high], [low, high], color="grey", linestyle="--", linewidth=1)
        ax.set_title(f"{labels[t]} (n={int(mask.sum())}, r={r_text})", fontsize=8)
        ax.set_xlabel("observed", fontsize=8)
        ax.set_ylabel("predicted", fontsize=8)
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3)
    return _save(fig, path)


def plot_histogram(values: NDArray[Any], path: PathLike, *, xlabel: str, bins: int = 20) -> Path:
    """Histogram of ``values`` ``(N,)`` (e.g. the accuracy of each sequence), with the mean and median marked."""
    fig = _new_figure()
    ax = fig.add_subplot(1, 1, 1)
    v = np.asarray(values, dtype=np.float64)
    v = v[np.isfinite(v)]
    ax.hist(v, bins=bins, color="#4477aa", edgecolor="white")
    if v.size:
        ax.axvline(float(v.mean()), color="#cc3311", label=f"mean {v.mean():.3f}")
        ax.axvline(float(np.median(v)), color="#228833", linestyle="--", label=f"median {np.median(v):.3f}")
        ax.legend()
    ax.set_xlabel(xlabel)
    ax.set_ylabel("count")
    ax.set_title(f"n = {v.size}")
    return _save(fig, path)
