"""``biodl train --model dnae`` (the two-step DNAE learner) end to end, multi-label metric names in
``evaluate.metrics``, and ``train.pretrain`` (layer-wise auto-encoder pre-training) in a run."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from biodl import Experiment
from biodl.bundle import load
from biodl.cli.main import main
from conftest import PBMC, shared_path

QUIET = ["--set", "train.progress_bar=false", "--set", "evaluate.report=false"]
YEAST_LABELS = [f"Class{j}" for j in range(1, 15)]
CONTRACT = {"train", "val", "test", "baseline", "training"}
CHOSEN = ["hamming_loss", "average_precision", "ranking_loss", "one_error", "coverage", "micro_f1", "macro_f1",
          "precision_at_3", "auroc"]  # fmt: skip


@pytest.fixture(scope="module")
def yeast_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    data = shared_path("multilabel", "yeast", "yeast-train.arff")
    out = tmp_path_factory.mktemp("yeast") / "dnae"
    rc = main(["train", "--data-type", "tabular", "--data-path", str(data), "--task", "multilabel",
               "--target-columns", *YEAST_LABELS, "--model", "dnae", "--max-epochs", "6", "--output-dir", str(out),
               "--set", "model.dnae_epochs=40", "--set", "evaluate.baselines=[linear]",
               "--set", f"evaluate.metrics=[{','.join(CHOSEN)}]",
               *QUIET])  # fmt: skip
    assert rc == 0
    return out


def test_cli_dnae_run_writes_the_contract_and_the_hierarchy(yeast_run: Path) -> None:
    metrics = json.loads((yeast_run / "metrics.json").read_text())
    assert CONTRACT <= set(metrics)
    for part in ("train", "val", "test"):
        assert set(metrics[part]) == set(CHOSEN) | {"n", "per_task"}  # exactly the chosen metrics
        assert set(metrics[part]["per_task"]["Class1"]) == {"auroc"}
    test = metrics["test"]
    assert test["hamming_loss"] < 0.3 and test["average_precision"] > 0.65  # label frequencies alone: ~0.30 / ~0.6
    assert "hamming_loss" in metrics["baseline"]["test"]  # binary-relevance logistic regression, same metrics
    enc = metrics["label_encoder"]
    assert enc["layers"] == [12, 8] and enc["min_weight"] >= 0.0 and 0 < enc["reconstruction_relative_error"]["test"] < 0.6
    table = pd.read_csv(yeast_run / "label_hierarchy.csv")
    assert len(table) == 12 + 8 and set(table.columns) >= {"layer", "unit", "top_labels", "parents"}
    labelled = set(table.top_labels.dropna().str.split(", ").explode())
    assert {"Class12", "Class13"} <= labelled
    assert (yeast_run / "figures" / "label_hierarchy.png").exists()
    assert json.loads((yeast_run / "label_encoder.json").read_text())["history"]["loss"]
    files = sorted(p.name for p in (yeast_run / "model").iterdir())
    assert files == ["README.md", "bundle.json", "preprocessing.safetensors", "weights.safetensors"]  # card; no pickles
    bundle = load(yeast_run)
    assert bundle.meta["model"]["name"] == "dnae" and bundle.meta["task"] == "multilabel"


def test_predict_evaluate_and_export_a_dnae_bundle(yeast_run: Path, tmp_path: Path) -> None:
    data = shared_path("multilabel", "yeast", "yeast-train.arff")
    pred = tmp_path / "pred.csv"
    args = ["--model-path", str(yeast_run), "--data-path", str(data)]
    assert main(["predict", *args, "--output", str(pred), "--engine", "torch"]) == 0
    frame = pd.read_csv(pred)
    assert list(frame.columns) == ["id", *YEAST_LABELS] and len(frame) == 1500
    assert frame[YEAST_LABELS].to_numpy().min() >= 0 and frame[YEAST_LABELS].to_numpy().max() <= 1
    out = tmp_path / "eval.json"
    assert main(["evaluate", "--model-path", str(yeast_run), "--data-path", str(data), "--output", str(out)]) == 0
    ev = json.loads(out.read_text())["metrics"]
    assert {"hamming_loss", "average_precision", "auroc", "precision_at_5"} <= set(ev)
    onnx = tmp_path / "dnae.onnx"
    assert main(["export", "--model-path", str(yeast_run), "--output", str(onnx), "--data-path", str(data)]) == 0
    assert json.loads((tmp_path / "dnae.onnx.json").read_text())["parity"]["passed"]


def test_dnae_cross_validation_and_pretraining_on_a_toy_arff(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(160, 6))
    Y = np.concatenate([X[:, :3] > 0, X[:, :3] > 0.8], axis=1).astype(int)  # 6 labels in 3 nested pairs
    lines = ["@relation toy", *[f"@attribute f{j} numeric" for j in range(6)]]
    lines += [*[f"@attribute L{j} {{0,1}}" for j in range(6)], "@data"]
    lines += [",".join([*(f"{v:.4f}" for v in X[i]), *(str(v) for v in Y[i])]) for i in range(160)]
    path = tmp_path / "toy.arff"
    path.write_text("\n".join(lines) + "\n")
    res = Experiment(
        data={"path": [str(path)], "task": "multilabel", "target_columns": [f"L{j}" for j in range(6)], "cv": 2,
              "split_sizes": [0.9, 0.1, 0.0]},
        model={"name": "dnae", "dnae_epochs": 60, "hidden_sizes": [16]},
        train={"max_epochs": 40, "batch_size": 16, "lr": 3e-3, "progress_bar": False,
               "pretrain": "autoencoder", "pretrain_epochs": 2},
        evaluate={"baselines": [], "report": False, "plots": False, "metrics": ["hamming_loss", "average_precision"]},
    ).fit(tmp_path / "cv")  # fmt: skip
    assert set(res.metrics["test"]) == {"hamming_loss", "average_precision", "n"}
    assert res.metrics["test"]["hamming_loss"] < 0.3
    for fold in ("fold_0", "fold_1"):
        pre = json.loads((tmp_path / "cv" / fold / "pretrain.json").read_text())
        assert pre["layers"][0]["in"] == 6 and pre["layers"][0]["out"] == 16
    assert (tmp_path / "cv" / "label_hierarchy.csv").exists() and (tmp_path / "cv" / "model" / "bundle.json").exists()
    assert res.bundle is not None and res.bundle.meta["model"]["params"]["layers"] is None  # default: [5, 3] for 6 labels
    assert len(pd.read_csv(tmp_path / "cv" / "label_hierarchy.csv")) == 5 + 3


def test_pretrain_switch_on_pbmc_keeps_the_result_contract(tmp_path: Path) -> None:
    out = tmp_path / "pbmc_pre"
    rc = main(["train", "--data-path", str(PBMC), "--task", "classification", "--target-columns", "bulk_labels",
               "--max-epochs", "3", "--pretrain", "autoencoder", "--pretrain-epochs", "2", "--output-dir", str(out),
               "--set", "model.hidden_sizes=[64,16]", "--set", "evaluate.baselines=[linear]", *QUIET])  # fmt: skip
    assert rc == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert CONTRACT <= set(metrics) and metrics["test"]["accuracy"] > 0.2
    assert set(metrics) - CONTRACT <= {"network_beats_baseline", "baseline_margin", "baseline_comparison", "refit"}
    pre = json.loads((out / "pretrain.json").read_text())
    assert pre["method"] == "autoencoder" and [(p["in"], p["out"]) for p in pre["layers"]] == [(765, 64), (64, 16)]
    assert all(p["loss"][-1] < p["loss"][0] for p in pre["layers"])
    assert load(out).meta["model"]["name"] == "mlp"
