"""Binary and multiclass classification metrics for one task.

Every function takes ``y_true`` of shape (N,) and either

* binary: ``y_pred`` (N,) probabilities of class 1, ``y_true`` in {0, 1};
  hard labels are ``y_pred >= threshold``;
* multiclass: ``y_pred`` (N, C) class probabilities, ``y_true`` int class
  indices in ``[0, C)``; hard labels are ``argmax(y_pred, axis=1)``.

The kind is chosen by ``y_pred.ndim``. Undefined scores are ``nan`` and no
warning leaks out:

* binary ``auroc``: fewer than two classes in ``y_true``;
* binary ``auprc``, ``recall``, ``f1``: no positive label;
* binary ``specificity``: no negative label;
* ``log_loss`` (the cross-entropy of the predicted probabilities, clipped to [1e-15, 1 − 1e-15]): no rows;
* multiclass ``auroc``/``auprc``/``specificity`` are macro means over the
  classes where the per-class score is defined (``nan`` if none is).

``precision`` with no predicted positive is 0 (scikit-learn's
``zero_division=0``). ``mcc`` is 0 when its denominator is 0, as in
scikit-learn. Multiclass ``f1``/``precision``/``recall``/``specificity`` are
macro means over the classes present in ``y_true`` or in the hard predictions,
the scikit-learn default.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from biodl.metrics.base import METRICS, Kind, Metric, lazy_function, quiet

average_precision_score = lazy_function("sklearn.metrics", "average_precision_score")
balanced_accuracy_score = lazy_function("sklearn.metrics", "balanced_accuracy_score")
f1_score = lazy_function("sklearn.metrics", "f1_score")
matthews_corrcoef = lazy_function("sklearn.metrics", "matthews_corrcoef")
precision_score = lazy_function("sklearn.metrics", "precision_score")
recall_score = lazy_function("sklearn.metrics", "recall_score")
roc_auc_score = lazy_function("sklearn.metrics", "roc_auc_score")

__all__ = [
    "AUPRC",
    "AUROC",
    "F1",
    "MCC",
    "Accuracy",
    "BalancedAccuracy",
    "LogLoss",
    "Precision",
    "Recall",
    "Specificity",
    "accuracy",
    "auprc",
    "auroc",
    "balanced_accuracy",
    "f1",
    "log_loss",
    "mcc",
    "precision",
    "recall",
    "specificity",
]

NAN = float("nan")
CLASSIFICATION: tuple[Kind, ...] = ("binary", "multiclass")


def _prepare(y_true: np.ndarray, y_pred: np.ndarray, threshold: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Validate inputs; return int labels (N,), float scores and hard labels (N,)."""
    yp = np.asarray(y_pred, dtype=float)
    yt_raw = np.asarray(y_true)
    if yt_raw.ndim != 1:
        raise ValueError(f"y_true must be 1-D, got shape {yt_raw.shape}")
    if yp.ndim not in (1, 2) or yp.shape[0] != yt_raw.shape[0]:
        raise ValueError(f"y_pred shape {yp.shape} does not match y_true shape {yt_raw.shape}")
    yt = yt_raw.astype(int)
    if yt_raw.size and not np.array_equal(yt, yt_raw):
        raise ValueError("classification labels must be integers")
    n_classes = 2 if yp.ndim == 1 else yp.shape[1]
    if yt.size and (yt.min() < 0 or yt.max() >= n_classes):
        raise ValueError(f"labels must lie in [0, {n_classes}), got {sorted(set(yt.tolist()))}")
    hard = (yp >= threshold).astype(int) if yp.ndim == 1 else np.argmax(yp, axis=1)
    return yt, yp, hard


def _nanmean(values: list[float]) -> float:
    finite = [v for v in values if not np.isnan(v)]
    return float(np.mean(finite)) if finite else NAN


def _binary_auroc(yt: np.ndarray, score: np.ndarray) -> float:
    if np.unique(yt).size < 2:
        return NAN
    return float(roc_auc_score(yt, score))


def _binary_auprc(yt: np.ndarray, score: np.ndarray) -> float:
    if not np.any(yt == 1):
        return NAN
    return float(average_precision_score(yt, score))


def _specificity(yt: np.ndarray, hard: np.ndarray, label: int) -> float:
    negatives = yt != label
    n_neg = int(negatives.sum())
    if n_neg == 0:
        return NAN
    return float(np.sum(negatives & (hard != label)) / n_neg)


def accuracy(y_true: np.ndarray, y_pred: np.ndarray, *, threshold: float = 0.5) -> float:
    """Fraction of correct hard predictions."""
    yt, _, hard = _prepare(y_true, y_pred, threshold)
    return float(np.mean(yt == hard)) if yt.size else NAN


def balanced_accuracy(y_true: np.ndarray, y_pred: np.ndarray, *, threshold: float = 0.5) -> float:
    """Mean per-class recall over the classes present in ``y_true``."""
    yt, _, hard = _prepare(y_true, y_pred, threshold)
    if not yt.size:
        return NAN
    with quiet():
        return float(balanced_accuracy_score(yt, hard))


