"""Learning-curve diagnostics.

Heuristics from Angermueller et al. (2016), "Deep learning for computational
biology", sections *Analysing the learning curve* and *Avoiding overfitting*
(Fig 5D/E):

* a loss that decreases only slowly suggests a learning rate that is too small;
* a loss that drops steeply at first but saturates quickly (at a high level), or
  one that increases or fluctuates, suggests a learning rate that is too high;
* validation performance that worsens while the training performance keeps
  improving (a growing train/validation gap) indicates overfitting.

:func:`diagnose` turns a per-epoch training history into a list of
:class:`Finding` objects; :func:`format_findings` renders them for a console.
All thresholds are constants of :mod:`biodl.training.curve_rules`, documented and tunable.
They are deliberately conservative: a finding is a hint, not a verdict.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from biodl.errors import DataError
from biodl.training.curve_rules import (
    MIN_EPOCHS,
    _check_non_finite,
    _check_oscillating,
    _check_overfitting,
    _check_rising,
    _check_saturated,
    _check_too_low,
)
from biodl.training.findings import Finding, FindingKind, FloatArray, format_findings

__all__ = [
    "MIN_EPOCHS",
    "Finding",
    "FindingKind",
    "diagnose",
    "format_findings",
]


def _as_array(history: Mapping[str, Sequence[float | None]], key: str, n: int) -> FloatArray | None:
    """``history[key]`` as a float array of length ``n``, or None when absent."""
    if key not in history or history[key] is None:
        return None
    try:
        values = np.asarray([np.nan if v is None else v for v in history[key]], dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise DataError(f"history[{key!r}] must be a list of numbers: {exc}") from None
    if values.ndim != 1 or len(values) != n:
        raise DataError(f"history[{key!r}] has {values.size} values but 'train_loss' has {n}")
    return values


def diagnose(history: Mapping[str, Sequence[float | None]], kept: tuple[int, str] | None = None) -> list[Finding]:
    """Detect learning-rate and overfitting problems in a training history.

    Parameters
    ----------
    history
        Per-epoch lists: ``train_loss`` (required), ``epoch`` (defaults to
        1, 2, ...), ``val_loss`` (optional, may contain NaN/None for epochs
        without validation) and ``lr`` (optional, reported as evidence;
        ignored unless it has one value per epoch).
    kept
        ``(epoch, monitor)`` of the weights the run kept (``metrics.json`` ``training.best_epoch`` and
        ``best_epoch_by``), if known: an overfitting finding then names them when a metric, not the
        validation loss, chose them.

    Returns
    -------
    list of Finding
        At most one ``lr_too_high`` or ``lr_too_low`` finding, then at most one
        ``overfitting`` finding. Empty for healthy curves and for histories
        with fewer than :data:`MIN_EPOCHS` epochs.

    Raises
    ------
    DataError
        If ``train_loss`` is missing or the lists have different lengths.
    """
    if "train_loss" not in history:
        raise DataError(f"history has no 'train_loss' (keys: {', '.join(map(str, history)) or 'none'})")
    n = len(history["train_loss"])
    train = _as_array(history, "train_loss", n)
    assert train is not None
    if n < MIN_EPOCHS:
        return []
    epochs = _as_array(history, "epoch", n)
    if epochs is None:
        epochs = np.arange(1, n + 1, dtype=np.float64)
    val = _as_array(history, "val_loss", n)
    raw_lr = history.get("lr")
    # The learning rate is only evidence: a missing or per-step series is ignored.
    lr = _as_array(history, "lr", n) if raw_lr is not None and len(raw_lr) == n else None

    findings: list[Finding] = []
    lr_finding = _check_non_finite(epochs, train, lr)
    if lr_finding is None and np.isfinite(train).all():
        for rule in (
            _check_rising,
            _check_oscillating,
            _check_saturated,
            _check_too_low,
        ):
            lr_finding = rule(epochs, train, lr)
            if lr_finding is not None:
                break
    if lr_finding is not None:
        findings.append(lr_finding)
    if val is not None:
        overfit = _check_overfitting(epochs, train, val, kept)
        if overfit is not None:
            findings.append(overfit)
    return findings
