"""Streamed ``biodl predict``: flat peak memory over 10^5–10^7 rows and rows/s next to the bare engine.

Three cases (``--case``), each in fresh processes with one CPU thread and the PyTorch engine:

* ``deepbind``: random 101-bp DNA tables (TSV: ``EventID``, ``seq``) and a DeepBind model;
* ``image``: a folder of BreastMNIST PNG images (the NPZ's images repeated under new names) and
  biodl's default image CNN trained for one epoch on BreastMNIST;
* ``npz``: one compressed NPZ file of BreastMNIST images (``images`` array, repeated) and the same
  image CNN (the array is read from the zip member in row blocks);
* ``store``: the ``deepbind`` tables converted to biodl stores (``biodl data convert --no-targets``,
  HDF5, rows stored shuffled as for training, so the results are also put back in input order);
  the bare engine runs on the TSV's rows;
* ``tabular``: CSV tables of 8 random features and a small MLP (a cheap model, so that reading
  and writing dominate: the check that memory stays flat up to 10^7 rows).

For every size ``biodl predict --chunk-rows N`` runs in a fresh process (peak RSS of that process,
its end-to-end time and the rows/s of its streaming loop as it prints them). The bare engine
(:class:`biodl.engine.TorchEngine` on the same rows read and encoded in memory beforehand; only
the engine is timed) runs in another fresh process on the smallest size, alternating with a
streamed run of that size ``--repeats`` times; the ratio is the median of these paired runs.
Targets: peak RSS grows ≤ 20 % from the smallest to the largest size; streaming rows/s ≥ 0.8×
the bare engine (DeepBind and the image classifier). Writes ``results/predict_stream_CASE.{json,md}``
(``results/predict_stream.{json,md}``: an earlier DeepBind run of 10^5 and 10^6 rows).

    nice -n 10 python benchmarks/predict_stream.py --case deepbind [--sizes 100000 1000000] [--model-path RUN]
    nice -n 10 python benchmarks/predict_stream.py --case image --sizes 20000
    nice -n 10 python benchmarks/predict_stream.py --case tabular --sizes 100000 1000000 10000000
    python benchmarks/predict_stream.py --case store --sizes 100000 1000000
    python benchmarks/predict_stream.py --case npz --sizes 20000 100000
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import write_results
from serve_load import train_deepbind

HERE = Path(__file__).resolve().parent
BREAST = HERE.parent.parent / "shared" / "datasets" / "images" / "breastmnist" / "breastmnist_train_val.npz"
FEATURES = 8

BARE = r"""
import json, sys, time, numpy as np, torch
torch.set_num_threads(1)
from biodl import load
from biodl.engine import TorchEngine
from biodl.inference import load_data
bundle = load(sys.argv[1])
data = load_data(bundle, [sys.argv[2]], None, require_targets=False)
X = bundle.modality.transform(np.asarray(data.X))  # pre-encoded, in memory
engine = TorchEngine.from_bundle(bundle)
engine.predict(X[:1024])
t0 = time.perf_counter()
out = engine.predict(X)
print(json.dumps({"rows": len(X), "seconds": time.perf_counter() - t0}))
"""

#: In one fresh process: the bare engine on the rows pre-encoded in memory and ``stream_predict`` on
#: the same input with the same engine object, alternating ``repeats`` times (rows/s of each).
INPROCESS = r"""
import json, sys, time, numpy as np, torch
torch.set_num_threads(1)
from biodl import load
from biodl.engine import TorchEngine
from biodl.inference import load_data
from biodl.predict_stream import stream_predict
bundle, data_path, out, chunk, repeats = load(sys.argv[1]), sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
over = {"image.layout": "auto"} if bundle.modality.name == "image" else None
X = bundle.modality.transform(np.asarray(load_data(bundle, [data_path], over, require_targets=False).X))
engine = TorchEngine.from_bundle(bundle)
engine.predict(X[:512])
runs = []
for r in range(repeats):
    t0 = time.perf_counter(); engine.predict(X); bare = len(X) / (time.perf_counter() - t0)
    t0 = time.perf_counter(); _, n, _ = stream_predict(bundle, [data_path], out, engine.predict, chunk_rows=chunk)
    runs.append({"bare_rows_per_s": bare, "streamed_rows_per_s": n / (time.perf_counter() - t0)})
