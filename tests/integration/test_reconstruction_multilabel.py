"""Experiments with task ``reconstruction`` (auto-encoder, PCA reference, ``biodl embed``) and task
``multilabel`` on an ARFF file (multi-label metrics in ``metrics.json``)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from biodl import Experiment
from biodl.cli.main import main

QUIET = {"progress_bar": False, "seed": 0}
NO_EXTRAS = {"report": False, "plots": False}


def test_autoencoder_reconstruction_run_and_embed(small_csv: Path, tmp_path: Path) -> None:
    genes = [c for c in pd.read_csv(small_csv, nrows=1).columns if c.startswith("g_")][:20]
    out = tmp_path / "ae"
    res = Experiment(
        data={"path": [str(small_csv)], "task": "reconstruction", "feature_columns": genes},
        model={"name": "autoencoder", "hidden_sizes": [12, 4], "noise": "gaussian", "noise_level": 0.1},
        train={"max_epochs": 8, **QUIET},
        evaluate=NO_EXTRAS,
    ).fit(out)
    test = res.metrics["test"]
    assert {"rmse", "r2", "explained_variance"} <= set(test) and "per_task" not in test
    assert res.metrics["baseline"]["name"] == "pca (4 components)"
    assert res.history["train_loss"][-1] < res.history["train_loss"][0]
    emb = tmp_path / "emb.csv"
    assert main(["embed", "--model-path", str(out), "--data-path", str(small_csv), "--output", str(emb)]) == 0
    assert pd.read_csv(emb).shape[1] == 1 + 4


def test_multilabel_arff_run_reports_multilabel_metrics(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(150, 6))
    Y = (X[:, :3] + 0.3 * rng.normal(size=(150, 3)) > 0).astype(int)
    lines = [
        "@relation toy",
        *[f"@attribute f{j} numeric" for j in range(6)],
        *[f"@attribute L{j} {{0,1}}" for j in range(3)],
        "@data",
    ]
    lines += [",".join([*(f"{v:.4f}" for v in X[i]), *(str(v) for v in Y[i])]) for i in range(150)]
    path = tmp_path / "toy.arff"
    path.write_text("\n".join(lines) + "\n")
    res = Experiment(
        data={"path": [str(path)], "task": "multilabel", "target_columns": ["L0", "L1", "L2"]},
        model={"name": "mlp", "hidden_sizes": [16]},
        train={"max_epochs": 10, **QUIET},
        evaluate={"baselines": ["linear"], **NO_EXTRAS},
    ).fit(tmp_path / "run")
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    for part in ("train", "val", "test"):
        assert {"hamming_loss", "ranking_loss", "average_precision", "micro_f1", "auroc"} <= set(metrics[part])
    assert res.metrics["test"]["hamming_loss"] < 0.45
