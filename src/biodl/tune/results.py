"""What a study optimises and what it returns (shared by :mod:`biodl.tune.study` and :mod:`biodl.tune.report`)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import optuna

__all__ = ["StudyTarget", "TuneResult"]


@dataclass(frozen=True)
class StudyTarget:
    """What the study optimises.

    Attributes
    ----------
    metric
        Key of the ``val`` block of ``metrics.json``, or ``loss`` (lowest ``val_loss``).
    direction
        ``maximize`` or ``minimize``.
    monitor
        Value reported each epoch for pruning (``val_<metric>``), or ``None`` when the metric
        is not logged per epoch (then trials are not pruned).
    """

    metric: str
    direction: str
    monitor: str | None


@dataclass
class TuneResult:
    """What :func:`run_study` returns.

    Attributes
    ----------
    study
        The Optuna study (all workers' trials).
    output_dir
        The tune directory.
    best_config
        ``best_config.yaml`` (``None`` while no trial has completed).
    trials_table
        ``trials.csv``.
    report
        ``tune_report.html`` (``None`` when ``evaluate.report`` is off).
    """

    study: optuna.Study
    output_dir: Path
    best_config: Path | None
    trials_table: Path
    report: Path | None
