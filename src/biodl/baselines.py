"""Classical scikit-learn baselines trained on the same split and features.

Every baseline takes dense features ``X`` of shape (N, F) and fits one model
per task on the rows where that task is labelled:

* binary: ``y`` (N, T) or (N,) in {0, 1, NaN}; :meth:`Baseline.predict`
  returns (N, T) probabilities of class 1;
* regression: ``y`` (N, T) or (N,) floats, NaN missing; predicts (N, T);
* multiclass: ``y`` (N,) int class indices, -1 missing; predicts (N, C)
  probabilities with a column for every class, even one absent in training.

A task whose training labels hold a single class predicts that class with
probability 1; a task without any training label predicts 0.5 (binary), 0
(regression) or a uniform distribution (multiclass).

Example
-------
>>> result = run_baselines("binary", X_tr, y_tr, X_va, y_va, X_te, y_te)
>>> result["name"], result["test"]["auroc"]
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from biodl.errors import DataError
from biodl.metrics import compute_metrics, main_metric
from biodl.metrics.base import Kind, check_kind
from biodl.registry import Registry

__all__ = ["BASELINES", "Baseline", "LinearBaseline", "RandomForestBaseline", "run_baselines"]


def _features(X: np.ndarray) -> np.ndarray:
    x = np.asarray(X, dtype=float)
    if x.ndim != 2:
        raise DataError(f"baseline features must be a 2-D (N, F) array, got shape {x.shape}")
    if not np.all(np.isfinite(x)):
        raise DataError("baseline features contain NaN or infinite values")
    return x


def _multiclass_labels(y: np.ndarray) -> np.ndarray:
    """(N,) labels as float with NaN for missing (-1 or NaN)."""
    labels = np.asarray(y, dtype=float)
    if labels.ndim != 1:
        raise DataError(f"multiclass labels must be 1-D (N,), got shape {labels.shape}")
    labels = np.where(labels < 0, np.nan, labels)
    present = labels[~np.isnan(labels)]
    if not np.array_equal(present, np.round(present)):
        raise DataError("multiclass labels must be integer class indices (-1 = missing)")
    return labels


class Baseline:
    """A per-task scikit-learn baseline; subclasses implement :meth:`make_estimator`.

    Parameters
    ----------
    kind
        ``"binary"``, ``"multiclass"`` or ``"regression"``.
    seed
        Random state of stochastic estimators.
    n_classes
        Number of classes C (multiclass only; default ``max(y) + 1`` at fit).
    """

    def __init__(self, kind: str, seed: int = 0, n_classes: int | None = None) -> None:
        self.kind: Kind = check_kind(kind)
        self.seed = seed
        self.n_classes = n_classes
        # One entry per task: a fitted estimator, or a constant prediction.
        self._models: list[Any] = []
        self._constants: list[np.ndarray | None] = []
        self._n_features: int | None = None

    def make_estimator(self) -> Any:
        """Return a fresh unfitted classifier (binary/multiclass) or regressor."""
        raise NotImplementedError

    def _fit_one(self, X: np.ndarray, y: np.ndarray, constant: np.ndarray | None) -> None:
        if constant is not None:
            self._models.append(None)
            self._constants.append(constant)
            return
        estimator = self.make_estimator()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            estimator.fit(X, y)
        self._models.append(estimator)
        self._constants.append(None)

    def fit(self, X: np.ndarray, y: np.ndarray) -> Baseline:
        """Fit on features (N, F) and labels (see the module docstring)."""
        x = _features(X)
        self._models, self._constants = [], []
        self._n_features = x.shape[1]
        if self.kind == "multiclass":
            self._fit_multiclass(x, y)
            return self
        Y = np.asarray(y, dtype=float)
        Y = Y[:, None] if Y.ndim == 1 else Y
        if Y.ndim != 2 or Y.shape[0] != x.shape[0]:
            raise DataError(f"labels {Y.shape} do not match features {x.shape}")
        for t in range(Y.shape[1]):
            mask = ~np.isnan(Y[:, t])
            yt = Y[mask, t]
            constant: np.ndarray | None = None
            if self.kind == "binary":
                classes = np.unique(yt)
                if not np.all(np.isin(classes, (0.0, 1.0))):
                    raise DataError(f"binary labels must be 0, 1 or missing; got {classes}")
                if classes.size < 2:
                    constant = np.array(classes[0] if classes.size else 0.5)
                yt = yt.astype(int)
            elif yt.size == 0:
                constant = np.array(0.0)
            self._fit_one(x[mask], yt, constant)
        return self

    def _fit_multiclass(self, x: np.ndarray, y: np.ndarray) -> None:
        labels = _multiclass_labels(y)
        if labels.shape[0] != x.shape[0]:
            raise DataError(f"labels {labels.shape} do not match features {x.shape}")
        mask = ~np.isnan(labels)
        yt = labels[mask].astype(int)
        if self.n_classes is None:
            self.n_classes = int(yt.max()) + 1 if yt.size else 1
        n_classes = self.n_classes
        if yt.size and yt.max() >= n_classes:
            raise DataError(f"class index {int(yt.max())} out of range for {n_classes} classes")
        classes = np.unique(yt)
        constant: np.ndarray | None = None
        if classes.size == 0:
            constant = np.full(n_classes, 1.0 / n_classes)
        elif classes.size == 1:
            constant = np.eye(n_classes)[classes[0]]
        self._fit_one(x[mask], yt, constant)

    def predict(self, X: np.ndarray) -> np.ndarray:
        """Predict for features (N, F).

        Returns
        -------
        np.ndarray
            binary: (N, T) probabilities of class 1; multiclass: (N, C)
            probabilities; regression: (N, T) values.
        """
        if self._n_features is None:
            raise RuntimeError("predict() called before fit()")
        x = _features(X)
        if x.shape[1] != self._n_features:
            raise DataError(f"expected {self._n_features} features, got {x.shape[1]}")
        n = x.shape[0]
        if self.kind == "multiclass":
            return self._predict_one(0, x, np.zeros((n, self.n_classes or 1)))
        out = np.empty((n, len(self._models)))
        for t in range(len(self._models)):
            out[:, t] = self._predict_one(t, x, out[:, t])
        return out

    def _predict_one(self, t: int, x: np.ndarray, out: np.ndarray) -> np.ndarray:
        constant, model = self._constants[t], self._models[t]
        if constant is not None:
            out[...] = constant
        elif self.kind == "regression":
            out[...] = model.predict(x)
        elif self.kind == "binary":
            out[...] = model.predict_proba(x)[:, list(model.classes_).index(1)]
        else:
            out[:, np.asarray(model.classes_, dtype=int)] = model.predict_proba(x)
        return out


BASELINES: Registry[type[Baseline]] = Registry("baseline")


@BASELINES.register("linear")
class LinearBaseline(Baseline):
    """Standardised logistic regression (classification) or ridge regression."""

    def make_estimator(self) -> Any:
        if self.kind == "regression":
            return make_pipeline(StandardScaler(), Ridge(alpha=1.0))
        return make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))


@BASELINES.register("random_forest")
class RandomForestBaseline(Baseline):
    """Random forest with 200 trees on 2 cores.

    Regression forests use ``max_features="sqrt"`` like classification
    forests: scikit-learn's default of all features is about 15x slower on
    fingerprint-sized inputs.
    """

    def make_estimator(self) -> Any:
        if self.kind == "regression":
            return RandomForestRegressor(n_estimators=200, max_features="sqrt", n_jobs=2, random_state=self.seed)
        return RandomForestClassifier(n_estimators=200, n_jobs=2, random_state=self.seed)


@BASELINES.register("neighbour_mean")
class NeighbourMeanBaseline(Baseline):
    """No fitting: task ``t`` is predicted by feature column ``t`` as it is.

    For CpG methylation (``--data-type cpg``) the first columns of the baseline features are each cell's mean
    observed state of the ``k`` neighbouring CpGs on each side, so cell ``t`` is predicted by its own
    neighbours' mean (the baseline of DeepCpG's CpG module).
    """

    def fit(self, X: np.ndarray, y: np.ndarray) -> Baseline:
        x = _features(X)
        Y = np.asarray(y, dtype=float)
        n_tasks = 1 if Y.ndim == 1 else Y.shape[1]
        if self.kind != "binary" or x.shape[1] < n_tasks:
            raise DataError(
                f"baseline neighbour_mean predicts binary task t from feature t; {x.shape[1]} features for "
                f"{n_tasks} {self.kind} task(s)"
            )
        self._n_features, self._n_tasks = x.shape[1], n_tasks
        return self

    def predict(self, X: np.ndarray) -> np.ndarray:
        if self._n_features is None:
            raise RuntimeError("predict() called before fit()")
        return np.clip(_features(X)[:, : self._n_tasks].astype(float), 0.0, 1.0)


def _present(X: np.ndarray | None, y: np.ndarray | None) -> bool:
    return X is not None and y is not None and len(X) > 0


def _selection_result(candidates: dict[str, dict[str, Any]], best: str, *, has_val: bool, metric: str) -> dict[str, Any]:
    """The result of a baseline selection, as :func:`run_baselines` returns it.

    Parameters
    ----------
    candidates
        ``{name: {"val": metrics, "test": metrics}}`` of every baseline tried.
    best
        Name of the selected baseline (a key of ``candidates``).
    has_val
        Whether the selection used the validation split (else the training split).
    metric
        The metric the selection maximised or minimised.

    Returns
    -------
    dict
        ``{"name", "val", "test", "candidates", "selected_on", "main_metric"}``.
    """
    return {
        "name": best,
        "val": candidates[best]["val"],
        "test": candidates[best]["test"],
        "candidates": candidates,
        "selected_on": "val" if has_val else "train",
        "main_metric": metric,
    }


def run_baselines(
    kind: str,
    X_train: np.ndarray,
    y_train: np.ndarray,
    X_val: np.ndarray | None,
    y_val: np.ndarray | None,
    X_test: np.ndarray | None,
    y_test: np.ndarray | None,
    *,
    names: Sequence[str] = ("linear", "random_forest"),
    seed: int = 0,
    n_classes: int | None = None,
    target_names: list[str] | None = None,
    multilabel: bool = False,
    val_predictions: bool = False,
) -> dict[str, Any]:
    """Fit baselines on train, score them on val and test, pick the best on val.

    Parameters
    ----------
    kind
        ``"binary"``, ``"multiclass"`` or ``"regression"``.
    X_train, X_val, X_test
        Features (N, F) of each split; val and test may be ``None`` or empty.
    y_train, y_val, y_test
        Labels of each split, as for :meth:`Baseline.fit`.
    names
        Registered baseline names to try, in order (ties go to the first).
    seed
        Random state of the baselines.
    n_classes
        Number of classes (multiclass; default: largest label seen + 1).
    target_names
        Task names for the ``per_task`` metrics.
    multilabel
        Binary targets of a multi-label task: the label-matrix metrics (Hamming loss, ranking
        loss, ...) are reported too.
    val_predictions
        Also return the selected baseline's predictions for ``X_val`` (``"val_predictions"``, an
        array, not JSON: for the paired comparison with the network, :mod:`biodl.experiment.yardstick`).

    Returns
    -------
    dict
        ``{"name": best, "val": metrics, "test": metrics, "candidates":
        {name: {"val": metrics, "test": metrics}}, "selected_on": "val" |
        "train", "main_metric": metric}``, or ``{}`` if ``names`` is empty.
        The best candidate maximises (or minimises) :func:`main_metric` on the
        validation split, or on the training split when there is none; the
        test split is never used for selection. Metrics of a missing split
        are ``{}``.

    Raises
    ------
    ConfigError
        Unknown baseline name or kind.
    DataError
        Inconsistent features or labels.
    """
    if not names:
        return {}
    checked = check_kind(kind)
    if checked == "segmentation":
        return run_pixel_baselines(
            X_train, y_train, X_val, y_val, X_test, y_test, names=names, seed=seed, class_names=target_names
        )
    chosen = {name: BASELINES[name] for name in names}  # fail fast on unknown names
    metric, higher = main_metric(checked)
    has_val = _present(X_val, y_val)
    if checked == "multiclass" and n_classes is None:
        seen = [_multiclass_labels(y) for y in (y_train, y_val, y_test) if y is not None]
        n_classes = int(max((np.nanmax(s) for s in seen if np.any(~np.isnan(s))), default=0)) + 1

    def score(
        model: Baseline,
        X: np.ndarray | None,
        y: np.ndarray | None,
        metrics: list[str] | None,
        preds: np.ndarray | None = None,
    ) -> dict[str, Any]:
        if X is None or y is None or len(X) == 0:
            return {}
        preds = model.predict(X) if preds is None else preds
        if multilabel and metrics is None:
            from biodl.metrics.multilabel import multilabel_task_metrics

            return multilabel_task_metrics(np.asarray(y), preds, target_names=target_names)
        return compute_metrics(checked, np.asarray(y), preds, target_names=target_names, metrics=metrics)

    candidates: dict[str, dict[str, Any]] = {}
    selection: dict[str, float] = {}
    val_preds: dict[str, np.ndarray] = {}
    for name, cls in chosen.items():
        model = cls(checked, seed=seed, n_classes=n_classes).fit(X_train, y_train)
        if has_val and X_val is not None:
            val_preds[name] = model.predict(X_val)
        val = score(model, X_val, y_val, None, val_preds.get(name))
        test = score(model, X_test, y_test, None)
        candidates[name] = {"val": val, "test": test}
        selection[name] = float(val[metric] if has_val else score(model, X_train, y_train, [metric])[metric])

    def rank(name: str) -> float:
        value = selection[name]
        if math.isnan(value):
            return -math.inf
        return value if higher else -value

    best = max(candidates, key=rank)  # max keeps the first of equal keys
    result = _selection_result(candidates, best, has_val=has_val, metric=metric)
    if val_predictions and best in val_preds:
        result["val_predictions"] = val_preds[best]
    return result


#: Labelled training pixels the pixel baselines are fitted on.
MAX_BASELINE_PIXELS = 40_000


def run_pixel_baselines(
    X_train: np.ndarray,
    y_train: np.ndarray,
    X_val: np.ndarray | None,
    y_val: np.ndarray | None,
    X_test: np.ndarray | None,
    y_test: np.ndarray | None,
    *,
    names: Sequence[str] = ("linear", "random_forest"),
    seed: int = 0,
    class_names: list[str] | None = None,
) -> dict[str, Any]:
    """Per-pixel classical baselines for segmentation, selected on validation like :func:`run_baselines`.

    ``X_*`` are images ``(N, C, H, W)`` and ``y_*`` masks ``(N, H, W)``, or volumes ``(N, C, D, H, W)`` and
    masks ``(N, D, H, W)`` (``-1`` unlabelled; binary masks: ``> 0`` foreground). Each pixel (voxel) is
    described by hand-crafted filter responses (:func:`biodl.data.image.features.pixel_features`, in 3-D for
    volumes); ``linear`` is a logistic regression and
    ``random_forest`` a small forest, both fitted on at most :data:`MAX_BASELINE_PIXELS` random
    labelled training pixels.
    """
    from biodl.data.image.features import pixel_features

    for name in names:
        BASELINES[name]  # unknown names fail as for other kinds
    rng = np.random.default_rng(seed)
    yt = np.asarray(y_train).astype(np.int64)
    n_classes = max(2, int(yt.max(initial=0)) + 1)
    binary = n_classes == 2 or (class_names is not None and len(class_names) == 2)
    target = np.where(yt < 0, -1, (yt > 0).astype(np.int64)) if binary else yt
    feats = pixel_features(X_train)
    f = np.moveaxis(feats, 1, -1).reshape(-1, feats.shape[1])
    t = target.reshape(-1)
    idx = np.flatnonzero(t >= 0)
    if len(idx) == 0:
        raise DataError("the training masks have no labelled pixels")
    idx = rng.choice(idx, size=min(MAX_BASELINE_PIXELS, len(idx)), replace=False)
    Xp, yp = f[idx], t[idx]
    k = 2 if binary else int(max(n_classes, (class_names and len(class_names)) or 0))

    def fit(name: str) -> Any:
        if name == "linear":
            est = make_pipeline(StandardScaler(), LogisticRegression(max_iter=300))
        else:
            est = RandomForestClassifier(n_estimators=30, max_depth=12, min_samples_leaf=5, n_jobs=1, random_state=seed)
        if len(np.unique(yp)) < 2:
            return None
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            est.fit(Xp, yp)
        return est

    def predict(est: Any, X: np.ndarray) -> np.ndarray:
        out = np.zeros((len(X), 1 if binary else k, *X.shape[2:]), dtype=np.float32)
        for i in range(len(X)):
            fi = pixel_features(X[i : i + 1])[0]
            flat = fi.reshape(fi.shape[0], -1).T
            if est is None:
                proba = np.zeros((flat.shape[0], k))
                proba[:, int(yp[0])] = 1.0
            else:
                proba = np.zeros((flat.shape[0], k))
                proba[:, est.classes_.astype(int)] = est.predict_proba(flat)
            if binary:
                out[i, 0] = proba[:, 1].reshape(X.shape[2:])
            else:
                out[i] = proba.T.reshape(k, *X.shape[2:])
        return out

    def score(est: Any, X: np.ndarray | None, y: np.ndarray | None) -> dict[str, Any]:
        if X is None or y is None or len(X) == 0:
            return {}
        return compute_metrics("segmentation", np.asarray(y), predict(est, X), target_names=class_names)

    metric, _ = main_metric("segmentation")
    has_val = _present(X_val, y_val)
    candidates: dict[str, dict[str, Any]] = {}
    selection: dict[str, float] = {}
    for name in names:
        est = fit(name)
        val = score(est, X_val, y_val)
        test = score(est, X_test, y_test)
        candidates[name] = {"val": val, "test": test}
        ref = val if has_val else score(est, X_train[:8], y_train[:8])
        value = ref.get(metric)
        selection[name] = float(value) if value is not None and not math.isnan(value) else -math.inf
    best = max(candidates, key=lambda n: selection[n])
    return {
        **_selection_result(candidates, best, has_val=has_val, metric=metric),
        "features": "per-pixel filter responses (intensity, Gaussian σ 1/2/4, gradient magnitude, LoG, DoG)",
    }
