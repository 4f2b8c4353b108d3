"""Metrics against scikit-learn / scipy references, masking and averaging."""

from __future__ import annotations

import json
import math
import warnings
from collections.abc import Callable

import numpy as np
import pytest
from scipy.stats import pearsonr, spearmanr
from sklearn import metrics as skm

import biodl.metrics as M
from biodl.errors import ConfigError
from biodl.metrics import METRICS, compute_metrics, main_metric, metric_names, to_jsonable

BINARY = [
    "accuracy",
    "auprc",
    "auroc",
    "balanced_accuracy",
    "f1",
    "log_loss",
    "mcc",
    "precision",
    "recall",
    "specificity",
]
REGRESSION = ["mae", "mse", "pearson", "r2", "rmse", "spearman"]


def _binary_data(seed: int = 0, n: int = 200) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    p = np.clip(0.3 * y + rng.uniform(0, 0.7, n), 0, 1)
    return y, p


def _multiclass_data(seed: int = 0, n: int = 300, c: int = 4) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, c, n)
    logits = rng.normal(size=(n, c)) + 1.5 * np.eye(c)[y]
    p = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    return y, p


def _sk_specificity(y: np.ndarray, hard: np.ndarray, label: int) -> float:
    tn = np.sum((y != label) & (hard != label))
    fp = np.sum((y != label) & (hard == label))
    return float(tn / (tn + fp))


def _binary_refs(y: np.ndarray, p: np.ndarray) -> dict[str, float]:
    hard = (p >= 0.5).astype(int)
    tn, fp, _, _ = skm.confusion_matrix(y, hard).ravel()
    return {
        "accuracy": skm.accuracy_score(y, hard),
        "balanced_accuracy": skm.balanced_accuracy_score(y, hard),
        "auroc": skm.roc_auc_score(y, p),
        "auprc": skm.average_precision_score(y, p),
        "f1": skm.f1_score(y, hard),
        "log_loss": skm.log_loss(y, p),
        "mcc": skm.matthews_corrcoef(y, hard),
        "precision": skm.precision_score(y, hard),
        "recall": skm.recall_score(y, hard),
        "specificity": tn / (tn + fp),
    }


def test_registry_names_kinds_and_directions() -> None:
    assert metric_names("binary") == BINARY
    assert metric_names("multiclass") == BINARY
    assert metric_names("regression") == REGRESSION
    for name in REGRESSION:
        assert METRICS[name]().kind == "regression"
    for name in ("mse", "rmse", "mae", "log_loss"):
        assert METRICS[name].higher_is_better is False
    for name in [*(b for b in BINARY if b != "log_loss"), "r2", "pearson", "spearman"]:
        assert METRICS[name].higher_is_better is True
    assert METRICS["rmse"].__name__ == "RMSE"
    assert METRICS["balanced-accuracy"] is METRICS["balanced_accuracy"]


@pytest.mark.parametrize("seed", [0, 1])
def test_binary_metrics_match_sklearn(seed: int) -> None:
    y, p = _binary_data(seed)
    refs = _binary_refs(y, p)
    for name, ref in refs.items():
        fn: Callable[[np.ndarray, np.ndarray], float] = getattr(M, name)
        assert fn(y, p) == pytest.approx(ref, abs=1e-12), name
        assert METRICS[name]("binary")(y, p) == pytest.approx(ref, abs=1e-12), name
    assert sorted(refs) == BINARY


def test_binary_threshold() -> None:
    y = np.array([0, 0, 1, 1])
    p = np.array([0.1, 0.6, 0.7, 0.9])
    assert M.accuracy(y, p) == 0.75
    assert M.accuracy(y, p, threshold=0.65) == 1.0
    assert M.Accuracy("binary", threshold=0.65)(y, p) == 1.0


