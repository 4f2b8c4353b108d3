"""Training-loop overhead and compute efficiency (issue: scale).

For a DeepBind-size model (101 bp, 32 filters × 24) and a Basset-size model (600 bp, 300/200/200
filters) on the same synthetic one-hot data, in one run:

* biodl's training (the real ``train_model`` path: Lightning, callbacks, logging, checkpoints)
  versus a bare hand-written PyTorch loop, measured in one run as back-to-back pairs (see
  :func:`paired_run`): samples/s, target ≥ 0.97× the bare loop;
* achieved GFLOP/s of training (FLOPs counted with ``torch.utils.flop_counter``) against the
  machine's measured float32 GEMM peak, for a few variants (threads, batch size, ``torch.compile``);
* data-loading headroom: batches/s the loader delivers versus batches/s the model consumes.

    python benchmarks/training_loop.py [--quick]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import write_results

from biodl.config import TrainConfig
from biodl.data.loader import make_loader
from biodl.models import build_model

SPECS: dict[str, dict[str, Any]] = {
    # epochs of the paired run, the first not counted: 112 pairs for DeepBind, 6 for Basset (one
    # step of 8 batches an epoch)
    "deepbind": {"length": 101, "n": 16384, "params": {}, "epochs": 8},
    "basset": {"length": 600, "n": 1024, "params": {}, "epochs": 7},
}


def gemm_peak(n: int = 2048, repeats: int = 5) -> float:
    """Measured float32 matrix-multiply GFLOP/s (best of ``repeats``)."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    torch.mm(a, b)
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        torch.mm(a, b)
        best = min(best, time.perf_counter() - t0)
    return 2 * n**3 / best / 1e9


