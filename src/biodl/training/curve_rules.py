"""Curve-shape rules of the learning-curve diagnostics, and their documented thresholds.

Each ``_check_*`` rule looks at one shape (diverging, oscillating, saturating early, too slow,
overfitting) and returns a :class:`~biodl.training.findings.Finding` or ``None``;
:func:`biodl.training.diagnostics.diagnose` runs them in order.
"""

from __future__ import annotations

import math

import numpy as np

from biodl.training.findings import Finding, FloatArray, _epoch_label, _g, _loss_series, _num, _series

#: Fewer epochs than this and :func:`diagnose` returns no findings.
MIN_EPOCHS = 3

# -- learning rate too high: diverging ---------------------------------------
#: Final training loss above the first one by more than this fraction of
#: ``|first|`` means the loss rose overall.
RISE_REL_OVER_FIRST = 0.10
#: Every "rose by" / "worse than" margin in this module is also at least this
#: many times the epoch-to-epoch noise of the curve (see :func:`_noise_sigma`).
NOISE_MARGIN = 3.0
#: Final loss gave back more than this fraction of the improvement achieved
#: (``(last - min) / (first - min)``) ...
REBOUND_FRACTION = 0.5
#: ... and lies more than this fraction of ``|min|`` above the minimum.
REBOUND_REL_OVER_MIN = 0.10

# -- learning rate too high: oscillating -------------------------------------
#: Oscillation needs at least this many epochs to be judged.
OSC_MIN_EPOCHS = 5
#: A "zigzag" is a reversal of the direction of the epoch-to-epoch change; it
#: counts as large when both the move into and out of the turning point exceed
#: this fraction of the loss level there.
OSC_REL_AMPLITUDE = 0.10
#: The loss level used for the relative amplitude is at least this fraction of
#: the largest ``|loss|`` (stops tiny converged losses from looking unstable).
OSC_LEVEL_FLOOR = 0.10
#: Large zigzags at this fraction of the possible turning points (and at least
#: :data:`OSC_MIN_COUNT` of them) mean the curve fluctuates.
OSC_MIN_FRACTION = 0.3
OSC_MIN_COUNT = 2

# -- learning rate too high: steep drop then early saturation ----------------
#: Saturation needs at least this many epochs to be judged.
SAT_MIN_EPOCHS = 10
#: Length of the "early" window as a fraction of the epochs (at least 1 step).
SAT_EARLY_FRACTION = 0.10
#: The early window holds at least this share of the total decrease ...
SAT_EARLY_SHARE = 0.70
#: ... the second half of training adds less than this share ...
SAT_TAIL_MAX_SHARE = 0.02
#: ... and the plateau sits at or above this fraction of the initial loss.
SAT_HIGH_LEVEL = 0.50

# -- learning rate too low ---------------------------------------------------
#: The training loss fell by less than this fraction of ``|first|`` overall ...
LOW_MAX_REL_DECREASE = 0.10
#: ... at least this fraction of the epoch-to-epoch changes are decreases ...
LOW_MIN_DECREASING_FRACTION = 0.70
#: ... and the late slope is at least this fraction of the early slope
#: (nearly linear, not saturating).
LOW_MIN_SLOPE_RATIO = 0.50

# -- overfitting -------------------------------------------------------------
#: Validation loss above ``best + OVERFIT_REL_INCREASE * |best|`` counts as
#: worse than the best epoch.
OVERFIT_REL_INCREASE = 0.05
#: At least this many epochs after the best one must be worse, and so must the
#: median of the last (up to) this many epochs, to report overfitting.
OVERFIT_MIN_EPOCHS_WORSE = 3


def _noise_sigma(values: FloatArray) -> float:
    """Robust estimate of the epoch-to-epoch noise of a curve.

    Uses the median absolute second difference, which cancels locally linear
    trends, scaled to a Gaussian standard deviation (``0`` below 4 points).
    """
    if len(values) < 4:
        return 0.0
    second = np.diff(values, 2)
    return float(1.4826 * np.median(np.abs(second)) / math.sqrt(6.0))


# -- individual rules --------------------------------------------------------


def _check_non_finite(epochs: FloatArray, train: FloatArray, lr: FloatArray | None) -> Finding | None:
    """Training loss turned NaN/inf after finite epochs: divergence."""
    bad = ~np.isfinite(train)
    if not bad.any():
        return None
    first_bad = int(np.argmax(bad))
    if first_bad == 0:
        return None  # never finite: more likely bad data than a bad learning rate
    upto = slice(0, first_bad + 1)
    evidence = {
        "pattern": "non_finite",
        "first_non_finite_epoch": _num(epochs[first_bad]),
        **_loss_series(epochs[upto], train[upto], None if lr is None else lr[upto]),
    }
    return Finding(
        "lr_too_high",
        f"training loss became non-finite at epoch {_epoch_label(epochs[first_bad])} "
        f"(last finite value {_g(train[first_bad - 1])}): training diverged; "
        "the learning rate may be too high.",
        evidence,
    )


