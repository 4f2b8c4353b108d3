"""The training loop's fast paths change nothing but speed: grouped fetches, plain steps, unmasked loss."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import pytest
import torch
from torch import nn

from biodl.config import TrainConfig
from biodl.data.loader import ArrayDataset
from biodl.training.fit import FitResult, batches_per_step, labels_complete, train_model
from biodl.training.losses import masked_loss
from biodl.training.module import BiodlModule
from conftest import pbmc_cells

EPOCHS = 3
BATCH = 32


@pytest.fixture(scope="module")
def pbmc() -> tuple[np.ndarray, np.ndarray]:
    """600 real PBMC cells: 100 gene-expression features, the cell type as class index."""
    X, cells = pbmc_cells()
    return X, np.unique(cells, return_inverse=True)[1].astype(np.int64)


class StepLog(L.Callback):
    """Records the optimiser steps taken and whether the module stepped without hook dispatch."""

    def __init__(self) -> None:
        self.steps: list[int] = []
        self.plain: list[bool] = []
        self.micro: int | None = None

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        assert isinstance(pl_module, BiodlModule)
        self.steps.append(trainer.global_step)
        self.plain.append(pl_module._plain_steps)
        self.micro = pl_module.micro_batch


class CountBackward(StepLog):
    """A callback that needs Lightning's per-step hooks: they must keep being called."""

    def __init__(self) -> None:
        super().__init__()
        self.backward = 0
        self.before_step = 0

    def on_after_backward(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.backward += 1

    def on_before_optimizer_step(self, trainer: L.Trainer, pl_module: L.LightningModule, optimizer: Any) -> None:
        self.before_step += 1


def fit(data: tuple[np.ndarray, np.ndarray], kind: str, tmp: Path, callback: StepLog, **kw: Any) -> tuple[FitResult, nn.Module]:
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Linear(data[0].shape[1], 16), nn.ReLU(), nn.Dropout(0.1), nn.Linear(16, 10 if kind == "multiclass" else 1)
    )
    settings = {"max_epochs": EPOCHS, "batch_size": BATCH, "progress_bar": False, "early_stopping": False, "seed": 0}
    group = kw.pop("group_batches", None)
    resume = kw.pop("resume", False)
    cfg = TrainConfig(**{**settings, **kw})
    res = train_model(model, kind, cfg, data, None, run_dir=tmp, extra_callbacks=[callback], group_batches=group, resume=resume)
    return res, model


def logged_steps(run_dir: Path) -> list[int]:
    with open(run_dir / "logs" / "metrics.csv") as fh:
        return sorted({int(row["step"]) for row in csv.DictReader(fh)})


def same_weights(a: nn.Module, b: nn.Module) -> None:
    for (name, p), q in zip(a.state_dict().items(), b.state_dict().values(), strict=True):
        torch.testing.assert_close(p, q, rtol=1e-5, atol=1e-6, msg=f"parameter {name} differs")


