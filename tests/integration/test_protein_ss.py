"""Per-position training on 200 real NetSurfP-2.0 chains (tiny network, one epoch): splits, masking, metrics, bundle."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from biodl import load
from biodl.experiment import Experiment
from biodl.metrics.positions import positions_metrics
from conftest import shared_path


@pytest.fixture(scope="module")
def subset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = pd.read_csv(shared_path("protein", "secondary_structure_netsurfp", "train.tsv"), sep="\t", dtype={"resolved": str})
    sub = pd.concat([d[~d.validation].iloc[:160], d[d.validation].iloc[:40]])
    path = tmp_path_factory.mktemp("ss") / "chains.tsv"
    sub.to_csv(path, sep="\t", index=False)
    return path


def test_train_on_real_chains(subset: Path, tmp_path: Path) -> None:
    exp = Experiment(
        data={"type": "sequence", "path": [str(subset)], "target_columns": ["sst3"], "per_position": True,
              "mask_column": "resolved", "val_column": "validation", "sequence": {"alphabet": "protein", "column": "seq"}},
        model={"channels": 16, "blocks": 2},
        train={"max_epochs": 1, "progress_bar": False, "threads": 1},
        evaluate={"report": False, "plots": False},
    )  # fmt: skip
    assert exp.config.model.name == "dilated-cnn" and exp.config.data.task == "classification"
    assert (exp.config.train.batch_size, exp.config.train.lr) == (8, 2e-3)  # the per-position defaults
    res = exp.fit(tmp_path / "run")
    frame = pd.read_csv(subset, sep="\t", dtype={"resolved": str})
    val = frame[frame.validation].reset_index(drop=True)
    assert res.metrics["val"]["n"] == sum(r.count("1") for r in val.resolved)
    assert res.metrics["test"] == {}
    # the saved bundle predicts what the run scored, and Q3 is over resolved residues only
    bundle = load(tmp_path / "run")
    data = bundle.modality.load([str(subset)], require_targets=True, classes=bundle.classes)
    assert data.summary["positions left out by the mask (resolved = 0)"] == sum(r.count("0") for r in frame.resolved)
    rows = np.flatnonzero(frame.validation.to_numpy())
    probs = bundle.predict_arrays(bundle.modality.transform(data.X[rows]))
    again = positions_metrics(data.targets.y[rows], probs, class_names=bundle.classes)  # type: ignore[union-attr]
    assert again["accuracy"] == pytest.approx(res.metrics["val"]["accuracy"], abs=1e-6)
    assert again["sov"] == pytest.approx(res.metrics["val"]["sov"], abs=1e-6)
    hard = probs.argmax(1)
    manual = np.mean([
        hard[i, j] == "CEH".index(val.sst3[i][j])
        for i in range(len(val)) for j in range(len(val.seq[i])) if val.resolved[i][j] == "1"
    ])  # fmt: skip
    assert again["accuracy"] == pytest.approx(manual)
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["baseline"]["name"] == "window_logistic" and metrics["baseline"]["val"]["accuracy"] > 0.45
    # judged against the window baseline on validation Q3
    assert metrics["baseline_comparison"]["metric"] == "accuracy"
    assert metrics["baseline_margin"] == pytest.approx(metrics["val"]["accuracy"] - metrics["baseline"]["val"]["accuracy"])


def test_max_time_stops_after_the_epoch_in_which_it_is_spent(
    subset: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    exp = Experiment(
        data={"type": "sequence", "path": [str(subset)], "target_columns": ["sst3"], "per_position": True,
              "mask_column": "resolved", "val_column": "validation", "sequence": {"alphabet": "protein", "column": "seq"}},
        model={"channels": 8, "blocks": 1},
        train={"max_epochs": 5, "max_time": 1e-6, "label_smoothing": 0.1, "lr_schedule": "cosine", "progress_bar": False,
               "threads": 1},
        evaluate={"report": False, "plots": False, "baselines": []},
    )  # fmt: skip
    res = exp.fit(tmp_path / "run")
    assert len(res.history["val_loss"]) == 1  # the deadline had passed when the first epoch ended
    assert "training stopped by train.max_time (1e-06 s, cpu clock) after epoch 1" in capsys.readouterr().out
