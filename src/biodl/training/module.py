"""The Lightning module that trains any registered model for any task."""

from __future__ import annotations

from typing import Any

import lightning as L
import numpy as np
import torch
from torch import nn

from biodl.config import TrainConfig
from biodl.data.base import BatchAugment, JointAugment
from biodl.metrics import compute_metrics, main_metric
from biodl.training.losses import apply_head, masked_loss
from biodl.training.optim import make_optimizer, make_scheduler


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
        self.model = model
        self.kind = kind
        self.train_cfg = train_cfg
        self.augment = augment
        self.monitor = monitor
        self.metric_name, _ = main_metric(kind)
        self._outs: dict[str, list[tuple[torch.Tensor, torch.Tensor]]] = {"train": [], "val": []}

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
        self.log(f"{stage}_loss", loss, on_step=False, on_epoch=True, prog_bar=True, batch_size=len(x), sync_dist=True)
        self._outs[stage].append((apply_head(self.kind, scores.detach().float()).cpu(), y.detach().cpu()))
        if stage == "train" and self.train_cfg.l1 > 0:
            l1 = sum(p.abs().sum() for n, p in self.model.named_parameters() if p.ndim > 1)
            loss = loss + self.train_cfg.l1 * l1
        return loss

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> torch.Tensor:
        return self._step(batch, "train")

    def validation_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> None:
        self._step(batch, "val")

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

    def on_train_epoch_end(self) -> None:
        self._epoch_metric("train")

    def on_validation_epoch_end(self) -> None:
        self._epoch_metric("val")

    def configure_optimizers(self) -> Any:
        opt = make_optimizer(self.model.parameters(), self.train_cfg)
        sched = make_scheduler(opt, self.train_cfg, self.monitor)
        if sched is None:
            return opt
        return {"optimizer": opt, "lr_scheduler": sched}