def test_multiclass_metrics_match_sklearn() -> None:
    y, p = _multiclass_data()
    hard = p.argmax(1)
    refs = {
        "accuracy": skm.accuracy_score(y, hard),
        "balanced_accuracy": skm.balanced_accuracy_score(y, hard),
        "auroc": skm.roc_auc_score(y, p, multi_class="ovr", average="macro"),
        "auprc": np.mean([skm.average_precision_score(y == c, p[:, c]) for c in range(4)]),
        "f1": skm.f1_score(y, hard, average="macro"),
        "log_loss": skm.log_loss(y, p),
        "mcc": skm.matthews_corrcoef(y, hard),
        "precision": skm.precision_score(y, hard, average="macro"),
        "recall": skm.recall_score(y, hard, average="macro"),
        "specificity": np.mean([_sk_specificity(y, hard, c) for c in range(4)]),
    }
    out = compute_metrics("multiclass", y, p)
    assert out["n"] == len(y)
    for name, ref in refs.items():
        assert getattr(M, name)(y, p) == pytest.approx(ref, abs=1e-12), name
        assert METRICS[name]("multiclass")(y, p) == pytest.approx(ref, abs=1e-12), name
        assert out[name] == pytest.approx(ref, abs=1e-12), name


def test_multiclass_missing_class_and_missing_labels() -> None:
    y, p = _multiclass_data(seed=3, c=4)
    y = np.where(y == 2, 0, y)  # class 2 never occurs in y_true
    y_masked = y.copy()
    y_masked[:25] = -1
    keep = slice(25, None)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # nothing may leak
        out = compute_metrics("multiclass", y_masked, p)
    assert out["n"] == len(y) - 25
    yk, pk = y[keep], p[keep]
    present = [0, 1, 3]
    auroc_ref = np.mean([skm.roc_auc_score(yk == c, pk[:, c]) for c in present])
    auprc_ref = np.mean([skm.average_precision_score(yk == c, pk[:, c]) for c in present])
    assert out["auroc"] == pytest.approx(auroc_ref)
    assert out["auprc"] == pytest.approx(auprc_ref)
    assert out["accuracy"] == pytest.approx(np.mean(pk.argmax(1) == yk))
    assert all(math.isfinite(v) for k, v in out.items() if k != "n")


@pytest.mark.parametrize("seed", [0, 1])
def test_regression_metrics_match_references(seed: int) -> None:
    rng = np.random.default_rng(seed)
    y = rng.normal(size=150)
    p = y + rng.normal(scale=0.5, size=150)
    refs = {
        "mse": skm.mean_squared_error(y, p),
        "rmse": np.sqrt(skm.mean_squared_error(y, p)),
        "mae": skm.mean_absolute_error(y, p),
        "r2": skm.r2_score(y, p),
        "pearson": pearsonr(y, p)[0],
        "spearman": spearmanr(y, p)[0],
    }
    assert sorted(refs) == REGRESSION
    for name, ref in refs.items():
        assert getattr(M, name)(y, p) == pytest.approx(ref, rel=1e-10), name
        assert METRICS[name]()(y, p) == pytest.approx(ref, rel=1e-10), name


def test_undefined_metrics_are_nan_without_warnings() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert math.isnan(M.auroc(np.ones(5), np.linspace(0, 1, 5)))
        assert math.isnan(M.auprc(np.zeros(5), np.linspace(0, 1, 5)))
        assert math.isnan(M.recall(np.zeros(5), np.linspace(0, 1, 5)))
        assert math.isnan(M.specificity(np.ones(5), np.linspace(0, 1, 5)))
        assert math.isnan(M.pearson(np.ones(5), np.arange(5.0)))
        assert math.isnan(M.spearman(np.arange(5.0), np.ones(5)))
        assert math.isnan(M.r2(np.ones(5), np.arange(5.0)))
        assert M.precision(np.array([0, 1]), np.array([0.1, 0.2])) == 0.0
        assert math.isnan(METRICS["rmse"]()(np.array([]), np.array([])))


def test_binary_multitask_masks_nan_per_task_and_macro_averages() -> None:
    y0, p0 = _binary_data(0, 120)
    y1, p1 = _binary_data(1, 120)
    Y = np.stack([y0, y1], 1).astype(float)
    P = np.stack([p0, p1], 1)
    Y[:30, 0] = np.nan
    Y[20:50, 1] = np.nan
    out = compute_metrics("binary", Y, P, target_names=["a", "b"])
    assert out["n"] == 120 - 10  # rows 20..29 have no label at all
    assert set(out["per_task"]) == {"a", "b"}
    ref_a = _binary_refs(y0[30:], p0[30:])
    keep_b = np.r_[0:20, 50:120]
    ref_b = _binary_refs(y1[keep_b], p1[keep_b])
    for name in BINARY:
        assert out["per_task"]["a"][name] == pytest.approx(ref_a[name]), name
        assert out["per_task"]["b"][name] == pytest.approx(ref_b[name]), name
        assert out[name] == pytest.approx((ref_a[name] + ref_b[name]) / 2), name


