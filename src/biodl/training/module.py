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
from biodl.metrics import compute_metrics, main_metric
from biodl.training.losses import apply_head, masked_loss
from biodl.training.optim import make_optimizer, make_scheduler

#: Training steps between updates of the running loss shown in the progress bar.
PROGRESS_EVERY = 50


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

    Notes
    -----
    The optimisation step is written out (Lightning's manual optimisation): zero the gradients,
    backward, optional clipping by norm, step; the learning-rate schedule steps once per epoch
    after the epoch's losses are logged. Lightning's automatic loop adds a closure and several
    hooks to every step (about 0.2 ms, 2-3 % of a DeepBind-size step on a 2-core CPU).
    """

    def __init__(
        self,
        model: nn.Module,
        kind: str,
        train_cfg: TrainConfig,
        augment: BatchAugment | None = None,
        monitor: str = "val_loss",
    ) -> None:
        super().__init__()
        self.automatic_optimization = False
        self.model = model
        self.kind = kind
        self.train_cfg = train_cfg
        self.augment = augment
        self.monitor = monitor
        self.metric_name, _ = main_metric(kind)
        self._outs: dict[str, list[tuple[torch.Tensor, torch.Tensor]]] = {"train": [], "val": []}
        # summed (loss x batch size) and sample counts of the running epoch: Lightning's per-step
        # self.log costs ~0.6 ms a call (it re-devices the metric state), 10 % of a small model's step
        self._loss_sum: dict[str, torch.Tensor | None] = {"train": None, "val": None}
        self._loss_n: dict[str, int] = {"train": 0, "val": 0}

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
        scores = self(x)
        loss = masked_loss(self.kind, scores, y)
        n = len(x)
        weighted = loss.detach() * n
        prev = self._loss_sum[stage]
        self._loss_sum[stage] = weighted if prev is None else prev + weighted
        self._loss_n[stage] += n
        if stage == "train" and self.train_cfg.progress_bar and self.trainer.global_step % PROGRESS_EVERY == 0:
            self.log("loss", loss.detach(), on_step=True, on_epoch=False, prog_bar=True, logger=False)
        self._outs[stage].append((apply_head(self.kind, scores.detach().float()).cpu(), y.detach().cpu()))
        if stage == "train" and self.train_cfg.l1 > 0:
            l1 = sum(p.abs().sum() for n, p in self.model.named_parameters() if p.ndim > 1)
            loss = loss + self.train_cfg.l1 * l1
        return loss

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> torch.Tensor:
        opt = self.optimizers()
        assert isinstance(opt, LightningOptimizer)
        loss = self._step(batch, "train")
        opt.zero_grad(set_to_none=True)
        self.manual_backward(loss)
        if self.train_cfg.gradient_clip:
            scaler = getattr(self.trainer.precision_plugin, "scaler", None)
            if scaler is not None:  # 16-mixed: clip the true gradients
                scaler.unscale_(opt.optimizer)
            self.clip_gradients(opt.optimizer, gradient_clip_val=self.train_cfg.gradient_clip, gradient_clip_algorithm="norm")
        opt.step()
        return loss.detach()

    def validation_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> None:
        self._step(batch, "val")

    def _epoch_loss(self, stage: str) -> None:
        """Log ``{stage}_loss``: the sample-weighted mean over the epoch (summed over all ranks)."""
        total, n = self._loss_sum[stage], self._loss_n[stage]
        self._loss_sum[stage], self._loss_n[stage] = None, 0
        if total is None or n == 0:
            return
        pair = torch.stack([total.double(), torch.tensor(float(n), dtype=torch.float64, device=total.device)])
        if self.trainer.world_size > 1 and torch.distributed.is_available() and torch.distributed.is_initialized():
            torch.distributed.all_reduce(pair)
        self.log(f"{stage}_loss", float(pair[0] / pair[1]), on_step=False, on_epoch=True, prog_bar=True, rank_zero_only=False)

    def _epoch_metric(self, stage: str) -> None:
        outs = self._outs[stage]
        self._outs[stage] = []
        if not outs:
            return
        pred = torch.cat([o[0] for o in outs]).numpy()
        true = torch.cat([o[1] for o in outs]).numpy()
        if self.trainer.world_size > 1 and torch.distributed.is_available() and torch.distributed.is_initialized():
            # every rank saw a shard: gather all of them so the epoch metric covers the whole split
            gathered: list[Any] = [None] * self.trainer.world_size
            torch.distributed.all_gather_object(gathered, (pred, true))
            pred = np.concatenate([g[0] for g in gathered])
            true = np.concatenate([g[1] for g in gathered])
        value = compute_metrics(self.kind, true, pred, metrics=[self.metric_name]).get(self.metric_name)
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
