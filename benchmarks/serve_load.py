"""Load test of ``biodl serve`` next to a bare FastAPI + uvicorn reference in the same run.

Starts, on loopback and with the same ``--workers``, ``biodl serve`` for a DeepBind model on
one-hot DNA (single 101-bp sequences) and for a PBMC cell-type MLP (765-feature rows), and a
reference app (``_serve_reference.py``: FastAPI + uvicorn, parses the same JSON body with
orjson, answers with a body of the same size, no model). A minimal keep-alive HTTP/1.1 client
(asyncio streams, so the client costs little next to the servers), run in a load-generator
process of its own for each cell (``serve_load.py --client``; a warm-up round per server not
counted, its garbage collector off while timing, its own event-loop lag recorded), sends
single-input ``/predict`` requests at concurrency 1, 8 and 32 for ``--seconds`` per cell; biodl and the
reference are measured alternately in short paired rounds (which goes first alternates), cell by
cell, over ``--passes`` passes through all cells, so load from other work hits both alike. Reports
requests/s, p50/p99 and the ratio biodl/reference (the median of the paired rounds' ratios, and
the ratio of all requests over all time), then a burst of bad requests against
the PBMC server (all 4xx, no 5xx, still answering). Writes ``results/serve_load.{json,md}``.

    python benchmarks/serve_load.py [--workers 1] [--threads 1] [--seconds 4] [--passes 3]
        [--pbmc-model RUN] [--deepbind-model RUN]
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import json
import os
import socket
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

HERE = Path(__file__).resolve().parent
PBMC = HERE.parent / "src" / "biodl" / "resources" / "pbmc68k_reduced.h5ad"
REST = HERE.parent.parent / "shared" / "datasets" / "dna" / "deepbind_encode_train" / "REST_GM12878_NRSF_HudsonAlpha_AC.seq.gz"
LEVELS = (1, 8, 32)
MAX_BODY_BYTES = 200_000
MAX_BATCH = 64


def train_pbmc(out: Path) -> Path:
    """A PBMC cell-type MLP trained for a few epochs."""
    from biodl import Experiment

    Experiment(
        data={"path": [str(PBMC)], "task": "classification", "target_columns": ["bulk_labels"]},
        model={"name": "mlp", "hidden_sizes": [64]},
        train={"max_epochs": 3, "progress_bar": False, "seed": 0},
        evaluate={"baselines": [], "report": False, "plots": False},
    ).fit(out)
    return out


def train_deepbind(out: Path, table: Path) -> Path:
    """A DeepBind model on 400 REST ChIP-seq peaks (+ dinucleotide shuffles), two epochs."""
    import pandas as pd

    from biodl import Experiment

    with gzip.open(REST, "rt") as fh:
        pd.read_csv(fh, sep="\t").head(400).to_csv(table, sep="\t", index=False)
    Experiment(
        data={
            "type": "sequence",
            "path": [str(table)],
            "target_columns": ["Bound"],
            "id_column": "EventID",
            "sequence": {"column": "seq", "negatives": "dinucleotide-shuffle"},
        },
        model={"name": "deepbind"},
        train={"max_epochs": 2, "progress_bar": False, "seed": 0},
        evaluate={"baselines": [], "report": False, "plots": False},
    ).fit(out)
    return out


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start(cmd: list[str], env: dict[str, str] | None = None) -> tuple[subprocess.Popen[str], list[str]]:
    """A server process whose output is collected in the background."""
    proc = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=dict(env or os.environ, PYTHONUNBUFFERED="1")
    )
    lines: list[str] = []

    def drain() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line)

    threading.Thread(target=drain, daemon=True).start()
    return proc, lines


def wait_ready(url: str, proc: subprocess.Popen[str], lines: list[str], timeout: float = 600) -> None:
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"{url} exited:\n" + "".join(lines)[-3000:])
        try:
            if httpx.get(f"{url}/health", timeout=5).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.5)
    raise SystemExit(f"{url} did not answer:\n" + "".join(lines)[-3000:])


async def _post(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes) -> tuple[int, bytes]:
    """One keep-alive HTTP/1.1 request; (status, body)."""
    writer.write(request)
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    length = 0
    for line in head.split(b"\r\n")[1:]:
        if line[:15].lower() == b"content-length:":
            length = int(line[15:])
    return status, await reader.readexactly(length)


def request_bytes(host: str, port: int, body: bytes) -> bytes:
    return (
        f"POST /predict HTTP/1.1\r\nhost: {host}:{port}\r\ncontent-type: application/json\r\ncontent-length: {len(body)}\r\n\r\n"
    ).encode() + body


async def load_cell(port: int, bodies: list[bytes], concurrency: int, seconds: float) -> dict[str, Any]:
    """Requests from ``concurrency`` keep-alive connections for ``seconds``."""
    requests = [request_bytes("127.0.0.1", port, b) for b in bodies]
    latencies: list[float] = []
    statuses: Counter[int] = Counter()
    deadline = 0.0

    async def client(offset: int) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        i = offset
        try:
            await _post(reader, writer, requests[i % len(requests)])  # warm the connection
            while time.perf_counter() < deadline:
                t0 = time.perf_counter()
                status, _ = await _post(reader, writer, requests[i % len(requests)])
                latencies.append(time.perf_counter() - t0)
                statuses[status] += 1
                i += concurrency
        finally:
            writer.close()

    lags: list[float] = []

    async def probe() -> None:  # how late the client's own event loop runs (its share of any tail)
        while time.perf_counter() < deadline:
            t = time.perf_counter()
            await asyncio.sleep(0.001)
            lags.append(time.perf_counter() - t - 0.001)

    deadline = time.perf_counter() + seconds
    t0 = time.perf_counter()
    await asyncio.gather(probe(), *(client(k) for k in range(concurrency)))
    elapsed = time.perf_counter() - t0
    lat = np.asarray(latencies) * 1e3
    n = int(sum(statuses.values()))
    return {
        "concurrency": concurrency,
        "requests": n,
        "requests_per_s": n / elapsed,
        "p50_ms": float(np.percentile(lat, 50)),
        "p99_ms": float(np.percentile(lat, 99)),
        "status": {str(k): v for k, v in sorted(statuses.items())},
        "n_non_200": n - statuses.get(200, 0),
        "seconds": elapsed,
        "latencies_ms": lat,
        "client_lag_ms": np.asarray(lags) * 1e3,
    }


def merge(parts: list[dict[str, Any]]) -> dict[str, Any]:
    """One cell from several rounds: total requests over total time, percentiles over all requests."""
    lat = np.concatenate([p["latencies_ms"] for p in parts])
    lag = np.concatenate([p["client_lag_ms"] for p in parts])
    n = sum(p["requests"] for p in parts)
    status: Counter[str] = Counter()
    for p in parts:
        status.update(p["status"])
    return {
        "concurrency": parts[0]["concurrency"],
        "requests": n,
        "rounds": len(parts),
        "requests_per_s": n / sum(p["seconds"] for p in parts),
        "rounds_requests_per_s": [p["requests_per_s"] for p in parts],
        "p50_ms": float(np.percentile(lat, 50)),
        "p99_ms": float(np.percentile(lat, 99)),
        "status": dict(status),
        "n_non_200": sum(p["n_non_200"] for p in parts),
        "client_loop_lag_p99_ms": float(np.percentile(lag, 99)) if len(lag) else 0.0,
        "client_loop_lag_max_ms": float(lag.max()) if len(lag) else 0.0,
    }


def client_rounds(spec: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    """The paired rounds of one cell, run in this (client) process: a warm-up round per server
    (not counted), then ``rounds`` rounds per server alternating, which goes first alternating too.
    The garbage collector is off while requests are timed (its pauses would be the client's)."""
    import gc

    bodies = [b.encode() for b in spec["bodies"]]
    ports: dict[str, int] = spec["ports"]
    c, round_s = int(spec["concurrency"]), float(spec["round_s"])
    out: dict[str, list[dict[str, Any]]] = {side: [] for side in ports}
    for port in ports.values():
        asyncio.run(load_cell(port, bodies, c, min(0.3, round_s)))  # warm-up, excluded
    order = list(ports.items())
    for r in range(int(spec["rounds"])):
        for side, port in order if (r + int(spec["parity"])) % 2 == 0 else order[::-1]:
            gc.collect()
            gc.disable()
            try:
                cell = asyncio.run(load_cell(port, bodies, c, round_s))
            finally:
                gc.enable()
            cell["latencies_ms"] = cell["latencies_ms"].tolist()
            cell["client_lag_ms"] = cell["client_lag_ms"].tolist()
            out[side].append(cell)
    return out


def run_client(
    ports: dict[str, int], bodies: list[bytes], concurrency: int, round_s: float, rounds: int, parity: int
) -> dict[str, list[dict[str, Any]]]:
    """:func:`client_rounds` in a fresh process of its own (the load generator apart from this one)."""
    spec = {"ports": ports, "bodies": [b.decode() for b in bodies], "concurrency": concurrency,
            "round_s": round_s, "rounds": rounds, "parity": parity}  # fmt: skip
    proc = subprocess.run(
        [sys.executable, str(Path(__file__).resolve()), "--client"], input=json.dumps(spec), capture_output=True, text=True
    )
    if proc.returncode != 0:
        raise SystemExit(f"load generator failed:\n{proc.stderr[-3000:]}")
    res: dict[str, list[dict[str, Any]]] = json.loads(proc.stdout)
    for cells in res.values():
        for cell in cells:
            cell["latencies_ms"] = np.asarray(cell["latencies_ms"])
            cell["client_lag_ms"] = np.asarray(cell["client_lag_ms"])
    return res


def paired_ratio(parts: dict[str, list[dict[str, Any]]]) -> float:
    """The median over rounds of biodl's requests/s over the reference's in the same round."""
    pairs = zip(parts["biodl"], parts["reference"], strict=True)
    return float(np.median([b["requests_per_s"] / r["requests_per_s"] for b, r in pairs]))


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
    if sys.argv[1:] == ["--client"]:  # the load generator: a cell spec on stdin, its rounds as JSON on stdout
        print(json.dumps(client_rounds(json.loads(sys.stdin.read())), default=float))
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=1, help="worker processes of every server (default 1)")
    parser.add_argument("--seconds", type=float, default=4.0, help="measuring time per cell and server (default 4)")
    parser.add_argument("--rounds", type=int, default=8, help="alternating rounds the seconds are split into (default 8)")
    parser.add_argument("--passes", type=int, default=1, help="passes through all cells (default 1)")
    parser.add_argument("--threads", type=int, default=1, help="biodl serve --threads (CPU threads per worker; default 1)")
    parser.add_argument("--engine", default="auto", choices=("auto", "torch", "onnx"))
    parser.add_argument("--pbmc-model", help="a trained PBMC run (default: train one here)")
    parser.add_argument("--deepbind-model", help="a trained DeepBind run on 101-bp DNA (default: train one here)")
    parser.add_argument("--name", default="serve_load", help="results/NAME.{json,md} (default serve_load)")
    parser.add_argument("--bad-repeats", type=int, default=5, help="repeats of each bad request in the burst (default 5)")
    args = parser.parse_args()

    import anndata
    import httpx
    import pandas as pd

    load_start = os.getloadavg()[0]
    rows = np.asarray(anndata.read_h5ad(PBMC).X, dtype=np.float32)
    with gzip.open(REST, "rt") as fh:
        seqs = [s for s in pd.read_csv(fh, sep="\t")["seq"].head(64) if len(s) == 101]
    payloads = {
        "deepbind (1 sequence, 101 bp)": [json.dumps({"inputs": [s]}).encode() for s in seqs],
        "pbmc (1 row, 765 features)": [json.dumps({"inputs": [r.tolist()]}).encode() for r in rows[:64]],
    }
    procs: list[subprocess.Popen[str]] = []
    with tempfile.TemporaryDirectory() as tmp:
        models = {
            "deepbind (1 sequence, 101 bp)": Path(
                args.deepbind_model or train_deepbind(Path(tmp) / "db", Path(tmp) / "rest.tsv")
            ),
            "pbmc (1 row, 765 features)": Path(args.pbmc_model or train_pbmc(Path(tmp) / "pbmc")),
        }
        biodl = str(Path(sys.executable).parent / "biodl")
        try:
            servers: dict[str, tuple[int, list[str]]] = {}
            for name, path in models.items():
                port = free_port()
                cmd = [biodl, "serve", "--model-path", str(path), "--host", "127.0.0.1", "--port", str(port)]
                cmd += ["--engine", args.engine, "--workers", str(args.workers), "--threads", str(args.threads)]
                cmd += ["--max-body-bytes", str(MAX_BODY_BYTES), "--max-batch", str(MAX_BATCH)]
                proc, lines = start(cmd)
                procs.append(proc)
                servers[name] = (port, lines)
                wait_ready(f"http://127.0.0.1:{port}", proc, lines)
            answers = {}
            for name, body in payloads.items():
                res = httpx.post(
                    f"http://127.0.0.1:{servers[name][0]}/predict", content=body[0], headers={"content-type": "application/json"}
                )
                answers["sequence" if name.startswith("deepbind") else "rows"] = res.text
            ref_port = free_port()
            env = dict(os.environ, BIODL_REFERENCE_ANSWERS=json.dumps(answers))
            ref_cmd = [sys.executable, str(HERE / "_serve_reference.py"), str(ref_port), str(args.workers)]
            ref, ref_lines = start(ref_cmd, env)
            procs.append(ref)
            wait_ready(f"http://127.0.0.1:{ref_port}", ref, ref_lines)
            keys = [(name, c) for name in payloads for c in LEVELS]
            parts: dict[tuple[str, int], dict[str, list[dict[str, Any]]]] = {k: {"biodl": [], "reference": []} for k in keys}
            for p in range(args.passes):
                for name, c in keys:  # the rounds of a cell in a load-generator process of their own
                    ports = {"reference": ref_port, "biodl": servers[name][0]}
                    got = run_client(ports, payloads[name], c, args.seconds / args.rounds, args.rounds, p)
                    for side, cells_ in got.items():
                        parts[(name, c)][side].extend(cells_)
                    done = parts[(name, c)]
                    print(f"pass {p + 1} {name} c={c}: paired-round ratio {paired_ratio(done):.2f}", flush=True)
            cells = []
            for name, c in keys:
                ours, ref_cell = merge(parts[(name, c)]["biodl"]), merge(parts[(name, c)]["reference"])
                cells.append({"payload": name, "concurrency": c, "biodl": ours, "reference": ref_cell,
                              "ratio": paired_ratio(parts[(name, c)]),
                              "ratio_all_requests": ours["requests_per_s"] / ref_cell["requests_per_s"],
                              "p99_over_p50": ours["p99_ms"] / ours["p50_ms"],
                              "reference_p99_over_p50": ref_cell["p99_ms"] / ref_cell["p50_ms"]})  # fmt: skip
                print(
                    f"{name} c={c}: biodl {ours['requests_per_s']:.0f} req/s, reference {ref_cell['requests_per_s']:.0f} "
                    f"→ {cells[-1]['ratio']:.2f}×; biodl p50 {ours['p50_ms']:.2f} ms p99 {ours['p99_ms']:.2f} ms",
                    flush=True,
                )
            pbmc_url = f"http://127.0.0.1:{servers['pbmc (1 row, 765 features)'][0]}"
            burst = asyncio.run(bad_burst(pbmc_url, rows.shape[1], args.bad_repeats))
            after = merge(
                [asyncio.run(load_cell(int(pbmc_url.rsplit(":", 1)[1]), payloads["pbmc (1 row, 765 features)"], 8, 1.0))]
            )
            health = httpx.get(f"{pbmc_url}/health", timeout=10).json()
            engines = {
                name: next((x.strip() for x in lines if x.startswith("engine:")), "") for name, (_, lines) in servers.items()
            }
        finally:
            for proc in procs:
                proc.terminate()
            for proc in procs:
                try:
                    proc.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    proc.kill()
    alive = after["n_non_200"] == 0 and after["requests"] > 0 and health["status"] == "ok"
    zero_5xx = burst["n_5xx"] == 0 and all(
        int(k) < 500 for cell in cells for side in ("biodl", "reference") for k in cell[side]["status"]
    )
    met = {
        "ratio_ge_0.7": all(cell["ratio"] >= 0.7 for cell in cells),
        "p99_over_p50_at_32_le_5": all(cell["p99_over_p50"] <= 5 for cell in cells if cell["concurrency"] == 32),
    }
    header = [
        "payload",
        "concurrency",
        "biodl req/s",
        "reference req/s",
        "ratio (median of rounds)",
        "ratio (all requests)",
        "biodl p50 ms",
        "biodl p99 ms",
        "p99/p50",
        "reference p50 ms",
        "reference p99 ms",
        "reference p99/p50",
        "client loop lag p99 ms (biodl / reference rounds)",
    ]
    table = [
        [
            cell["payload"],
            cell["concurrency"],
            cell["biodl"]["requests_per_s"],
            cell["reference"]["requests_per_s"],
            cell["ratio"],
            cell["ratio_all_requests"],
            cell["biodl"]["p50_ms"],
            cell["biodl"]["p99_ms"],
            cell["p99_over_p50"],
            cell["reference"]["p50_ms"],
            cell["reference"]["p99_ms"],
            cell["reference_p99_over_p50"],
            f"{cell['biodl']['client_loop_lag_p99_ms']:.2f} / {cell['reference']['client_loop_lag_p99_ms']:.2f}",
        ]
        for cell in cells
    ]
    payload = {
        "command": "python benchmarks/serve_load.py " + " ".join(sys.argv[1:]),
        "workers": args.workers,
        "threads": args.threads,
        "seconds_per_cell": args.seconds,
        "rounds": args.rounds,
        "passes": args.passes,
        "engines": engines,
        "load_average_start": load_start,
        "load_average_end": os.getloadavg()[0],
        "cells": cells,
        "targets_met": met,
        "bad_burst": burst,
        "after_burst": after,
        "health": health,
        "zero_5xx": zero_5xx,
        "alive_after_burst": alive,
    }
    notes = (
        f"`python benchmarks/serve_load.py {' '.join(sys.argv[1:])}`. Loopback, {args.workers} worker(s) per server "
        f"(biodl: {args.threads} CPU thread(s) per worker), {args.passes} pass(es) × {args.rounds} paired rounds × "
        f"{args.seconds / args.rounds:g} s per cell and server, biodl and the reference measured alternately by a load "
        "generator in a process of its own (one per cell; a warm-up round per server and each connection's first request "
        "not counted; its garbage collector off while timing; its own event-loop lag is the last column, so a tail that "
        "comes from the client shows there); the ratio "
        "is the median over the paired rounds of biodl's requests/s over the reference's (the ratio of all requests "
        "over all time is shown next to it); the reference is FastAPI + uvicorn parsing the same body with orjson and "
        "answering with a body of the same size, without a model. "
        f"Engines: {'; '.join(f'{k}: {v}' for k, v in engines.items())}. "
        f"Targets: ratio ≥ 0.7 everywhere: {met['ratio_ge_0.7']}; p99/p50 ≤ 5 at concurrency 32: "
        f"{met['p99_over_p50_at_32_le_5']}. Bad-request burst on the PBMC server: {burst['requests']} requests of "
        f"{len(burst['by_kind'])} kinds → all 4xx: {burst['all_4xx']}; 5xx anywhere: {not zero_5xx}; still answering "
        f"afterwards: {alive}. Client and servers share the machine's 2 cores with other work (load average "
        f"{load_start:.1f} at the start, {os.getloadavg()[0]:.1f} at the end): absolute figures are noisy, ratios less so."
    )
    write_results(args.name, payload, header, table, notes)
    if not (zero_5xx and alive and burst["all_4xx"]):
        raise SystemExit("serve_load: a check failed (see the notes above)")


if __name__ == "__main__":
    main()