def test_macro_mean_ignores_nan_tasks_and_undefined_auroc_becomes_none() -> None:
    y, p = _binary_data(0, 60)
    Y = np.stack([y, np.ones(60), np.full(60, np.nan)], 1)
    P = np.stack([p, p, p], 1)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = compute_metrics("binary", Y, P, metrics=["auroc", "accuracy"])
    assert set(out) == {"auroc", "accuracy", "n", "per_task"}
    assert list(out["per_task"]) == ["task_0", "task_1", "task_2"]
    assert math.isnan(out["per_task"]["task_1"]["auroc"])
    assert math.isnan(out["per_task"]["task_2"]["auroc"])
    assert out["auroc"] == pytest.approx(skm.roc_auc_score(y, p))
    assert out["accuracy"] == pytest.approx((skm.accuracy_score(y, p >= 0.5) + np.mean(p >= 0.5)) / 2)
    js = to_jsonable(out)
    assert js["per_task"]["task_1"]["auroc"] is None
    json.dumps(js, allow_nan=False)
    all_nan = compute_metrics("binary", np.ones((5, 2)), np.full((5, 2), 0.5), metrics=["auroc"])
    assert math.isnan(all_nan["auroc"])
    assert to_jsonable(all_nan)["auroc"] is None


def test_regression_multitask_and_single_task_shapes() -> None:
    rng = np.random.default_rng(0)
    Y = rng.normal(size=(50, 2))
    P = Y + rng.normal(scale=0.3, size=(50, 2))
    Y[::5, 1] = np.nan
    out = compute_metrics("regression", Y, P, target_names=["x", "y"])
    m = ~np.isnan(Y[:, 1])
    assert out["per_task"]["y"]["rmse"] == pytest.approx(np.sqrt(skm.mean_squared_error(Y[m, 1], P[m, 1])))
    assert out["mae"] == pytest.approx(
        (skm.mean_absolute_error(Y[:, 0], P[:, 0]) + skm.mean_absolute_error(Y[m, 1], P[m, 1])) / 2
    )
    assert out["n"] == 50
    single = compute_metrics("regression", Y[:, :1], P[:, :1])
    assert "per_task" not in single
    assert single == compute_metrics("regression", Y[:, 0], P[:, 0])
    assert single["r2"] == pytest.approx(skm.r2_score(Y[:, 0], P[:, 0]))


def test_unknown_and_wrong_kind_metric_errors() -> None:
    y, p = _binary_data()
    with pytest.raises(ConfigError, match="did you mean 'auroc'"):
        compute_metrics("binary", y, p, metrics=["aucroc"])
    with pytest.raises(ConfigError, match="rmse"):
        compute_metrics("binary", y, p, metrics=["rmse"])
    with pytest.raises(ConfigError, match="auroc"):
        compute_metrics("regression", y.astype(float), p, metrics=["auroc"])
    with pytest.raises(ConfigError, match="task kind"):
        compute_metrics("ordinal", y, p)  # "multilabel" is a kind of its own (biodl.metrics.multilabel)
    with pytest.raises(ConfigError):
        METRICS["rmse"]("binary")


def test_main_metric() -> None:
    assert main_metric("binary") == ("auroc", True)
    assert main_metric("multiclass") == ("accuracy", True)
    assert main_metric("regression") == ("rmse", False)


def test_to_jsonable_converts_numpy() -> None:
    d = {"a": np.float32(1.5), "b": [np.int64(3), np.inf, -np.inf], "c": (np.nan,), "d": "x"}
    out = to_jsonable(d)
    assert out == {"a": 1.5, "b": [3, None, None], "c": [None], "d": "x"}
    assert type(out["a"]) is float
    assert type(out["b"][0]) is int
    json.dumps(out, allow_nan=False)
