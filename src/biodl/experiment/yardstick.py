"""The classical baseline as the yardstick: does the network beat it on validation, and by how much?

:func:`compare_to_baseline` adds to ``metrics.json``

* ``network_beats_baseline``: ``true`` when the network's headline metric on the validation split is at least
  the best baseline's (``false``: the baseline wins);
* ``baseline_margin``: network minus baseline, signed so that a positive margin favours the network
  (for RMSE: baseline RMSE − network RMSE);
* ``baseline_comparison``: the metric, split, both values and the baseline's name; where both models' validation
  predictions are at hand, also ``standard_error`` (bootstrap over the validation rows, both scored on the same
  resample) and ``within_noise`` (the margin is at most one standard error: on these rows the two are not told
  apart, whatever the sign says).

They are absent when there is no baseline or no validation split (nothing to judge without test rows).
:func:`baseline_findings` turns a lost comparison into a diagnostic with what to try.
"""

from __future__ import annotations

import math
from typing import Any

from biodl.metrics import format_difference, main_metric
from biodl.training.diagnostics import Finding

#: Kinds judged against their baseline, each on its headline metric (:func:`biodl.metrics.main_metric`):
#: ROC-AUC, accuracy, RMSE, Dice (segmentation, baseline per pixel), accuracy per position (window baseline).
KINDS = ("binary", "multiclass", "regression", "segmentation", "positions")


def compare_to_baseline(metrics: dict[str, Any], kind: str, *, standard_error: float | None = None) -> dict[str, Any] | None:
    """Set ``network_beats_baseline``, ``baseline_margin`` and ``baseline_comparison`` of ``metrics`` in place.

    ``standard_error`` is that of the margin (:func:`biodl.experiment.evaluate.margin_se`), recorded when given.
    Returns the comparison, or ``None`` (keys removed) when it cannot be made.
    """
    for key in ("network_beats_baseline", "baseline_margin", "baseline_comparison"):
        metrics.pop(key, None)
    base = metrics.get("baseline") or {}
    if kind not in KINDS or not isinstance(base, dict):
        return None
    metric, higher = main_metric(kind)
    net_val, base_val = metrics.get("val") or {}, base.get("val") or {}
    net, ref = net_val.get(metric), base_val.get(metric)
    if not isinstance(net, (int, float)) or not isinstance(ref, (int, float)) or not math.isfinite(net) or not math.isfinite(ref):
        return None
    margin = float(net - ref) if higher else float(ref - net)
    comparison = {
        "split": "val",
        "metric": metric,
        "higher_is_better": higher,
        "network": float(net),
        "baseline": float(ref),
        "baseline_name": base.get("name"),
        "margin": margin,
    }
    if standard_error is not None and math.isfinite(standard_error):
        comparison["standard_error"] = float(standard_error)
        comparison["within_noise"] = abs(margin) <= standard_error
    metrics["network_beats_baseline"] = margin >= 0
    metrics["baseline_margin"] = margin
    metrics["baseline_comparison"] = comparison
    return comparison


def verdict(metrics: dict[str, Any], *, hint: bool = True) -> str | None:
    """One plain sentence on the comparison, or ``None`` when there is none."""
    c = metrics.get("baseline_comparison")
    if not isinstance(c, dict):
        return None
    m, name = c["metric"], c.get("baseline_name") or "baseline"
    digits = 4 if f"{c['network']:.4f}" != f"{c['baseline']:.4f}" else 6  # scores that agree to 4 decimals: show more
    net, ref = f"{c['network']:.{digits}f}", f"{c['baseline']:.{digits}f}"
    noise = ""
    if c.get("standard_error") is not None:
        where = "within" if c.get("within_noise") else "beyond"
        se = format_difference(c["standard_error"])
        noise = f"; standard error of the difference {se}: {where} the noise of the validation rows"
    if metrics.get("network_beats_baseline"):
        return (
            f"the network beats the classical baseline ({name}) on validation: {m} {net} vs {ref} "
            f"(margin {format_difference(c['margin'], sign=True)}{noise})"
        )
    return (
        f"the classical baseline ({name}) beats the network on validation: {m} {ref} vs the network's {net} "
        f"(the network is worse by {format_difference(-c['margin'])}{noise})"
        + ("; prefer the baseline or try the suggestions in the diagnostics" if hint else "")
    )


def baseline_findings(metrics: dict[str, Any], *, auto: bool) -> list[Finding]:
    """A ``baseline_wins`` finding with what to try when the baseline beats the network on validation."""
    if metrics.get("network_beats_baseline") is not False:
        return []
    c = metrics["baseline_comparison"]
    tries = [
        "a larger train.time_budget (more candidates, larger ensembles)"
        if auto
        else "model.name: auto (a portfolio of candidate networks chosen on validation)",
        "an ensemble (train.ensemble_size: 5)",
        "more regularisation for small data (model.dropout, train.weight_decay)",
        "other input features (for molecules data.molecule.featurizer)",
        "or use the baseline: with this much data it may be the better model",
    ]
    if c.get("within_noise"):
        tries.insert(0, "first more validation rows (data.split_sizes) or cross-validation (--cv 5), since the "
                     "difference is within one standard error")  # fmt: skip
    message = f"{verdict(metrics, hint=False)}. Try: " + "; ".join(tries) + "."
    keys = ("metric", "network", "baseline", "baseline_name", "margin", "standard_error")
    return [Finding("baseline_wins", message, {k: c[k] for k in keys if k in c})]
