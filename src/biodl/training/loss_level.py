"""Loss-level diagnostics: is the run better than a constant prediction at all?

The curve-shape rules of :mod:`biodl.training.diagnostics` judge how the loss moves; a run
can move in a healthy-looking way and still be useless (``--lr 10`` with Adam: training loss
1,804 → 16 while a constant prediction of the class frequencies scores 0.69). These checks
compare the *level* of the losses and of the validation metric with chance:

* ``loss_above_chance``: the last training loss is above the chance-level loss of the task,
  the loss of the best constant prediction fitted on the training labels (see
  :func:`chance_loss`);
* ``non_finite``: a training or validation loss was NaN/inf (from the first epoch on, or in
  the validation loss only, which the curve rules do not see);
* ``metric_at_chance``: the validation headline metric is no better than chance (ROC-AUC
  ≤ 0.5 + margin, accuracy ≤ the majority-class share + margin, R² ≤ 0).

Each finding says what to try. Thresholds are module constants.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from biodl.training.diagnostics import Finding

__all__ = ["chance_loss", "check_loss_level"]

#: The last training loss counts as above chance when it exceeds ``chance * (1 + margin)``.
CHANCE_LOSS_MARGIN = 0.05
#: A first-epoch loss above this multiple of the chance level (or a lowest loss above twice it)
#: means the loss exploded (a learning rate far too high), not just slow progress.
DIVERGED_FACTOR = 10.0
#: Validation ROC-AUC at or below ``0.5 + AUROC_MARGIN`` is at chance.
AUROC_MARGIN = 0.02
#: Validation accuracy at or below ``majority share + ACCURACY_MARGIN`` is at chance.
ACCURACY_MARGIN = 0.01
#: Validation R² at or below this is no better than predicting the training mean.
R2_CHANCE = 0.0


def _entropy(p: np.ndarray) -> float:
    p = p[p > 0]
    return float(-(p * np.log(p)).sum())


def chance_loss(kind: str, y_train: np.ndarray, num_outputs: int | None = None) -> float | None:
    """The training loss of the best constant prediction (biodl's losses, natural log).

    Parameters
    ----------
    kind
        ``binary`` / ``multilabel`` (BCE pooled over labelled entries: the labelled-count
        weighted mean of each task's binary entropy), ``multiclass`` (cross-entropy: the entropy
        of the class prior, at most ``log C``), ``regression`` (MSE on targets standardised on
        the training rows: the variance of each standardised column, 1), ``segmentation``
        (per-pixel BCE or cross-entropy: the entropy of the pixel classes).
    y_train
        Training targets: ``(N, T)`` float with NaN missing, ``(N,)`` int with -1 missing,
        or ``(N, H, W)`` masks with -1 unlabelled.
    num_outputs
        Output channels of a segmentation model (1: foreground vs background).

    Returns
    -------
    float or None
        ``None`` when there are no labelled entries or the kind is unknown.
    """
    y = np.asarray(y_train)
    if kind == "multiclass":
        lab = y[y >= 0].astype(np.int64)
        return _entropy(np.bincount(lab) / len(lab)) if len(lab) else None
    if kind == "segmentation":
        lab = y[y >= 0].astype(np.int64)
        if not len(lab):
            return None
        if num_outputs == 1:
            lab = (lab > 0).astype(np.int64)
        return _entropy(np.bincount(lab) / len(lab))
    if kind in ("binary", "multilabel", "regression"):
        y2 = y.reshape(len(y), -1).astype(np.float64)
        mask = ~np.isnan(y2)
        counts = mask.sum(axis=0)
        if counts.sum() == 0:
            return None
        per = np.zeros(y2.shape[1])
        for t in range(y2.shape[1]):
            v = y2[mask[:, t], t]
            if not len(v):
                continue
            if kind == "regression":
                per[t] = 1.0 if v.std() > 1e-12 else 0.0  # MSE of the mean on standardised targets
            else:
                p = float(np.clip(v.mean(), 0.0, 1.0))
                per[t] = _entropy(np.array([p, 1 - p]))
        return float((per * counts).sum() / counts.sum())
    return None


def _finite(values: Sequence[float | None] | None) -> np.ndarray:
    return np.array([np.nan if v is None else float(v) for v in (values or [])], dtype=np.float64)


def check_loss_level(
    history: Mapping[str, Sequence[float | None]],
    *,
    chance: float | None,
    val_metrics: Mapping[str, Any] | None = None,
    majority_share: float | None = None,
    loss_name: str = "loss",
) -> list[Finding]:
    """Findings on the level of the losses and of the validation metric (see the module docstring).

    Parameters
    ----------
    history
        Per-epoch ``train_loss`` (and ``val_loss``, ``epoch``), as written to ``history.json``.
    chance
        :func:`chance_loss` of the training rows, or ``None`` to skip that check (e.g. a
        training loss with an L1 penalty added).
    val_metrics
        Final validation metrics (``auroc``, ``accuracy``, ``r2``...), or ``None``.
    majority_share
        Share of the most frequent class among the validation rows (multi-class accuracy).
    loss_name
        How the loss is named in messages (``cross-entropy``, ``MSE``...).
    """
    findings: list[Finding] = []
    train = _finite(history.get("train_loss"))
    val = _finite(history.get("val_loss"))
    epochs = list(history.get("epoch") or range(1, len(train) + 1))
    bad_train = ~np.isfinite(train)
    bad_val = ~np.isfinite(val) & np.array([history["val_loss"][i] is not None for i in range(len(val))], dtype=bool)
    if bad_train.any() or bad_val.any():
        which = "training" if bad_train.any() else "validation"
        i_bad = int(np.argmax(bad_train if bad_train.any() else bad_val))
        findings.append(
            Finding(
                "non_finite",
                f"the {which} loss was NaN or infinite (first at epoch {epochs[i_bad]}): training diverged or the "
                "inputs/targets hold NaN/inf values; check the data and lower the learning rate (e.g. --lr 1e-3) "
                "or clip gradients (--set train.gradient_clip=1).",
                {
                    "first_non_finite_epoch": epochs[i_bad],
                    "which": which,
                    "epochs_non_finite": int(bad_train.sum() if bad_train.any() else bad_val.sum()),
                },
            )
        )
    finite_train = train[np.isfinite(train)]
    if chance is not None and len(finite_train) and math.isfinite(chance):
        last = float(train[-1]) if np.isfinite(train[-1]) else float(finite_train[-1])
        if last > chance * (1 + CHANCE_LOSS_MARGIN) + 1e-6:
            best, first = float(finite_train.min()), float(finite_train[0])
            diverged = first > DIVERGED_FACTOR * chance or best > 2 * chance
            why = (
                "the network has learned nothing and the loss exploded: the learning rate is far too high "
                "(training diverged); lower it (e.g. --lr 1e-3, or 10x lower than now) and check that inputs are scaled"
                if diverged
                else "the network is not yet better than a constant prediction: train longer (--max-epochs), "
                "raise the learning rate a little, or check that inputs and labels match"
            )
            findings.append(
                Finding(
                    "loss_above_chance",
                    f"the training {loss_name} ended at {last:.4g} (lowest {best:.4g}, first {first:.4g}), above the "
                    f"chance level {chance:.4g} (the loss of a constant prediction of the training labels): {why}.",
                    {
                        "last_train_loss": last,
                        "min_train_loss": best,
                        "chance_loss": chance,
                        "first_train_loss": first,
                        "pattern": "diverged" if diverged else "not_below_chance",
                    },
                )
            )
    if val_metrics:
        f = _metric_at_chance(val_metrics, majority_share)
        if f is not None:
            findings.append(f)
    return findings


def _metric_at_chance(val: Mapping[str, Any], majority_share: float | None) -> Finding | None:
    def num(key: str) -> float | None:
        v = val.get(key)
        return float(v) if isinstance(v, (int, float)) and math.isfinite(float(v)) else None

    auroc, acc, r2 = num("auroc"), num("accuracy"), num("r2")
    if auroc is not None:
        if auroc > 0.5 + AUROC_MARGIN:
            return None
        what, value, chance = "ROC-AUC", auroc, 0.5
    elif acc is not None and majority_share is not None:
        if acc > majority_share + ACCURACY_MARGIN:
            return None
        what, value, chance = "accuracy", acc, majority_share
    elif r2 is not None:
        if r2 > R2_CHANCE:
            return None
        what, value, chance = "R²", r2, R2_CHANCE
    else:
        return None
    return Finding(
        "metric_at_chance",
        f"the validation {what} is {value:.4g}, no better than chance ({chance:.4g}): the model predicts nothing "
        "useful; look for an earlier finding (learning rate, divergence), check that labels and inputs match, "
        "and compare with the baseline.",
        {"metric": what, "value": value, "chance": chance},
    )
