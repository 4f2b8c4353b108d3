"""Multi-label metrics: scores of a whole label matrix at once (kind ``multilabel``).

Every metric takes ``Y`` ``(N, L)`` in {0, 1} (NaN = missing) and scores ``P`` ``(N, L)``
(probabilities; hard labels are ``P >= threshold``, default 0.5). Rows with a missing label are
left out (``n`` in :func:`multilabel_metrics` counts the rows used). Definitions follow
scikit-learn where it has the metric (Tsoumakas et al., *Mining multi-label data*, 2010):

=====================  ========================================================  =============
name                   definition                                                better
=====================  ========================================================  =============
``hamming_loss``       fraction of wrong label decisions                         lower
``ranking_loss``       fraction of (relevant, irrelevant) pairs ordered wrongly  lower
``one_error``          fraction of samples whose top-scored label is irrelevant  lower
``coverage``           ranks needed to cover all relevant labels (sklearn:       lower
                       ``coverage_error``; Mulan/ML-kNN report this minus 1)
``average_precision``  label-ranking average precision (sklearn LRAP)            higher
``micro_f1``           F1 of all label decisions pooled                          higher
``macro_f1``           mean per-label F1 (0 for a label never true nor predicted) higher
``precision_at_k``     mean fraction of relevant labels among the top k (k=1,3,5) higher
=====================  ========================================================  =============

Example
-------
>>> multilabel_metrics(Y, P)["hamming_loss"]
>>> METRICS["ranking_loss"]()(Y, P)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np

from biodl.errors import DataError
from biodl.metrics.base import KIND_SCORERS, METRICS, Kind, Metric, lazy_function, quiet

coverage_error = lazy_function("sklearn.metrics", "coverage_error")
f1_score = lazy_function("sklearn.metrics", "f1_score")
label_ranking_average_precision_score = lazy_function("sklearn.metrics", "label_ranking_average_precision_score")
label_ranking_loss = lazy_function("sklearn.metrics", "label_ranking_loss")

__all__ = [
    "AveragePrecision",
    "Coverage",
    "HammingLoss",
    "MacroF1",
    "MicroF1",
    "MultilabelMetric",
    "OneError",
    "RankingLoss",
    "complete_rows",
    "multilabel_metric_names",
    "multilabel_metrics",
    "multilabel_task_metrics",
    "single_class_labels",
    "split_metric_names",
]

MULTILABEL: tuple[Kind, ...] = ("multilabel",)
NAN = float("nan")


def complete_rows(Y: np.ndarray, P: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Validate shapes and keep the rows without missing labels; returns int ``Y`` and float ``P``."""
    yt = np.asarray(Y, dtype=float)
    yp = np.asarray(P, dtype=float)
    if yt.ndim != 2 or yt.shape != yp.shape:
        raise DataError(f"multi-label metrics need Y and P of equal (N, L) shapes, got {yt.shape} and {yp.shape}")
    keep = ~np.isnan(yt).any(axis=1)
    yt = yt[keep]
    present = np.unique(yt)
    if not np.isin(present, (0.0, 1.0)).all():
        raise DataError(f"multi-label labels must be 0/1 (NaN = missing), got values {present[:10].tolist()}")
    return yt.astype(int), yp[keep]


class MultilabelMetric(Metric):
    """A metric of a label matrix; subclasses implement :meth:`compute_matrix`.

    Parameters
    ----------
    kind
        Always ``"multilabel"`` (the default).
    threshold
        Probability at or above which a label is predicted (metrics of hard decisions).
    """

    kinds = MULTILABEL
    matrix: ClassVar[bool] = True

    def __init__(self, kind: str | None = None, threshold: float = 0.5) -> None:
        super().__init__(kind)
        self.threshold = threshold

    def __call__(self, y_true: np.ndarray, y_pred: np.ndarray) -> float:
        """Score ``Y`` ``(N, L)`` against ``P`` ``(N, L)``; NaN when no complete row is left."""
        yt, yp = complete_rows(y_true, y_pred)
        if yt.shape[0] == 0:
            return NAN
        with quiet():
            return float(self.compute_matrix(yt, yp))

    def compute_matrix(self, Y: np.ndarray, P: np.ndarray) -> float:
        """Score complete rows (``Y`` int 0/1, ``P`` float)."""
        raise NotImplementedError


@METRICS.register("hamming_loss")
class HammingLoss(MultilabelMetric):
    """Fraction of label decisions that are wrong."""

    name = "hamming_loss"
    higher_is_better = False

    def compute_matrix(self, Y: np.ndarray, P: np.ndarray) -> float:
        return float(np.mean((P >= self.threshold).astype(int) != Y))


@METRICS.register("ranking_loss")
class RankingLoss(MultilabelMetric):
    """Fraction of (relevant, irrelevant) label pairs ranked wrongly (sklearn ``label_ranking_loss``)."""

    name = "ranking_loss"
    higher_is_better = False

    def compute_matrix(self, Y: np.ndarray, P: np.ndarray) -> float:
        if Y.shape[1] == 1:  # no label pairs (sklearn rejects a single column)
            return 0.0
        return float(label_ranking_loss(Y, P))


@METRICS.register("one_error")
class OneError(MultilabelMetric):
    """Fraction of samples whose highest-scored label is not relevant (ties: the first label)."""

    name = "one_error"
    higher_is_better = False

    def compute_matrix(self, Y: np.ndarray, P: np.ndarray) -> float:
        top = np.argmax(P, axis=1)
        return float(np.mean(Y[np.arange(len(Y)), top] == 0))


