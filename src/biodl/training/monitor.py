"""What early stopping and the kept weights follow: the validation loss or the task's main metric.

``train.monitor`` (:class:`biodl.config.TrainConfig`): ``loss`` follows the validation loss; ``metric``
the task's headline metric on the validation rows (:func:`biodl.metrics.compute.main_metric`: AUROC for
binary tasks, one or many); ``auto`` the metric for binary classification and the loss otherwise. The
plateau learning-rate schedule always follows the validation loss.

Why a metric: the validation loss also scores calibration, so on small, noisy multi-task sets it turns up
after a few epochs while the ranking the metric scores still improves (SIDER: best loss epoch 3, mean
validation AUROC still rising; chemprop selects its epoch on the validation metric too).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from biodl.errors import BiodlError
from biodl.metrics.compute import compute_metrics, main_metric

#: The kinds ``train.monitor: auto`` follows the metric for.
AUTO_METRIC_KINDS: tuple[str, ...] = ("binary",)


@dataclass(frozen=True)
class Monitor:
    """The logged value that early stopping and :class:`~biodl.training.callbacks.BestWeights` follow.

    Attributes
    ----------
    name
        Logged key, e.g. ``"val_loss"`` or ``"val_auroc"``.
    mode
        ``"min"`` or ``"max"``.
    note
        Why a requested metric could not be followed (printed once), else ``None``.
    """

    name: str
    mode: Literal["min", "max"]
    note: str | None = None

    @property
    def is_metric(self) -> bool:
        """Whether a metric (not a loss) is followed."""
        return not self.name.endswith("_loss")


def selection_monitor(setting: str, kind: str, val_y: np.ndarray | None, *, has_val: bool) -> Monitor:
    """The :class:`Monitor` for ``train.monitor`` = ``setting`` on a task of ``kind``.

    Parameters
    ----------
    setting
        ``"loss"``, ``"metric"`` or ``"auto"``.
    kind
        ``"binary"``, ``"multiclass"``, ``"regression"``, ...
    val_y
        Validation labels in memory ``(N,)`` or ``(N, T)``; ``None`` for streamed validation rows, which
        follow the loss (their metric is not known to be defined before training).
    has_val
        Whether there are validation rows (without them the training loss is followed).
    """
    if not has_val:
        return Monitor("train_loss", "min")
    wants = setting == "metric" or (setting == "auto" and kind in AUTO_METRIC_KINDS)
    if not wants:
        return Monitor("val_loss", "min")
    name, higher = main_metric(kind)
    if val_y is None:
        return Monitor("val_loss", "min", f"train.monitor: {setting}: streamed validation rows follow the validation loss")
    if not _defined(kind, val_y, name):
        return Monitor(
            "val_loss",
            "min",
            f"train.monitor: {setting}: the validation rows cannot score {name} (a single class in every task); "
            "early stopping follows the validation loss",
        )
    return Monitor(f"val_{name}", "max" if higher else "min")


def _defined(kind: str, y: Any, metric: str) -> bool:
    """Whether ``metric`` is finite on labels ``y`` (scored against constant predictions)."""
    y = np.asarray(y)
    if kind == "multiclass":
        labels = y.astype(int, copy=False)
        pred = np.full((len(y), max(int(labels.max(initial=0)) + 1, 2)), 0.5)
    else:
        pred = np.full(y.shape, 0.5, dtype=float)
    try:
        value = compute_metrics(kind, y, pred, metrics=[metric]).get(metric)
    except (ValueError, BiodlError):  # a metric that cannot be scored here is not followed
        return False
    return value is not None and bool(np.isfinite(value))
