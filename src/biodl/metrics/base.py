"""The :class:`Metric` base class and the ``METRICS`` registry.

A metric scores ONE task: 1-D arrays without missing values. Masking of
missing labels and averaging over tasks happen in :mod:`biodl.metrics.compute`.
"""

from __future__ import annotations

import importlib
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, ClassVar, Literal

import numpy as np

from biodl.errors import ConfigError
from biodl.registry import Registry

Kind = Literal["binary", "multiclass", "regression", "segmentation", "multilabel", "positions"]
KINDS: tuple[Kind, ...] = ("binary", "multiclass", "regression", "segmentation", "multilabel", "positions")


def check_kind(kind: str) -> Kind:
    """Return ``kind`` as a :data:`Kind`, raising :class:`ConfigError` if unknown."""
    for known in KINDS:
        if kind == known:
            return known
    raise ConfigError(f"unknown task kind {kind!r}; choose one of: {', '.join(KINDS)}")


def lazy_function(module: str, name: str) -> Callable[..., Any]:
    """``module.name``, imported on its first call (scikit-learn and SciPy take seconds to import,
    which every command that only predicts would pay)."""

    def call(*args: Any, **kwargs: Any) -> Any:
        return getattr(importlib.import_module(module), name)(*args, **kwargs)

    call.__name__ = call.__qualname__ = name
    return call


@contextmanager
def quiet() -> Iterator[None]:
    """Silence numpy/scipy/sklearn warnings (undefined metrics return NaN instead)."""
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        yield


class Metric:
    """Base class of a metric scoring one task.

    Subclasses set the class attributes ``name``, ``kinds`` (the task kinds
    the metric supports) and ``higher_is_better``, and implement
    :meth:`compute`. An instance is bound to one ``kind``.

    Parameters
    ----------
    kind
        ``"binary"``, ``"multiclass"`` or ``"regression"``. May be omitted when
        the metric supports one kind only.

    Raises
    ------
    ConfigError
        If the metric does not support ``kind``.
    """

    name: ClassVar[str] = ""
    kinds: ClassVar[tuple[Kind, ...]] = ()
    higher_is_better: ClassVar[bool] = True

    def __init__(self, kind: str | None = None) -> None:
        if kind is None:
            if len(self.kinds) != 1:
                raise ConfigError(f"metric {self.name!r} needs a task kind, one of: {', '.join(self.kinds)}")
            kind = self.kinds[0]
        checked = check_kind(kind)
        if checked not in self.kinds:
            raise ConfigError(f"metric {self.name!r} is a {'/'.join(self.kinds)} metric and cannot score {checked} tasks")
        self.kind: Kind = checked

    def __call__(self, y_true: np.ndarray, y_pred: np.ndarray) -> float:
        """Score one task.

        Parameters
        ----------
        y_true
            Labels, shape (N,): {0, 1} for binary, int class indices for
            multiclass, floats for regression.
        y_pred
            Predictions: (N,) probabilities of class 1 for binary, (N, C)
            class probabilities for multiclass, (N,) values for regression.

        Returns
        -------
        float
            The score, ``nan`` when it is undefined for these inputs.
        """
        yt = np.asarray(y_true)
        yp = np.asarray(y_pred, dtype=float)
        if yt.ndim != 1:
            raise ValueError(f"y_true must be 1-D, got shape {yt.shape}")
        want = 2 if self.kind == "multiclass" else 1
        if yp.ndim != want or yp.shape[0] != yt.shape[0]:
            raise ValueError(f"{self.kind} metric {self.name!r}: y_pred shape {yp.shape} does not match y_true shape {yt.shape}")
        if yt.shape[0] == 0:
            return float("nan")
        with quiet():
            return float(self.compute(yt, yp))

    def compute(self, y_true: np.ndarray, y_pred: np.ndarray) -> float:
        """Compute the score on validated, non-empty inputs (see :meth:`__call__`)."""
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}(kind={self.kind!r})"


METRICS: Registry[type[Metric]] = Registry("metric")

#: Scorers of the kinds scored on the whole label matrix (``multilabel``), registered by their own module
#: (imported by :mod:`biodl.metrics`) so that :func:`~biodl.metrics.compute.compute_metrics` needs no import of it.
#: Signature: ``scorer(y_true, y_pred, metrics=None) -> {metric: value, "n": rows}``.
KIND_SCORERS: dict[str, Callable[..., dict[str, Any]]] = {}
