"""The classical baseline as the yardstick: does the network beat it on validation, and by how much?

:func:`compare_to_baseline` adds to ``metrics.json``

* ``network_beats_baseline``: ``true`` when the network's headline metric on the validation split is at least
  the best baseline's (``false``: the baseline wins);
* ``baseline_margin``: network minus baseline, signed so that a positive margin favours the network
  (for RMSE: baseline RMSE − network RMSE);
* ``baseline_comparison``: the metric, split, both values and the baseline's name.

They are absent when there is no baseline or no validation split (nothing to judge without test rows).
:func:`baseline_findings` turns a lost comparison into a diagnostic with what to try.
"""

from __future__ import annotations

import math
from typing import Any

from biodl.metrics import main_metric
from biodl.training.diagnostics import Finding


def compare_to_baseline(metrics: dict[str, Any], kind: str) -> dict[str, Any] | None:
    """Set ``network_beats_baseline``, ``baseline_margin`` and ``baseline_comparison`` of ``metrics`` in place.

    Returns the comparison, or ``None`` (keys removed) when it cannot be made.
    """
    for key in ("network_beats_baseline", "baseline_margin", "baseline_comparison"):
        metrics.pop(key, None)
    base = metrics.get("baseline") or {}
    if kind not in ("binary", "multiclass", "regression") or not isinstance(base, dict):
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
    metrics["network_beats_baseline"] = margin >= 0
    metrics["baseline_margin"] = margin
    metrics["baseline_comparison"] = comparison
    return comparison


def verdict(metrics: dict[str, Any], *, hint: bool = True) -> str | None:
    """One plain sentence on the comparison, or ``None`` when there is none."""
    c = metrics.get("baseline_comparison")
    if not isinstance(c, dict):
        return None
    m, net, ref, name = c["metric"], c["network"], c["baseline"], c.get("baseline_name") or "baseline"
    if metrics.get("network_beats_baseline"):
        return (
            f"the network beats the classical baseline ({name}) on validation: {m} {net:.4f} vs {ref:.4f} "
            f"(margin {c['margin']:+.4f})"
        )
    return (
        f"the classical baseline ({name}) beats the network on validation: {m} {ref:.4f} vs the network's {net:.4f} "
        f"(the network is worse by {-c['margin']:.4f})"
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
    message = f"{verdict(metrics, hint=False)}. Try: " + "; ".join(tries) + "."
    return [Finding("baseline_wins", message, {k: c[k] for k in ("metric", "network", "baseline", "baseline_name", "margin")})]