@METRICS.register("coverage")
class Coverage(MultilabelMetric):
    """How far down the ranking one must go to cover every relevant label (sklearn ``coverage_error``)."""

    name = "coverage"
    higher_is_better = False

    def compute_matrix(self, Y: np.ndarray, P: np.ndarray) -> float:
        if Y.shape[1] == 1:  # one label: covered at depth 1 when relevant, 0 when there is none (as sklearn)
            return float(np.mean(Y[:, 0] == 1))
        return float(coverage_error(Y, P))


@METRICS.register("average_precision")
class AveragePrecision(MultilabelMetric):
    """Label-ranking average precision (sklearn LRAP; the multi-label literature's "average precision")."""

    name = "average_precision"

    def compute_matrix(self, Y: np.ndarray, P: np.ndarray) -> float:
        if Y.shape[1] == 1:  # every row is all-relevant or all-irrelevant: sklearn's convention scores 1
            return 1.0
        return float(label_ranking_average_precision_score(Y, P))


@METRICS.register("micro_f1")
class MicroF1(MultilabelMetric):
    """F1 of all label decisions pooled."""

    name = "micro_f1"

    def compute_matrix(self, Y: np.ndarray, P: np.ndarray) -> float:
        return float(f1_score(Y, (P >= self.threshold).astype(int), average="micro", zero_division=0))


@METRICS.register("macro_f1")
class MacroF1(MultilabelMetric):
    """Mean of the per-label F1 scores."""

    name = "macro_f1"

    def compute_matrix(self, Y: np.ndarray, P: np.ndarray) -> float:
        return float(f1_score(Y, (P >= self.threshold).astype(int), average="macro", zero_division=0))


class _PrecisionAtK(MultilabelMetric):
    k: ClassVar[int] = 1

    def compute_matrix(self, Y: np.ndarray, P: np.ndarray) -> float:
        k = min(self.k, Y.shape[1])
        top = np.argsort(-P, axis=1, kind="stable")[:, :k]
        return float(np.mean(np.take_along_axis(Y, top, axis=1).sum(axis=1) / k))


@METRICS.register("precision_at_1")
class PrecisionAt1(_PrecisionAtK):
    """Fraction of samples whose top-scored label is relevant (1 − one-error)."""

    name = "precision_at_1"
    k = 1


@METRICS.register("precision_at_3")
class PrecisionAt3(_PrecisionAtK):
    """Mean fraction of relevant labels among the 3 top-scored."""

    name = "precision_at_3"
    k = 3


@METRICS.register("precision_at_5")
class PrecisionAt5(_PrecisionAtK):
    """Mean fraction of relevant labels among the 5 top-scored."""

    name = "precision_at_5"
    k = 5


def split_metric_names(names: Sequence[str] | None) -> tuple[list[str] | None, list[str] | None]:
    """``evaluate.metrics`` of a multi-label task as (per-label metric names, label-matrix metric names).

    ``None`` (no choice) gives ``(None, None)``: every metric of both kinds.
    """
    if names is None:
        return None, None
    matrix = set(multilabel_metric_names())
    keys = [n.strip().lower().replace("-", "_") for n in names]
    return [n for n in keys if n not in matrix], [n for n in keys if n in matrix]


def multilabel_task_metrics(
    Y: np.ndarray, P: np.ndarray, *, target_names: list[str] | None = None, metrics: Sequence[str] | None = None
) -> dict[str, Any]:
    """Scores of a multi-label task: per-label (binary) metrics, macro-averaged with ``per_task``, plus
    the label-matrix metrics (Hamming loss, ranking loss, ...); ``metrics`` may mix both kinds."""
    from biodl.metrics.compute import compute_metrics

    per_label, matrix = split_metric_names(metrics)
    out = compute_metrics("binary", Y, P, target_names=target_names, metrics=per_label)
    if per_label == [] and "per_task" in out:
        del out["per_task"]
    if matrix != []:
        out.update({k: v for k, v in multilabel_metrics(Y, P, metrics=matrix).items() if k != "n"})
    return out


def multilabel_metric_names() -> list[str]:
    """Names of the registered multi-label metrics, sorted."""
    return [n for n in METRICS.names() if "multilabel" in METRICS[n].kinds]


def multilabel_metrics(
    Y: np.ndarray, P: np.ndarray, *, metrics: Sequence[str] | None = None, threshold: float = 0.5
) -> dict[str, Any]:
    """Every (or the named) multi-label metric of ``P`` against ``Y``, plus ``n`` (complete rows used)."""
    names = list(metrics) if metrics is not None else multilabel_metric_names()
    out: dict[str, Any] = {}
    for name in names:
        cls = METRICS[name]
        if "multilabel" not in cls.kinds:
            raise DataError(f"metric {name!r} is not a multi-label metric; choose from {multilabel_metric_names()}")
        out[name] = cls("multilabel", threshold=threshold)(Y, P)  # type: ignore[call-arg]
    yt = np.asarray(Y, dtype=float)
    out["n"] = int((~np.isnan(yt).any(axis=1)).sum()) if yt.ndim == 2 else 0
    return out


def single_class_labels(Y: np.ndarray, names: Sequence[str]) -> list[str]:
    """Labels whose (non-missing) training values are all 0 or all 1: nothing to learn, AUROC undefined.

    The experiment lists them in ``metrics.json`` (``single_class_labels``) and prints a note.
    """
    out = []
    for j, name in enumerate(names):
        col = np.asarray(Y, dtype=float)[:, j]
        col = col[~np.isnan(col)]
        if col.size == 0 or col.min() == col.max():
            out.append(str(name))
    if out:
        print(f"note: {len(out)} label(s) have a single class in the training split: {', '.join(out[:10])}")
    return out


KIND_SCORERS["multilabel"] = multilabel_metrics
