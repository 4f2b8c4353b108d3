"""Per-position (sequence labelling) metrics: residue-level scores, per-class scores, SOV'99.

Targets are class indices ``(N, L)`` with ``-1`` for positions that do not count (padding, masked
residues); predictions are class probabilities ``(N, C, L)``. Residue-level metrics (``accuracy``
= Q3 for three states, ``mcc``, ...) pool the counted positions of all sequences; ``sov`` is the
segment overlap score SOV'99 (Zemla et al., Proteins 34:220, 1999), pooled over sequences and
states, in percent.

>>> positions_metrics(y, p, class_names=["C", "E", "H"])["accuracy"]  # Q3
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from biodl.errors import ConfigError, DataError
from biodl.metrics.base import METRICS, Metric


def segments(labels: np.ndarray) -> list[tuple[int, int, int]]:
    """Runs of equal labels ``(label, start, end)`` (end exclusive); ``-1`` positions belong to none."""
    out: list[tuple[int, int, int]] = []
    n = len(labels)
    start = 0
    for i in range(1, n + 1):
        if i == n or labels[i] != labels[start]:
            if labels[start] >= 0:
                out.append((int(labels[start]), start, i))
            start = i
    return out


def sov_terms(observed: np.ndarray, predicted: np.ndarray, state: int | None = None) -> tuple[float, float]:
    """SOV'99 numerator and normaliser ``N`` of one sequence (for one state, or summed over all).

    Parameters
    ----------
    observed, predicted
        ``(L,)`` class indices; positions where ``observed < 0`` count for neither (segments are
        cut there, and the prediction there is ignored).
    state
        Only segments of this class (``None``: all classes).

    Notes
    -----
    For each observed segment ``s1`` of a state and each predicted segment ``s2`` of the same state
    that overlaps it: ``(minov + delta) / maxov * len(s1)``, with ``minov`` the overlap, ``maxov``
    the extent of both, ``delta = min(maxov - minov, minov, len(s1) // 2, len(s2) // 2)``. ``N`` adds
    ``len(s1)`` for every such pair and for every observed segment without an overlapping one.
    """
    obs = np.asarray(observed, dtype=np.int64)
    pred = np.where(obs < 0, -1, np.asarray(predicted, dtype=np.int64))
    pred_segs = segments(pred)
    num = 0.0
    norm = 0.0
    for lab, a1, b1 in segments(obs):
        if state is not None and lab != state:
            continue
        len1 = b1 - a1
        matched = False
        for lab2, a2, b2 in pred_segs:
            if lab2 != lab or b2 <= a1 or a2 >= b1:
                continue
            matched = True
            minov = min(b1, b2) - max(a1, a2)
            maxov = max(b1, b2) - min(a1, a2)
            delta = min(maxov - minov, minov, len1 // 2, (b2 - a2) // 2)
            num += (minov + delta) / maxov * len1
            norm += len1
        if not matched:
            norm += len1
    return num, norm


def sov(y_true: np.ndarray, y_pred_labels: np.ndarray, state: int | None = None) -> float:
    """SOV'99 in percent over sequences ``(N, L)`` (pooled), for one state or all; NaN if nothing counts."""
    yt = np.atleast_2d(np.asarray(y_true))
    yp = np.atleast_2d(np.asarray(y_pred_labels))
    num = norm = 0.0
    for t, p in zip(yt, yp, strict=True):
        a, b = sov_terms(t, p, state)
        num += a
        norm += b
    return 100.0 * num / norm if norm else float("nan")


@METRICS.register("sov")
class SOV(Metric):
    """Segment overlap score SOV'99 (percent) of per-position predictions; see :func:`sov`."""

    name = "sov"
    kinds = ("positions",)

    def __call__(self, y_true: np.ndarray, y_pred: np.ndarray) -> float:
        """``y_true`` ``(N, L)`` class indices (-1 = not counted), ``y_pred`` ``(N, C, L)`` probabilities."""
        return sov(y_true, np.asarray(y_pred).argmax(axis=1))


def _multiclass_names() -> list[str]:
    return [n for n in METRICS.names() if "multiclass" in METRICS[n].kinds]


#: Residue-level metrics computed by default (AUROC/AUPRC over millions of residues are slow and rarely reported).
DEFAULT_RESIDUE_METRICS = ("accuracy", "balanced_accuracy", "f1", "mcc", "precision", "recall")


def positions_metrics(
    y_true: np.ndarray,
    y_pred: np.ndarray,
    *,
    metrics: Sequence[str] | None = None,
    class_names: Sequence[str] | None = None,
) -> dict[str, Any]:
    """Residue-level and segment metrics of per-position predictions.

    Parameters
    ----------
    y_true
        ``(N, L)`` class indices, ``-1`` = not counted.
    y_pred
        ``(N, C, L)`` class probabilities (``L`` may be longer than ``y_true``'s, never shorter).
    metrics
        Metric names: multi-class metrics (over counted residues) and ``sov``; default
        :data:`DEFAULT_RESIDUE_METRICS` plus ``sov``.
    class_names
        Names of the ``C`` classes (keys of ``per_class``).

    Returns
    -------
    dict
        ``accuracy`` (Q3 for three states), the other metrics, ``sov``, ``per_class`` (precision,
        recall, F1, SOV per class), ``per_sequence_accuracy`` (quantiles of the per-chain accuracy),
        ``n`` (counted residues) and ``n_sequences``.
    """
    yt = np.asarray(y_true)
    yp = np.asarray(y_pred, dtype=np.float32)
    if yt.ndim != 2 or yp.ndim != 3 or yp.shape[0] != yt.shape[0] or yp.shape[2] < yt.shape[1]:
        raise DataError(f"per-position metrics need y_true (N, L) and y_pred (N, C, L); got {yt.shape} and {yp.shape}")
    yp = yp[..., : yt.shape[1]]
    n_classes = yp.shape[1]
    names = list(class_names) if class_names is not None else [str(c) for c in range(n_classes)]
    wanted = list(metrics) if metrics is not None else [*DEFAULT_RESIDUE_METRICS, "sov"]
    counted = yt >= 0
    truth = yt[counted]
    probs = np.moveaxis(yp, 1, 2)[counted]  # (n, C)
    hard = yp.argmax(axis=1)
    out: dict[str, Any] = {}
    for name in wanted:
        cls = METRICS[name]
        if "positions" in cls.kinds:
            out[cls.name] = cls("positions")(yt, yp)
        elif "multiclass" in cls.kinds:
            out[cls.name] = cls("multiclass")(truth, probs)
        else:
            raise ConfigError(f"metric {name!r} cannot score per-position classes; choose from {[*_multiclass_names(), 'sov']}")
    pred = probs.argmax(axis=1) if len(probs) else np.zeros(0, np.int64)
    per_class: dict[str, dict[str, float]] = {}
    for c, cname in enumerate(names):
        tp = float(np.sum((pred == c) & (truth == c)))
        n_pred, n_true = float(np.sum(pred == c)), float(np.sum(truth == c))
        prec = tp / n_pred if n_pred else float("nan")
        rec = tp / n_true if n_true else float("nan")
        f1 = 2 * prec * rec / (prec + rec) if n_pred and n_true and (prec + rec) > 0 else (0.0 if n_true else float("nan"))
        per_class[cname] = {"precision": prec, "recall": rec, "f1": f1, "sov": sov(yt, hard, c), "n": int(n_true)}
    out["per_class"] = per_class
    rows = counted.any(axis=1)
    if rows.any():
        acc = ((hard == yt) & counted).sum(axis=1)[rows] / counted.sum(axis=1)[rows]
        qs = np.quantile(acc, [0.0, 0.1, 0.25, 0.5, 0.75, 0.9, 1.0])
        out["per_sequence_accuracy"] = {
            "mean": float(acc.mean()),
            **{k: float(v) for k, v in zip(("min", "p10", "p25", "median", "p75", "p90", "max"), qs, strict=True)},
        }
    out["n"] = int(counted.sum())
    out["n_sequences"] = int(rows.sum())
    return out


def per_sequence_accuracy(y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
    """Accuracy of each sequence with counted positions (``(M,)``), from ``(N, L)`` labels and ``(N, C, L)`` probabilities."""
    yt = np.asarray(y_true)
    hard = np.asarray(y_pred)[..., : yt.shape[1]].argmax(axis=1)
    counted = yt >= 0
    rows = counted.any(axis=1)
    return np.asarray(((hard == yt) & counted).sum(axis=1)[rows] / counted.sum(axis=1)[rows], dtype=np.float64)
