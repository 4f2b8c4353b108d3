"""Loss-level diagnostics on real runs: a diverging run (``--lr 10`` with Adam) is flagged,
a healthy run is not (PBMC cell types, 10 classes, and a binary task)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from biodl import Experiment
from biodl.training.loss_level import chance_loss, check_loss_level
from conftest import run_biodl

LEVEL_KINDS = {"loss_above_chance", "non_finite", "metric_at_chance"}


def run(csv: Path, out: Path, target: str, lr: float | None) -> list[dict[str, object]]:
    genes = [c for c in pd.read_csv(csv, nrows=1).columns if c.startswith("g_")]
    Experiment(
        data={"path": [str(csv)], "task": "classification", "target_columns": [target], "feature_columns": genes},
        model={"name": "mlp", "hidden_sizes": [64]},
        train={"max_epochs": 6, "lr": lr, "batch_size": 16, "progress_bar": False, "early_stopping": False, "seed": 0},
        evaluate={"baselines": [], "report": False, "plots": False},
    ).fit(out)
    found: list[dict[str, object]] = json.loads((out / "diagnostics.json").read_text())
    return found


def test_healthy_run_has_no_level_finding(small_csv: Path, tmp_path: Path) -> None:
    healthy = run(small_csv, tmp_path / "default", "bulk_labels", None)
    assert not LEVEL_KINDS & {f["kind"] for f in healthy}, healthy


def test_diverging_run_is_flagged_on_the_console_and_in_diagnostics_json(small_csv: Path, tmp_path: Path) -> None:
    """``biodl train --lr 10`` (Adam): the loss explodes and falls back, but stays above chance."""
    genes = [c for c in pd.read_csv(small_csv, nrows=1).columns if c.startswith("g_")]
    res = run_biodl(
        "train", "--data-path", str(small_csv), "--task", "classification",
         "--target-columns", "bulk_labels", "--feature-columns", *genes, "--lr", "10", "--max-epochs", "6",
         "--batch-size", "16", "--set", "model.hidden_sizes=[64]", "--output-dir", str(tmp_path / "run"),
         "--set", "evaluate.report=false", "--set", "evaluate.plots=false", "--set", "evaluate.baselines=[]",
         "--set", "train.early_stopping=false", "--set", "train.progress_bar=false",
    )  # fmt: skip
    assert res.returncode == 0, res.stderr[-2000:]
    assert "no problems found" not in res.stdout
    assert "loss_above_chance: the training cross-entropy ended at" in res.stdout, res.stdout[-2000:]
    found = json.loads((tmp_path / "run" / "diagnostics.json").read_text())
    above = next(f for f in found if f["kind"] == "loss_above_chance")
    evidence = above["evidence"]
    assert evidence["last_train_loss"] > evidence["chance_loss"] > 0
    assert evidence["chance_loss"] <= math.log(10) + 1e-9  # the class-prior entropy is at most log(C)
    assert "lower it" in above["message"] and evidence["pattern"] == "diverged"


def test_chance_levels() -> None:
    y = np.array([0, 0, 1, 2, -1])
    assert chance_loss("multiclass", y) == pytest.approx(-(0.5 * math.log(0.5) + 2 * 0.25 * math.log(0.25)))
    yb = np.array([[1.0, np.nan], [0.0, 1.0], [0.0, 1.0], [0.0, 0.0]])
    h = lambda p: -(p * math.log(p) + (1 - p) * math.log(1 - p))  # noqa: E731
    assert chance_loss("binary", yb) == pytest.approx((4 * h(0.25) + 3 * h(2 / 3)) / 7)
    assert chance_loss("regression", np.array([[1.0], [2.0], [np.nan]])) == 1.0
    # non-finite losses, from the first epoch on or in the validation loss only
    nan_val = check_loss_level({"train_loss": [0.6, 0.5], "val_loss": [0.7, float("nan")]}, chance=0.69)
    assert [f.kind for f in nan_val] == ["non_finite"] and "validation" in nan_val[0].message
    assert check_loss_level({"train_loss": [0.6, 0.4]}, chance=0.69, val_metrics={"auroc": 0.9}) == []
    at_chance = check_loss_level({"train_loss": [0.6, 0.4]}, chance=0.69, val_metrics={"auroc": 0.51})
    assert [f.kind for f in at_chance] == ["metric_at_chance"]
    acc = check_loss_level({"train_loss": [1.0]}, chance=2.0, val_metrics={"accuracy": 0.3}, majority_share=0.3)
    assert [f.kind for f in acc] == ["metric_at_chance"]
