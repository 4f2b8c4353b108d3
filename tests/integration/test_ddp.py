"""Two CPU processes (gloo) train one model end to end through Lightning's DDP."""

from __future__ import annotations

import csv
import json
import math
import subprocess
import sys
from pathlib import Path

from conftest import PBMC

BIODL = str(Path(sys.executable).parent / "biodl")


def test_ddp_two_cpu_processes(tmp_path: Path) -> None:
    out = tmp_path / "ddp"
    args = [
        BIODL, "train", "--data-path", str(PBMC), "--task", "classification", "--target-columns", "bulk_labels", "--model", "mlp",
        "--output-dir", str(out), "--max-epochs", "3", "--devices", "2", "--strategy", "ddp", "--accelerator", "cpu",
        "--set", "train.progress_bar=false", "--set", "evaluate.baselines=[linear]", "--set", "train.early_stopping=false",
    ]  # fmt: skip
    res = subprocess.run(args, capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr[-3000:]
    # one writer: a single results contract, as for one process
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["test"]["accuracy"] > 0.2 and metrics["training"]["epochs"] == 3
    assert res.stdout.count("run directory:") == 1
    # each rank saw half of the training rows per epoch: half the optimiser steps of one process
    n_train = metrics["train"]["n"]
    with open(out / "logs" / "metrics.csv") as fh:
        steps = max(int(row["step"]) for row in csv.DictReader(fh))
    assert steps + 1 == 3 * math.ceil(math.ceil(n_train / 2) / 128)
    # the validation metric is aggregated over both ranks' shards
    history = json.loads((out / "history.json").read_text())
    assert len(history["val_accuracy"]) == 3