def synthetic(n: int, length: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    codes = rng.integers(0, 4, size=(n, length))
    x = np.zeros((n, 4, length), dtype=np.uint8)
    np.put_along_axis(x, codes[:, None, :], 1, axis=1)
    y = rng.integers(0, 2, size=(n, 1)).astype(np.float32)
    return x, y


def flops_per_step(model: nn.Module, batch: int, length: int) -> float:
    """Forward + backward FLOPs of one training step."""
    from torch.utils.flop_counter import FlopCounterMode

    x = torch.zeros(batch, 4, length)
    counter = FlopCounterMode(display=False)
    with counter:
        model(x).sum().backward()
    model.zero_grad(set_to_none=True)
    return float(counter.get_total_flops())


def bare_loop(model: nn.Module, x: np.ndarray, y: np.ndarray, batch: int, epochs: int = 2, *, fused: bool = False) -> float:
    """A hand-written loop (Adam, BCE, shuffled batches); samples/s of the last epoch."""
    stepper = BareStepper(model, x, y, batch, fused=fused)
    rate = 0.0
    for _ in range(epochs):
        t0 = time.perf_counter()
        stepper.run(len(x))
        rate = len(x) / (time.perf_counter() - t0)
    return rate


class BareStepper:
    """The bare loop's state, advanced a given number of samples at a time (new permutation per epoch)."""

    def __init__(self, model: nn.Module, x: np.ndarray, y: np.ndarray, batch: int, *, fused: bool = False) -> None:
        self.model, self.batch = model, batch
        self.opt = torch.optim.Adam(model.parameters(), lr=1e-3, fused=fused or None)
        self.loss_fn = nn.BCEWithLogitsLoss()
        self.X, self.Y = torch.from_numpy(x), torch.from_numpy(y)
        self.perm, self.pos = torch.randperm(len(x)), 0
        model.train()

    def run(self, samples: int) -> None:
        """Train on the next ``samples`` samples in mini-batches."""
        done = 0
        while done < samples:
            if self.pos >= len(self.X):
                self.perm, self.pos = torch.randperm(len(self.X)), 0
            idx = self.perm[self.pos : self.pos + self.batch]
            self.pos += len(idx)
            done += len(idx)
            xb, yb = self.X[idx].float(), self.Y[idx]
            self.opt.zero_grad(set_to_none=True)
            loss = self.loss_fn(self.model(xb), yb)
            loss.backward()
            self.opt.step()


def paired_run(
    fresh: Callable[[], nn.Module], x: np.ndarray, y: np.ndarray, batch: int, epochs: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """biodl's real training path with the bare loop run in between, interval by interval.

    After each of biodl's training steps, a callback runs the bare loop (its own model, the same
    data) on as many samples as biodl's step took. The time from the end of one bare block to the
    end of biodl's next step is biodl's (data fetch, Lightning's hooks, epoch-end checkpoints and
    logging included); the bare block's own time is the bare loop's. Each pair is measured seconds
    apart at most, so the speed swings of a shared virtual machine (tens of per cent over seconds)
    hit both sides of a pair alike, which separate runs cannot promise.

    Returns
    -------
    biodl_s, bare_s, samples
        Per pair: seconds of biodl, seconds of the bare loop, samples each trained on.
    """
    import lightning as L

    from biodl.training.fit import train_model

    bare = BareStepper(fresh(), x, y, batch)
    ours: list[float] = []
    theirs: list[float] = []
    counts: list[int] = []

    class Paired(L.Callback):
        t_end = 0.0

        def on_train_batch_end(
            self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch_: Any, batch_idx: int
        ) -> None:
            t = time.perf_counter()
            n = len(batch_[0])
            counted = trainer.current_epoch >= 1  # the first epoch warms both loops up
            if counted:
                ours.append(t - self.t_end)
                counts.append(n)
            bare.run(n)
            self.t_end = time.perf_counter()
            if counted:
                theirs.append(self.t_end - t)

    cfg = TrainConfig(max_epochs=epochs, batch_size=batch, progress_bar=False, early_stopping=False, lr_schedule="none")
    with tempfile.TemporaryDirectory() as tmp:
        # the pairing callback is the last one, so every other callback's work counts as biodl's
        train_model(fresh(), "binary", cfg, (x, y), None, run_dir=Path(tmp), extra_callbacks=[Paired()])
    return np.asarray(ours), np.asarray(theirs), np.asarray(counts)


def loader_rate(x: np.ndarray, y: np.ndarray, batch: int) -> float:
    """Batches/s delivered by biodl's in-memory loader (including the per-batch float cast)."""
    loader = make_loader(x, y, batch_size=batch, shuffle=True)
    t0 = time.perf_counter()
    n = 0
    for xb, _ in loader:
        xb.float()
        n += 1
    return n / (time.perf_counter() - t0)


def variant(name: str, fn: Callable[[], float]) -> tuple[str, float]:
    try:
        return name, fn()
    except Exception as exc:  # a variant that cannot run here is reported, not fatal
        print(f"variant {name} failed: {exc}", file=sys.stderr)
        return name, float("nan")


def bench_model(name: str, spec: dict[str, Any], batch: int, quick: bool, peak: float) -> tuple[dict[str, Any], list[list[Any]]]:
    """All measurements for one architecture."""
    n = spec["n"] // (4 if quick else 1)
    x, y = synthetic(n, spec["length"])

    def fresh() -> nn.Module:
        torch.manual_seed(0)
        return build_model(name, (4, spec["length"]), 1, spec["params"])

    flops = flops_per_step(fresh(), batch, spec["length"]) / batch  # per sample
    epochs = spec["epochs"] if not quick else 2
    ours_s, bare_s, counts = paired_run(fresh, x, y, batch, epochs)
    ratios = bare_s / ours_s  # biodl's throughput over the bare loop's, per pair
    bare = float(np.median(counts / bare_s))
    ours = float(np.median(counts / ours_s))
    load = loader_rate(x, y, batch)
    consume = bare / batch
    rec: dict[str, Any] = {
        "samples": n,
        "flops_per_sample": flops,
        "pairs": len(ratios),
        "bare_samples_per_s": bare,
        "biodl_samples_per_s": ours,
        "overhead_ratio": float(np.median(ratios)),
        "ratio_iqr": [float(np.percentile(ratios, 25)), float(np.percentile(ratios, 75))],
        "ratio_of_totals": float(bare_s.sum() / ours_s.sum()),
        "biodl_seconds": ours_s.tolist(),
        "bare_seconds": bare_s.tolist(),
        "samples_per_pair": counts.tolist(),
        "loader_batches_per_s": load,
        "model_batches_per_s": consume,
    }
    variants = [variant(f"bare, batch {batch}, default threads", lambda: bare_loop(fresh(), x, y, batch))]
    variants.append(variant("bare, batch 512", lambda: bare_loop(fresh(), x, y, 512)))
    threads = torch.get_num_threads()
    variants.append(variant("bare, fused Adam", lambda: bare_loop(fresh(), x, y, batch, fused=True)))
    if threads > 1:
        torch.set_num_threads(1)
        variants.append(variant("bare, 1 thread", lambda: bare_loop(fresh(), x, y, batch)))
        variants.append(variant("bare, 1 thread, batch 512", lambda: bare_loop(fresh(), x, y, 512)))
        torch.set_num_threads(threads)
    if not quick:
        variants.append(variant("bare, torch.compile", lambda: bare_loop(torch.compile(fresh()), x, y, batch)))  # type: ignore[arg-type]
    rec["variants"] = {
        k: {"samples_per_s": v, "gflops": v * flops / 1e9, "fraction_of_peak": v * flops / 1e9 / peak} for k, v in variants
    }
    gf = ours * flops / 1e9
    lo, hi = rec["ratio_iqr"]
    summary = f"{rec['overhead_ratio']:.3f} (IQR {lo:.3f}-{hi:.3f}; totals {rec['ratio_of_totals']:.3f}; {len(ratios)} pairs)"
    rows: list[list[Any]] = [
        [
            name,
            round(bare),
            round(ours),
            summary,
            round(gf, 1),
            f"{gf / peak:.1%}",
            round(load),
            round(consume),
        ]
    ]
    for k, v in variants:
        vg = v * flops / 1e9
        rows.append([f"  {name}: {k}", round(v) if v == v else "n/a", "", "", round(vg, 1), f"{vg / peak:.1%}", "", ""])
    return rec, rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--quick", action="store_true", help="smaller data, no torch.compile")
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--models", nargs="+", choices=sorted(SPECS), default=sorted(SPECS), help="architectures to measure")
    args = ap.parse_args()
    peak = gemm_peak()
    rows: list[list[Any]] = []
    results: dict[str, Any] = {"gemm_peak_gflops": peak}
    for name, spec in SPECS.items():
        if name not in args.models:
            continue
        results[name], more = bench_model(name, spec, args.batch_size, args.quick, peak)
        rows += more
    write_results(
        "training_loop",
        results,
        [
            "model",
            "bare samples/s",
            "biodl samples/s",
            "biodl/bare",
            "GFLOP/s",
            "of GEMM peak",
            "loader batches/s",
            "model batches/s",
        ],
        rows,
        f"float32 GEMM peak measured here: {peak:.1f} GFLOP/s. Target biodl/bare ≥ 0.97; "
        "loader batches/s must exceed model batches/s. biodl/bare is the median over pairs of the bare loop's time "
        "over biodl's for the same samples, measured back to back inside one run (IQR and the ratio of total times "
        "alongside; every interval is in training_loop.json): separate runs of the same loop vary by up to ±30 % "
        "on this machine. bare/biodl samples/s are medians over the pairs; variants are separate bare-loop runs.",
    )


if __name__ == "__main__":
    main()
