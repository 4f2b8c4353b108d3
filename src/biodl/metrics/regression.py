"""Regression metrics for one task: ``y_true`` and ``y_pred`` of shape (N,).

Undefined scores are ``nan`` and no warning leaks out: every metric on empty
input, ``r2`` when ``y_true`` is constant, ``pearson``/``spearman`` when
either input is constant or N < 2.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from biodl.metrics.base import METRICS, Kind, Metric, lazy_function, quiet

pearsonr = lazy_function("scipy.stats", "pearsonr")
spearmanr = lazy_function("scipy.stats", "spearmanr")

__all__ = [
    "MAE",
    "MSE",
    "R2",
    "RMSE",
    "Pearson",
    "Spearman",
    "mae",
    "mse",
    "pearson",
    "r2",
    "rmse",
    "spearman",
]

NAN = float("nan")
REGRESSION: tuple[Kind, ...] = ("regression",)


def _prepare(y_true: np.ndarray, y_pred: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    yt = np.asarray(y_true, dtype=float)
    yp = np.asarray(y_pred, dtype=float)
    if yt.ndim != 1 or yp.shape != yt.shape:
        raise ValueError(f"y_true {yt.shape} and y_pred {yp.shape} must be 1-D of equal length")
    return yt, yp


def mse(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Mean squared error."""
    yt, yp = _prepare(y_true, y_pred)
    return float(np.mean((yt - yp) ** 2)) if yt.size else NAN


def rmse(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Root mean squared error."""
    return float(np.sqrt(mse(y_true, y_pred)))


def mae(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Mean absolute error."""
    yt, yp = _prepare(y_true, y_pred)
    return float(np.mean(np.abs(yt - yp))) if yt.size else NAN


def r2(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Coefficient of determination, ``1 - SS_res / SS_tot``."""
    yt, yp = _prepare(y_true, y_pred)
    if yt.size == 0:
        return NAN
    ss_tot = float(np.sum((yt - yt.mean()) ** 2))
    if ss_tot == 0.0:
        return NAN
    return 1.0 - float(np.sum((yt - yp) ** 2)) / ss_tot


def _correlation(fn: Callable[[np.ndarray, np.ndarray], object], y_true: np.ndarray, y_pred: np.ndarray) -> float:
    yt, yp = _prepare(y_true, y_pred)
    if yt.size < 2 or np.ptp(yt) == 0 or np.ptp(yp) == 0:
        return NAN
    with quiet():
        return float(fn(yt, yp)[0])  # type: ignore[index]


def pearson(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Pearson correlation coefficient."""
    return _correlation(pearsonr, y_true, y_pred)


def spearman(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Spearman rank correlation coefficient."""
    return _correlation(spearmanr, y_true, y_pred)


class _RegressionMetric(Metric):
    kinds = REGRESSION
    fn: Callable[[np.ndarray, np.ndarray], float]

    def compute(self, y_true: np.ndarray, y_pred: np.ndarray) -> float:
        return type(self).fn(y_true, y_pred)


@METRICS.register("mse")
class MSE(_RegressionMetric):
    """Mean squared error, see :func:`mse`."""

    name = "mse"
    higher_is_better = False
    fn = staticmethod(mse)


@METRICS.register("rmse")
class RMSE(_RegressionMetric):
    """Root mean squared error, see :func:`rmse`."""

    name = "rmse"
    higher_is_better = False
    fn = staticmethod(rmse)


@METRICS.register("mae")
class MAE(_RegressionMetric):
    """Mean absolute error, see :func:`mae`."""

    name = "mae"
    higher_is_better = False
    fn = staticmethod(mae)


@METRICS.register("r2")
class R2(_RegressionMetric):
    """Coefficient of determination, see :func:`r2`."""

    name = "r2"
    fn = staticmethod(r2)


@METRICS.register("pearson")
class Pearson(_RegressionMetric):
    """Pearson correlation, see :func:`pearson`."""

    name = "pearson"
    fn = staticmethod(pearson)


@METRICS.register("spearman")
class Spearman(_RegressionMetric):
    """Spearman correlation, see :func:`spearman`."""

    name = "spearman"
    fn = staticmethod(spearman)