def auroc(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Area under the ROC curve (multiclass: one-vs-rest macro mean)."""
    yt, yp, _ = _prepare(y_true, y_pred, 0.5)
    with quiet():
        if yp.ndim == 1:
            return _binary_auroc(yt, yp)
        return _nanmean([_binary_auroc(yt == c, yp[:, c]) for c in range(yp.shape[1])])


def auprc(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Average precision (multiclass: one-vs-rest macro mean over classes in ``y_true``)."""
    yt, yp, _ = _prepare(y_true, y_pred, 0.5)
    with quiet():
        if yp.ndim == 1:
            return _binary_auprc(yt, yp)
        return _nanmean([_binary_auprc((yt == c).astype(int), yp[:, c]) for c in range(yp.shape[1])])


def log_loss(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Mean negative log-likelihood of the true labels (lower is better; scikit-learn's ``log_loss``)."""
    yt, yp, _ = _prepare(y_true, y_pred, 0.5)
    if not yt.size:
        return NAN
    p = yp[np.arange(len(yt)), yt] if yp.ndim == 2 else np.where(yt == 1, yp, 1.0 - yp)
    return float(-np.mean(np.log(np.clip(p, 1e-15, 1.0 - 1e-15))))


def f1(y_true: np.ndarray, y_pred: np.ndarray, *, threshold: float = 0.5) -> float:
    """F1 score (multiclass: macro mean)."""
    yt, yp, hard = _prepare(y_true, y_pred, threshold)
    if not yt.size or (yp.ndim == 1 and not np.any(yt == 1)):
        return NAN
    with quiet():
        average = "binary" if yp.ndim == 1 else "macro"
        return float(f1_score(yt, hard, average=average, zero_division=0))


def mcc(y_true: np.ndarray, y_pred: np.ndarray, *, threshold: float = 0.5) -> float:
    """Matthews correlation coefficient (multiclass: the multiclass generalisation)."""
    yt, _, hard = _prepare(y_true, y_pred, threshold)
    if not yt.size:
        return NAN
    with quiet():
        return float(matthews_corrcoef(yt, hard))


def precision(y_true: np.ndarray, y_pred: np.ndarray, *, threshold: float = 0.5) -> float:
    """Precision, 0 when nothing is predicted positive (multiclass: macro mean)."""
    yt, yp, hard = _prepare(y_true, y_pred, threshold)
    if not yt.size:
        return NAN
    with quiet():
        average = "binary" if yp.ndim == 1 else "macro"
        return float(precision_score(yt, hard, average=average, zero_division=0))


def recall(y_true: np.ndarray, y_pred: np.ndarray, *, threshold: float = 0.5) -> float:
    """Recall / sensitivity (multiclass: macro mean)."""
    yt, yp, hard = _prepare(y_true, y_pred, threshold)
    if not yt.size or (yp.ndim == 1 and not np.any(yt == 1)):
        return NAN
    with quiet():
        average = "binary" if yp.ndim == 1 else "macro"
        return float(recall_score(yt, hard, average=average, zero_division=0))


def specificity(y_true: np.ndarray, y_pred: np.ndarray, *, threshold: float = 0.5) -> float:
    """True-negative rate (multiclass: macro mean of one-vs-rest specificities)."""
    yt, yp, hard = _prepare(y_true, y_pred, threshold)
    if not yt.size:
        return NAN
    if yp.ndim == 1:
        return _specificity(yt, hard, 1)
    labels = np.union1d(yt, hard)
    return _nanmean([_specificity(yt, hard, int(c)) for c in labels])


class _ClassificationMetric(Metric):
    """A binary/multiclass metric; ``threshold`` applies to binary hard labels."""

    kinds = CLASSIFICATION
    fn: Callable[..., float]
    uses_threshold = True

    def __init__(self, kind: str | None = "binary", threshold: float = 0.5) -> None:
        super().__init__(kind)
        self.threshold = threshold

    def compute(self, y_true: np.ndarray, y_pred: np.ndarray) -> float:
        fn = type(self).fn
        if self.uses_threshold:
            return fn(y_true, y_pred, threshold=self.threshold)
        return fn(y_true, y_pred)


@METRICS.register("accuracy")
class Accuracy(_ClassificationMetric):
    """Accuracy, see :func:`accuracy`."""

    name = "accuracy"
    fn = staticmethod(accuracy)


@METRICS.register("balanced_accuracy")
class BalancedAccuracy(_ClassificationMetric):
    """Balanced accuracy, see :func:`balanced_accuracy`."""

    name = "balanced_accuracy"
    fn = staticmethod(balanced_accuracy)


@METRICS.register("auroc")
class AUROC(_ClassificationMetric):
    """Area under the ROC curve, see :func:`auroc`."""

    name = "auroc"
    fn = staticmethod(auroc)
    uses_threshold = False


@METRICS.register("auprc")
class AUPRC(_ClassificationMetric):
    """Average precision, see :func:`auprc`."""

    name = "auprc"
    fn = staticmethod(auprc)
    uses_threshold = False


@METRICS.register("log_loss")
class LogLoss(_ClassificationMetric):
    """Cross-entropy of the predicted probabilities, see :func:`log_loss`."""

    name = "log_loss"
    fn = staticmethod(log_loss)
    uses_threshold = False
    higher_is_better = False


@METRICS.register("f1")
class F1(_ClassificationMetric):
    """F1 score, see :func:`f1`."""

    name = "f1"
    fn = staticmethod(f1)


@METRICS.register("mcc")
class MCC(_ClassificationMetric):
    """Matthews correlation coefficient, see :func:`mcc`."""

    name = "mcc"
    fn = staticmethod(mcc)


@METRICS.register("precision")
class Precision(_ClassificationMetric):
    """Precision, see :func:`precision`."""

    name = "precision"
    fn = staticmethod(precision)


@METRICS.register("recall")
class Recall(_ClassificationMetric):
    """Recall, see :func:`recall`."""

    name = "recall"
    fn = staticmethod(recall)


@METRICS.register("specificity")
class Specificity(_ClassificationMetric):
    """Specificity, see :func:`specificity`."""

    name = "specificity"
    fn = staticmethod(specificity)
