"""Build a Lightning Trainer from the config and fit a model on arrays."""

from __future__ import annotations

import logging
import math
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
from lightning.fabric.utilities.exceptions import MisconfigurationException
from lightning.pytorch.callbacks import EarlyStopping
from lightning.pytorch.loggers import TensorBoardLogger
from torch import nn
from torch.utils.data import DataLoader

from biodl.config import TrainConfig
from biodl.data.base import BatchAugment, SampledAugment
from biodl.data.loader import ArrayDataset, _identity, dataset_loader, make_loader
from biodl.errors import BiodlError, ConfigError
from biodl.models.outputs import predict_outputs as predict_outputs  # re-exported (its former home)
from biodl.training.callbacks import (
    PREVIOUS_CHECKPOINT,
    AtomicCheckpointIO,
    BestWeights,
    Deadline,
    History,
    LastCheckpoint,
)
from biodl.training.clock import budget_clock
from biodl.training.csv_log import DamagedCheckpoint, ResumableCSVLogger, read_checkpoint_epoch
from biodl.training.module import BiodlModule
from biodl.training.monitor import selection_monitor

CHECKPOINT_DIR = "checkpoints"
#: Most mini-batches fetched together and stepped through in one Lightning step (see
#: :func:`batches_per_step`).
MAX_BATCHES_PER_STEP = 8
#: Input bytes one grouped fetch may hold.
GROUP_BYTES = 16 << 20


def is_rank_zero() -> bool:
    """True in the process that writes outputs (rank 0 of a distributed run, or a single process)."""
    from lightning.fabric.utilities.rank_zero import rank_zero_only

    return getattr(rank_zero_only, "rank", 0) == 0


LAST_CHECKPOINT = "last.ckpt"


@dataclass
class FitResult:
    """What training produced.

    Attributes
    ----------
    model
        The network with the best weights restored (eval mode); without validation rows, the
        last epoch's weights.
    history
        Per-epoch values: ``epoch``, ``train_loss``, ``val_loss``, ``train_<metric>``, ``lr``...
    best_epoch
        Epoch of the best monitored validation value (``train.monitor``: the lowest loss, or the best
        metric; without validation rows: the last epoch).
    epochs
        Number of epochs run.
    monitor
        The logged value that chose ``best_epoch`` (``train.monitor``): ``"val_loss"``, ``"val_auroc"``, ...
    max_epochs
        The epoch limit it trained under (``train.max_epochs``, raised by ``train.min_samples``).
    """

    model: nn.Module
    history: dict[str, list[float]]
    best_epoch: int
    epochs: int
    is_global_zero: bool = True
    monitor: str = "val_loss"
    max_epochs: int | None = None