def test_grouped_fetches_train_on_the_same_batches_in_the_same_order(pbmc: tuple[np.ndarray, np.ndarray], tmp_path: Path) -> None:
    assert batches_per_step(ArrayDataset(*pbmc), BATCH) > 1  # the default groups these small batches
    one, grouped = StepLog(), StepLog()
    res1, m1 = fit(pbmc, "multiclass", tmp_path / "one", one, batches_per_step=1)  # the config key
    res8, m8 = fit(pbmc, "multiclass", tmp_path / "grouped", grouped)
    assert one.micro is None and grouped.micro == BATCH
    n_batches = -(-len(pbmc[0]) // BATCH)
    # one optimiser step per mini-batch either way: global_step counts them
    assert one.steps == grouped.steps == [n_batches * (e + 1) for e in range(EPOCHS)]
    same_weights(m1, m8)
    np.testing.assert_allclose(res1.history["train_loss"], res8.history["train_loss"], rtol=1e-5)
    # the loggers' step axis counts optimiser steps too
    assert (
        logged_steps(tmp_path / "one") == logged_steps(tmp_path / "grouped") == [n_batches * (e + 1) - 1 for e in range(EPOCHS)]
    )
    assert res8.history["train_loss"][-1] < res8.history["train_loss"][0]  # it did learn


def test_plain_steps_equal_lightning_dispatch(pbmc: tuple[np.ndarray, np.ndarray], tmp_path: Path) -> None:
    """Clipping and L1 on the plain path give the weights Lightning's own backward/step path gives."""
    X, codes = pbmc
    y = (codes == 0).astype(np.float32)[:, None]
    y[::7] = np.nan  # missing labels: the masked loss
    extra = {"gradient_clip": 0.05, "l1": 1e-4, "optimizer": "sgd", "lr": 0.1}
    plain, hooked = StepLog(), CountBackward()
    res_p, mp = fit((X, y), "binary", tmp_path / "plain", plain, **extra)
    res_h, mh = fit((X, y), "binary", tmp_path / "hooked", hooked, **extra)
    assert all(plain.plain) and not any(hooked.plain)
    # the callback's per-step hooks ran once per optimiser step
    assert hooked.backward == hooked.before_step == hooked.steps[-1] == plain.steps[-1]
    same_weights(mp, mh)
    np.testing.assert_allclose(res_p.history["train_loss"], res_h.history["train_loss"], rtol=1e-5)


@pytest.mark.parametrize("optimizer", ["adam", "adamw", "sgd", "rmsprop", "adagrad", "adadelta"])
def test_foreach_optimisers_step_like_the_per_tensor_loop(pbmc: tuple[np.ndarray, np.ndarray], optimizer: str) -> None:
    """``make_optimizer``'s multi-tensor (foreach) update gives the per-tensor loop's weights bit for bit."""
    from biodl.training.optim import make_optimizer

    X, codes = pbmc
    x, y = torch.from_numpy(X[:128]), torch.from_numpy(codes[:128])
    cfg = TrainConfig(optimizer=optimizer, lr=1e-2, weight_decay=1e-3, momentum=0.9, nesterov=True)
    weights = []
    for foreach in (True, False):
        torch.manual_seed(0)
        model = nn.Sequential(nn.Linear(100, 32), nn.ReLU(), nn.Linear(32, 16), nn.ReLU(), nn.Linear(16, 10))
        start = [p.detach().clone() for p in model.parameters()]
        opt = make_optimizer(model.parameters(), cfg)
        assert opt.defaults["foreach"] is True
        for group in opt.param_groups:
            group["foreach"] = foreach
        for xb, yb in zip(x.split(16), y.split(16), strict=True):
            opt.zero_grad(set_to_none=True)
            nn.functional.cross_entropy(model(xb), yb).backward()
            opt.step()
        weights.append([p.detach().clone() for p in model.parameters()])
    assert all(torch.equal(a, b) for a, b in zip(*weights, strict=True))
    assert not any(torch.equal(a, b) for a, b in zip(weights[0], start, strict=True))  # every tensor was trained


def test_batches_per_step_respects_byte_budget_data_size_and_checkpoint_interval() -> None:
    small = ArrayDataset(np.zeros((10_000, 4, 101), np.uint8), np.zeros((10_000, 1), np.float32))
    assert batches_per_step(small, 128) == 8
    assert batches_per_step(small, 128, checkpoint_every=6) == 2  # checkpoints every 6 steps still fire
    assert batches_per_step(small, 5_000) == 2  # no more groups than the data has batches
    images = ArrayDataset(np.zeros((64, 3, 512, 512), np.float32), np.zeros((64, 1), np.float32))
    assert batches_per_step(images, 16) == 1  # 48 MiB a batch: fetched one at a time


@pytest.mark.parametrize("kind", ["binary", "regression", "multiclass"])
def test_unmasked_loss_equals_masked_loss_on_complete_labels(kind: str) -> None:
    gen = torch.Generator().manual_seed(0)
    scores = torch.randn(50, 4 if kind == "multiclass" else 3, generator=gen)
    if kind == "multiclass":
        y = torch.randint(0, 4, (50,), generator=gen)
    elif kind == "binary":
        y = (torch.rand(50, 3, generator=gen) > 0.5).float()
    else:
        y = torch.randn(50, 3, generator=gen)
    torch.testing.assert_close(masked_loss(kind, scores, y, complete=True), masked_loss(kind, scores, y))


def test_labels_complete() -> None:
    assert labels_complete("binary", np.array([[0.0], [1.0]]))
    assert not labels_complete("binary", np.array([[0.0], [np.nan]]))
    assert labels_complete("multiclass", np.array([0, 2, 1]))
    assert not labels_complete("multiclass", np.array([0, -1, 1]))
    assert not labels_complete("segmentation", np.zeros((2, 4, 4)))


class ReadCheckpoint(L.Callback):
    """At each epoch's start, reads ``last.ckpt`` as a resumed run would."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.seen: list[tuple[int, int, int]] = []

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.current_epoch == 0:
            assert not self.path.exists()
            return
        trainer.strategy.checkpoint_io.wait()  # type: ignore[attr-defined]
        ckpt = torch.load(self.path, weights_only=True)
        sched = ckpt["lr_schedulers"][0]
        self.seen.append((ckpt["epoch"], ckpt["global_step"], sched["last_epoch"]))


def test_every_epoch_leaves_a_whole_checkpoint_with_its_schedule_step(
    pbmc: tuple[np.ndarray, np.ndarray], tmp_path: Path
) -> None:
    reader = ReadCheckpoint(tmp_path / "checkpoints" / "last.ckpt")
    fit(pbmc, "multiclass", tmp_path, reader, lr_schedule="exponential")
    n_batches = -(-len(pbmc[0]) // BATCH)
    # written after the epoch's schedule step, so a resumed run continues with the right rate
    assert reader.seen == [(e, n_batches * (e + 1), e + 1) for e in range(EPOCHS - 1)]
    assert not list((tmp_path / "checkpoints").glob("*.tmp"))


def test_progress_bar_counts_mini_batches(pbmc: tuple[np.ndarray, np.ndarray], tmp_path: Path) -> None:
    class BarTotals(StepLog):
        def __init__(self) -> None:
            super().__init__()
            self.totals: list[float] = []

        def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
            bar = trainer.progress_bar_callback
            assert bar is not None
            self.totals.append(bar.total_train_batches)

    seen = BarTotals()
    fit(pbmc, "multiclass", tmp_path, seen, progress_bar=True, max_epochs=1)
    assert seen.totals == [-(-len(pbmc[0]) // BATCH)]


def test_resuming_from_an_epoch_end_checkpoint_continues_with_the_next_epoch(
    pbmc: tuple[np.ndarray, np.ndarray], tmp_path: Path
) -> None:
    first, resumed = StepLog(), StepLog()
    fit(pbmc, "multiclass", tmp_path, first, max_epochs=2, lr_schedule="exponential")
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(100, 16), nn.ReLU(), nn.Dropout(0.1), nn.Linear(16, 10))
    cfg = TrainConfig(max_epochs=4, batch_size=BATCH, progress_bar=False, early_stopping=False, seed=0, lr_schedule="exponential")
    res = train_model(model, "multiclass", cfg, pbmc, None, run_dir=tmp_path, resume=True, extra_callbacks=[resumed])
    n_batches = -(-len(pbmc[0]) // BATCH)
    assert resumed.steps == [n_batches * 3, n_batches * 4]  # epochs 2 and 3 only, counting on
    assert res.history["epoch"] == [0.0, 1.0, 2.0, 3.0]
    lr = res.history["lr"]  # the schedule carried on: one decay per epoch across the restart
    assert lr[3] / lr[2] == pytest.approx(lr[1] / lr[0]) and lr[2] < lr[1]
    # the CSV log keeps the first run's epochs (Lightning's writer would delete them)
    with open(tmp_path / "logs" / "metrics.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert sorted({int(r["epoch"]) for r in rows}) == [0, 1, 2, 3]
    assert all(r["train_loss"] for r in rows if r["train_accuracy"] == "")


def test_resumed_log_drops_epochs_the_checkpoint_does_not_cover(pbmc: tuple[np.ndarray, np.ndarray], tmp_path: Path) -> None:
    fit(pbmc, "multiclass", tmp_path, StepLog(), max_epochs=2)
    log = tmp_path / "logs" / "metrics.csv"
    with open(log, "a") as fh:  # an epoch logged after the last checkpoint, then the run was killed
        fh.write("2,99,0.5,\n")
    res, _ = fit(pbmc, "multiclass", tmp_path, StepLog(), max_epochs=3, resume=True)
    with open(log) as fh:
        steps = [(int(r["epoch"]), int(r["step"])) for r in csv.DictReader(fh)]
    assert (2, 99) not in steps and {e for e, _ in steps} == {0, 1, 2}
    assert res.history["epoch"] == [0.0, 1.0, 2.0]


def test_no_step_checkpoint_at_an_epochs_last_batch(pbmc: tuple[np.ndarray, np.ndarray], tmp_path: Path) -> None:
    """A kill between the last batch and the epoch's end resumes mid-epoch, not past the epoch's end."""
    path = tmp_path / "checkpoints" / "last.ckpt"

    class AtEpochEnd(StepLog):  # runs before the epoch-end checkpoint (checkpoint callbacks go last)
        def __init__(self) -> None:
            super().__init__()
            self.seen: list[tuple[int, int]] = []

        def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
            trainer.strategy.checkpoint_io.wait()  # type: ignore[attr-defined]
            self.seen.append((trainer.global_step, torch.load(path, weights_only=True)["global_step"]))

    seen = AtEpochEnd()
    fit(pbmc, "multiclass", tmp_path, seen, checkpoint_every_n_steps=2)
    n_batches = -(-len(pbmc[0]) // BATCH)
    assert n_batches % 2 == 1  # epoch 1 ends on an even step, where an interval checkpoint would fall
    step, saved = seen.seen[1]
    assert step == 2 * n_batches and step - 2 <= saved < step


class IdleEpochs(StepLog):
    """Each epoch ends with the process idle (another job has the cores): wall time passes, CPU time does not."""

    def __init__(self, idle_s: float) -> None:
        super().__init__()
        self.idle_s = idle_s

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        import time

        time.sleep(self.idle_s)
        super().on_train_epoch_end(trainer, pl_module)


@pytest.mark.parametrize("clock", ["wall", "cpu"])
def test_max_time_counts_on_the_budget_clock(pbmc: tuple[np.ndarray, np.ndarray], tmp_path: Path, clock: str) -> None:
    """``train.max_time`` on the ``cpu`` clock is not spent by time the process waits for a core (at most 1/5 of it
    counts), so a busy machine does not cut the training short; on the ``wall`` clock it is."""
    idle = IdleEpochs(idle_s=0.5)
    res, _ = fit(pbmc, "multiclass", tmp_path, idle, max_epochs=6, max_time=0.4, time_budget_clock=clock)
    if clock == "wall":
        # the first epoch's 0.5 s idle > 0.4 s: stopped when the second epoch ended (after the first on a machine
        # so busy that an epoch's own wall time passes 0.4 s)
        assert res.epochs <= 2
    else:
        assert res.epochs >= 3  # only 0.1 s of each idle 0.5 s counts (plus a little CPU per epoch)


class BlowUpLastEpoch(StepLog):
    """Sets a huge learning rate for the last epoch (its training loss jumps) and keeps each epoch's end weights."""

    def __init__(self, last: int) -> None:
        super().__init__()
        self.last = last
        self.weights: list[dict[str, torch.Tensor]] = []

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.current_epoch == self.last:
            for group in trainer.optimizers[0].param_groups:
                group["lr"] = 5.0

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.weights.append({k: t.detach().clone() for k, t in pl_module.model.state_dict().items()})


@pytest.mark.parametrize("with_val", [False, True])
def test_without_validation_rows_the_last_epochs_weights_are_kept(
    pbmc: tuple[np.ndarray, np.ndarray], tmp_path: Path, with_val: bool
) -> None:
    """An epoch count (``max_epochs``, ``select_by: cv``) means the network after that many epochs: with no
    validation rows nothing is restored even when an earlier epoch had a lower training loss; with them,
    the lowest validation loss's weights are (as before)."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(100, 16), nn.ReLU(), nn.Linear(16, 10))
    X, y = pbmc
    blow = BlowUpLastEpoch(last=EPOCHS - 1)
    cfg = TrainConfig(max_epochs=EPOCHS, batch_size=BATCH, progress_bar=False, early_stopping=False, seed=0, optimizer="sgd")
    val = (X[500:], y[500:]) if with_val else None
    res = train_model(model, "multiclass", cfg, (X[:500], y[:500]), val, run_dir=tmp_path, extra_callbacks=[blow])
    loss = res.history["val_loss" if with_val else "train_loss"]
    assert int(np.argmin(loss)) < EPOCHS - 1  # an earlier epoch had the lowest monitored loss
    kept = blow.weights[-1] if not with_val else blow.weights[int(np.argmin(loss))]
    for name, t in model.state_dict().items():
        torch.testing.assert_close(t, kept[name], msg=f"{name}: not the expected epoch's weights")
    assert res.best_epoch == (EPOCHS - 1 if not with_val else int(np.argmin(loss)))


@pytest.mark.parametrize("group", [1, None])
def test_a_one_row_last_batch_is_skipped_for_batch_norm(
    pbmc: tuple[np.ndarray, np.ndarray], tmp_path: Path, group: int | None, capsys: pytest.CaptureFixture[str]
) -> None:
    """Training rows = 1 mod the batch size: batch normalisation cannot train on the last one-row batch
    (a traceback before), so that step is skipped, every epoch a different row (reshuffled)."""
    X, codes = pbmc
    data = (X[: 2 * BATCH + 1], codes[: 2 * BATCH + 1])
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(X.shape[1], 16), nn.BatchNorm1d(16), nn.ReLU(), nn.Linear(16, 10))
    log = StepLog()
    cfg = TrainConfig(max_epochs=EPOCHS, batch_size=BATCH, progress_bar=False, early_stopping=False, seed=0)
    res = train_model(model, "multiclass", cfg, data, None, run_dir=tmp_path, extra_callbacks=[log], group_batches=group)
    assert log.steps == [2 * (e + 1) for e in range(EPOCHS)]  # two full batches an epoch
    assert np.isfinite(res.history["train_loss"]).all()
    assert capsys.readouterr().out.count("one-row training batch is skipped") == 1
    # without batch normalisation nothing is skipped
    plain = StepLog()
    fit(data, "multiclass", tmp_path / "plain", plain, group_batches=group)
    assert plain.steps == [3 * (e + 1) for e in range(EPOCHS)]
    # nor where batch normalisation runs over positions (one row still has 100 values per channel)
    conv = nn.Sequential(nn.Conv1d(1, 4, 5), nn.BatchNorm1d(4), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 96, 10))
    seq = StepLog()
    train_model(conv, "multiclass", cfg, (data[0][:, None, :], data[1]), None, run_dir=tmp_path / "conv",
                extra_callbacks=[seq], group_batches=group)  # fmt: skip
    assert seq.steps == [3 * (e + 1) for e in range(EPOCHS)]
    assert "one-row" not in capsys.readouterr().out
