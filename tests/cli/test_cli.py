"""The console script end to end, and its one-line errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from conftest import PBMC, run_biodl

BIODL = str(Path(sys.executable).parent / "biodl")


def console(*args: str, timeout: int = 300) -> subprocess.CompletedProcess[str]:
    """The installed console script in a subprocess (the one real end-to-end round trip)."""
    return subprocess.run([BIODL, *args], capture_output=True, text=True, timeout=timeout)


def test_train_predict_evaluate(small_csv: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    genes = [c for c in pd.read_csv(small_csv, nrows=1).columns if c.startswith("g_")][:30]
    res = console(
        "train",
        "--data-path",
        str(small_csv),
        "--task",
        "classification",
        "--target-columns",
        "is_mono",
        "--feature-columns",
        *genes,
        "--id-column",
        "cell",
        "--output-dir",
        str(out),
        "--max-epochs",
        "5",
        "--split-sizes",
        "0.8",
        "0.1",
        "0.1",
        "--seed",
        "3",
        "--set",
        "train.progress_bar=false",
    )
    assert res.returncode == 0, res.stderr[-3000:]
    assert "report:" in res.stdout and "baseline test" in res.stdout
    cfg = (out / "config.yaml").read_text()
    assert "seed: 3" in cfg and "- 0.8" in cfg
    pred = tmp_path / "pred.parquet"
    res = console("predict", "--model-path", str(out), "--data-path", str(small_csv), "--output", str(pred))
    assert res.returncode == 0, res.stderr[-3000:]
    frame = pd.read_parquet(pred)
    assert list(frame.columns) == ["id", "prob_1", "predicted"] and len(frame) == 700
    assert frame["id"].iloc[0] == pd.read_csv(small_csv)["cell"].iloc[0]
    ev = tmp_path / "ev.json"
    res = console("evaluate", "--model-path", str(out), "--data-path", str(small_csv), "--output", str(ev))
    assert res.returncode == 0, res.stderr[-3000:]
    doc = json.loads(ev.read_text())
    labels = pd.read_csv(small_csv)["is_mono"].astype(int).astype(str)
    assert doc["metrics"]["accuracy"] == pytest.approx(float((frame["predicted"] == labels).mean()))
    assert doc["metrics"]["n"] == 700


def test_print_config_resolves_everything(tmp_path: Path) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text("train:\n  lr: 0.05\n  optimizer: sgd\n")
    res = run_biodl("train", "--config", str(cfg), "--max-epochs", "7", "--set", "model.dropout=0.25", "--print-config")
    assert res.returncode == 0, res.stderr
    assert "lr: 0.05" in res.stdout and "max_epochs: 7" in res.stdout and "dropout: 0.25" in res.stdout
    assert "batch_size: 128" in res.stdout and "momentum: 0.9" in res.stdout


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (
            ["train", "--data-path", "missing.csv", "--task", "regression", "--target-columns", "y", "--output-dir", "o"],
            "error: data file not found: missing.csv",
        ),
        (
            ["train", "--data-path", str(PBMC), "--task", "regression", "--target-columns", "nope", "--output-dir", "o"],
            "target column 'nope' not found",
        ),
        (
            ["train", "--data-path", str(PBMC), "--task", "regression", "--target-columns", "bulk_labels", "--output-dir", "o"],
            "target column 'bulk_labels' must be numeric; row 1 has",
        ),
        (["train", "--model", "resnet9000", "--print-config"], "unknown model 'resnet9000'"),
        (["train", "--set", "train.lr=-0.1", "--print-config"], "train.lr: learning rate must be > 0"),
        (["train", "--set", "train.lrr=0.1", "--print-config"], "did you mean 'train.lr'"),
        (["train", "--split-sizes", "0.6", "0.1", "0.1", "--print-config"], "split sizes must sum to 1"),
        (["predict", "--model-path", "nowhere", "--data-path", str(PBMC), "--output", "p.csv"], "model path not found"),
    ],
)
def test_user_errors_are_one_line(args: list[str], expected: str, tmp_path: Path) -> None:
    res = run_biodl(*args, cwd=tmp_path)
    assert res.returncode == 2, res.stderr
    lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), res.stderr
    assert expected in lines[0]
    assert "Traceback" not in res.stderr


def test_empty_split_and_debug_traceback(tmp_path: Path) -> None:
    tiny = tmp_path / "tiny.csv"
    tiny.write_text("a,y\n1,0\n2,1\n")
    args = [
        "train",
        "--data-path",
        str(tiny),
        "--task",
        "regression",
        "--target-columns",
        "y",
        "--output-dir",
        str(tmp_path / "o"),
    ]
    res = run_biodl(*args)
    assert res.returncode == 2 and "too few" in res.stderr
    res = run_biodl("--debug", *args)
    assert res.returncode != 0 and "Traceback" in res.stderr
