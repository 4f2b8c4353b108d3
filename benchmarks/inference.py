"""Inference engines: eager PyTorch vs ONNX Runtime, latency and throughput at batch 1 and 128.

Builds a DeepBind-size network from the model registry (``deepbind`` on one-hot DNA of length
101; an MLP on the same inputs when ``deepbind`` is not registered, which the results say),
checks that both engines agree (max |Δ| ≤ 1e-4), then times single calls of each engine.
Engines and batch sizes are measured in interleaved rounds so that load from other processes
on a shared machine affects them alike. Writes ``results/inference.{json,md}``.

    nice -n 10 python benchmarks/inference.py [--seconds 6] [--threads 1] [--length 101]
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import write_results

BATCHES = (1, 128)


def build(length: int) -> tuple[Any, str, str]:
    """The network, its registry name, and a note when the fallback was used."""
    from biodl.models import MODELS, build_model, count_parameters

    if "deepbind" in MODELS:
        model = build_model("deepbind", (4, length), 1, {})
        note = ""
        name = "deepbind"
    else:
        model = build_model("mlp", (4, length), 1, {"hidden_sizes": [32]})
        name = "mlp"
        note = "`deepbind` is not registered in this checkout: an MLP on the same one-hot inputs was measured instead."
    return model.eval(), name, f"{note} {count_parameters(model)} parameters.".strip()


def one_hot(n: int, length: int, rng: np.random.Generator) -> np.ndarray:
    """Random one-hot DNA ``(n, 4, length)`` float32."""
    return np.eye(4, dtype=np.float32)[rng.integers(0, 4, (n, length))].transpose(0, 2, 1).copy()


def time_calls(fn: Callable[[np.ndarray], np.ndarray], X: np.ndarray, seconds: float, max_calls: int) -> list[float]:
    """Per-call wall times (seconds) of ``fn(X)`` for about ``seconds``."""
    times: list[float] = []
    stop = time.perf_counter() + seconds
    while time.perf_counter() < stop and len(times) < max_calls:
        t0 = time.perf_counter_ns()
        fn(X)
        times.append((time.perf_counter_ns() - t0) / 1e9)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=6.0, help="measuring time per engine and batch size (default 6)")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds (default 3)")
    parser.add_argument("--threads", type=int, default=1, help="intra-op threads of both engines (default 1)")
    parser.add_argument("--length", type=int, default=101, help="sequence length (default 101)")
    args = parser.parse_args()

    import torch

    from biodl.engine import OnnxEngine, TorchEngine
    from biodl.export.graph import InferenceNet, to_onnx
    from biodl.export.parity import max_abs_diff

    torch.set_num_threads(args.threads)
    model, name, note = build(args.length)
    net = InferenceNet(model, "binary").eval()
    engines = {"torch": TorchEngine(net), "onnx": OnnxEngine(to_onnx(net, model_name=name), threads=args.threads)}
    rng = np.random.default_rng(0)
    inputs = {b: one_hot(b, args.length, rng) for b in BATCHES}
    parity = max(max_abs_diff(engines["onnx"].predict(X), engines["torch"].predict(X)) for X in inputs.values())
    assert parity <= 1e-4, f"engines disagree: max |Δ| {parity}"

    samples: dict[tuple[str, int], list[float]] = {(e, b): [] for e in engines for b in BATCHES}
    for engine in engines.values():  # warm-up
        for X in inputs.values():
            for _ in range(20):
                engine.predict(X)
    share = args.seconds / args.rounds
    for _ in range(args.rounds):
        for b, X in inputs.items():
            for e, engine in engines.items():
                samples[(e, b)] += time_calls(engine.predict, X, share, 200_000)

    results: dict[str, Any] = {}
    rows = []
    for b in BATCHES:
        base = float(np.median(samples[("torch", b)]))
        for e in engines:
            t = np.asarray(samples[(e, b)])
            med = float(np.median(t))
            entry = {
                "calls": len(t),
                "median_us": med * 1e6,
                "p10_us": float(np.percentile(t, 10)) * 1e6,
                "p90_us": float(np.percentile(t, 90)) * 1e6,
                "p99_us": float(np.percentile(t, 99)) * 1e6,
                "rows_per_s": b / med,
                "speedup_vs_torch": base / med,
            }
            results[f"{e}_batch{b}"] = entry
            rows.append(
                [
                    e,
                    b,
                    entry["calls"],
                    entry["median_us"],
                    entry["p10_us"],
                    entry["p90_us"],
                    entry["p99_us"],
                    entry["rows_per_s"],
                    entry["speedup_vs_torch"],
                ]
            )
    headline = ", ".join(f"batch {b}: onnx {results[f'onnx_batch{b}']['speedup_vs_torch']:.2f}× torch" for b in BATCHES)
    import onnxruntime

    payload = {
        "model": name,
        "input_shape": [4, args.length],
        "note": note,
        "threads": args.threads,
        "onnxruntime": onnxruntime.__version__,
        "parity_max_abs_diff": parity,
        "seconds_per_cell": args.seconds,
        "results": results,
        "headline": headline,
    }
    notes = (
        f"Model: {name} on one-hot DNA (4 × {args.length}). {note} Both engines run the network with its sigmoid head on "
        f"{args.threads} intra-op thread(s); latency is one `predict` call (median, 10th/90th/99th percentile); "
        f"rows/s = batch / median latency. Engines agree to max |Δ| = {parity:.1e}. Measured in {args.rounds} interleaved rounds "
        "on a shared machine: expect noise, compare the two engines within one run."
    )
    write_results(
        "inference",
        payload,
        ["engine", "batch", "calls", "median µs", "p10 µs", "p90 µs", "p99 µs", "rows/s", "speed-up vs torch"],
        rows,
        notes,
    )


if __name__ == "__main__":
    main()
