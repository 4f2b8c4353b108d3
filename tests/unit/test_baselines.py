"""Classical baselines on scikit-learn's bundled data sets."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.datasets import load_breast_cancer, load_diabetes
from sklearn.metrics import r2_score, roc_auc_score

from biodl.baselines import BASELINES, Baseline, run_baselines
from biodl.errors import ConfigError, DataError

Split = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]


def _split(X: np.ndarray, y: np.ndarray, seed: int = 0) -> Split:
    idx = np.random.default_rng(seed).permutation(len(X))
    n_tr, n_va = int(0.6 * len(X)), int(0.2 * len(X))
    tr, va, te = idx[:n_tr], idx[n_tr : n_tr + n_va], idx[n_tr + n_va :]
    return X[tr], y[tr], X[va], y[va], X[te], y[te]


@pytest.fixture(scope="module")
def cancer() -> Split:
    X, y = load_breast_cancer(return_X_y=True)
    return _split(X, y.astype(float))


def test_registry() -> None:
    assert BASELINES.names() == ["linear", "neighbour_mean", "random_forest"]
    with pytest.raises(ConfigError, match="did you mean 'random_forest'"):
        BASELINES["random_forests"]


def test_neighbour_mean_predicts_task_t_from_feature_t() -> None:
    X = np.array([[0.2, 0.9, 5.0], [0.8, 0.1, -1.0]])
    y = np.array([[0.0, 1.0], [1.0, np.nan]])
    model = BASELINES["neighbour_mean"]("binary").fit(X, y)
    np.testing.assert_array_equal(model.predict(X), [[0.2, 0.9], [0.8, 0.1]])
    with pytest.raises(DataError, match="neighbour_mean predicts binary task t from feature t"):
        BASELINES["neighbour_mean"]("binary").fit(X[:, :1], y)


def test_linear_binary_beats_chance(cancer: Split) -> None:
    X_tr, y_tr, _, _, X_te, y_te = cancer
    model = BASELINES["linear"]("binary").fit(X_tr, y_tr)
    p = model.predict(X_te)
    assert p.shape == (len(X_te), 1)
    assert np.all((p >= 0) & (p <= 1))
    assert roc_auc_score(y_te, p[:, 0]) > 0.9


def test_linear_regression_beats_chance() -> None:
    X, y = load_diabetes(return_X_y=True)
    X_tr, y_tr, X_va, y_va, X_te, y_te = _split(X, y)
    model = BASELINES["linear"]("regression").fit(X_tr, y_tr)
    assert r2_score(y_te, model.predict(X_te)[:, 0]) > 0.3
    out = run_baselines("regression", X_tr, y_tr, X_va, y_va, X_te, y_te, names=["linear"])
    assert out["name"] == "linear"
    assert out["test"]["r2"] > 0.3
    assert set(out["candidates"]) == {"linear"}


def test_run_baselines_binary_structure(cancer: Split) -> None:
    out = run_baselines("binary", *cancer, seed=1)
    assert set(out["candidates"]) == {"linear", "random_forest"}
    assert out["name"] in out["candidates"]
    assert out["val"] == out["candidates"][out["name"]]["val"]
    assert out["test"] == out["candidates"][out["name"]]["test"]
    assert out["selected_on"] == "val"
    for cand in out["candidates"].values():
        assert cand["test"]["auroc"] > 0.9
        assert cand["val"]["n"] == len(cancer[3])
    vals = {k: v["val"]["auroc"] for k, v in out["candidates"].items()}
    assert out["val"]["auroc"] == max(vals.values())
    assert run_baselines("binary", *cancer, names=()) == {}


def test_selection_uses_validation_not_test(cancer: Split) -> None:
    X_tr, y_tr, X_va, y_va, _, _ = cancer
    # Test = validation with flipped labels: the candidate best on validation
    # is the worst on test, so a test-based choice would pick the other one.
    out = run_baselines("binary", X_tr, y_tr, X_va, y_va, X_va, 1.0 - y_va)
    val = {k: v["val"]["auroc"] for k, v in out["candidates"].items()}
    test = {k: v["test"]["auroc"] for k, v in out["candidates"].items()}
    assert val["linear"] != val["random_forest"]
    assert out["name"] == max(val, key=lambda k: val[k])
    assert out["name"] != max(test, key=lambda k: test[k])


def test_selection_without_validation_uses_train(cancer: Split) -> None:
    X_tr, y_tr, _, _, X_te, y_te = cancer
    out = run_baselines("binary", X_tr, y_tr, None, None, X_te, y_te)
    assert out["selected_on"] == "train"
    assert out["val"] == {}
    # A 200-tree forest fits its own training set perfectly (AUROC 1).
    assert out["name"] == "random_forest"
    empty = np.empty((0, X_tr.shape[1]))
    out2 = run_baselines("binary", X_tr, y_tr, empty, np.empty(0), X_te, y_te, names=["linear"])
    assert out2["selected_on"] == "train"
    assert out2["test"]["auroc"] > 0.9


def test_lower_is_better_selection_for_regression() -> None:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 5))
    y = X @ np.array([1.0, -2.0, 0.5, 0.0, 3.0]) + rng.normal(scale=0.1, size=300)
    X_tr, y_tr, X_va, y_va, X_te, y_te = _split(X, y)
    out = run_baselines("regression", X_tr, y_tr, X_va, y_va, X_te, y_te)
    rmse = {k: v["val"]["rmse"] for k, v in out["candidates"].items()}
    assert rmse["linear"] < rmse["random_forest"]
    assert out["name"] == "linear"


@pytest.mark.parametrize("name", ["linear", "random_forest"])
def test_multitask_binary_with_missing_labels(cancer: Split, name: str) -> None:
    X_tr, y_tr, X_va, y_va, X_te, y_te = cancer
    rng = np.random.default_rng(0)

    def tasks(y: np.ndarray) -> np.ndarray:
        Y = np.stack([y, 1.0 - y, np.ones_like(y)], 1)
        Y[rng.random(Y.shape) < 0.3] = np.nan
        return Y

    Y_tr, Y_va, Y_te = tasks(y_tr), tasks(y_va), tasks(y_te)
    model = BASELINES[name]("binary", seed=0).fit(X_tr, Y_tr)
    P = model.predict(X_te)
    assert P.shape == (len(X_te), 3)
    assert not np.isnan(P).any()
    np.testing.assert_array_equal(P[:, 2], 1.0)  # one training class → constant
    out = run_baselines("binary", X_tr, Y_tr, X_va, Y_va, X_te, Y_te, names=[name], target_names=["a", "b", "c"])
    assert set(out["test"]["per_task"]) == {"a", "b", "c"}
    assert out["test"]["per_task"]["a"]["auroc"] > 0.9
    assert out["test"]["per_task"]["b"]["auroc"] > 0.9
    assert np.isnan(out["test"]["per_task"]["c"]["auroc"])
    assert out["test"]["auroc"] == pytest.approx(
        (out["test"]["per_task"]["a"]["auroc"] + out["test"]["per_task"]["b"]["auroc"]) / 2
    )


def test_multitask_regression_with_missing_labels() -> None:
    X, y = load_diabetes(return_X_y=True)
    Y = np.stack([y, -2 * y + 5], 1)
    Y[np.random.default_rng(1).random(Y.shape) < 0.25] = np.nan
    X_tr, Y_tr, X_va, Y_va, X_te, Y_te = _split(X, Y)
    model = BASELINES["linear"]("regression").fit(X_tr, Y_tr)
    P = model.predict(X_te)
    assert P.shape == (len(X_te), 2)
    assert not np.isnan(P).any()
    out = run_baselines("regression", X_tr, Y_tr, X_va, Y_va, X_te, Y_te, names=["linear"])
    assert out["test"]["per_task"]["task_0"]["r2"] > 0.3
    assert out["test"]["per_task"]["task_1"]["r2"] > 0.3


@pytest.mark.parametrize("name", ["linear", "random_forest"])
def test_multiclass_absent_class_and_missing_rows(name: str) -> None:
    rng = np.random.default_rng(0)
    centers = rng.normal(scale=4, size=(4, 6))
    y = rng.integers(0, 3, 240)  # class 3 never appears
    X = centers[y] + rng.normal(size=(240, 6))
    y_missing = y.copy()
    y_missing[:40] = -1
    model: Baseline = BASELINES[name]("multiclass", seed=0, n_classes=4)
    P = model.fit(X[:160], y_missing[:160]).predict(X[160:])
    assert P.shape == (80, 4)
    np.testing.assert_allclose(P.sum(1), 1.0)
    np.testing.assert_array_equal(P[:, 3], 0.0)
    assert np.mean(P.argmax(1) == y[160:]) > 0.9
    out = run_baselines(
        "multiclass", X[:160], y_missing[:160], X[160:200], y[160:200], X[200:], y[200:],
        names=[name], n_classes=4,
    )  # fmt: skip
    assert out["test"]["accuracy"] > 0.9
    assert out["test"]["n"] == 40


def test_multiclass_single_training_class_is_constant() -> None:
    X = np.random.default_rng(0).normal(size=(20, 3))
    P = BASELINES["linear"]("multiclass", n_classes=3).fit(X, np.full(20, 1)).predict(X)
    np.testing.assert_array_equal(P, np.tile([0.0, 1.0, 0.0], (20, 1)))