def _check_rising(epochs: FloatArray, train: FloatArray, lr: FloatArray | None) -> Finding | None:
    """Training loss ends above its start, or gives back most of its gains."""
    first, last = float(train[0]), float(train[-1])
    i_min = int(np.argmin(train))
    low = float(train[i_min])
    noise = NOISE_MARGIN * _noise_sigma(train)
    rose = last - first > max(RISE_REL_OVER_FIRST * abs(first), noise)
    gained = first - low
    rebound = (
        gained > 0 and (last - low) > REBOUND_FRACTION * gained and (last - low) > max(REBOUND_REL_OVER_MIN * abs(low), noise)
    )
    if not (rose or rebound):
        return None
    evidence = {
        "pattern": "increasing",
        "first_epoch": _num(epochs[0]),
        "first_train_loss": _num(first),
        "min_epoch": _num(epochs[i_min]),
        "min_train_loss": _num(low),
        "last_epoch": _num(epochs[-1]),
        "last_train_loss": _num(last),
        **_loss_series(epochs, train, lr),
    }
    via = f", minimum {_g(low)} at epoch {_epoch_label(epochs[i_min])}" if i_min else ""
    return Finding(
        "lr_too_high",
        f"training loss increased: {_g(first)} at epoch {_epoch_label(epochs[0])}"
        f"{via}, {_g(last)} at epoch {_epoch_label(epochs[-1])}; "
        "the learning rate may be too high (try lowering it).",
        evidence,
    )


def _check_oscillating(epochs: FloatArray, train: FloatArray, lr: FloatArray | None) -> Finding | None:
    """Training loss repeatedly reverses direction by a large relative amount."""
    n = len(train)
    if n < OSC_MIN_EPOCHS:
        return None
    diffs = np.diff(train)
    turns = diffs[:-1] * diffs[1:] < 0
    level = np.maximum(np.abs(train[1:-1]), OSC_LEVEL_FLOOR * float(np.max(np.abs(train))))
    with np.errstate(divide="ignore", invalid="ignore"):
        amplitude = np.minimum(np.abs(diffs[:-1]), np.abs(diffs[1:])) / level
    large = turns & (amplitude >= OSC_REL_AMPLITUDE)
    n_large = int(large.sum())
    possible = n - 2
    if n_large < OSC_MIN_COUNT or n_large < OSC_MIN_FRACTION * possible:
        return None
    turn_idx = np.flatnonzero(large) + 1
    evidence = {
        "pattern": "oscillating",
        "n_reversals": n_large,
        "n_possible": possible,
        "reversal_epochs": [_num(epochs[i]) for i in turn_idx],
        "median_rel_amplitude": _num(float(np.median(amplitude[large]))),
        **_loss_series(epochs, train, lr),
    }
    return Finding(
        "lr_too_high",
        f"training loss fluctuates: it reverses direction by more than "
        f"{OSC_REL_AMPLITUDE:.0%} of its level at {n_large} of {possible} epochs; "
        "the learning rate may be too high (try lowering it).",
        evidence,
    )


def _check_saturated(epochs: FloatArray, train: FloatArray, lr: FloatArray | None) -> Finding | None:
    """Steep early drop followed by a flat plateau at a high loss."""
    n = len(train)
    first = float(train[0])
    if n < SAT_MIN_EPOCHS or first <= 0:
        return None
    low = float(np.min(train))
    total = first - low
    if total <= 0:
        return None
    k = max(1, round(SAT_EARLY_FRACTION * n))
    early_share = (first - float(train[k])) / total
    mid = n // 2
    tail_share = max(0.0, float(train[mid] - train[-1])) / total
    plateau = float(np.median(train[mid:]))
    if early_share < SAT_EARLY_SHARE or tail_share >= SAT_TAIL_MAX_SHARE or plateau < SAT_HIGH_LEVEL * first:
        return None
    evidence = {
        "pattern": "early_saturation",
        "early_epochs": [_num(epochs[0]), _num(epochs[k])],
        "early_share_of_decrease": _num(early_share),
        "tail_share_of_decrease": _num(tail_share),
        "plateau_train_loss": _num(plateau),
        "plateau_rel_to_first": _num(plateau / first),
        **_loss_series(epochs, train, lr),
    }
    return Finding(
        "lr_too_high",
        f"training loss dropped steeply ({early_share:.0%} of its decrease by epoch "
        f"{_epoch_label(epochs[k])}) and then saturated at {_g(plateau)} "
        f"({plateau / first:.0%} of the initial loss); the learning rate may be too "
        "high (try lowering it or decaying it).",
        evidence,
    )


