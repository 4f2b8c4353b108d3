"""Whether ``model.name: auto`` keeps its best candidate or the average of candidates, and that average's bundle.

A validation set of a hundred rows cannot tell a 0.005 ROC-AUC gain from noise, so "average when the mean
scores better" follows the noise. ``train.portfolio_blend`` chooses the rule:

* ``auto`` (default): the data type's prior (:attr:`biodl.data.base.Modality.blend_prior`) holds unless the
  validation rows show the other option better by more than **one standard error** of the paired
  difference (bootstrap over the validation rows: the same rows score both predictions, as in Breiman's
  one-standard-error rule). Molecule regression: the average (a dense ensemble and a D-MPNN of similar
  strength, whose mean was the better model on the test rows of every ESOL and solubility split measured,
  docs/defaults.md); tables and molecule classification: the best single candidate (the mean with a weaker
  network cost the test rows on yeast and PBMC; on Tox21 it was slightly worse on every split);
* ``better``: the average whenever its validation score is higher (the rule before ``auto``);
* ``always`` / ``never``: the best average / the best single candidate.

An average is taken over the candidates that read the same inputs: all of them, or the best two.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from typing import Any, Literal

import numpy as np

from biodl.experiment.results import Inputs, Trained
from biodl.metrics import compute_metrics

#: Bootstrap resamples of the validation rows for the standard error of a paired difference.
BOOTSTRAP_RESAMPLES = 200
#: Larger validation sets are resampled ``m`` out of ``n`` rows (the standard error rescaled by ``sqrt(m / n)``).
BOOTSTRAP_MAX_ROWS = 20_000
#: Seconds after which resampling stops (once :data:`BOOTSTRAP_MIN_RESAMPLES` are done): many labels × many rows.
BOOTSTRAP_SECONDS = 30.0
BOOTSTRAP_MIN_RESAMPLES = 30

Pooled = tuple[int, float, Trained, np.ndarray]  # candidate index, validation score, the network, its predictions


def score_preds(inputs: Inputs, rows: np.ndarray, preds: np.ndarray | None, metric: str) -> float:
    """The headline ``metric`` of ``preds`` for ``rows``; NaN without predictions."""
    if preds is None or not len(rows):
        return math.nan
    return score_arrays(inputs, inputs.targets.y[rows], preds, metric)


def score_arrays(inputs: Inputs, y: np.ndarray, preds: np.ndarray, metric: str) -> float:
    """The headline ``metric`` of ``preds`` against targets ``y`` (same rows); NaN where it is undefined."""
    kind = inputs.targets.kind
    try:
        if kind == "binary" and y.ndim == 2 and y.shape[1] > 1:
            scores = compute_metrics("binary", y, preds, target_names=inputs.targets.names, metrics=[metric])
        else:
            scores = compute_metrics(kind, y, preds, metrics=[metric])
    except ValueError:  # e.g. a resample with one class only
        return math.nan
    value = scores.get(metric)
    return float(value) if isinstance(value, (int, float)) else math.nan


def paired_se(inputs: Inputs, rows: np.ndarray, a: np.ndarray, b: np.ndarray, metric: str, *, seed: int = 0) -> float:
    """Bootstrap standard error of ``metric(a) − metric(b)`` on ``rows`` (the same resampled rows score both).

    ``a`` and ``b`` are predictions for ``rows`` ``(len(rows), ...)``; resamples where the metric is undefined
    are left out; 0 when the two predictions agree everywhere, NaN when no resample could be scored. Above
    :data:`BOOTSTRAP_MAX_ROWS` rows each resample draws that many (m-out-of-n bootstrap, rescaled), and
    resampling stops after :data:`BOOTSTRAP_SECONDS` once :data:`BOOTSTRAP_MIN_RESAMPLES` are done.
    """
    if np.array_equal(a, b):
        return 0.0
    y = inputs.targets.y[rows]
    rng = np.random.default_rng(seed)
    n = len(rows)
    m = min(n, BOOTSTRAP_MAX_ROWS)
    start = time.monotonic()
    diffs = []
    for k in range(BOOTSTRAP_RESAMPLES):
        if k >= BOOTSTRAP_MIN_RESAMPLES and time.monotonic() - start > BOOTSTRAP_SECONDS:
            break
        pick = rng.integers(0, n, m)
        d = score_arrays(inputs, y[pick], a[pick], metric) - score_arrays(inputs, y[pick], b[pick], metric)
        if math.isfinite(d):
            diffs.append(d)
    return float(np.std(diffs) * math.sqrt(m / n)) if len(diffs) > 1 else math.nan


def group_prior(prior: Literal["average", "single"], cut: Sequence[int]) -> tuple[Literal["average", "single"], str | None]:
    """The prior for an average whose candidates ``cut`` were stopped by ``train.time_budget``: such a candidate
    is not presumed an equal partner, so the prior becomes ``single``; returns it with the reason (or ``None``)."""
    if cut and prior != "single":
        return "single", f"candidate(s) {list(cut)} stopped by train.time_budget"
    return prior, None


def choose_average(
    inputs: Inputs,
    rows: np.ndarray,
    pool: Sequence[Pooled],
    metric: str,
    higher: bool,
    rule: Literal["auto", "better", "always", "never"],
    prior: Literal["average", "single"],
    *,
    seed: int = 0,
) -> tuple[list[Pooled], dict[str, Any]] | None:
    """The average considered (its candidates, best first) and the evidence whether to keep it.

    ``pool`` holds candidates reading the same inputs. The average considered is the better on validation of
    all of them and of the best two. The evidence: ``val`` (the average's score), ``gain_over_best`` (its
    advantage over the best single candidate, positive = better whichever way the metric runs),
    ``standard_error`` of that gain (rule ``auto``), ``rule``, ``prior`` and ``averaged`` (the verdict: the average
    is the run's model, else the best single candidate). ``None`` when there
    is nothing to average (fewer than two candidates, rule ``never``, no average could be scored).
    """
    if len(pool) < 2 or rule == "never":
        return None
    sign = 1.0 if higher else -1.0
    ranked = sorted(pool, key=lambda p: -sign * p[1])
    options = [list(ranked)] + ([list(ranked[:2])] if len(ranked) > 2 else [])
    scored = []
    for option in options:
        mean = np.mean([p[3] for p in option], axis=0)
        score = score_preds(inputs, rows, mean, metric)
        if math.isfinite(score):
            scored.append((sign * score, option, mean, score))
    if not scored:
        return None
    key, option, mean, score = max(scored, key=lambda s: s[0])
    gain = key - sign * ranked[0][1]
    se = paired_se(inputs, rows, mean, ranked[0][3], metric, seed=seed) if rule == "auto" else math.nan
    if rule == "always":
        take = True
    elif rule == "better":
        take = gain > 0
    elif prior == "average":  # auto: keep the average unless the best single candidate is better by > 1 SE
        take = not (math.isfinite(se) and -gain > se > 0)
    else:  # auto, prior single: the average only when it is better by more than 1 SE
        take = math.isfinite(se) and gain > se > 0
    evidence = {
        "rule": rule,
        "prior": prior,
        "val": {metric: score},
        "gain_over_best": gain,
        **({"standard_error": se} if rule == "auto" else {}),
        "averaged": take,
    }
    return option, evidence


def blend(chosen: Sequence[Pooled]) -> Trained:
    """One network averaging ``chosen``'s candidates (an :class:`~biodl.models.ensemble.Ensemble` blend,
    saved as one bundle); history and epochs are the first (best) candidate's."""
    from biodl.bundle import Bundle
    from biodl.models.ensemble import Ensemble

    first = chosen[0][2].bundle
    specs = [(str(t.bundle.meta["model"]["name"]), dict(t.bundle.meta["model"]["params"])) for _, _, t, _ in chosen]
    model = Ensemble.blend([t.model for _, _, t, _ in chosen], specs, first.kind).eval()
    name, params = model.spec()
    meta = {**first.meta, "model": {**first.meta["model"], "name": name, "params": params,
                                    "trainable_parameters": sum(t.bundle.meta["model"].get("trainable_parameters", 0)
                                                                for _, _, t, _ in chosen)}}  # fmt: skip
    best = chosen[0][2]
    return Trained(
        bundle=Bundle(model, first.modality, meta, first.target_scaler),
        history=best.history,
        best_epoch=best.best_epoch,
        epochs=best.epochs,
        two_step=best.two_step,
        monitor=best.monitor,
    )
