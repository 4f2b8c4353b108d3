"""The Lightning module that trains any registered model for any task."""

from __future__ import annotations

from typing import Any

import lightning as L
import numpy as np
import torch
from lightning.pytorch.core.optimizer import LightningOptimizer
from torch import nn

from biodl.config import TrainConfig
from biodl.data.base import BatchAugment, JointAugment
from biodl.data.positions import trim_batch
from biodl.metrics import compute_metrics, main_metric
from biodl.training.losses import apply_head, masked_loss
from biodl.training.optim import l2_penalty, make_optimizer, make_scheduler

#: Training steps between updates of the running loss shown in the progress bar.
PROGRESS_EVERY = 50


#: Hooks that the plain optimisation step (:func:`plain_steps_possible`) does not dispatch.
STEP_HOOKS = ("on_before_backward", "on_after_backward", "on_before_optimizer_step", "configure_gradient_clipping")


def plain_steps_possible(trainer: L.Trainer) -> bool:
    """Whether optimisation steps may skip Lightning's backward/step dispatch without changing anything.

    True for one process in full float32 precision, when neither the module nor any callback
    overrides a per-step hook (:data:`STEP_HOOKS`): then ``manual_backward`` is ``loss.backward()``,
    ``clip_gradients`` is ``clip_grad_norm_`` and the optimiser step only adds hook calls.
    """
    from lightning.pytorch.plugins.precision import Precision
    from lightning.pytorch.strategies import SingleDeviceStrategy
    from lightning.pytorch.utilities.model_helpers import is_overridden

    if type(trainer.strategy) is not SingleDeviceStrategy or type(trainer.precision_plugin) is not Precision:
        return False
    if any(is_overridden(h, trainer.lightning_module, L.LightningModule) for h in STEP_HOOKS):
        return False
    callbacks: list[L.Callback] = getattr(trainer, "callbacks", [])
    if any(is_overridden(h, cb, L.Callback) for cb in callbacks for h in STEP_HOOKS if hasattr(L.Callback, h)):
        return False
    opts = trainer.strategy._lightning_optimizers
    return all(hasattr(o, "_on_before_step") and hasattr(o, "_on_after_step") for o in opts)


