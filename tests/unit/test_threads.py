"""``train.threads``: PyTorch's CPU thread count during a run, restored afterwards."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lightning as L
import pandas as pd
import pytest
import torch

from biodl import Experiment
from biodl.cli.main import _train_config, build_parser
from biodl.errors import ConfigError
from biodl.training.threads import torch_threads


class _SeenThreads(L.Callback):
    def __init__(self) -> None:
        self.seen: list[int] = []

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.seen.append(torch.get_num_threads())


def test_context_sets_and_restores() -> None:
    before = torch.get_num_threads()
    target = 1 if before != 1 else 2
    with torch_threads(target):
        assert torch.get_num_threads() == target
    assert torch.get_num_threads() == before
    with torch_threads(None):
        assert torch.get_num_threads() == before
    with pytest.raises(RuntimeError), torch_threads(target):
        raise RuntimeError("boom")
    assert torch.get_num_threads() == before


def test_run_trains_on_the_configured_threads(small_csv: Path, tmp_path: Path) -> None:
    before = torch.get_num_threads()
    target = 1 if before != 1 else 2
    seen = _SeenThreads()
    genes = [c for c in pd.read_csv(small_csv, nrows=1).columns if c.startswith("g_")]
    exp = Experiment(
        data={"path": [str(small_csv)], "task": "classification", "target_columns": ["bulk_labels"], "feature_columns": genes},
        model={"name": "mlp", "hidden_sizes": [16]},
        train={"max_epochs": 2, "progress_bar": False, "threads": target},
        evaluate={"baselines": [], "report": False, "plots": False},
    )
    exp.fit(tmp_path / "run", callbacks=[seen])
    assert seen.seen and set(seen.seen) == {target}
    assert torch.get_num_threads() == before


def test_flag_and_validation() -> None:
    args: Any = build_parser().parse_args(["train", "--data-path", "x.csv", "--threads", "1", "--output-dir", "o"])
    assert _train_config(args).train.threads == 1
    with pytest.raises(ConfigError, match="threads"):
        Experiment(train={"threads": 0})
