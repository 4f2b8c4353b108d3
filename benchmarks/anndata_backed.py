"""Atlas-scale AnnData: one epoch streamed from a backed ``.h5ad`` (issue: fit the ecosystem).

Writes a synthetic sparse AnnData (default 200,000 cells × 20,000 genes, ~5 % non-zero counts,
CSR, block by block so the generator never holds the matrix), then in fresh processes trains an
MLP for one epoch

* backed (``data.h5ad_backed: true``) on all cells: peak RSS (VmHWM) must stay ≤ 2 GB;
* in memory (sparse CSR loaded, densified per batch) on a subset of cells: the reference
  throughput; the backed run's training rows/s must be within 2× of it.

Throughput is the training epoch alone (rows / s between epoch start and end); the run then
predicts every cell, scores the splits and fits the linear baseline on a bounded sample.

    nice python benchmarks/anndata_backed.py [--cells 200000] [--genes 20000] [--density 0.05] [--subset 20000]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import write_results

CHILD = r"""
import json, sys, time
import lightning as L
from biodl import Experiment

path, out, backed = sys.argv[1], sys.argv[2], sys.argv[3] == "1"

class EpochTimer(L.Callback):
    def on_train_epoch_start(self, trainer, module):
        self.t0 = time.perf_counter()
    def on_train_epoch_end(self, trainer, module):
        self.seconds = time.perf_counter() - self.t0

timer = EpochTimer()
exp = Experiment(
    data={"path": [path], "task": "classification", "target_columns": ["cell_type"], "h5ad_backed": backed},
    model={"name": "mlp", "hidden_sizes": [64], "dropout": 0.1},
    train={"max_epochs": 1, "batch_size": 256, "progress_bar": False, "early_stopping": False, "threads": 1},
    evaluate={"baselines": ["linear"], "report": False, "plots": False},
)
t0 = time.perf_counter()
res = exp.fit(out, callbacks=[timer])
total = time.perf_counter() - t0
hwm = next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM"))
print(json.dumps({"epoch_seconds": timer.seconds, "total_seconds": total, "peak_rss_mb": hwm / 1024,
                  "train_rows": res.metrics["train"]["n"], "test_accuracy": res.metrics["test"]["accuracy"],
                  "baseline_test_accuracy": res.metrics["baseline"]["test"]["accuracy"]}))
