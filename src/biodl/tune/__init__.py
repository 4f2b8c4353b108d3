"""Hyper-parameter search with Optuna (``biodl tune``).

Modules
-------
spec
    The typed ``tune`` config section and its distribution specifications.
space
    Search spaces over dotted config keys; the default space of a model.
samplers
    ``SAMPLERS`` registry: ``line`` (one key at a time), ``random``, ``tpe``.
pruning
    ``PRUNERS`` registry and the Lightning callback that reports to a trial.
study
    Storage, study and objective: :func:`biodl.tune.study.run_study`.
report
    ``trials.csv``, ``best_config.yaml``, figures and ``tune_report.html``.

This package imports Optuna lazily (``biodl.config`` imports :mod:`biodl.config_tune`), so import
:func:`~biodl.tune.study.run_study` from :mod:`biodl.tune.study`.
"""

from biodl.config_tune import CategoricalSpec, DistributionSpec, FloatSpec, IntSpec, TuneConfig

__all__ = ["CategoricalSpec", "DistributionSpec", "FloatSpec", "IntSpec", "TuneConfig"]
