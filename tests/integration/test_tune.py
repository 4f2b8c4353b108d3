"""`biodl tune` end to end on real data: two workers on one study, pruning, outputs, bad input."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import optuna
import pandas as pd
import pytest
import yaml
from optuna.trial import TrialState

from biodl.cli.main import main
from biodl.config import ExperimentConfig
from biodl.tune.study import run_study

BIODL = str(Path(sys.executable).parent / "biodl")


def _genes(small_csv: Path, n: int = 10) -> list[str]:
    return [c for c in pd.read_csv(small_csv, nrows=1).columns if c.startswith("g_")][:n]


def _tune_args(small_csv: Path, out: Path, *extra: str) -> list[str]:
    return [
        "tune", "--data-path", str(small_csv), "--task", "classification", "--target-columns", "is_mono", "--model", "mlp",
        "--feature-columns", *_genes(small_csv), "--output-dir", str(out), "--max-epochs", "2",
        "--set", "train.progress_bar=false", "--set", "evaluate.baselines=[]", *extra,
    ]  # fmt: skip


def test_two_workers_record_every_trial_once(small_csv: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "tune"
    quiet = ["--set", "evaluate.plots=false", "--set", "evaluate.report=false"]
    args = _tune_args(
        small_csv, out, "--n-trials", "2", "--sampler", "random", "--pruner", "none", "--study-name", "shared", *quiet
    )
    workers = [subprocess.Popen([BIODL, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    for w in workers:
        stdout, stderr = w.communicate(timeout=300)
        assert w.returncode == 0, stderr[-3000:] + stdout[-2000:]

    study = optuna.load_study(study_name="shared", storage=f"sqlite:///{out / 'study.db'}")
    numbers = [t.number for t in study.get_trials()]
    assert sorted(numbers) == [0, 1, 2, 3]  # 2 workers x 2 trials, none lost, none twice
    assert all(t.state == TrialState.COMPLETE for t in study.get_trials())
    for t in study.get_trials():
        cfg = yaml.safe_load((out / "trials" / f"trial_{t.number:04d}" / "config.yaml").read_text())
        assert cfg["train"]["seed"] == t.number and cfg["data"]["split_seed"] == 0
        assert cfg["train"]["lr"] == pytest.approx(t.params["train.lr"])
        # a trial is a measurement: its model is not trained again on the test rows (train.refit)
        assert cfg["train"]["refit"] == "never" and not (out / "trials" / f"trial_{t.number:04d}" / "model_heldout").exists()
        # nor trained further: a finished trial keeps no checkpoint (train.keep_checkpoints: none unless set)
        assert cfg["train"]["keep_checkpoints"] == "none"
        assert not list((out / "trials" / f"trial_{t.number:04d}").rglob("*.ckpt"))

    # re-export from the shared study, with figures and the report this time
    assert main(_tune_args(small_csv, out, "--n-trials", "0", "--sampler", "random", "--study-name", "shared")) == 0
    table = pd.read_csv(out / "trials.csv")
    assert sorted(table["number"]) == [0, 1, 2, 3] and set(table["state"]) == {"COMPLETE"}
    assert {"val_auroc", "train.lr", "train.batch_size", "model.dropout", "model.hidden_sizes", "seed", "dir"} <= set(
        table.columns
    )
    report = (out / "tune_report.html").read_text()
    for text in ("Optimisation history", "Hyper-parameter importances", "Best hyper-parameters", "data:image/png;base64"):
        assert text in report
    assert (out / "figures" / "param_importances.png").stat().st_size > 0

    # the best config re-runs with `biodl train --config` and reproduces the best trial
    best = out / "best_config.yaml"
    assert f"Best trial {study.best_trial.number}" in best.read_text()
    capsys.readouterr()
    assert main(["train", "--config", str(best), "--output-dir", str(tmp_path / "best")]) == 0
    metrics = json.loads((tmp_path / "best" / "metrics.json").read_text())
    assert metrics["val"]["auroc"] == pytest.approx(study.best_value, abs=1e-6)


def test_pruning_stops_a_bad_trial_early(small_csv: Path, tmp_path: Path) -> None:
    """A median pruner with one finished reference trial (val_loss 0 at every epoch) prunes a real trial after epoch 1."""
    out = tmp_path / "tune"
    out.mkdir()
    ref = optuna.create_study(storage=f"sqlite:///{out / 'study.db'}", study_name="biodl", direction="minimize")
    ref.add_trial(optuna.trial.create_trial(value=0.0, intermediate_values={e: 0.0 for e in range(6)}))
    cfg = ExperimentConfig.from_dict(
        {
            "data": {
                "path": [str(small_csv)],
                "task": "classification",
                "target_columns": ["is_mono"],
                "feature_columns": _genes(small_csv),
            },
            "model": {"name": "mlp"},
            "train": {"max_epochs": 6, "early_stopping": False, "progress_bar": False},
            "evaluate": {"baselines": [], "plots": False, "report": False},
            "tune": {
                "n_trials": 1,
                "sampler": "random",
                "pruner": "median",
                "startup_trials": 1,
                "warmup_epochs": 0,
                "metric": "loss",
                "space": {"train.lr": {"type": "float", "low": 1e-6, "high": 2e-6, "log": True}},  # deliberately bad
            },
        }
    )
    result = run_study(cfg, out)
    trial = result.study.get_trials()[1]
    assert trial.state == TrialState.PRUNED
    assert trial.user_attrs["pruned_at_epoch"] == 0 and trial.user_attrs["epochs"] == 1 < cfg.train.max_epochs
    history = json.loads((out / "trials" / "trial_0001" / "history.json").read_text())
    assert len(history["epoch"]) == 1
    assert list(pd.read_csv(out / "trials.csv")["state"]) == ["COMPLETE", "PRUNED"]


def test_bad_input_gives_one_line_errors(small_csv: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "tune"
    assert main(_tune_args(small_csv, out, "--storage", "sqlite:////nonexistent_dir_biodl/study.db")) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: cannot open study storage sqlite:////nonexistent_dir_biodl/study.db") and "\n" not in err
    assert "Traceback" not in err

    bad_key = tmp_path / "bad_key.yaml"
    bad_key.write_text("train.lrr: {type: float, low: 1.0e-4, high: 1.0e-1, log: true}\n")
    assert main(_tune_args(small_csv, out, "--search-space", str(bad_key))) == 2
    err = capsys.readouterr().err.strip()
    assert "unknown key 'train.lrr' (did you mean 'train.lr'?)" in err and "\n" not in err

    malformed = tmp_path / "malformed.yaml"
    malformed.write_text("space:\n  train.lr: {type: float, low: 1.0e-4}\n  model.dropout: {type: uniform}\n")
    assert main(_tune_args(small_csv, out, "--search-space", str(malformed))) == 2
    err = capsys.readouterr().err.strip()
    assert "train.lr.high: Field required" in err and "unknown type 'uniform'" in err
    assert not (out / "trials").exists()