print(json.dumps(runs))
"""


def in_process(model: Path, data: Path, out: Path, chunk: int, repeats: int) -> list[dict[str, float]]:
    """Bare engine and streamed prediction alternating in one fresh process (rows/s of each run)."""
    proc = subprocess.run(
        [sys.executable, "-c", INPROCESS, str(model), str(data), str(out), str(chunk), str(repeats)],
        capture_output=True, text=True, env=dict(os.environ, OMP_NUM_THREADS="1"),
    )  # fmt: skip
    if proc.returncode != 0:
        raise SystemExit(proc.stderr[-3000:])
    runs: list[dict[str, float]] = json.loads(proc.stdout.strip().splitlines()[-1])
    for run in runs:
        run["ratio"] = run["streamed_rows_per_s"] / run["bare_rows_per_s"]
    return runs


def write_table(path: Path, rows: int, length: int, seed: int) -> None:
    """A TSV of ``rows`` random DNA sequences with an ``EventID`` column (as DeepBind's ENCODE files), in blocks."""
    rng = np.random.default_rng(seed)
    letters = np.frombuffer(b"ACGT", dtype=np.uint8)
    with open(path, "wb") as fh:
        fh.write(b"EventID\tseq\n")
        for start in range(0, rows, 100_000):
            n = min(100_000, rows - start)
            seqs = letters[rng.integers(0, 4, (n, length))].view(f"S{length}").ravel()
            fh.write(b"".join(b"r%d\t%s\n" % (start + i, s) for i, s in enumerate(seqs)))


def run_predict(model: Path, table: Path, out: Path, chunk_rows: int) -> dict[str, float]:
    """``biodl predict`` in a fresh process: wall seconds and peak RSS (MiB)."""
    biodl = str(Path(sys.executable).parent / "biodl")
    cmd = [biodl, "predict", "--model-path", str(model), "--data-path", str(table), "--output", str(out)]
    cmd += ["--engine", "torch", "--chunk-rows", str(chunk_rows)]
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    # a wrapper process per size: ru_maxrss of its (only) child is that run's peak RSS
    wrapper = (
        "import json, resource, subprocess, sys; p = subprocess.run(sys.argv[1:], capture_output=True, text=True); "
        "print(json.dumps({'rc': p.returncode, 'out': p.stdout, 'err': p.stderr[-3000:], "
        "'peak': resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss}))"
    )
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", wrapper, *cmd], capture_output=True, text=True, env=env)
    seconds = time.perf_counter() - t0
    res = json.loads(proc.stdout.strip().splitlines()[-1])
    if res["rc"] != 0:
        raise SystemExit(res["err"])
    peak = res["peak"]
    last = [x for x in res["out"].splitlines() if "predictions written" in x][-1]
    rate = float(last.rsplit(", ", 1)[1].split(" rows/s")[0])
    return {"seconds": seconds, "peak_rss_mib": peak / 1024, "reported_rows_per_s": rate}


def write_images(folder: Path, n: int) -> None:
    """``n`` BreastMNIST images (train and val, repeated) as ``img{i}.png`` in ``folder``."""
    from PIL import Image

    with np.load(BREAST) as z:
        images = np.concatenate([z["train_images"], z["val_images"]])
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        Image.fromarray(images[i % len(images)]).save(folder / f"img{i}.png")


def write_features(path: Path, rows: int, seed: int) -> None:
    """A CSV of ``rows`` rows of 8 random features (and a target ``y``), written in blocks."""
    import pandas as pd

    rng = np.random.default_rng(seed)
    with open(path, "w") as fh:
        for start in range(0, rows, 500_000):
            X = rng.normal(size=(min(500_000, rows - start), FEATURES)).astype(np.float32)
            frame = pd.DataFrame(X, columns=[f"f{j}" for j in range(FEATURES)])
            frame["y"] = X[:, 0] + X[:, 1] ** 2
            frame.to_csv(fh, index=False, header=start == 0, float_format="%.5g")


def train_image(out: Path) -> Path:
    """biodl's default image CNN, one epoch on BreastMNIST."""
    from biodl import Experiment

    Experiment(
        data={"type": "image", "path": [str(BREAST)], "task": "classification"},
        model={"name": "cnn"},
        train={"max_epochs": 1, "progress_bar": False, "seed": 0},
        evaluate={"baselines": [], "report": False, "plots": False},
    ).fit(out)
    return out


def train_tabular(out: Path, table: Path) -> Path:
    """A small MLP on 2000 rows of the random features."""
    from biodl import Experiment

    write_features(table, 2000, seed=1)
    Experiment(
        data={"path": [str(table)], "task": "regression", "target_columns": ["y"]},
        model={"name": "mlp", "hidden_sizes": [32]},
        train={"max_epochs": 2, "progress_bar": False, "seed": 0},
        evaluate={"baselines": [], "report": False, "plots": False},
    ).fit(out)
    return out


def convert_store(table: Path, store: Path) -> None:
    """``biodl data convert`` of a DeepBind table to an HDF5 store (inputs and ids, rows shuffled)."""
    biodl = str(Path(sys.executable).parent / "biodl")
    cmd = [biodl, "data", "convert", "--data-path", str(table), "--data-type", "sequence", "--sequence-column", "seq"]
    cmd += ["--id-column", "EventID", "--no-targets", "--output", str(store)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(proc.stderr[-3000:])


def make_input(case: str, tmp: Path, size: int, length: int) -> Path:
    if case == "store":
        table = tmp / f"seqs_{size}.tsv"
        write_table(table, size, length, seed=size)
        path = tmp / f"seqs_{size}.h5"
        convert_store(table, path)
    elif case == "npz":
        path = tmp / f"images_{size}.npz"
        with np.load(BREAST) as z:
            images = np.concatenate([z["train_images"], z["val_images"]])
        np.savez_compressed(path, images=np.resize(images, (size, *images.shape[1:])))
    elif case == "deepbind":
        path = tmp / f"seqs_{size}.tsv"
        write_table(path, size, length, seed=size)
    elif case == "image":
        path = tmp / f"images_{size}"
        write_images(path, size)
    else:
        path = tmp / f"features_{size}.csv"
        write_features(path, size, seed=size)
    return path


def remove(path: Path) -> None:
    if path.is_dir():
        for f in path.iterdir():
            f.unlink()
        path.rmdir()
    else:
        path.unlink()


def bare_engine(model: Path, data: Path) -> dict[str, float]:
    """The bare engine in a fresh process on ``data`` read and encoded in memory first."""
    proc = subprocess.run(
        [sys.executable, "-c", BARE, str(model), str(data)],
        capture_output=True, text=True, env=dict(os.environ, OMP_NUM_THREADS="1"),
    )  # fmt: skip
    if proc.returncode != 0:
        raise SystemExit(proc.stderr[-3000:])
    res = json.loads(proc.stdout.strip().splitlines()[-1])
    return {**res, "rows_per_s": res["rows"] / res["seconds"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--case", choices=("deepbind", "image", "tabular", "store", "npz"), default="deepbind")
    parser.add_argument("--sizes", type=int, nargs="+", help="rows per input (default per case)")
    parser.add_argument("--chunk-rows", type=int, help="rows per chunk (default 16384; images 4096)")
    parser.add_argument("--length", type=int, default=101)
    parser.add_argument("--repeats", type=int, default=2, help="paired bare/streamed runs on the smallest size (default 2)")
    parser.add_argument("--model-path", help="a trained run for the case (default: train one here)")
    parser.add_argument("--name", help="results/NAME.{json,md} (default predict_stream_CASE)")
    parser.add_argument(
        "--in-process-rows", type=int, default=0, help="rows of the same-process alternating check (default: none)"
    )
    args = parser.parse_args()
    load_start = os.getloadavg()[0]
    defaults = {"deepbind": [100_000], "image": [20_000], "tabular": [100_000, 1_000_000, 10_000_000]}
    defaults |= {"store": [100_000], "npz": [20_000]}
    sizes = sorted(args.sizes or defaults[args.case])
    chunk = args.chunk_rows or (4096 if args.case in ("image", "npz") else 16384)
    name = args.name or f"predict_stream_{args.case}"
    what = {
        "deepbind": "DeepBind (random 101-bp DNA, TSV)",
        "image": "default image CNN (BreastMNIST 28×28 PNG files in one folder)",
        "tabular": f"MLP on {FEATURES} features (CSV)",
        "npz": "default image CNN (BreastMNIST 28×28 images in one compressed NPZ file)",
        "store": "DeepBind (random 101-bp DNA, HDF5 store of `biodl data convert`, rows stored shuffled)",
    }[args.case]

    with tempfile.TemporaryDirectory() as tmp_dir:
        tmp = Path(tmp_dir)
        if args.model_path:
            model = Path(args.model_path)
        elif args.case in ("deepbind", "store"):
            model = train_deepbind(tmp / "db", tmp / "rest.tsv")
        elif args.case in ("image", "npz"):
            model = train_image(tmp / "img")
        else:
            model = train_tabular(tmp / "tab", tmp / "train.csv")
        results = []
        pairs = []
        for size in sizes:
            data = make_input(args.case, tmp, size, args.length)
            bare_data = data.with_suffix(".tsv") if args.case == "store" else data  # the bare engine reads the table
            runs = []
            for r in range(args.repeats if size == sizes[0] else 1):
                if size == sizes[0] and r % 2 == 0:
                    bare = bare_engine(model, bare_data)
                res = run_predict(model, data, tmp / f"pred_{size}.parquet", chunk)
                if size == sizes[0] and r % 2 == 1:
                    bare = bare_engine(model, bare_data)
                if size == sizes[0]:
                    pairs.append({"bare": bare, "streamed": res, "ratio": res["reported_rows_per_s"] / bare["rows_per_s"],
                                  "ratio_process": size / res["seconds"] / bare["rows_per_s"]})  # fmt: skip
                    print(json.dumps(pairs[-1]), flush=True)
                runs.append(res)
            res = min(runs, key=lambda x: x["seconds"]) | {"rows": size}
            res["rows_per_s"] = size / res["seconds"]
            res["input_mib"] = (
                sum(f.stat().st_size for f in data.iterdir()) / 2**20 if data.is_dir() else data.stat().st_size / 2**20
            )
            results.append(res)
            print(json.dumps(res), flush=True)
            remove(data)
            if bare_data != data:
                remove(bare_data)
        same_process: list[dict[str, float]] = []
        if args.in_process_rows:
            data = make_input(args.case, tmp, args.in_process_rows, args.length)
            same_process = in_process(model, data, tmp / "inproc.parquet", max(1, args.in_process_rows // 4), 3)
            print(json.dumps(same_process), flush=True)
    growth = results[-1]["peak_rss_mib"] / results[0]["peak_rss_mib"] - 1
    ratio = float(np.median([p["ratio"] for p in pairs]))
    ratio_process = float(np.median([p["ratio_process"] for p in pairs]))
    load_end = os.getloadavg()[0]
    bare_rate = float(np.median([p["bare"]["rows_per_s"] for p in pairs]))
    header = ["rows", "input MiB", "peak RSS MiB", "end-to-end s", "start-up s", "rows/s (process)",
              "rows/s (streaming loop)", "× bare engine (streaming loop)", "× bare engine (whole process)"]  # fmt: skip
    table_rows = [
        [r["rows"], r["input_mib"], r["peak_rss_mib"], r["seconds"], r["seconds"] - r["rows"] / r["reported_rows_per_s"],
         r["rows_per_s"], r["reported_rows_per_s"], r["reported_rows_per_s"] / bare_rate, r["rows_per_s"] / bare_rate]
        for r in results
    ]  # fmt: skip
    command = "python benchmarks/predict_stream.py " + " ".join(sys.argv[1:])
    payload = {
        "command": command,
        "case": args.case,
        "model": what,
        "chunk_rows": chunk,
        "sizes": results,
        "paired_runs": pairs,
        "bare_engine_rows_per_s_median": bare_rate,
        "peak_rss_growth": growth,
        "ratio_streaming_loop_vs_bare_median": ratio,
        "ratio_whole_process_vs_bare_median": ratio_process,
        "load_average_start": load_start,
        "load_average_end": load_end,
        "same_process_runs": same_process,
        "same_process_ratio_median": float(np.median([r["ratio"] for r in same_process])) if same_process else None,
        "targets_met": {
            "rss_growth_le_20pct": growth <= 0.2,
            "ratio_ge_0.8": ratio >= 0.8,
            "whole_process_ratio_ge_0.8": ratio_process >= 0.8,
        },
    }
    paired = ", ".join(f"{p['ratio']:.2f}" for p in pairs)
    paired_process = ", ".join(f"{p['ratio_process']:.2f}" for p in pairs)
    if same_process:
        inproc = ", ".join(f"{r['ratio']:.2f}" for r in same_process)
        same = (
            f" In one process (the bare engine and `stream_predict` with the same engine object alternating 3 times on "
            f"{args.in_process_rows} rows, chunks of {max(1, args.in_process_rows // 4)}): "
            f"{payload['same_process_ratio_median']:.2f}× (median of {inproc})."
        )
    else:
        same = ""
    notes = (
        f"`{command}`: `biodl predict --engine torch --chunk-rows {chunk}` (one CPU thread) on {what}, a fresh process "
        f"per run, Parquet output; the row at each size is its fastest run. Bare engine: TorchEngine.predict on the "
        f"{sizes[0]} rows read and encoded in memory first (one thread; only the engine timed), in a fresh process, "
        f"alternating with {len(pairs)} streamed runs of that size: streaming loop (rows/s as printed by biodl) / bare "
        f"engine = {ratio:.2f}× (median of the paired runs: {paired}; target ≥ "
        f"0.8×); the whole process (start-up, imports and model load included: rows / wall seconds of the process) / "
        f"bare engine = {ratio_process:.2f}× (median of {paired_process}); the × columns divide by the median bare "
        f"rate, {bare_rate:.0f} rows/s; start-up s = end-to-end s − rows / streaming-loop rate (a fixed cost that "
        f"larger inputs amortise). Peak RSS growth {sizes[0]} → "
        f"{sizes[-1]} rows: {growth * 100:+.1f} % (target ≤ 20 %). Shared 2-core machine (load average "
        f"{load_start:.1f} at the start, {load_end:.1f} at the end): absolute figures are noisy.{same}"
    )
    write_results(name, payload, header, table_rows, notes)


if __name__ == "__main__":
    main()
