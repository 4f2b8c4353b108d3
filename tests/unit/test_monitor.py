"""``train.monitor``: early stopping and the kept weights follow the validation loss or the task's metric."""

from __future__ import annotations

from pathlib import Path

import lightning as L
import numpy as np
import pytest
import torch
from torch import nn

from biodl.config import TrainConfig
from biodl.errors import ConfigError
from biodl.training.fit import FitResult, train_model
from biodl.training.monitor import selection_monitor
from conftest import pbmc_cells

EPOCHS = 12


@pytest.fixture(scope="module")
def pbmc_binary() -> tuple[np.ndarray, np.ndarray]:
    """600 real PBMC cells, 100 genes; three one-against-the-rest tasks ``(N, 3)`` of 0/1: the 4th-6th commonest types."""
    X, cells = pbmc_cells()
    kinds = [k for k, _ in sorted(((k, (cells == k).sum()) for k in set(cells)), key=lambda kv: (-kv[1], kv[0]))[3:6]]
    return X, np.stack([(cells == k).astype(np.float32) for k in kinds], axis=1)


def test_auto_follows_auroc_for_several_binary_tasks_and_the_loss_otherwise(
    pbmc_binary: tuple[np.ndarray, np.ndarray],
) -> None:
    y = pbmc_binary[1]
    assert selection_monitor("auto", "binary", y, has_val=True).name == "val_auroc"
    assert selection_monitor("auto", "binary", y, has_val=True).mode == "max"
    assert selection_monitor("auto", "binary", y[:, :1], has_val=True).name == "val_loss"  # one task: the loss
    assert selection_monitor("auto", "binary", y[:, 0], has_val=True).name == "val_loss"
    assert selection_monitor("metric", "binary", y[:, :1], has_val=True).name == "val_auroc"
    assert selection_monitor("auto", "regression", y, has_val=True).name == "val_loss"
    assert selection_monitor("auto", "multiclass", y[:, 0].astype(int), has_val=True).name == "val_loss"
    assert selection_monitor("loss", "binary", y, has_val=True).name == "val_loss"
    rmse = selection_monitor("metric", "regression", y, has_val=True)
    assert (rmse.name, rmse.mode) == ("val_rmse", "min")  # lower is better
    assert selection_monitor("metric", "binary", y, has_val=False).name == "train_loss"  # nothing to validate on


@pytest.mark.parametrize("setting", ["metric", "auto"])
def test_a_metric_that_cannot_be_scored_falls_back_to_the_loss_with_a_note(setting: str) -> None:
    one_class = np.zeros((20, 2), dtype=np.float32)
    m = selection_monitor(setting, "binary", one_class, has_val=True)
    assert m.name == "val_loss" and m.note is not None and "auroc" in m.note
    streamed = selection_monitor(setting, "binary", None, has_val=True)  # the labels are not in memory
    assert streamed.name == "val_loss"
    if setting == "metric":  # asked for explicitly: say why not
        assert streamed.note is not None and "streamed" in streamed.note


def test_an_unknown_setting_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="monitor"):
        from biodl.config import ExperimentConfig

        ExperimentConfig.from_dict({"data": {"type": "tabular", "path": ["x.csv"]}, "train": {"monitor": "accuracy"}})


class EpochWeights(L.Callback):
    """Keeps each epoch's end weights."""

    def __init__(self) -> None:
        self.weights: list[dict[str, torch.Tensor]] = []

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.weights.append({k: t.detach().clone() for k, t in pl_module.model.state_dict().items()})


def _fit(data: tuple[np.ndarray, np.ndarray], monitor: str, run_dir: Path) -> tuple[FitResult, nn.Module, EpochWeights]:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(100, 256), nn.ReLU(), nn.Linear(256, 3))
    X, y = data
    cfg = TrainConfig(
        max_epochs=EPOCHS, batch_size=32, lr=1e-2, progress_bar=False, early_stopping=False, seed=0, monitor=monitor
    )
    keep = EpochWeights()
    res = train_model(model, "binary", cfg, (X[:100], y[:100]), (X[300:], y[300:]), run_dir=run_dir, extra_callbacks=[keep])
    return res, model, keep


def test_the_kept_weights_are_the_best_validation_auroc_not_the_lowest_loss(
    pbmc_binary: tuple[np.ndarray, np.ndarray], tmp_path: Path
) -> None:
    """On 100 training cells the validation loss turns up (over-confidence) before the ranking stops improving:
    ``monitor: loss`` keeps the lowest-loss epoch, ``metric`` the highest-AUROC epoch, and the restored network
    is that epoch's."""
    by_loss, _, _ = _fit(pbmc_binary, "loss", tmp_path / "loss")
    by_auc, model, keep = _fit(pbmc_binary, "metric", tmp_path / "metric")
    loss, auc = np.asarray(by_auc.history["val_loss"]), np.asarray(by_auc.history["val_auroc"])
    assert (by_loss.monitor, by_auc.monitor) == ("val_loss", "val_auroc")  # recorded: metrics.json best_epoch_by
    assert by_loss.best_epoch == int(np.argmin(by_loss.history["val_loss"]))
    assert by_auc.best_epoch == int(np.argmax(auc))
    assert int(np.argmax(auc)) != int(np.argmin(loss))  # the two rules pick different epochs here
    assert auc[by_auc.best_epoch] > auc[int(np.argmin(loss))]
    for name, t in model.state_dict().items():
        torch.testing.assert_close(t, keep.weights[by_auc.best_epoch][name], msg=f"{name}: not the best-AUROC epoch")


def test_the_molecule_candidates_follow_auto_unless_the_user_chose() -> None:
    """Both molecule candidates resolve to ``train.monitor: auto``; a ``train.monitor`` the user set wins."""
    pytest.importorskip("rdkit")
    from biodl.config import ExperimentConfig
    from biodl.data.molecule.modality import MoleculeModality
    from biodl.experiment.portfolio import candidate_config

    def run_cfg(**train: object) -> ExperimentConfig:
        data = {"type": "molecule", "path": ["x.csv"], "task": "classification"}
        return ExperimentConfig.from_dict({"data": data, "model": {"name": "auto"}, "train": dict(train)})

    plain, chosen = run_cfg(), run_cfg(monitor="loss")
    assert [candidate_config(plain, c).train.monitor for c in MoleculeModality.portfolio] == ["auto", "auto"]
    assert [candidate_config(chosen, c).train.monitor for c in MoleculeModality.portfolio] == ["loss", "loss"]
    assert candidate_config(plain, MoleculeModality.portfolio[0]).train.ensemble_size == 5
    assert TrainConfig().monitor == "loss"  # other data types keep the loss unless asked