class BiodlModule(L.LightningModule):
    """Wraps ``model`` with the task's loss, optimiser, schedule and epoch metrics.

    Parameters
    ----------
    model
        Any module mapping ``(N, *in_shape)`` to scores ``(N, num_outputs)``.
    kind
        ``binary``, ``multiclass`` or ``regression``.
    train_cfg
        Optimisation settings.
    augment
        Optional batch augmentation used in training steps only.
    monitor
        The quantity the schedule watches (``val_loss``, or ``train_loss`` without validation).
    micro_batch
        If set, each training batch holds several mini-batches of this size (the last may be
        smaller), and the step takes one optimiser step per mini-batch, in order.
    labels_complete
        No training label is missing (NaN / -1): the training loss skips masking.
    target_scale
        Regression: ``(mean, std)`` ``(T,)`` of the standardised targets; the epoch metric
        (``val_rmse``...) is computed on the original scale, as in ``metrics.json`` (the loss
        stays on the standardised scale).

    Notes
    -----
    The optimisation step is written out (Lightning's manual optimisation): zero the gradients,
    backward, optional clipping by norm, step; the learning-rate schedule steps once per epoch
    after the epoch's losses are logged. Lightning's automatic loop adds a closure and several
    hooks to every step (about 0.2 ms, 2-3 % of a DeepBind-size step on a 2-core CPU). On one
    float32 device with no per-step hook overridden, the step calls backward, clipping and the
    optimiser directly (:func:`plain_steps_possible`); with ``micro_batch`` one Lightning step
    takes several optimiser steps (grouped fetches, see ``biodl.training.fit.batches_per_step``).
    Together they bring a DeepBind-size model to ~0.98x a hand-written loop.
    """

    def __init__(
        self,
        model: nn.Module,
        kind: str,
        train_cfg: TrainConfig,
        augment: BatchAugment | None = None,
        monitor: str = "val_loss",
        micro_batch: int | None = None,
        labels_complete: bool = False,
        target_scale: tuple[np.ndarray, np.ndarray] | None = None,
    ) -> None:
        super().__init__()
        self.automatic_optimization = False
        self.model = model
        self.kind = kind
        self.train_cfg = train_cfg
        self.augment = augment
        self.monitor = monitor
        self.micro_batch = micro_batch
        self.labels_complete = labels_complete
        self.target_scale = target_scale if kind == "regression" else None
        #: ``train.loss: huber`` (regression): the Huber loss's delta, else ``None`` (MSE)
        self.huber_delta = train_cfg.huber_delta if kind == "regression" and train_cfg.loss == "huber" else None
        #: ``train.label_smoothing`` of the training cross-entropy (single-label and per-position classes)
        self.label_smoothing = train_cfg.label_smoothing if kind in ("multiclass", "positions") else 0.0
        self.metric_name, _ = main_metric(kind)
        # per step, only detached tensors are kept: raw scores and targets for the epoch metric
        # (the head is applied once at the epoch's end) and each batch's mean loss and size.
        # Lightning's per-step self.log costs ~0.6 ms a call (it re-devices the metric state).
        self._outs: dict[str, list[tuple[torch.Tensor, torch.Tensor]]] = {"train": [], "val": []}
        self._losses: dict[str, list[tuple[torch.Tensor, int]]] = {"train": [], "val": []}
        #: set by :meth:`on_train_start`: step without Lightning's per-step hook dispatch
        self._plain_steps = False
        #: batch normalisation cannot train on a mini-batch of one row (:meth:`training_step` skips it)
        self._batch_norm = any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in model.modules())
        #: one-row training mini-batches skipped so far
        self.one_row_skipped = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Raw scores for inputs (compact integer inputs are cast to float here)."""
        if not torch.is_floating_point(x):
            x = x.float()
        return self.model(x)

    def _step(self, batch: tuple[torch.Tensor, torch.Tensor], stage: str) -> torch.Tensor:
        x, y = batch
        if stage == "train" and self.augment is not None:
            if isinstance(self.augment, JointAugment):
                x, y = self.augment.augment_pair(x, y)
            else:
                x = self.augment(x)
        if self.kind == "positions":  # cut padding after the batch's longest sequence
            x, y = trim_batch(x, y)  # type: ignore[assignment]
        members = getattr(self.model, "member_scores", None) if stage == "train" else None
        if callable(members):
            # a model of independently initialised members (mil): each member is fitted to its own
            # loss (their sum, so Adam steps every member as if it were trained alone); the logged
            # loss is the members' mean loss, the epoch metric uses their averaged scores
            each = members(x if torch.is_floating_point(x) else x.float())
            smooth = self.label_smoothing
            losses = torch.stack(
                [
                    masked_loss(
                        self.kind, s, y, complete=self.labels_complete, huber_delta=self.huber_delta, label_smoothing=smooth
                    )
                    for s in each
                ]
            )
            scores, loss, fit_loss = each.mean(dim=0), losses.mean(), losses.sum()
        else:
            scores = self(x)
            complete = stage == "train" and self.labels_complete
            # the training loss is label-smoothed; the validation loss (early stopping, plateau) is the plain one
            smooth = self.label_smoothing if stage == "train" else 0.0
            loss = masked_loss(self.kind, scores, y, complete=complete, huber_delta=self.huber_delta, label_smoothing=smooth)
            fit_loss = loss
        self._losses[stage].append((loss.detach(), len(x)))
        if stage == "train" and self.train_cfg.progress_bar and self.trainer.global_step % PROGRESS_EVERY == 0:
            self.log("loss", loss.detach(), on_step=True, on_epoch=False, prog_bar=True, logger=False)
        # off the accelerator at once (an epoch of DeepSEA-size outputs would not fit on it);
        # a no-op on CPU
        if self.kind == "positions":  # the counted positions, as a multi-class problem
            counted = y >= 0
            self._outs[stage].append((scores.detach().transpose(1, 2)[counted].cpu(), y[counted].detach().cpu()))
        else:
            self._outs[stage].append((scores.detach().cpu(), y.detach().cpu()))
        if stage == "train" and self.train_cfg.l1 > 0:
            l1 = sum(p.abs().sum() for n, p in self.model.named_parameters() if p.ndim > 1)
            fit_loss = fit_loss + self.train_cfg.l1 * l1
        return fit_loss

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> torch.Tensor:
        x, y = batch
        opt = self.optimizers()
        assert isinstance(opt, LightningOptimizer)
        if self.micro_batch is None or len(x) <= self.micro_batch:
            parts = [(x, y)]
        else:
            parts = list(zip(x.split(self.micro_batch), y.split(self.micro_batch), strict=True))
        several = len(parts) > 1 or self.trainer.num_training_batches > 1
        loss, steps = None, 0
        for xb, yb in parts:
            if self._batch_norm and len(xb) == 1 and several:  # training rows = 1 mod the batch size
                out = self._one_row_step(opt, (xb, yb))
            else:
                out = self._optimisation_step(opt, (xb, yb))
            if out is not None:
                loss, steps = out, steps + 1
        # Lightning counts this batch as one step for the loggers' step axis; make it count each
        # optimiser step, as global_step does (it adds the last one itself)
        epoch_loop = self.trainer.fit_loop.epoch_loop
        if steps > 1 and hasattr(epoch_loop, "_batches_that_stepped"):
            epoch_loop._batches_that_stepped += steps - 1
        return loss if loss is not None else torch.zeros((), device=x.device)

    def _one_row_step(self, opt: LightningOptimizer, batch: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor | None:
        """The step on a one-row mini-batch, or ``None`` when batch normalisation of dense features cannot
        take it (convolutions over positions or pixels can): the step is skipped, as chemprop skips it; the
        rows are reshuffled every epoch, so a different row sits out each time."""
        try:
            return self._optimisation_step(opt, batch)
        except ValueError as err:
            if "Expected more than 1 value per channel" not in str(err):
                raise
        opt.zero_grad(set_to_none=True)
        if not self.one_row_skipped:
            print("note: a one-row training batch is skipped each epoch (batch normalisation needs two rows)")
        self.one_row_skipped += 1
        return None

    def _optimisation_step(self, opt: LightningOptimizer, batch: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        """One mini-batch: loss, zeroed gradients, backward, optional clipping, optimiser step."""
        if isinstance(opt.optimizer, torch.optim.LBFGS):
            return self._lbfgs_step(opt, batch)
        loss = self._step(batch, "train")
        clip = self.train_cfg.gradient_clip
        if self._plain_steps:
            # what manual_backward / clip_gradients / opt.step do on one device in float32, minus
            # the dispatch of hooks nobody overrides (~0.3 ms a step); global_step still counts
            raw = opt.optimizer
            raw.zero_grad(set_to_none=True)
            loss.backward()
            if clip:
                params = [p for group in raw.param_groups for p in group["params"]]
                torch.nn.utils.clip_grad_norm_(params, clip)
            opt._on_before_step()
            raw.step()
            opt._on_after_step()
            return loss.detach()
        opt.zero_grad(set_to_none=True)
        self.manual_backward(loss)
        if clip:
            scaler = getattr(self.trainer.precision_plugin, "scaler", None)
            if scaler is not None:  # 16-mixed: clip the true gradients
                scaler.unscale_(opt.optimizer)
            self.clip_gradients(opt.optimizer, gradient_clip_val=clip, gradient_clip_algorithm="norm")
        opt.step()
        return loss.detach()

    def _lbfgs_step(self, opt: LightningOptimizer, batch: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        """One L-BFGS step on the batch (its line search re-evaluates the loss, plus ``weight_decay`` as an explicit
        L2 term and ``l1``); the epoch's loss and metric record the batch once, before the step."""
        loss = self._step(batch, "train").detach()  # recorded for the epoch (its gradient is not used)
        x, y = batch
        raw = opt.optimizer
        params = [p for group in raw.param_groups for p in group["params"]]

        def closure() -> float:
            raw.zero_grad(set_to_none=True)
            value = masked_loss(self.kind, self(x), y, complete=self.labels_complete, huber_delta=self.huber_delta)
            if self.train_cfg.weight_decay > 0:
                value = value + l2_penalty(params, self.train_cfg.weight_decay)
            if self.train_cfg.l1 > 0:
                value = value + self.train_cfg.l1 * sum(p.abs().sum() for p in params if p.ndim > 1)
            value.backward()
            return value  # type: ignore[return-value]  # torch.optim.LBFGS accepts the tensor

        opt._on_before_step()
        raw.step(closure)
        opt._on_after_step()
        return loss

    def on_train_start(self) -> None:
        self._plain_steps = plain_steps_possible(self.trainer)

    def validation_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> None:
        self._step(batch, "val")

    def _epoch_loss(self, stage: str) -> None:
        """Log ``{stage}_loss``: the sample-weighted mean over the epoch (summed over all ranks)."""
        losses = self._losses[stage]
        self._losses[stage] = []
        n = sum(k for _, k in losses)
        if n == 0:
            return
        means = torch.stack([loss for loss, _ in losses]).double()
        sizes = torch.tensor([k for _, k in losses], dtype=torch.float64, device=means.device)
        pair = torch.stack([means @ sizes, sizes.sum()])
        if self.trainer.world_size > 1 and torch.distributed.is_available() and torch.distributed.is_initialized():
            torch.distributed.all_reduce(pair)
        self.log(f"{stage}_loss", float(pair[0] / pair[1]), on_step=False, on_epoch=True, prog_bar=True, rank_zero_only=False)

    def _epoch_metric(self, stage: str) -> None:
        outs = self._outs[stage]
        self._outs[stage] = []
        if not outs:
            return
        kind = "multiclass" if self.kind == "positions" else self.kind
        pred = apply_head(kind, torch.cat([o[0] for o in outs]).float()).cpu().numpy()
        true = torch.cat([o[1] for o in outs]).cpu().numpy()
        if self.trainer.world_size > 1 and torch.distributed.is_available() and torch.distributed.is_initialized():
            # every rank saw a shard: gather all of them so the epoch metric covers the whole split
            gathered: list[Any] = [None] * self.trainer.world_size
            torch.distributed.all_gather_object(gathered, (pred, true))
            pred = np.concatenate([g[0] for g in gathered])
            true = np.concatenate([g[1] for g in gathered])
        if self.target_scale is not None:  # the original scale, as metrics.json reports it
            mean, std = self.target_scale
            pred, true = pred * std + mean, true * std + mean
        value = compute_metrics(kind, true, pred, metrics=[self.metric_name]).get(self.metric_name)
        if value is not None and np.isfinite(value):
            self.log(f"{stage}_{self.metric_name}", float(value), prog_bar=stage == "val", rank_zero_only=False)

    def on_train_batch_end(self, outputs: Any, batch: Any, batch_idx: int) -> None:
        # log the epoch's training loss and metric at its last batch: Lightning runs the callbacks'
        # on_train_epoch_end (history, best weights) before the module's, and they read these values
        if self.trainer.is_last_batch:
            self._epoch_loss("train")
            self._epoch_metric("train")

    def on_train_epoch_end(self) -> None:
        self._epoch_loss("train")  # no-ops unless the last batch went unnoticed
        self._epoch_metric("train")
        sched = self.lr_schedulers()
        if isinstance(sched, torch.optim.lr_scheduler.ReduceLROnPlateau):
            value = self.trainer.callback_metrics.get(self.monitor)
            if value is not None:  # validation ran before this hook, so val_loss is this epoch's
                sched.step(float(value))
        elif isinstance(sched, torch.optim.lr_scheduler.LRScheduler):
            sched.step()

    def on_validation_epoch_end(self) -> None:
        self._epoch_loss("val")
        self._epoch_metric("val")

    def configure_optimizers(self) -> Any:
        opt = make_optimizer(self.model.parameters(), self.train_cfg)
        sched = make_scheduler(opt, self.train_cfg)
        if sched is None:
            return opt
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "epoch"}}
