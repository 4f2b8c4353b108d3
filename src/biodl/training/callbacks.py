"""Callbacks: per-epoch history, best-weight restore, a time budget, predictions at chosen epochs,
last checkpoint written atomically in the background."""

from __future__ import annotations

import copy
import io
import math
import os
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.fabric.plugins.io.torch_io import TorchCheckpointIO
from lightning.pytorch.callbacks import Checkpoint

from biodl.models.outputs import predict_outputs


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
    """Keeps the weights with the best monitored value (lowest for ``mode="min"``) and restores them at the end.

    With ``restore=False`` (training without validation rows) nothing is kept: the network ends
    with its last epoch's weights, and ``best_epoch`` is that epoch. The lowest *training* loss
    is no reason to prefer an earlier epoch (with augmentation or dropout it is mostly noise),
    and an epoch count chosen elsewhere (``train.select_by: cv``, ``train.max_epochs``) means
    the network after that many epochs.
    """

    def __init__(self, monitor: str = "val_loss", restore: bool = True, mode: str = "min") -> None:
        self.monitor = monitor
        self.restore = restore
        #: values are compared as ``sign * value``, lowest best (``best`` holds the signed value)
        self.sign = -1.0 if mode == "max" else 1.0
        self.best: float = math.inf
        self.best_epoch: int = -1
        self.state: dict[str, torch.Tensor] | None = None

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not self.restore:
            self.best_epoch = trainer.current_epoch
            return
        value = trainer.callback_metrics.get(self.monitor)
        if value is None:
            return
        v = self.sign * float(value)
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


class Deadline(L.Callback):
    """Stops training at the end of the first epoch that ends after ``deadline`` (a time of ``clock``:
    :func:`time.monotonic`, or :func:`time.process_time` for a budget of CPU seconds); the best weights so far
    are kept as usual. ``stopped`` tells whether it stopped a training."""

    def __init__(self, deadline: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.deadline = deadline
        self.clock = clock
        self.stopped = False

    def passed(self) -> bool:
        """Whether the deadline has passed."""
        return self.clock() >= self.deadline

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self.passed() and not trainer.should_stop:
            trainer.should_stop = True
            self.stopped = True


class StopAfterEpochs(L.Callback):
    """Stops training at the end of epoch ``epochs`` (1-based) without changing ``max_epochs`` (learning-rate
    schedules that count to ``max_epochs`` keep their shape); the best weights so far are kept as usual."""

    def __init__(self, epochs: int) -> None:
        self.epochs = int(epochs)

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if int(trainer.current_epoch) + 1 >= self.epochs:
            trainer.should_stop = True


class PredictAtEpochs(L.Callback):
    """Predicts rows ``X`` with the model as it is after each epoch in ``epochs`` (1-based): ``preds[epoch]``.

    Used for out-of-fold learning curves (``train.select_by: cv``); segmentation maps are kept as float16.
    """

    def __init__(self, X: Any, kind: str, epochs: Any) -> None:
        self.X, self.kind, self.epochs = X, kind, set(int(e) for e in epochs)
        self.preds: dict[int, Any] = {}

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        epoch = int(trainer.current_epoch) + 1
        if trainer.sanity_checking or epoch not in self.epochs:
            return
        model: Any = getattr(pl_module, "model", pl_module)
        was_training = model.training
        p = predict_outputs(model, self.X, self.kind, batch_size=4 if self.X.ndim >= 4 else 512)
        self.preds[epoch] = p.astype("float16") if self.kind == "segmentation" else p
        model.train(was_training)


class LastCheckpoint(Checkpoint):
    """Writes ``dirpath/last.ckpt`` at the end of every training epoch and every ``every_n_steps`` steps.

    Lightning runs checkpoint callbacks after the module's epoch-end hook, so the saved state
    includes the epoch's learning-rate schedule step. (Lightning's ``ModelCheckpoint`` with
    ``save_top_k=0`` writes ``last`` only after a top-k save, i.e. not at all at epoch ends.)
    """

    def __init__(self, dirpath: Path, every_n_steps: int | None = None) -> None:
        self.path = Path(dirpath) / "last.ckpt"
        self.every_n_steps = every_n_steps
        self._saved_step = -1

    def on_train_batch_end(
        self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        n = self.every_n_steps
        # not at the epoch's last batch: a run resumed from there would skip the epoch's end
        # (history row, schedule step, early-stopping check); the epoch-end save follows
        if n and not trainer.is_last_batch and trainer.global_step // n > max(self._saved_step, 0) // n:
            self._save(trainer)

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not trainer.sanity_checking:
            self._save(trainer)

    def _save(self, trainer: L.Trainer) -> None:
        trainer.save_checkpoint(self.path)  # every rank calls it; rank 0 writes
        self._saved_step = trainer.global_step


#: The checkpoint before ``last.ckpt``: a resume falls back to it when ``last.ckpt`` is damaged.
PREVIOUS_CHECKPOINT = "previous.ckpt"


def _write_atomically(data: memoryview, final: Path) -> None:
    tmp = final.with_name(final.name + ".tmp")
    with open(tmp, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    if final.name == "last.ckpt" and final.exists():  # keep the last two checkpoints
        os.replace(final, final.with_name(PREVIOUS_CHECKPOINT))
    os.replace(tmp, final)


class AtomicCheckpointIO(TorchCheckpointIO):
    """Writes checkpoints whole or not at all, the file I/O off the training thread.

    The checkpoint is serialised in the caller (a consistent snapshot of weights and optimiser
    state), then one background thread writes it to a temporary file, syncs it to disk and renames
    it over the previous one: a kill at any moment leaves the previous or the new checkpoint,
    never half a file. Writes happen in order; a failed write is raised at the next save or at
    :meth:`teardown`, which waits for the last write.
    """

    def __init__(self) -> None:
        super().__init__()
        self._pool: ThreadPoolExecutor | None = None
        self._pending: Future[None] | None = None

    def save_checkpoint(self, checkpoint: dict[str, Any], path: Any, storage_options: Any | None = None) -> None:
        final = Path(path)
        final.parent.mkdir(parents=True, exist_ok=True)
        buf = io.BytesIO()
        torch.save(checkpoint, buf)
        self.wait()
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="biodl-checkpoint")
        self._pending = self._pool.submit(_write_atomically, buf.getbuffer(), final)

    def wait(self) -> None:
        """Block until the last checkpoint is on disk (re-raising its error, if any)."""
        pending, self._pending = self._pending, None
        if pending is not None:
            pending.result()

    def load_checkpoint(self, path: Any, *args: Any, **kwargs: Any) -> dict[str, Any]:
        self.wait()
        return super().load_checkpoint(path, *args, **kwargs)

    def remove_checkpoint(self, path: Any) -> None:
        self.wait()
        super().remove_checkpoint(path)

    def teardown(self) -> None:
        try:
            self.wait()
        finally:
            if self._pool is not None:
                self._pool.shutdown(wait=True)
                self._pool = None
