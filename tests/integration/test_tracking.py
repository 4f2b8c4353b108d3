"""Experiment tracking against a real local MLflow file store (and wandb offline, when installed)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pandas as pd
import pytest

from biodl import Experiment
from biodl.cli.main import main
from conftest import run_biodl

mlflow = pytest.importorskip("mlflow", reason="the MLflow tests need mlflow (mlflow-skinny, in the dev extra)")

BIODL = str(Path(sys.executable).parent / "biodl")


def _data(small_csv: Path) -> dict:
    genes = [c for c in pd.read_csv(small_csv, nrows=1).columns if c.startswith("g_")][:12]
    return {"path": [str(small_csv)], "task": "classification", "target_columns": ["is_mono"], "feature_columns": genes}


def _client(store: Path) -> object:
    from mlflow.tracking import MlflowClient

    return MlflowClient(tracking_uri=store.resolve().as_uri())


def test_mlflow_run_has_config_params_epoch_metrics_final_metrics_and_artifacts(
    small_csv: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    run = tmp_path / "run"
    res = Experiment(
        data=_data(small_csv),
        model={"hidden_sizes": [16]},
        train={"max_epochs": 3, "early_stopping": False, "progress_bar": False, "logger": "mlflow", "lr": 0.005},
        evaluate={"baselines": ["linear"], "plots": False},
    ).fit(run)
    client = _client(run / "mlruns")  # the default store: RUN/mlruns
    (exp,) = [e for e in client.search_experiments() if e.name == "biodl"]
    (r,) = client.search_runs([exp.experiment_id])
    assert r.info.status == "FINISHED" and r.info.run_name == "run"
    params = r.data.params
    assert params["train.lr"] == "0.005" and params["model.hidden_sizes"] == "[16]" and params["data.task"] == "classification"
    assert len(client.get_metric_history(r.info.run_id, "val_loss")) == 3  # one value per epoch
    assert r.data.metrics["final.test.auroc"] == pytest.approx(res.metrics["test"]["auroc"])
    assert r.data.metrics["final.baseline.test.auroc"] == pytest.approx(res.metrics["baseline"]["test"]["auroc"])
    artifacts = {a.path for a in client.list_artifacts(r.info.run_id)}
    assert {"model", "metrics.json", "report.html", "config.yaml"} <= artifacts
    assert "model/bundle.json" in {a.path for a in client.list_artifacts(r.info.run_id, "model")}
    local = Path(client.download_artifacts(r.info.run_id, "metrics.json", str(tmp_path)))
    assert json.loads(local.read_text())["test"] == json.loads((run / "metrics.json").read_text())["test"]


def test_tracking_uri_from_the_environment_and_tune_trials_in_one_experiment(
    small_csv: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = tmp_path / "central"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", store.resolve().as_uri())
    data = _data(small_csv)
    args = [
        "tune", "--data-path", str(small_csv), "--task", "classification", "--target-columns", "is_mono", "--model", "mlp",
        "--feature-columns", *data["feature_columns"], "--output-dir", str(tmp_path / "tune"), "--max-epochs", "2",
        "--n-trials", "2", "--sampler", "random", "--pruner", "none", "--study-name", "mono", "--logger", "mlflow",
        "--set", "train.progress_bar=false", "--set", "evaluate.baselines=[]", "--set", "evaluate.plots=false",
        "--set", "evaluate.report=false",
    ]  # fmt: skip
    assert main(args) == 0
    client = _client(store)
    (exp,) = [e for e in client.search_experiments() if e.name == "mono"]  # the study's name
    runs = client.search_runs([exp.experiment_id])
    assert sorted(r.info.run_name for r in runs) == ["trial_0000", "trial_0001"]
    assert all(r.info.status == "FINISHED" and "final.val.auroc" in r.data.metrics for r in runs)
    lrs = sorted(float(r.data.params["train.lr"]) for r in runs)
    trials = pd.read_csv(tmp_path / "tune" / "trials.csv")
    assert lrs == pytest.approx(sorted(trials["train.lr"]))  # each run carries its trial's sampled values
    assert not (tmp_path / "tune" / "trials" / "trial_0000" / "mlruns").exists()


def test_unreachable_tracking_uri_is_one_line_and_nothing_trains(small_csv: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    data = _data(small_csv)
    r = run_biodl(
        "train", "--data-path", str(small_csv), "--task", "classification", "--target-columns", "is_mono",
         "--feature-columns", *data["feature_columns"], "--output-dir", str(run), "--logger", "mlflow",
         "--set", "train.tracking_uri=http://127.0.0.1:9",
    )  # fmt: skip
    assert r.returncode == 2
    assert r.stderr.strip().count("\n") == 0, r.stderr
    assert "tracking URI http://127.0.0.1:9 cannot be reached" in r.stderr and "training not started" in r.stderr
    assert not (run / "checkpoints").exists() and not (run / "metrics.json").exists()


def test_wandb_offline_run(small_csv: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("wandb", reason="wandb is optional (pip install wandb); its logger is not tested without it")
    monkeypatch.delenv("WANDB_MODE", raising=False)
    run = tmp_path / "run"
    Experiment(
        data=_data(small_csv),
        model={"hidden_sizes": [16]},
        train={"max_epochs": 2, "progress_bar": False, "logger": "wandb"},
        evaluate={"baselines": [], "plots": False, "report": False},
    ).fit(run)
    offline = list((run / "wandb").glob("offline-run-*"))
    assert len(offline) == 1 and any(offline[0].rglob("*.wandb"))
