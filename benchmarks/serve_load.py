"""Bounded load test of ``biodl serve`` on loopback: requests/s and p50/p99 latency at concurrency 1, 8, 32.

Starts ``biodl serve`` on 127.0.0.1 (a free port) for a trained tabular run (``--model-path``, or
a small PBMC classifier trained here in a temporary directory), sends a fixed number of
single-row ``/predict`` requests at each concurrency level under a time limit, then a burst of
bad requests (malformed JSON, wrong types, invalid rows, oversize bodies, too many inputs), and
checks that every bad request got a 4xx, that no request got a 5xx, and that the server still
answers afterwards. Writes ``results/serve_load.{json,md}``; exits 1 if any check fails.

    nice -n 10 python benchmarks/serve_load.py [--requests 300] [--time-limit 60] [--engine auto]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import write_results

PBMC = Path(__file__).resolve().parents[1] / "src" / "biodl" / "resources" / "pbmc68k_reduced.h5ad"
LEVELS = (1, 8, 32)
MAX_BODY_BYTES = 200_000
MAX_BATCH = 64


def train_small(out: Path) -> Path:
    """A PBMC cell-type MLP trained for a few epochs (the served model)."""
    from biodl import Experiment

    exp = Experiment(
        data={"path": [str(PBMC)], "task": "classification", "target_columns": ["bulk_labels"]},
        model={"name": "mlp", "hidden_sizes": [64]},
        train={"max_epochs": 3, "progress_bar": False, "seed": 0},
        evaluate={"baselines": [], "report": False, "plots": False},
    )
    exp.fit(out)
    return out


def start_server(model_path: Path, engine: str) -> tuple[subprocess.Popen[str], str, list[str]]:
    """``biodl serve`` on a free loopback port; returns the process, its URL and its output lines."""
    biodl = str(Path(sys.executable).parent / "biodl")
    cmd = [biodl, "serve", "--model-path", str(model_path), "--host", "127.0.0.1", "--port", "0", "--engine", engine]
    cmd += ["--max-body-bytes", str(MAX_BODY_BYTES), "--max-batch", str(MAX_BATCH)]
    proc = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=dict(os.environ, PYTHONUNBUFFERED="1")
    )
    lines: list[str] = []
    ready = threading.Event()

    def drain() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line)
            if " on http://" in line:
                ready.set()
        ready.set()

    threading.Thread(target=drain, daemon=True).start()
    if not ready.wait(300) or proc.poll() is not None:
        proc.kill()
        raise SystemExit("the server did not start:\n" + "".join(lines)[-3000:])
    url = next(x for x in lines if " on http://" in x).split(" on ", 1)[1].split(" ", 1)[0]
    return proc, url, lines


async def load_level(url: str, rows: np.ndarray, concurrency: int, n_requests: int, time_limit: float) -> dict[str, Any]:
    """``n_requests`` single-row predictions with ``concurrency`` workers (stops at ``time_limit``)."""
    import httpx

    bodies = [json.dumps({"inputs": [r.tolist()]}).encode() for r in rows[:64]]
    latencies: list[float] = []
    statuses: Counter[int] = Counter()
    errors: list[str] = []
    next_index = 0
    deadline = time.perf_counter() + time_limit

    async def worker(client: httpx.AsyncClient) -> None:
        nonlocal next_index
        while next_index < n_requests and time.perf_counter() < deadline:
            i = next_index
            next_index += 1
            t0 = time.perf_counter()
            try:
                res = await client.post(
                    f"{url}/predict", content=bodies[i % len(bodies)], headers={"content-type": "application/json"}
                )
                statuses[res.status_code] += 1
            except httpx.HTTPError as exc:
                errors.append(type(exc).__name__)
                continue
            latencies.append(time.perf_counter() - t0)

    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(timeout=30, limits=limits) as client:
        await client.get(f"{url}/health")
        start = time.perf_counter()
        await asyncio.gather(*(worker(client) for _ in range(concurrency)))
        elapsed = time.perf_counter() - start
    lat = np.asarray(latencies) * 1e3
    return {
        "concurrency": concurrency,
        "requests": int(sum(statuses.values())),
        "seconds": elapsed,
        "requests_per_s": sum(statuses.values()) / elapsed if elapsed > 0 else 0.0,
        "p50_ms": float(np.percentile(lat, 50)) if lat.size else None,
        "p99_ms": float(np.percentile(lat, 99)) if lat.size else None,
        "status": {str(k): v for k, v in sorted(statuses.items())},
        "transport_errors": len(errors),
        "n_5xx": sum(v for k, v in statuses.items() if k >= 500),
    }


def bad_requests(n_features: int) -> list[tuple[str, bytes]]:
    """One of each kind of bad request."""
    return [
        ("malformed JSON", b'{"inputs": [[1, 2'),
        ("not an object", b"[1, 2, 3]"),
        ("inputs not a list", b'{"inputs": "abc"}'),
        ("empty inputs", b'{"inputs": []}'),
        ("unknown field", b'{"rows": [[1]]}'),
        ("wrong row length", b'{"inputs": [[1, 2, 3]]}'),
        ("strings in a row", json.dumps({"inputs": [["x"] * n_features]}).encode()),
        ("non-finite", json.dumps({"inputs": [[1e999] * n_features]}).encode()),
        ("oversize body", json.dumps({"inputs": ["A" * (MAX_BODY_BYTES + 1)]}).encode()),
        ("too many inputs", json.dumps({"inputs": [[0.0] * n_features] * (MAX_BATCH + 1)}).encode()),
        ("deep nesting", b'{"inputs": ' + b"[" * 50_000 + b"]" * 50_000 + b"}"),
    ]


async def bad_burst(url: str, n_features: int, repeats: int) -> dict[str, Any]:
    """Every kind of bad request ``repeats`` times, 32 at a time."""
    import httpx

    kinds = bad_requests(n_features)
    outcome: dict[str, Counter[int]] = {name: Counter() for name, _ in kinds}
    semaphore = asyncio.Semaphore(32)

    async def send(client: httpx.AsyncClient, name: str, body: bytes) -> None:
        async with semaphore:
            try:
                res = await client.post(f"{url}/predict", content=body, headers={"content-type": "application/json"})
                outcome[name][res.status_code] += 1
            except httpx.HTTPError:
                outcome[name][0] += 1  # connection closed early (only acceptable for oversize bodies)

    async with httpx.AsyncClient(timeout=60) as client:
        await asyncio.gather(*(send(client, name, body) for _ in range(repeats) for name, body in kinds))
    statuses: Counter[int] = Counter()
    for counts in outcome.values():
        statuses.update(counts)
    answered_4xx = all(400 <= k < 500 or (k == 0 and name == "oversize body") for name, c in outcome.items() for k in c)
    return {
        "requests": sum(statuses.values()),
        "by_kind": {name: {str(k): v for k, v in c.items()} for name, c in outcome.items()},
        "all_4xx": answered_4xx,
        "n_5xx": sum(v for k, v in statuses.items() if k >= 500),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-path", help="a trained tabular run (default: train a small PBMC model here)")
    parser.add_argument("--requests", type=int, default=300, help="requests per concurrency level (default 300)")
    parser.add_argument("--time-limit", type=float, default=60.0, help="seconds per level at most (default 60)")
    parser.add_argument("--bad-repeats", type=int, default=20, help="repeats of each bad request in the burst (default 20)")
    parser.add_argument("--engine", default="auto", choices=("auto", "torch", "onnx"))
    args = parser.parse_args()

    import anndata
    import httpx

    rows = np.asarray(anndata.read_h5ad(PBMC).X, dtype=np.float32)
    with tempfile.TemporaryDirectory() as tmp:
        model_path = Path(args.model_path) if args.model_path else train_small(Path(tmp) / "pbmc")
        proc, url, output = start_server(model_path, args.engine)
        try:
            engine_line = next((x.strip() for x in output if x.startswith("engine:")), "")
            levels = [asyncio.run(load_level(url, rows, c, args.requests, args.time_limit)) for c in LEVELS]
            burst = asyncio.run(bad_burst(url, rows.shape[1], args.bad_repeats))
            after = asyncio.run(load_level(url, rows, 8, 40, args.time_limit))
            health = httpx.get(f"{url}/health", timeout=10).json()
        finally:
            proc.terminate()
            proc.wait(timeout=30)
    alive = after["status"] == {"200": after["requests"]} and after["requests"] == 40 and health["status"] == "ok"
    zero_5xx = all(lvl["n_5xx"] == 0 for lvl in [*levels, after]) and burst["n_5xx"] == 0
    rows_md = [
        [
            lvl["concurrency"],
            lvl["requests"],
            lvl["requests_per_s"],
            lvl["p50_ms"],
            lvl["p99_ms"],
            lvl["n_5xx"],
            lvl["transport_errors"],
        ]
        for lvl in levels
    ]
    headline = ", ".join(
        f"c={lvl['concurrency']}: {lvl['requests_per_s']:.0f} req/s p99 {lvl['p99_ms']:.1f} ms" for lvl in levels
    )
    payload = {
        "engine": engine_line,
        "levels": levels,
        "bad_burst": burst,
        "after_burst": after,
        "health": health,
        "zero_5xx": zero_5xx,
        "alive_after_burst": alive,
        "headline": headline,
    }
    notes = (
        f"Loopback only, single-row /predict requests of real PBMC cells (765 features); {engine_line}. "
        f"Bad-request burst: {burst['requests']} requests of {len(burst['by_kind'])} kinds → all 4xx: {burst['all_4xx']}; "
        f"5xx anywhere: {not zero_5xx}; still answering afterwards: {alive} (40/40 valid requests, "
        f"{health['model_calls']} model calls served {health['requests']} requests, "
        f"largest batch {health['largest_batch']} rows). "
        "Client and server share the machine's cores with other work: figures are noisy."
    )
    write_results(
        "serve_load", payload, ["concurrency", "requests", "req/s", "p50 ms", "p99 ms", "5xx", "transport errors"], rows_md, notes
    )
    if not (zero_5xx and alive and burst["all_4xx"]):
        raise SystemExit("serve_load: a check failed (see the notes above)")


if __name__ == "__main__":
    main()
