"""The pruning callback: rank 0 reports, every rank follows the broadcast decision."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import optuna
import pytest
import torch

from biodl.config import ExperimentConfig
from biodl.errors import ConfigError
from biodl.tune.pruning import PRUNED_ATTR, PRUNERS, PrunerContext, PruningCallback, make_pruner
from biodl.tune.spec import TuneConfig
from biodl.tune.study import _check_launch


@dataclass
class FakeStrategy:
    """Stands in for a DDP strategy: ``broadcast`` returns rank 0's object."""

    rank0_value: bool | None = None
    calls: list[Any] = field(default_factory=list)

    def broadcast(self, obj: Any, src: int = 0) -> Any:
        self.calls.append(obj)
        return obj if self.rank0_value is None else self.rank0_value


@dataclass
class FakeTrainer:
    is_global_zero: bool
    strategy: FakeStrategy
    current_epoch: int = 0
    callback_metrics: dict[str, torch.Tensor] = field(default_factory=dict)
    sanity_checking: bool = False
    should_stop: bool = False


def _study_with_good_reference() -> optuna.Study:
    """A minimising study whose one complete trial reported 0.0 at every epoch (so any loss > 0 is pruned)."""
    study = optuna.create_study(direction="minimize", pruner=optuna.pruners.MedianPruner(n_startup_trials=1, n_warmup_steps=0))
    study.add_trial(optuna.trial.create_trial(value=0.0, intermediate_values={e: 0.0 for e in range(10)}))
    return study


def test_rank0_reports_and_stops_all_ranks() -> None:
    study = _study_with_good_reference()
    trial = study.ask()
    cb = PruningCallback(trial, "val_loss")
    trainer = FakeTrainer(True, FakeStrategy(), callback_metrics={"val_loss": torch.tensor(0.7)})
    cb.on_validation_end(trainer, None)  # type: ignore[arg-type]
    assert trainer.should_stop and cb.pruned == 0 and cb.reported == 1
    assert trainer.strategy.calls == [True]
    frozen = study.get_trials()[-1]
    assert frozen.intermediate_values == {0: pytest.approx(0.7)} and frozen.user_attrs[PRUNED_ATTR] == 0


def test_other_ranks_never_report_but_follow_rank0() -> None:
    study = _study_with_good_reference()
    trial = study.ask()
    cb = PruningCallback(trial, "val_loss")
    follower = FakeTrainer(False, FakeStrategy(rank0_value=True), callback_metrics={"val_loss": torch.tensor(0.7)})
    cb.on_validation_end(follower, None)  # type: ignore[arg-type]
    assert follower.should_stop and cb.pruned == 0 and cb.reported == 0
    assert follower.strategy.calls == [False]  # its own (unused) vote
    assert study.get_trials()[-1].intermediate_values == {}
    keep = FakeTrainer(False, FakeStrategy(rank0_value=False), callback_metrics={"val_loss": torch.tensor(0.7)})
    cb2 = PruningCallback(study.ask(), "val_loss")
    cb2.on_validation_end(keep, None)  # type: ignore[arg-type]
    assert not keep.should_stop and cb2.pruned is None


def test_good_trial_and_missing_metric_are_not_pruned() -> None:
    study = _study_with_good_reference()
    cb = PruningCallback(study.ask(), "val_loss")
    trainer = FakeTrainer(True, FakeStrategy(), callback_metrics={"val_loss": torch.tensor(0.0)})
    cb.on_validation_end(trainer, None)  # type: ignore[arg-type]
    assert not trainer.should_stop and cb.pruned is None
    silent = FakeTrainer(True, FakeStrategy(), callback_metrics={})
    cb.on_validation_end(silent, None)  # type: ignore[arg-type]
    assert not silent.should_stop and cb.reported == 1


def test_pruner_registry() -> None:
    tune = TuneConfig(startup_trials=2, warmup_epochs=3)
    assert set(PRUNERS.names()) == {"none", "median", "successive_halving", "hyperband"}
    median = make_pruner("median", PrunerContext(tune, 10))
    assert isinstance(median, optuna.pruners.MedianPruner)
    assert isinstance(make_pruner("successive-halving", PrunerContext(tune, 10)), optuna.pruners.SuccessiveHalvingPruner)
    assert isinstance(make_pruner("hyperband", PrunerContext(tune, 10)), optuna.pruners.HyperbandPruner)
    assert isinstance(make_pruner("none", PrunerContext(tune, 10)), optuna.pruners.NopPruner)


def test_launches_that_would_run_one_study_loop_per_rank_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("RANK", "LOCAL_RANK", "SLURM_PROCID"):
        monkeypatch.delenv(name, raising=False)
    _check_launch(ExperimentConfig.from_dict({"train": {"strategy": "ddp_spawn", "devices": 2}}))
    _check_launch(ExperimentConfig.from_dict({"train": {"strategy": "ddp", "devices": 1}}))
    with pytest.raises(ConfigError, match="use --strategy ddp_spawn"):
        _check_launch(ExperimentConfig.from_dict({"train": {"strategy": "ddp", "devices": 2}}))
    monkeypatch.setenv("LOCAL_RANK", "1")
    with pytest.raises(ConfigError, match="start workers"):
        _check_launch(ExperimentConfig.from_dict({}))
