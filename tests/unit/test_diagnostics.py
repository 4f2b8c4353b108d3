"""Tests of the learning-curve diagnostics."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from biodl.errors import DataError
from biodl.training.diagnostics import Finding, diagnose, format_findings

N = 30
T = np.arange(N, dtype=np.float64)


def _history(train: np.ndarray, val: np.ndarray | None = None, **extra: object) -> dict:
    history: dict = {"epoch": list(range(1, len(train) + 1)), "train_loss": list(train)}
    if val is not None:
        history["val_loss"] = list(val)
    history.update(extra)
    return history


def _healthy(noise: float = 0.0, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    train = 0.1 + 0.6 * np.exp(-T / 8.0)
    val = train * 1.1 + 0.02
    return (
        train * (1 + rng.normal(0, noise, N)),
        val * (1 + rng.normal(0, 4 * noise, N)),
    )


def _kinds(findings: list[Finding]) -> list[str]:
    return [f.kind for f in findings]


def test_healthy_exponential_decay_has_no_findings() -> None:
    train, val = _healthy()
    assert diagnose(_history(train, val)) == []


@pytest.mark.parametrize("seed", range(20))
def test_noisy_healthy_curves_have_no_findings(seed: int) -> None:
    train, val = _healthy(noise=0.01, seed=seed)
    assert diagnose(_history(train, val)) == []


def test_fast_but_low_saturation_is_healthy() -> None:
    train = 0.05 + 0.65 * np.exp(-T / 2.0)
    assert diagnose(_history(train)) == []


def test_linear_shallow_decay_is_lr_too_low() -> None:
    train = 0.70 - 0.001 * T
    findings = diagnose(_history(train, lr=[1e-6] * N))
    assert _kinds(findings) == ["lr_too_low"]
    ev = findings[0].evidence
    assert ev["first_train_loss"] == pytest.approx(0.70)
    assert ev["last_train_loss"] == pytest.approx(0.70 - 0.029)
    assert ev["rel_decrease"] == pytest.approx(0.029 / 0.70)
    assert ev["lr"][0] == pytest.approx(1e-6)


def test_rising_loss_is_lr_too_high() -> None:
    train = 0.7 + 0.02 * T
    findings = diagnose(_history(train))
    assert _kinds(findings) == ["lr_too_high"]
    assert findings[0].evidence["pattern"] == "increasing"
    assert findings[0].evidence["last_epoch"] == N


def test_rebounding_loss_is_lr_too_high() -> None:
    train = np.r_[0.7, 0.4, 0.3, 0.25, 0.45, 0.6, 0.65]
    findings = diagnose(_history(train))
    assert _kinds(findings) == ["lr_too_high"]
    assert findings[0].evidence["min_epoch"] == 4


def test_oscillating_loss_is_lr_too_high() -> None:
    train = (0.1 + 0.6 * np.exp(-T / 8.0)) * (1 + 0.3 * (-1.0) ** T)
    findings = diagnose(_history(train))
    assert _kinds(findings) == ["lr_too_high"]
    assert findings[0].evidence["pattern"] == "oscillating"
    assert findings[0].evidence["n_reversals"] >= 20


def test_steep_drop_then_high_plateau_is_lr_too_high() -> None:
    train = np.r_[0.7, 0.46, 0.45, np.full(N - 3, 0.45)]
    findings = diagnose(_history(train))
    assert _kinds(findings) == ["lr_too_high"]
    assert findings[0].evidence["pattern"] == "early_saturation"


def test_non_finite_loss_is_lr_too_high() -> None:
    findings = diagnose(_history(np.array([0.7, 0.6, 5.0, math.inf, math.nan])))
    assert _kinds(findings) == ["lr_too_high"]
    assert findings[0].evidence["first_non_finite_epoch"] == 4


def test_u_shaped_validation_is_overfitting_with_best_epoch() -> None:
    train = 0.1 + 0.6 * np.exp(-T / 8.0)
    val = 0.3 + 0.002 * (T - 11) ** 2  # minimum at index 11, i.e. epoch 12
    findings = diagnose(_history(train, val))
    assert _kinds(findings) == ["overfitting"]
    ev = findings[0].evidence
    assert ev["best_epoch"] == 12
    assert ev["best_val_loss"] == pytest.approx(0.3)
    assert ev["last_val_loss"] == pytest.approx(val[-1])
    assert ev["train_loss_at_best"] == pytest.approx(train[11])
    assert ev["train_loss_at_last"] == pytest.approx(train[-1])
    assert ev["gap_at_end"] > ev["gap_at_best"]
    assert "epoch 12" in findings[0].message


def test_overfitting_names_the_weights_a_metric_kept() -> None:
    train = 0.1 + 0.6 * np.exp(-T / 8.0)
    val = 0.3 + 0.002 * (T - 11) ** 2  # lowest validation loss at epoch 12
    chose_loss = diagnose(_history(train, val), kept=(12, "val_loss"))[0]
    assert "keep the best-epoch weights" in chose_loss.message and "kept_epoch" not in chose_loss.evidence
    # train.monitor: metric kept epoch 16, not the lowest-loss epoch: the advice must not say otherwise
    finding = diagnose(_history(train, val), kept=(16, "val_auroc"))[0]
    assert finding.kind == "overfitting"
    assert finding.evidence["best_epoch"] == 12
    assert (finding.evidence["kept_epoch"], finding.evidence["kept_by"]) == (16, "val_auroc")
    assert "kept weights are epoch 16's, chosen by val auroc" in finding.message
    assert f"validation loss {val[15]:.4g}" in finding.message
    assert "keep the best-epoch weights" not in finding.message


def test_overfitting_ignores_nan_validation_epochs() -> None:
    train = 0.1 + 0.6 * np.exp(-T / 8.0)
    val = 0.3 + 0.002 * (T - 11) ** 2
    val[::2] = np.nan  # validated every other epoch only
    findings = diagnose(_history(train, val))
    assert _kinds(findings) == ["overfitting"]
    assert findings[0].evidence["best_epoch"] == 12


def test_val_rising_with_rising_train_is_not_overfitting() -> None:
    train = np.r_[0.7, 0.5, 0.4, 0.35, 0.33, 0.32, 0.32, 0.32]
    val = np.r_[0.7, 0.5, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9]
    train_up = train.copy()
    train_up[-4:] = [
        0.42,
        0.45,
        0.5,
        0.55,
    ]  # training loss rises above its value at the best epoch
    assert "overfitting" not in _kinds(diagnose(_history(train_up, val)))
    assert "overfitting" in _kinds(diagnose(_history(train, val)))


def test_short_histories_have_no_findings() -> None:
    assert diagnose({"epoch": [1, 2], "train_loss": [1.0, 5.0]}) == []
    assert diagnose({"train_loss": []}) == []


def test_missing_val_loss_and_epoch_are_optional() -> None:
    findings = diagnose({"train_loss": list(0.7 - 0.001 * T)})
    assert _kinds(findings) == ["lr_too_low"]
    assert findings[0].evidence["first_epoch"] == 1


def test_bad_history_raises_data_error() -> None:
    with pytest.raises(DataError, match="train_loss"):
        diagnose({"val_loss": [1.0, 0.9, 0.8]})
    with pytest.raises(DataError, match="val_loss"):
        diagnose({"train_loss": [1.0, 0.9, 0.8], "val_loss": [1.0]})


def test_findings_are_json_serialisable() -> None:
    train = np.r_[0.7, 0.6, 0.5, math.nan]
    val = 0.3 + 0.002 * (T - 11) ** 2
    findings = diagnose(_history(train)) + diagnose(_history(0.1 + 0.6 * np.exp(-T / 8.0), val))
    assert len(findings) == 2
    text = json.dumps([f.to_dict() for f in findings], allow_nan=False)
    assert json.loads(text)[1]["kind"] == "overfitting"


def test_format_findings() -> None:
    assert format_findings([]) == "no problems found in the learning curves"
    findings = [
        Finding("lr_too_low", "slow", {}),
        Finding("overfitting", "gap grows", {"best_epoch": 3}),
    ]
    lines = format_findings(findings).splitlines()
    assert lines == ["lr_too_low: slow", "overfitting: gap grows"]


def test_lr_with_other_length_is_ignored() -> None:
    findings = diagnose(_history(0.70 - 0.001 * T, lr=[0.1, 0.01]))
    assert _kinds(findings) == ["lr_too_low"]
    assert "lr" not in findings[0].evidence