def batches_per_step(dataset: ArrayDataset, batch_size: int, checkpoint_every: int | None = None) -> int:
    """How many mini-batches of in-memory arrays one Lightning step fetches and steps through.

    Lightning's loop costs ~0.6-1 ms per step in Python (hooks, fetcher, progress tracking), 7-10 %
    of a DeepBind-size step on a 2-core CPU. Fetching ``K`` consecutive mini-batches of the same
    shuffled order at once and taking ``K`` optimiser steps inside the Lightning step divides that
    cost by ``K`` and changes nothing else: the same batches in the same order, one optimiser step
    each (``global_step`` counts them). ``K`` is capped by :data:`MAX_BATCHES_PER_STEP` and by
    :data:`GROUP_BYTES` of input per fetch, and divides ``checkpoint_every`` so step-interval
    checkpoints still fire.
    """
    per_batch = max(1, int(dataset.X[:1].nbytes) * batch_size)
    k = max(1, min(MAX_BATCHES_PER_STEP, GROUP_BYTES // per_batch, -(-len(dataset) // batch_size)))
    if checkpoint_every:
        k = math.gcd(k, checkpoint_every)
    return k


def labels_complete(kind: str, y: np.ndarray) -> bool:
    """True if no entry of the targets ``y`` is missing (NaN, or -1 for class labels)."""
    if kind == "multiclass":
        return bool((np.asarray(y) >= 0).all())
    if kind in ("binary", "regression"):
        return not (np.issubdtype(y.dtype, np.floating) and bool(np.isnan(y).any()))
    return False


def _quiet_lightning() -> None:
    for name in ("lightning.pytorch", "lightning.fabric", "lightning"):
        logging.getLogger(name).setLevel(logging.WARNING)
    warnings.filterwarnings("ignore", message=".*does not have many workers.*")
    warnings.filterwarnings("ignore", message=".*LeafSpec.*")
    warnings.filterwarnings("ignore", message=".*`validation_step` but have no `val_dataloader`.*")
    warnings.filterwarnings("ignore", message=".*Checkpoint directory.*exists and is not empty.*")


def _progress_bar() -> L.Callback:
    from lightning.pytorch.callbacks import RichProgressBar

    class _Bar(RichProgressBar):
        """Lightning's rich bar, counting mini-batches when a step takes several (grouped fetches)."""

        def _grouping(self) -> tuple[int, int] | None:
            micro = getattr(self.trainer.lightning_module, "micro_batch", None)
            loader = self.trainer.train_dataloader
            if micro is None or not isinstance(loader, DataLoader) or not loader.batch_size:
                return None
            return max(1, loader.batch_size // micro), math.ceil(len(loader.sampler) / micro)  # type: ignore[arg-type]

        @property
        def total_train_batches(self) -> int | float:
            grouping = self._grouping()
            return super().total_train_batches if grouping is None else grouping[1]

        def on_train_batch_end(
            self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any, batch_idx: int
        ) -> None:
            grouping = self._grouping()
            if grouping is not None:
                batch_idx = min((batch_idx + 1) * grouping[0], grouping[1]) - 1
            super().on_train_batch_end(trainer, pl_module, outputs, batch, batch_idx)

        def get_metrics(self, trainer: L.Trainer, pl_module: L.LightningModule) -> dict[str, Any]:
            items = super().get_metrics(trainer, pl_module)
            items.pop("v_num", None)
            return items

    return _Bar(leave=False)


def _make_trainer(cfg: TrainConfig, callbacks: list[L.Callback], loggers: list[Any], run_dir: Path, streaming: bool) -> L.Trainer:
    return L.Trainer(
        max_epochs=cfg.max_epochs,
        accelerator=cfg.accelerator,
        devices=cfg.devices,
        strategy=cfg.strategy,
        num_nodes=cfg.num_nodes,
        precision=cfg.precision,  # type: ignore[arg-type]
        deterministic=cfg.deterministic,
        callbacks=callbacks,
        logger=loggers,
        enable_progress_bar=cfg.progress_bar,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        log_every_n_steps=1,
        default_root_dir=run_dir,
        plugins=[AtomicCheckpointIO()],
        # streamed stores shard their chunk-wise batches across ranks themselves
        use_distributed_sampler=not streaming,
    )


def train_model(
    model: nn.Module,
    kind: str,
    cfg: TrainConfig,
    train: tuple[np.ndarray, np.ndarray] | DataLoader[Any],
    val: tuple[np.ndarray, np.ndarray] | DataLoader[Any] | None,
    *,
    run_dir: Path,
    augment: BatchAugment | None = None,
    resume: bool = False,
    extra_callbacks: list[L.Callback] | None = None,
    group_batches: int | None = None,
    target_scale: tuple[np.ndarray, np.ndarray] | None = None,
    extra_loggers: list[Any] | None = None,
) -> FitResult:
    """Train ``model`` with early stopping, LR decay, checkpoints and logs under ``run_dir``.

    Parameters
    ----------
    train, val
        ``(X, y)`` arrays; ``val`` may be ``None`` or empty (then the training loss is monitored for
        early stopping and the network keeps its last epoch's weights).
    resume
        Continue from ``run_dir/checkpoints/last.ckpt`` if it exists.
    extra_callbacks
        More Lightning callbacks (pruning, timing, ...).
    extra_loggers
        More Lightning loggers (an MLflow or wandb run, :mod:`biodl.training.tracking`).
    group_batches
        Mini-batches of in-memory arrays per Lightning step (``None``: ``train.batches_per_step``,
        else :func:`batches_per_step`; ``1``: one per step). Any value trains on the same batches
        in the same order.
    target_scale
        Regression on standardised targets: their ``(mean, std)``, so the logged epoch metric
        (history, progress bar) is on the original scale.
    """
    _quiet_lightning()
    L.seed_everything(cfg.seed, workers=True, verbose=False)
    has_val = val is not None and (isinstance(val, DataLoader) or len(val[0]) > 0)
    monitor = "val_loss" if has_val else "train_loss"  # the plateau schedule's
    in_memory_val = val if has_val and val is not None and not isinstance(val, DataLoader) else None
    select = selection_monitor(
        cfg.monitor, kind, None if in_memory_val is None else in_memory_val[1], has_val=has_val
    )  # early stopping's and the kept weights'
    if select.note:
        print(select.note)
    streaming = isinstance(train, DataLoader)
    group = 1
    if isinstance(train, DataLoader):
        train_loader = train
        if isinstance(augment, SampledAugment) and not callable(augment):  # streamed rows cannot be re-sampled in memory
            raise ConfigError(
                f"{type(augment).__name__}: this data type samples its training batches in memory, which data "
                "streamed from a store cannot do; train from the data files"
            )
    else:
        samples = augment.training_samples(*train) if isinstance(augment, SampledAugment) else None
        # e.g. segmentation: one sample = one random crop (the dataset); augment keeps the random transforms
        dataset, augment = samples if samples is not None else (ArrayDataset(*train), augment)
        if isinstance(dataset, ArrayDataset):
            group = (
                group_batches or cfg.batches_per_step or batches_per_step(dataset, cfg.batch_size, cfg.checkpoint_every_n_steps)
            )
        # the sampler's permutation does not depend on the batch size, so K batches per fetch are
        # exactly the K consecutive batches a one-per-fetch loader would serve
        batch_sampler = getattr(dataset, "batch_sampler", None)
        if callable(batch_sampler):  # e.g. per-position data: batches of similar lengths
            train_loader = DataLoader(
                dataset, batch_sampler=batch_sampler(cfg.batch_size, cfg.seed), collate_fn=_identity,
                num_workers=cfg.num_workers, persistent_workers=cfg.num_workers > 0,
            )  # fmt: skip
        else:
            train_loader = dataset_loader(
                dataset, batch_size=cfg.batch_size * group, shuffle=True, num_workers=cfg.num_workers, seed=cfg.seed
            )
    cfg = sized_epochs(cfg, train_loader)
    module = BiodlModule(
        model,
        kind,
        cfg,
        augment=augment,
        monitor=monitor,
        micro_batch=cfg.batch_size if group > 1 else None,
        labels_complete=not isinstance(train, DataLoader) and labels_complete(kind, train[1]),
        target_scale=target_scale,
    )
    history, best = History(), BestWeights(select.name, restore=has_val, mode=select.mode)
    ckpt_dir = run_dir / CHECKPOINT_DIR
    callbacks: list[L.Callback] = [
        history,
        best,
        LastCheckpoint(ckpt_dir, every_n_steps=cfg.checkpoint_every_n_steps),
    ]
    if cfg.early_stopping:
        callbacks.append(
            EarlyStopping(
                monitor=select.name,
                patience=cfg.patience,
                min_delta=cfg.min_delta,
                mode=select.mode,
                check_on_train_epoch_end=True,
                strict=not select.is_metric,  # an epoch whose metric could not be scored does not count
            )
        )
    timer = None
    if cfg.max_time is not None:  # train.max_time: stop after the epoch in which it is spent (best weights kept)
        clock = budget_clock(cfg.time_budget_clock)  # cpu: a busy machine does not cut the training short
        timer = Deadline(clock() + cfg.max_time, clock)
        callbacks.append(timer)
    callbacks += list(extra_callbacks or [])
    if cfg.progress_bar:
        callbacks.append(_progress_bar())
    last = ckpt_dir / LAST_CHECKPOINT
    keep: float | None = None  # a fresh run replaces the log; a resumed one keeps what its checkpoint covers
    if resume:
        last, epoch = resume_checkpoint(ckpt_dir)
        keep = math.inf if epoch is None else epoch + 1
    loggers: list[Any] = [ResumableCSVLogger(run_dir, name="logs", version="", keep_before_epoch=keep)]
    if cfg.logger == "tensorboard":
        try:
            loggers.append(TensorBoardLogger(run_dir, name="logs", version="tensorboard"))
        except ModuleNotFoundError:  # pragma: no cover - tensorboard is optional
            pass
    loggers += list(extra_loggers or [])
    try:
        trainer = _make_trainer(cfg, callbacks, loggers, run_dir, streaming)
    except (MisconfigurationException, ValueError) as exc:
        raise BiodlError(f"trainer settings rejected (train.accelerator/devices/strategy/precision): {exc}") from None
    val_loader: DataLoader[Any] | None = None
    if isinstance(val, DataLoader):
        val_loader = val
    elif has_val and val is not None:
        vx, vy = val
        if kind == "positions":  # similar lengths per batch: the module cuts each batch after its longest sequence
            from biodl.data.positions import length_order

            order = length_order(vx, vy)
            vx, vy = vx[order], vy[order]
        val_loader = make_loader(vx, vy, batch_size=max(cfg.batch_size, 256), shuffle=False)
    ckpt_path = str(last) if resume else None
    try:
        trainer.fit(module, train_dataloaders=train_loader, val_dataloaders=val_loader, ckpt_path=ckpt_path)
    except (ValueError, RuntimeError) as exc:
        if "precision" in str(exc).lower() or "accelerator" in str(exc).lower() or "strategy" in str(exc).lower():
            raise BiodlError(f"trainer settings rejected: {exc}") from None
        raise
    if timer is not None and timer.stopped:
        print(
            f"training stopped by train.max_time ({cfg.max_time:g} s, {cfg.time_budget_clock} clock) "
            f"after epoch {trainer.current_epoch}"
        )
    model.eval()
    return FitResult(
        model, history.as_columns(), best.best_epoch, trainer.current_epoch, trainer.is_global_zero, select.name, cfg.max_epochs
    )


def sized_epochs(cfg: TrainConfig, loader: DataLoader[Any]) -> TrainConfig:
    """``cfg`` with ``max_epochs`` raised to ``ceil(train.min_samples / training samples)`` where that is more.

    The training samples are the loader's (rows, or e.g. random crops of a sampled data set); a loader
    whose length is unknown (streamed stores) keeps ``max_epochs`` (said in one line).
    """
    if cfg.min_samples is None:
        return cfg
    try:
        n = len(loader.dataset)  # type: ignore[arg-type]
    except TypeError:
        print(f"note: train.min_samples is not applied to streamed training data; max_epochs stays {cfg.max_epochs}")
        return cfg
    epochs = math.ceil(cfg.min_samples / max(1, n))
    if epochs <= cfg.max_epochs:
        return cfg
    print(f"train.min_samples: {epochs} epochs ({cfg.min_samples:,} samples / {n:,} training rows; max_epochs {cfg.max_epochs})")
    return cfg.model_copy(update={"max_epochs": epochs})


def resume_checkpoint(ckpt_dir: Path) -> tuple[Path, int | None]:
    """The checkpoint ``--resume`` continues from and its epoch (printed).

    ``last.ckpt``, or ``previous.ckpt`` (the one before it) when ``last.ckpt`` is damaged or
    missing; a :class:`BiodlError` (one line) when neither can be read.
    """
    last, previous = ckpt_dir / LAST_CHECKPOINT, ckpt_dir / PREVIOUS_CHECKPOINT
    if not last.exists() and not previous.exists():
        raise BiodlError(f"--resume: no checkpoint at {last}; start the run without --resume")
    problem = f"{last} is missing"
    if last.exists():
        try:
            epoch = read_checkpoint_epoch(last)
        except DamagedCheckpoint as exc:
            problem = f"the checkpoint {last} is damaged ({exc})"
        else:
            print(f"resuming from {last} (after epoch {_shown_epoch(epoch)})")
            return last, epoch
    if previous.exists():
        try:
            epoch = read_checkpoint_epoch(previous)
        except DamagedCheckpoint:
            pass
        else:
            print(f"warning: {problem}; resuming from the previous checkpoint {previous} (after epoch {_shown_epoch(epoch)})")
            return previous, epoch
    raise BiodlError(
        f"--resume: {problem} and no earlier intact checkpoint is kept; start the run again without --resume "
        "(or into a new --output-dir)"
    )


def _shown_epoch(epoch: int | None) -> str:
    return "?" if epoch is None else str(epoch + 1)


def trainer_kwargs_summary(cfg: TrainConfig) -> dict[str, Any]:
    """The Trainer settings worth showing in reports."""
    return {k: getattr(cfg, k) for k in ("accelerator", "devices", "strategy", "precision", "max_epochs", "batch_size")}
