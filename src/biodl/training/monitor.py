"""What early stopping and the kept weights follow: the validation loss or the task's main metric.

``train.monitor`` (:class:`biodl.config.TrainConfig`): ``loss`` follows the validation loss; ``metric``
the task's headline metric on the validation rows (:func:`biodl.metrics.compute.main_metric`: AUROC for
binary tasks, one or many, and for multi-label data); ``auto`` the metric for two or more binary label
columns (multi-task classification, multi-label data) and the loss otherwise. The plateau learning-rate
schedule always follows the validation loss.

Why a metric for several tasks: the reported figure is the unweighted mean of the tasks' AUROCs, while the
loss weighs each task by how uncertain its labels are and also scores calibration, so on small, noisy
multi-task sets it turns up after a few epochs while the tasks' ranking still improves (SIDER, 27 tasks: best
loss epoch 3, the mean validation AUROC still rising; chemprop selects its epoch on the validation metric).
With one task the two aggregate the same thing and the loss is the smoother signal (BBBP kept the loss's
epochs better: docs/defaults.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from biodl.errors import BiodlError
from biodl.metrics.compute import compute_metrics, main_metric

#: The kinds ``train.monitor: auto`` follows the metric for, and from how many label columns (tasks).
AUTO_METRIC_KINDS: tuple[str, ...] = ("binary",)
AUTO_MIN_TASKS = 2


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
    tasks = 1 if val_y is None or np.ndim(val_y) < 2 else int(np.shape(val_y)[1])
    wants = setting == "metric" or (setting == "auto" and kind in AUTO_METRIC_KINDS and tasks >= AUTO_MIN_TASKS)
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
