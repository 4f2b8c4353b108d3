"""End-to-end training on the real PBMC data (700 cells × 765 genes)."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

import biodl
from biodl import Experiment
from biodl.inference import evaluate, load_data, predict_frame
from conftest import PBMC


def test_run_directory_contract(pbmc_run: Path) -> None:
    for name in ("config.yaml", "metrics.json", "splits.json", "history.json", "report.html", "diagnostics.json"):
        assert (pbmc_run / name).is_file(), name
    assert (pbmc_run / "model" / "weights.safetensors").is_file()
    assert (pbmc_run / "model" / "bundle.json").is_file()
    assert (pbmc_run / "figures" / "learning_curves.png").is_file()
    metrics = json.loads((pbmc_run / "metrics.json").read_text())
    assert {"train", "val", "test", "baseline"} <= set(metrics)
    for key in ("accuracy", "auroc", "auprc", "f1", "mcc", "balanced_accuracy"):
        assert isinstance(metrics["test"][key], float)
    assert metrics["baseline"]["name"] in ("linear", "random_forest")
    assert "accuracy" in metrics["baseline"]["test"]
    cfg = yaml.safe_load((pbmc_run / "config.yaml").read_text())
    assert cfg["train"]["max_epochs"] == 12 and cfg["model"]["hidden_sizes"] == [64]
    splits = json.loads((pbmc_run / "splits.json").read_text())
    sizes = splits["sizes"]
    assert sum(sizes.values()) == 700 and splits["method"] == "stratified"
    assert abs(sizes["test"] - 210) <= 5 and abs(sizes["val"] - 70) <= 5  # 60/10/30, rounded per class
    assert not set(splits["train"]) & set(splits["test"])
    html = (pbmc_run / "report.html").read_text()
    assert "data:image/png;base64," in html and "Learning curves" in html


def test_network_beats_chance(pbmc_run: Path) -> None:
    metrics = json.loads((pbmc_run / "metrics.json").read_text())
    # 10 cell types; the most frequent class is ~14% of cells
    assert metrics["test"]["accuracy"] > 0.5
    assert metrics["test"]["auroc"] > 0.85


def test_predict_from_bundle_reproduces_evaluate(pbmc_run: Path, tmp_path: Path) -> None:
    bundle = biodl.load(pbmc_run / "model_heldout")  # the measured model: the run's test figures are its
    splits = json.loads((pbmc_run / "splits.json").read_text())
    data = load_data(bundle, [str(PBMC)], require_targets=True)
    frame, out = predict_frame(bundle, data)
    assert list(frame.columns[:2]) == ["id", "prob_CD14+ Monocyte"] and frame.shape[0] == 700
    np.testing.assert_allclose(out.sum(axis=1), 1.0, atol=1e-5)
    # accuracy recomputed from the prediction table equals evaluate() and the run's test metric
    assert data.targets is not None
    test = np.array(splits["test"])
    labels = np.array(bundle.classes)[data.targets.y]
    acc = float((frame["predicted"].to_numpy()[test] == labels[test]).mean())
    metrics = json.loads((pbmc_run / "metrics.json").read_text())
    assert acc == pytest.approx(metrics["test"]["accuracy"], abs=1e-9)
    full = evaluate(bundle, data)
    assert full["accuracy"] == pytest.approx(float((frame["predicted"] == labels).mean()))


def test_regression_multitask_missing_labels(small_csv: Path, tmp_path: Path) -> None:
    genes = [c for c in pd.read_csv(small_csv, nrows=1).columns if c.startswith("g_")]
    exp = Experiment(
        data={"path": [str(small_csv)], "task": "multilabel", "target_columns": ["is_mono", "is_b"], "feature_columns": genes},
        model={"hidden_sizes": [32]},
        train={"max_epochs": 30, "progress_bar": False, "batch_size": 32},
        evaluate={"baselines": ["linear"]},
    )
    res = exp.fit(tmp_path / "ml")
    assert set(res.metrics["test"]["per_task"]) == {"is_mono", "is_b"}
    assert res.metrics["test"]["auroc"] > 0.8
    reg = Experiment(
        data={"path": [str(small_csv)], "task": "regression", "target_columns": ["CST3"], "feature_columns": genes},
        model={"hidden_sizes": [32]},
        train={"max_epochs": 30, "progress_bar": False, "batch_size": 32},
        evaluate={"baselines": []},
    ).fit(tmp_path / "reg")
    # targets are standardised for training and predicted back on the original scale
    assert reg.bundle is not None and reg.bundle.target_scaler is not None
    assert reg.metrics["test"]["pearson"] > 0.3
    assert "baseline" not in reg.metrics


def test_cross_validation_reports_mean_and_std(small_csv: Path, tmp_path: Path) -> None:
    genes = [c for c in pd.read_csv(small_csv, nrows=1).columns if c.startswith("g_")]
    res = Experiment(
        data={
            "path": [str(small_csv)],
            "task": "classification",
            "target_columns": ["is_mono"],
            "feature_columns": genes,
            "cv": 3,
        },
        model={"hidden_sizes": [16]},
        train={"max_epochs": 3, "progress_bar": False},
        evaluate={"baselines": ["linear"]},
    ).fit(tmp_path / "cv")
    m = res.metrics
    assert m["cv"]["folds"] == 3 and len(m["cv"]["per_fold"]) == 3
    folds = [f["test"]["auroc"] for f in m["cv"]["per_fold"]]
    assert m["test"]["auroc"] == pytest.approx(np.mean(folds))
    assert m["cv"]["test_std"]["auroc"] == pytest.approx(np.std(folds))
    assert isinstance(m["network_beats_baseline"], bool) and len(m["cv"]["network_beats_baseline_per_fold"]) == 3
    assert (tmp_path / "cv" / "model" / "bundle.json").is_file()
    splits = json.loads((tmp_path / "cv" / "splits.json").read_text())
    tested = sorted(i for f in splits["folds"] for i in f["test"])
    assert tested == list(range(700))
    # every fold is a measurement: none is trained again on its test rows (train.refit: auto on a 700-row table)
    for i in range(3):
        fold = json.loads((tmp_path / "cv" / f"fold_{i}" / "metrics.json").read_text())
        assert fold["refit"]["shipped"] == "measured" and "cross-validation fold" in fold["refit"]["reason"]
        assert not (tmp_path / "cv" / f"fold_{i}" / "model_heldout").exists()


def test_group_split_from_column(small_csv: Path, tmp_path: Path) -> None:
    genes = [c for c in pd.read_csv(small_csv, nrows=1).columns if c.startswith("g_")][:20]
    res = Experiment(
        data={
            "path": [str(small_csv)],
            "task": "classification",
            "target_columns": ["is_mono"],
            "feature_columns": genes,
            "split": "group",
            "group_column": "donor",
        },
        train={"max_epochs": 1, "progress_bar": False},
        evaluate={"baselines": [], "report": False, "plots": False},
    ).fit(tmp_path / "grp")
    splits = json.loads((tmp_path / "grp" / "splits.json").read_text())
    donors = pd.read_csv(small_csv)["donor"].to_numpy()
    assert splits["method"] == "group"
    assert not set(donors[splits["train"]]) & set(donors[splits["test"]])
    assert res.metrics["test"]["n"] == len(splits["test"])


def test_schedules_and_clipping_step_once_per_epoch(small_csv: Path, tmp_path: Path) -> None:
    """The written-out optimisation step: exponential decay per epoch, plateau halving on a stalled
    validation loss, gradient clipping by norm; history records the learning rate of every epoch."""
    genes = [c for c in pd.read_csv(small_csv, nrows=1).columns if c.startswith("g_")]
    data = {"path": [str(small_csv)], "task": "classification", "target_columns": ["bulk_labels"], "feature_columns": genes}
    quick = {"progress_bar": False, "batch_size": 64, "early_stopping": False}
    Experiment(
        data=data, model={"hidden_sizes": [16]}, evaluate={"baselines": [], "report": False, "plots": False},
        train={**quick, "max_epochs": 4, "lr": 0.01, "lr_schedule": "exponential", "lr_gamma": 0.5, "gradient_clip": 0.1},
    ).fit(tmp_path / "exp")  # fmt: skip
    history = json.loads((tmp_path / "exp" / "history.json").read_text())
    assert history["lr"] == pytest.approx([0.01 * 0.5**e for e in range(4)])
    assert history["train_loss"][-1] < history["train_loss"][0]  # clipped steps still learn
    metric = next(k for k in history if k.startswith("train_") and k != "train_loss")
    assert len(history[metric]) == 4 and all(v is not None for v in history[metric])  # every epoch its own value
    # plateau: stepped on the validation loss once per epoch; the rate starts at lr and never rises
    plateau = Experiment(
        data=data, model={"hidden_sizes": [16]}, evaluate={"baselines": [], "report": False, "plots": False},
        train={**quick, "max_epochs": 4, "lr": 0.01, "lr_schedule": "plateau", "lr_patience": 0, "lr_factor": 0.5},
    )  # fmt: skip
    plateau.fit(tmp_path / "plateau")
    lr = json.loads((tmp_path / "plateau" / "history.json").read_text())["lr"]
    assert lr[0] == pytest.approx(0.01) and all(b <= a for a, b in itertools.pairwise(lr))
