"""Learning-curve findings: the :class:`Finding` record, its JSON evidence helpers and console rendering.

Findings are produced by :func:`biodl.training.diagnostics.diagnose` (curve-shape rules in
:mod:`biodl.training.curve_rules`) and by the loss-level checks.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray

FindingKind = Literal[
    "lr_too_high", "lr_too_low", "overfitting", "loss_above_chance", "non_finite", "metric_at_chance", "baseline_wins"
]

FloatArray = NDArray[np.float64]

#: Per-epoch series in ``evidence`` are thinned to at most this many points.
EVIDENCE_MAX_POINTS = 100
#: Numbers in ``evidence`` are rounded to this many significant digits.
EVIDENCE_DIGITS = 8


@dataclass(frozen=True)
class Finding:
    """One problem detected in the learning curves.

    Parameters
    ----------
    kind
        ``"lr_too_high"``, ``"lr_too_low"`` or ``"overfitting"``.
    message
        One human-readable sentence explaining the finding and what to try.
    evidence
        JSON-serialisable numbers behind the finding (epochs, losses, ...).
    """

    kind: FindingKind
    message: str
    evidence: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-serialisable ``{"kind", "message", "evidence"}`` dict."""
        return {
            "kind": self.kind,
            "message": self.message,
            "evidence": _jsonable(self.evidence),
        }


def _jsonable(value: Any) -> Any:
    """Deep-copy ``value`` into plain JSON types (NaN/inf become ``None``)."""
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        number = float(value)
        return number if math.isfinite(number) else None
    return value


def _num(value: float) -> float | int | None:
    """A JSON-friendly number: integral floats become ints, NaN becomes None, others are rounded."""
    number = float(value)
    if not math.isfinite(number):
        return None
    if number.is_integer() and abs(number) < 2**53:
        return int(number)
    return float(f"{number:.{EVIDENCE_DIGITS}g}")


def _thin(n: int) -> NDArray[np.intp]:
    """Indices of at most :data:`EVIDENCE_MAX_POINTS` evenly spaced points."""
    if n <= EVIDENCE_MAX_POINTS:
        return np.arange(n)
    return np.unique(np.linspace(0, n - 1, EVIDENCE_MAX_POINTS).round().astype(np.intp))


def _series(epochs: FloatArray, **columns: FloatArray) -> dict[str, Any]:
    """Evidence dict with thinned ``epochs`` and aligned value columns."""
    idx = _thin(len(epochs))
    out: dict[str, Any] = {"epochs": [_num(epochs[i]) for i in idx]}
    for name, values in columns.items():
        out[name] = [_num(values[i]) for i in idx]
    return out


def _loss_series(epochs: FloatArray, train: FloatArray, lr: FloatArray | None) -> dict[str, Any]:
    """Evidence columns of a learning-rate rule.

    Parameters
    ----------
    epochs
        Epoch numbers of the points.
    train
        Training loss at those epochs.
    lr
        Learning rate at those epochs, or ``None`` when it was not logged.

    Returns
    -------
    dict
        :func:`_series` of ``train_loss`` and, when given, ``lr``.
    """
    cols: dict[str, FloatArray] = {"train_loss": train}
    if lr is not None:
        cols["lr"] = lr
    return _series(epochs, **cols)


def _g(value: float) -> str:
    """Compact number for messages."""
    return f"{value:.4g}"


def _epoch_label(value: float) -> str:
    return str(_num(value))


def format_findings(findings: Sequence[Finding]) -> str:
    """Render findings for a console, one line each.

    Parameters
    ----------
    findings
        Output of :func:`diagnose`.

    Returns
    -------
    str
        ``"<kind>: <message>"`` lines, or
        ``"no problems found in the learning curves"`` when there are none.
    """
    if not findings:
        return "no problems found in the learning curves"
    return "\n".join(f"{f.kind}: {f.message}" for f in findings)
