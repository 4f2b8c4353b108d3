"""Multi-label metrics against scikit-learn and hand-computed values."""

from __future__ import annotations

import math

import numpy as np
import pytest
from sklearn import metrics as skm

from biodl.errors import ConfigError, DataError
from biodl.metrics import METRICS, compute_metrics, main_metric, metric_names
from biodl.metrics.multilabel import multilabel_metric_names, multilabel_metrics


@pytest.fixture(scope="module")
def data() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    Y = (rng.random((60, 7)) < 0.35).astype(float)
    Y[0] = 0.0  # a sample without labels
    P = np.clip(0.6 * Y + 0.5 * rng.random(Y.shape), 0, 1)
    return Y, P


def test_metrics_match_scikit_learn(data: tuple[np.ndarray, np.ndarray]) -> None:
    Y, P = data
    H = (P >= 0.5).astype(int)
    out = compute_metrics("multilabel", Y, P)
    assert out["hamming_loss"] == pytest.approx(skm.hamming_loss(Y, H))
    assert out["ranking_loss"] == pytest.approx(skm.label_ranking_loss(Y, P))
    assert out["coverage"] == pytest.approx(skm.coverage_error(Y, P))
    assert out["average_precision"] == pytest.approx(skm.label_ranking_average_precision_score(Y, P))
    assert out["micro_f1"] == pytest.approx(skm.f1_score(Y, H, average="micro"))
    assert out["macro_f1"] == pytest.approx(skm.f1_score(Y, H, average="macro", zero_division=0))
    assert out["n"] == 60


def test_one_error_and_precision_at_k_by_hand() -> None:
    Y = np.array([[1, 0, 0, 1], [0, 1, 0, 0], [0, 0, 1, 1]], dtype=float)
    P = np.array([[0.9, 0.8, 0.1, 0.2], [0.3, 0.2, 0.1, 0.0], [0.1, 0.2, 0.7, 0.9]])
    out = multilabel_metrics(Y, P)
    assert out["one_error"] == pytest.approx(1 / 3)  # the second sample's top label (0) is irrelevant
    assert out["precision_at_1"] == pytest.approx(2 / 3)
    assert out["precision_at_3"] == pytest.approx((2 / 3 + 1 / 3 + 2 / 3) / 3)
    assert out["precision_at_5"] == pytest.approx((2 / 4 + 1 / 4 + 2 / 4) / 3)  # k capped at the 4 labels


def test_rows_with_missing_labels_are_left_out(data: tuple[np.ndarray, np.ndarray]) -> None:
    Y, P = data
    Ym = Y.copy()
    Ym[5, 2] = np.nan
    out = compute_metrics("multilabel", Ym, P, metrics=["hamming_loss"])
    keep = np.ones(len(Y), bool)
    keep[5] = False
    assert out["hamming_loss"] == pytest.approx(skm.hamming_loss(Y[keep], (P[keep] >= 0.5).astype(int)))
    assert out["n"] == 59
    assert math.isnan(METRICS["hamming_loss"]()(np.full((2, 3), np.nan), np.zeros((2, 3))))


def test_registry_and_errors(data: tuple[np.ndarray, np.ndarray]) -> None:
    Y, P = data
    assert "hamming_loss" in multilabel_metric_names() and "auroc" not in multilabel_metric_names()
    assert "hamming_loss" not in metric_names("binary")  # per-task binary metrics are unchanged
    assert main_metric("multilabel") == ("average_precision", True)
    assert not METRICS["ranking_loss"].higher_is_better
    with pytest.raises(DataError, match="0/1"):
        compute_metrics("multilabel", Y * 2, P)
    with pytest.raises(DataError, match="equal"):
        compute_metrics("multilabel", Y, P[:, :3])
    with pytest.raises(ConfigError):
        METRICS["hamming_loss"]("binary")
    with pytest.raises(DataError, match="not a multi-label metric"):
        multilabel_metrics(Y, P, metrics=["auroc"])


def test_a_single_label_column_scores_like_sklearn_with_a_never_relevant_label(data: tuple[np.ndarray, np.ndarray]) -> None:
    """One label column (sklearn calls it "binary" and refuses ranking metrics) equals the same column
    next to a label that is never relevant and always scored lowest."""
    Y, P = data[0][:, :1], data[1][:, :1]
    padded_Y = np.c_[Y, np.zeros(len(Y))]
    padded_P = np.c_[P, np.full(len(P), -1.0)]
    out = compute_metrics("multilabel", Y, P)
    assert out["ranking_loss"] == pytest.approx(skm.label_ranking_loss(padded_Y, padded_P))
    assert out["coverage"] == pytest.approx(skm.coverage_error(padded_Y, padded_P))
    assert out["average_precision"] == pytest.approx(skm.label_ranking_average_precision_score(padded_Y, padded_P))
