"""Pruning: the ``PRUNERS`` registry and the Lightning callback that feeds it.

:class:`PruningCallback` reports the monitored validation value to the Optuna trial after every
validation epoch **from global rank 0 only** (the other ranks of a DDP run hold no trial
connection of their own), asks the pruner, broadcasts the decision to every rank and stops all of
them together through ``trainer.should_stop``. It never raises inside Lightning (an exception on
one rank would leave the others hanging in a collective); the objective raises
:class:`optuna.TrialPruned` after ``fit`` returns, from :attr:`PruningCallback.pruned` or, when
the training ran in spawned processes, from the trial's ``pruned_at_epoch`` user attribute that
rank 0 wrote to the storage.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import lightning as L
import optuna
from optuna.pruners import BasePruner, HyperbandPruner, MedianPruner, NopPruner, SuccessiveHalvingPruner
from optuna.trial import TrialState

from biodl.config_tune import TuneConfig
from biodl.registry import Registry

__all__ = ["PRUNED_ATTR", "PRUNERS", "PrunerContext", "PruningCallback", "make_pruner", "pruned_in_storage"]

#: Trial user attribute holding the epoch at which a trial was pruned.
PRUNED_ATTR = "pruned_at_epoch"


@dataclass(frozen=True)
class PrunerContext:
    """What a pruner factory gets: the tune settings and the epoch budget of a trial."""

    tune: TuneConfig
    max_epochs: int


PrunerFactory = Callable[[PrunerContext], BasePruner]

#: Registered pruners (``none``, ``median``, ``successive_halving``, ``hyperband``); CLI names
#: may use dashes (``successive-halving``).
PRUNERS: Registry[PrunerFactory] = Registry("pruner")


@PRUNERS.register("none")
def _none(ctx: PrunerContext) -> BasePruner:
    return NopPruner()


@PRUNERS.register("median")
def _median(ctx: PrunerContext) -> BasePruner:
    return MedianPruner(n_startup_trials=ctx.tune.startup_trials, n_warmup_steps=ctx.tune.warmup_epochs)


@PRUNERS.register("successive_halving")
def _successive_halving(ctx: PrunerContext) -> BasePruner:
    return SuccessiveHalvingPruner(min_resource=ctx.tune.min_epochs, reduction_factor=ctx.tune.reduction_factor)


@PRUNERS.register("hyperband")
def _hyperband(ctx: PrunerContext) -> BasePruner:
    return HyperbandPruner(
        min_resource=ctx.tune.min_epochs,
        max_resource=max(ctx.max_epochs, ctx.tune.min_epochs),
        reduction_factor=ctx.tune.reduction_factor,
    )


def make_pruner(name: str, ctx: PrunerContext) -> BasePruner:
    """Build the registered pruner ``name`` (``ConfigError`` with a suggestion if unknown)."""
    return PRUNERS[name](ctx)


class PruningCallback(L.Callback):
    """Report ``monitor`` to ``trial`` each validation epoch; stop training when it is pruned.

    Parameters
    ----------
    trial
        The running Optuna trial (used on global rank 0 only).
    monitor
        Logged metric to report, e.g. ``val_auroc`` or ``val_loss``.

    Attributes
    ----------
    pruned
        Epoch (0-based) after which training was stopped, or ``None``.
    reported
        Number of values reported (rank 0).
    """

    def __init__(self, trial: optuna.Trial, monitor: str) -> None:
        self.trial = trial
        self.monitor = monitor
        self.pruned: int | None = None
        self.reported = 0

    def _decide(self, trainer: L.Trainer) -> bool:
        """Rank 0: report the value and ask the pruner."""
        value = trainer.callback_metrics.get(self.monitor)
        if value is None:
            return False
        number = float(value)
        self.trial.report(number if math.isfinite(number) else math.nan, step=trainer.current_epoch)
        self.reported += 1
        return bool(self.trial.should_prune())

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.sanity_checking or self.pruned is not None:
            return
        prune = self._decide(trainer) if trainer.is_global_zero else False
        prune = bool(trainer.strategy.broadcast(prune, src=0))
        if not prune:
            return
        self.pruned = trainer.current_epoch
        if trainer.is_global_zero:
            self.trial.set_user_attr(PRUNED_ATTR, trainer.current_epoch)
        trainer.should_stop = True


def pruned_in_storage(trial: optuna.Trial) -> bool:
    """Whether rank 0 of a (spawned) training marked ``trial`` as pruned in the storage."""
    for frozen in trial.study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        if frozen.number == trial.number:
            return PRUNED_ATTR in frozen.user_attrs
    return False