def _slope(x: FloatArray, y: FloatArray) -> float:
    """Least-squares slope of ``y`` against ``x``."""
    xc = x - x.mean()
    denom = float(xc @ xc)
    return float(xc @ (y - y.mean())) / denom if denom > 0 else 0.0


def _check_too_low(epochs: FloatArray, train: FloatArray, lr: FloatArray | None) -> Finding | None:
    """Shallow, nearly linear, still-decreasing training loss."""
    n = len(train)
    first, last = float(train[0]), float(train[-1])
    if first == 0:
        return None
    rel_decrease = (first - last) / abs(first)
    if not 0 < rel_decrease < LOW_MAX_REL_DECREASE:
        return None
    diffs = np.diff(train)
    decreasing = float(np.mean(diffs < 0))
    if decreasing < LOW_MIN_DECREASING_FRACTION:
        return None
    steps = np.arange(n, dtype=np.float64)
    mid = (n - 1) // 2
    early = _slope(steps[: mid + 1], train[: mid + 1])
    late = _slope(steps[mid:], train[mid:])
    if early >= 0 or late / early < LOW_MIN_SLOPE_RATIO:
        return None
    evidence = {
        "first_epoch": _num(epochs[0]),
        "first_train_loss": _num(first),
        "last_epoch": _num(epochs[-1]),
        "last_train_loss": _num(last),
        "rel_decrease": _num(rel_decrease),
        "decreasing_fraction": _num(decreasing),
        "late_to_early_slope_ratio": _num(late / early),
        **_loss_series(epochs, train, lr),
    }
    return Finding(
        "lr_too_low",
        f"training loss decreased only {rel_decrease:.1%} ({_g(first)} -> {_g(last)}) "
        f"over {n} epochs and is still falling steadily; the learning rate may be "
        "too low (try raising it, or train longer).",
        evidence,
    )


def _check_overfitting(
    epochs: FloatArray, train: FloatArray, val: FloatArray, kept: tuple[int, str] | None = None
) -> Finding | None:
    """Validation loss rises after its minimum while the training loss falls.

    ``kept`` = (epoch, logged value that chose it) of the weights the run kept, when known: where a
    metric (``train.monitor``) chose another epoch than the validation loss's lowest, the finding
    says which weights were kept instead of advising to keep the lowest-loss epoch's.
    """
    ok = np.isfinite(train) & np.isfinite(val)
    if int(ok.sum()) < MIN_EPOCHS:
        return None
    idx = np.flatnonzero(ok)
    ep, tr, va = epochs[idx], train[idx], val[idx]
    best = int(np.argmin(va))
    best_val = float(va[best])
    margin = max(OVERFIT_REL_INCREASE * abs(best_val), NOISE_MARGIN * _noise_sigma(va))
    threshold = best_val + margin
    after = np.arange(best + 1, len(va))
    worse = after[va[after] > threshold]
    if len(worse) < OVERFIT_MIN_EPOCHS_WORSE:
        return None
    if float(np.median(va[after[-OVERFIT_MIN_EPOCHS_WORSE:]])) <= threshold:
        return None
    gap_best = best_val - float(tr[best])
    gap_end = float(va[-1] - tr[-1])
    if not (tr[-1] < tr[best] and gap_end > gap_best):
        return None
    rel_increase = (float(va[-1]) - best_val) / abs(best_val) if best_val else math.inf
    evidence = {
        "best_epoch": _num(ep[best]),
        "best_val_loss": _num(best_val),
        "last_epoch": _num(ep[-1]),
        "last_val_loss": _num(va[-1]),
        "val_rel_increase": _num(rel_increase),
        "train_loss_at_best": _num(tr[best]),
        "train_loss_at_last": _num(tr[-1]),
        "gap_at_best": _num(gap_best),
        "gap_at_end": _num(gap_end),
        "epochs_worse_than_best": [_num(ep[i]) for i in worse],
        **_series(ep, train_loss=tr, val_loss=va),
    }
    advice = "keep the best-epoch weights (early stopping) and add regularisation (dropout, weight decay) or more data."
    if kept is not None and kept[1] != "val_loss" and kept[0] != int(ep[best]):
        at = np.flatnonzero(ep == kept[0])
        loss_there = f", validation loss {_g(va[at[0]])}" if at.size else ""
        evidence.update(kept_epoch=kept[0], kept_by=kept[1])
        advice = (
            f"the kept weights are epoch {_epoch_label(kept[0])}'s, chosen by {kept[1].replace('_', ' ')}{loss_there} "
            "(train.monitor); add regularisation (dropout, weight decay) or more data."
        )
    return Finding(
        "overfitting",
        f"validation loss was lowest at epoch {_epoch_label(ep[best])} ({_g(best_val)}) "
        f"and rose to {_g(va[-1])} by epoch {_epoch_label(ep[-1])} while the training "
        f"loss kept falling ({_g(tr[best])} -> {_g(tr[-1])}); the model overfits: " + advice,
        evidence,
    )
