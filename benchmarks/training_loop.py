"""Training-loop overhead and compute efficiency (issue: scale).

For a DeepBind-size model (101 bp, 32 filters × 24) and a Basset-size model (600 bp, 300/200/200
filters) on the same synthetic one-hot data, in one run:

* biodl's training (the real ``train_model`` path: Lightning, callbacks, logging) versus a bare
  hand-written PyTorch loop: samples/s, target ≥ 0.97× the bare loop;
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
    "deepbind": {"length": 101, "n": 16384, "params": {}},
    "basset": {"length": 600, "n": 1024, "params": {}},
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
    opt = torch.optim.Adam(model.parameters(), lr=1e-3, fused=fused or None)
    loss_fn = nn.BCEWithLogitsLoss()
    X, Y = torch.from_numpy(x), torch.from_numpy(y)
    model.train()
    rate = 0.0
    for _ in range(epochs):
        perm = torch.randperm(len(X))
        t0 = time.perf_counter()
        for s in range(0, len(X), batch):
            idx = perm[s : s + batch]
            xb, yb = X[idx].float(), Y[idx]
            opt.zero_grad(set_to_none=True)
            loss = loss_fn(model(xb), yb)
            loss.backward()
            opt.step()
        rate = len(X) / (time.perf_counter() - t0)
    return rate


def biodl_loop(model: nn.Module, x: np.ndarray, y: np.ndarray, batch: int, epochs: int = 2) -> float:
    """biodl's real training path; samples/s of the last epoch (timed by a callback)."""
    import lightning as L

    from biodl.training.fit import train_model

    times: list[float] = []

    class Timer(L.Callback):
        def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
            self.t0 = time.perf_counter()

        def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
            times.append(time.perf_counter() - self.t0)

    cfg = TrainConfig(max_epochs=epochs, batch_size=batch, progress_bar=False, early_stopping=False, lr_schedule="none")
    with tempfile.TemporaryDirectory() as tmp:
        train_model(model, "binary", cfg, (x, y), None, run_dir=Path(tmp), extra_callbacks=[Timer()])
    return len(x) / times[-1]


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


def bench_model(
    name: str, spec: dict[str, Any], batch: int, quick: bool, peak: float, repeats: int = 5
) -> tuple[dict[str, Any], list[list[Any]]]:
    """All measurements for one architecture."""
    n = spec["n"] // (4 if quick else 1)
    x, y = synthetic(n, spec["length"])

    def fresh() -> nn.Module:
        torch.manual_seed(0)
        return build_model(name, (4, spec["length"]), 1, spec["params"])

    flops = flops_per_step(fresh(), batch, spec["length"]) / batch  # per sample
    # interleaved repeats, best of each: one run of either loop varies by tens of per cent with
    # thread scheduling on a small CPU
    bares, ourss = [], []
    for _ in range(1 if quick else repeats):
        bares.append(bare_loop(fresh(), x, y, batch))
        ourss.append(biodl_loop(fresh(), x, y, batch))
    bare, ours = max(bares), max(ourss)
    load = loader_rate(x, y, batch)
    consume = bare / batch
    rec: dict[str, Any] = {
        "samples": n,
        "flops_per_sample": flops,
        "bare_samples_per_s": bare,
        "biodl_samples_per_s": ours,
        "overhead_ratio": ours / bare,
        "paired_ratio_median": float(np.median(np.asarray(ourss) / np.asarray(bares))),
        "bare_runs": bares,
        "biodl_runs": ourss,
        "loader_batches_per_s": load,
        "model_batches_per_s": consume,
    }
    variants = [variant(f"bare, batch {batch}, default threads", lambda: bare)]
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
    rows: list[list[Any]] = [
        [name, round(bare), round(ours), f"{ours / bare:.3f} (paired median {rec['paired_ratio_median']:.3f})", round(gf, 1),
         f"{gf / peak:.1%}", round(load), round(consume)]
    ]
    for k, v in variants:
        vg = v * flops / 1e9
        rows.append([f"  {name}: {k}", round(v) if v == v else "n/a", "", "", round(vg, 1), f"{vg / peak:.1%}", "", ""])
    return rec, rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--quick", action="store_true", help="smaller data, no torch.compile")
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--repeats", type=int, default=5, help="interleaved bare/biodl pairs per model")
    ap.add_argument("--models", nargs="+", choices=sorted(SPECS), default=sorted(SPECS), help="architectures to measure")
    args = ap.parse_args()
    peak = gemm_peak()
    rows: list[list[Any]] = []
    results: dict[str, Any] = {"gemm_peak_gflops": peak}
    for name, spec in SPECS.items():
        if name not in args.models:
            continue
        results[name], more = bench_model(name, spec, args.batch_size, args.quick, peak, args.repeats)
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
        "loader batches/s must exceed model batches/s. bare and biodl samples/s are the best of interleaved repeats "
        "(both listed in training_loop.json); single runs of the same loop vary by up to ±30 % on this machine.",
    )


if __name__ == "__main__":
    main()