"""


def write_cells(path: Path, n: int, genes: int, density: float, seed: int, block: int = 5000) -> dict[str, float]:
    """A CSR AnnData written block by block; the cell type is the largest of three 50-gene marker sums (+ noise)."""
    import anndata
    import h5py
    import pandas as pd
    from anndata.io import write_elem

    rng = np.random.default_rng(seed)
    t0 = time.perf_counter()
    labels = np.empty(n, dtype=np.int64)
    nnz = 0
    with h5py.File(path, "w") as fh:
        grp = fh.create_group("X")
        grp.attrs.update({"encoding-type": "csr_matrix", "encoding-version": "0.1.0", "shape": np.array([n, genes])})
        data = grp.create_dataset("data", shape=(0,), maxshape=(None,), dtype="float32", chunks=(1 << 18,))
        indices = grp.create_dataset("indices", shape=(0,), maxshape=(None,), dtype="int32", chunks=(1 << 18,))
        indptr = np.zeros(n + 1, dtype=np.int64)
        for start in range(0, n, block):
            rows = min(block, n - start)
            k = rng.binomial(rows * genes, density)
            flat = np.unique(rng.integers(0, rows * genes, size=k, dtype=np.int64))
            r, c = np.divmod(flat, genes)
            vals = (rng.poisson(1.0, len(flat)) + 1).astype(np.float32)
            marker = np.zeros((rows, 3), dtype=np.float64)
            in_marker = c < 150
            np.add.at(marker, (r[in_marker], c[in_marker] // 50), vals[in_marker])
            labels[start : start + rows] = np.argmax(marker + rng.normal(0, 1.0, marker.shape), axis=1)
            counts = np.bincount(r, minlength=rows)
            indptr[start + 1 : start + rows + 1] = nnz + np.cumsum(counts)
            data.resize((nnz + len(flat),))
            indices.resize((nnz + len(flat),))
            data[nnz:] = vals
            indices[nnz:] = c.astype(np.int32)
            nnz += len(flat)
        grp.create_dataset("indptr", data=indptr)
        obs = pd.DataFrame(
            {"cell_type": pd.Categorical(np.array(["B", "T", "NK"])[labels]), "donor": [f"d{i % 20}" for i in range(n)]},
            index=[f"cell{i}" for i in range(n)],
        )
        write_elem(fh, "obs", obs)
        write_elem(fh, "var", pd.DataFrame(index=[f"gene{j}" for j in range(genes)]))
        for name in ("obsm", "varm", "layers", "obsp", "varp", "uns"):
            write_elem(fh, name, {})
        fh.attrs.update({"encoding-type": "anndata", "encoding-version": "0.1.0"})
    anndata.read_h5ad(path, backed="r").file.close()  # readable by anndata
    return {"seconds": time.perf_counter() - t0, "nnz": nnz, "file_mb": path.stat().st_size / 1e6}


def _describe(path: Path, genes: int) -> dict[str, float]:
    """Cells, non-zeros and size of an existing file (``--reuse``)."""
    import h5py

    with h5py.File(path, "r") as fh:
        shape = fh["X"].attrs["shape"]
        if int(shape[1]) != genes:
            sys.exit(f"{path}: {shape[1]} genes, not --genes {genes}")
        return {"cells": int(shape[0]), "nnz": int(fh["X/data"].shape[0]), "file_mb": path.stat().st_size / 1e6, "seconds": 0.0}


def run(path: Path, out: Path, backed: bool) -> dict[str, float]:
    cmd = [sys.executable, "-c", CHILD, str(path), str(out), "1" if backed else "0"]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        sys.exit(f"training on {path.name} failed:\n{proc.stderr[-3000:]}")
    rec = json.loads(proc.stdout.strip().splitlines()[-1])
    rec["train_rows_per_s"] = rec["train_rows"] / rec["epoch_seconds"]
    return rec


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--cells", type=int, default=200_000)
    ap.add_argument("--genes", type=int, default=20_000)
    ap.add_argument("--density", type=float, default=0.05)
    ap.add_argument("--subset", type=int, default=20_000, help="cells of the in-memory reference run")
    ap.add_argument("--workdir", default=None, help="where the .h5ad files go (default: a temporary folder)")
    ap.add_argument("--reuse", default=None, help="a folder holding atlas.h5ad and subset.h5ad written by an earlier run")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(dir=args.workdir) as tmp:
        folder = Path(args.reuse) if args.reuse else Path(tmp)
        big, small = folder / "atlas.h5ad", folder / "subset.h5ad"
        if args.reuse:
            gen_big, gen_small = (_describe(p, args.genes) for p in (big, small))
            args.cells, args.subset = int(gen_big.pop("cells")), int(gen_small.pop("cells"))
        else:
            gen_big = write_cells(big, args.cells, args.genes, args.density, seed=0)
            gen_small = write_cells(small, args.subset, args.genes, args.density, seed=1)
        backed = run(big, Path(tmp) / "run_backed", backed=True)
        print(f"backed: {backed}", flush=True)
        memory = run(small, Path(tmp) / "run_memory", backed=False)
    ratio = memory["train_rows_per_s"] / backed["train_rows_per_s"]
    rss_ok, speed_ok = backed["peak_rss_mb"] <= 2048, ratio <= 2.0
    rows = [
        ["backed (streamed)", args.cells, round(gen_big["file_mb"]), round(backed["peak_rss_mb"]),
         round(backed["train_rows_per_s"]), round(backed["total_seconds"]), round(backed["test_accuracy"], 3),
         round(backed["baseline_test_accuracy"], 3)],
        ["in memory (sparse CSR)", args.subset, round(gen_small["file_mb"]), round(memory["peak_rss_mb"]),
         round(memory["train_rows_per_s"]), round(memory["total_seconds"]), round(memory["test_accuracy"], 3),
         round(memory["baseline_test_accuracy"], 3)],
    ]  # fmt: skip
    notes = (
        f"{args.cells:,} cells × {args.genes:,} genes at {args.density:.0%} non-zero ({gen_big['nnz']:,} non-zeros). "
        f"Backed peak RSS {backed['peak_rss_mb']:.0f} MB (target ≤ 2048 MB: {'PASS' if rss_ok else 'FAIL'}); "
        f"in-memory / backed training throughput {ratio:.2f}× (target ≤ 2×: {'PASS' if speed_ok else 'FAIL'}). "
        "One epoch of an MLP (64 hidden units, batch 256, 1 thread), each in a fresh process; peak RSS is the "
        "process's VmHWM over the whole run (read, fit normalisation, train, predict every cell, metrics, linear baseline)."
    )
    write_results(
        "anndata_backed",
        {
            "cells": args.cells, "genes": args.genes, "density": args.density, "subset": args.subset,
            "generation": {"atlas": gen_big, "subset": gen_small}, "backed": backed, "in_memory": memory,
            "throughput_ratio": ratio, "pass": {"peak_rss_le_2gb": rss_ok, "throughput_within_2x": speed_ok},
        },
        ["run", "cells", "file MB", "peak RSS MB", "train rows/s", "total s", "test accuracy", "linear baseline"],
        rows,
        notes,
    )  # fmt: skip


if __name__ == "__main__":
    main()
