"""Callbacks: per-epoch history, best-weight restore, atomic checkpoint files."""

from __future__ import annotations

import copy
import math
import os
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.fabric.plugins.io.torch_io import TorchCheckpointIO


class History(L.Callback):
    """Collects one row of logged values per epoch (survives resume through the checkpoint)."""

    def __init__(self) -> None:
        self.rows: list[dict[str, float]] = []

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.sanity_checking:
            return
        row: dict[str, float] = {"epoch": float(trainer.current_epoch)}
        for k, v in trainer.callback_metrics.items():
            if k.endswith(("_step",)):
                continue
            row[k.removesuffix("_epoch")] = float(v)
        opts = trainer.optimizers
        if opts:  # the module steps its schedule after this hook: this is the epoch's rate
            row["lr"] = float(opts[0].param_groups[0]["lr"])
        self.rows.append(row)

    def as_columns(self) -> dict[str, list[float]]:
        """``{name: [value per epoch]}`` with NaN where an epoch lacks a value."""
        keys: list[str] = []
        for r in self.rows:
            keys += [k for k in r if k not in keys]
        return {k: [r.get(k, math.nan) for r in self.rows] for k in keys}

    def state_dict(self) -> dict[str, Any]:
        return {"rows": self.rows}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.rows = list(state_dict.get("rows", []))


class BestWeights(L.Callback):
    """Keeps the weights with the lowest monitored loss and restores them when training ends."""

    def __init__(self, monitor: str = "val_loss") -> None:
        self.monitor = monitor
        self.best: float = math.inf
        self.best_epoch: int = -1
        self.state: dict[str, torch.Tensor] | None = None

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        value = trainer.callback_metrics.get(self.monitor)
        if value is None:
            return
        v = float(value)
        if math.isfinite(v) and v < self.best:
            self.best, self.best_epoch = v, trainer.current_epoch
            self.state = {k: t.detach().cpu().clone() for k, t in pl_module.state_dict().items()}

    def on_fit_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self.state is not None:
            pl_module.load_state_dict(self.state)

    def state_dict(self) -> dict[str, Any]:
        return {"best": self.best, "best_epoch": self.best_epoch, "state": self.state}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.best = float(state_dict.get("best", math.inf))
        self.best_epoch = int(state_dict.get("best_epoch", -1))
        self.state = copy.deepcopy(state_dict.get("state"))


class AtomicCheckpointIO(TorchCheckpointIO):
    """Writes checkpoints to a temporary file and renames it, so a kill never leaves half a file."""

    def save_checkpoint(self, checkpoint: dict[str, Any], path: Any, storage_options: Any | None = None) -> None:
        final = Path(path)
        final.parent.mkdir(parents=True, exist_ok=True)
        tmp = final.with_name(final.name + ".tmp")
        super().save_checkpoint(checkpoint, tmp, storage_options)
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, final)
