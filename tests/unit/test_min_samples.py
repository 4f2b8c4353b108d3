"""``train.min_samples``: small training sets train for more epochs (epochs sized by samples seen)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from biodl.config import ExperimentConfig, TrainConfig
from biodl.training.fit import sized_epochs, train_model
from conftest import pbmc_cells


def _loader(n: int) -> DataLoader:
    return DataLoader(TensorDataset(torch.zeros(n, 2)), batch_size=8)


def test_epochs_are_raised_to_the_samples_asked_for_never_lowered() -> None:
    cfg = TrainConfig(max_epochs=40, min_samples=80_000)
    assert sized_epochs(cfg, _loader(677)).max_epochs == 119  # ceil(80,000 / 677)
    assert sized_epochs(cfg, _loader(4_694)).max_epochs == 40  # 18 would be fewer: max_epochs stands
    assert sized_epochs(TrainConfig(max_epochs=40), _loader(10)).max_epochs == 40  # off by default
    assert cfg.max_epochs == 40  # a copy, the run's config is not changed


def test_a_fit_trains_the_sized_epochs_and_the_cosine_schedule_counts_to_them(tmp_path: Path) -> None:
    X, cells = pbmc_cells(n=200, genes=20)
    y = (cells == cells[0]).astype(np.float32)[:, None]
    torch.manual_seed(0)
    cfg = TrainConfig(
        max_epochs=2, min_samples=500, batch_size=50, lr=1e-2, lr_schedule="cosine", lr_min_factor=0.1,
        early_stopping=False, progress_bar=False, seed=0,
    )  # fmt: skip
    res = train_model(nn.Linear(20, 1), "binary", cfg, (X[:100], y[:100]), (X[100:], y[100:]), run_dir=tmp_path)
    assert res.epochs == 5 and len(res.history["train_loss"]) == 5  # ceil(500 / 100 rows)
    assert res.history["lr"][0] == pytest.approx(1e-2) and res.history["lr"][-1] == pytest.approx(1e-3)


def _resolved(*, model: str, **train: object) -> TrainConfig:
    data = {"type": "molecule", "path": ["x.csv"], "task": "regression"}
    return ExperimentConfig.from_dict({"data": data, "model": {"name": model}, "train": dict(train)}).train


def test_chemception_recommends_samples_unless_the_user_chose_the_epochs() -> None:
    pytest.importorskip("rdkit")
    plain = _resolved(model="chemception")
    assert plain.min_samples is not None and plain.lr_schedule == "cosine" and not plain.early_stopping
    assert _resolved(model="chemception", max_epochs=15).min_samples is None  # the user's epoch count stands
    both = _resolved(model="chemception", max_epochs=15, min_samples=1_000)
    assert (both.max_epochs, both.min_samples) == (15, 1_000)


def test_ensemble_members_share_the_sized_epochs_said_once(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from biodl.training.ensemble import train_ensemble

    X, cells = pbmc_cells(n=200, genes=20)
    y = (cells == cells[0]).astype(np.float32)[:, None]
    cfg = ExperimentConfig.from_dict({
        "data": {"type": "tabular", "path": ["x.csv"], "task": "classification"},
        "model": {"name": "mlp", "hidden_sizes": [8]},
        "train": {"max_epochs": 2, "min_samples": 500, "batch_size": 50, "ensemble_size": 3, "early_stopping": False,
                  "progress_bar": False, "seed": 0},
    })  # fmt: skip
    res = train_ensemble(cfg, (20,), 1, "binary", (X[:100], y[:100]), (X[100:], y[100:]), run_dir=tmp_path)
    assert res.epochs == 5 and len(res.model.members) == 3  # type: ignore[arg-type]
    import pandas as pd

    for k in range(3):  # every member trained the 5 sized epochs (ceil(500 / 100 rows)), not 2
        (log,) = (tmp_path / f"member_{k}" / "logs").rglob("metrics.csv")
        assert pd.read_csv(log)["epoch"].nunique() == 5
    assert capsys.readouterr().out.count("train.min_samples: 5 epochs") == 1
