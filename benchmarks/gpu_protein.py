"""GPU check: protein secondary structure trained and predicted on CUDA with mixed precision.

Runs the contract command of issue 16 (``biodl train --per-position ...``) with the product defaults on
all NetSurfP-2.0 training chains, plus a screen of other per-position networks side by side on the same
GPU (separate processes), then ``biodl evaluate`` / ``biodl predict`` of the default run on the validation
chains on CUDA under bfloat16 autocast and on the CPU (float32), so the two precisions are compared.
Each run's per-epoch validation Q3 is read from its ``logs/metrics.csv`` (so a run cut by the deadline
still reports its finished epochs). Writes ``OUT/gpu_protein.json`` and ``OUT/gpu_protein.md``.

    python benchmarks/gpu_protein.py --data train.tsv --out $OUT --deadline 420 \
        --accelerator gpu --precision bf16-mixed
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

#: name -> extra ``biodl train`` arguments (on top of the contract command).
CANDIDATES: dict[str, list[str]] = {
    "default": [],
    "dilated-cnn-128": ["--model", "dilated-cnn", "--set", "model.channels=128"],
    "dilated-cnn-128x16": ["--model", "dilated-cnn", "--set", "model.channels=128", "--set", "model.blocks=16",
                           "--set", "model.dilations=[1,2,4,8,16]"],
    "cnn-birnn": ["--model", "cnn-birnn"],
    "cnn-birnn-b8": ["--model", "cnn-birnn", "--batch-size", "8", "--lr", "0.002"],
    "transformer": ["--model", "transformer"],
}  # fmt: skip


def biodl(*args: str) -> list[str]:
    return [sys.executable, "-m", "biodl", *args]


def epochs_of(run: Path) -> list[dict[str, float]]:
    """Per-epoch validation accuracy/loss and wall time from Lightning's CSV log."""
    f = run / "logs" / "metrics.csv"
    if not f.is_file():
        return []
    rows: dict[int, dict[str, float]] = {}
    with open(f) as fh:
        for r in csv.DictReader(fh):
            if r.get("val_accuracy"):
                rows[int(r["epoch"])] = {"epoch": int(r["epoch"]) + 1, "val_q3": round(float(r["val_accuracy"]), 4),
                                         "val_loss": round(float(r["val_loss"]), 4)}  # fmt: skip
    return [rows[k] for k in sorted(rows)]


def timed(cmd: list[str], log: Path, timeout: float, env: dict[str, str]) -> tuple[int, float]:
    t0 = time.perf_counter()
    with open(log, "w") as fh:
        try:
            rc = subprocess.run(cmd, stdout=fh, stderr=subprocess.STDOUT, timeout=timeout, env=env).returncode
        except subprocess.TimeoutExpired:
            rc = 124
    return rc, time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", required=True, help="NetSurfP-2.0 train.tsv (validation column marks validation chains)")
    ap.add_argument("--out", required=True)
    ap.add_argument("--work", default="/tmp/gpu_protein")
    ap.add_argument("--deadline", type=float, default=420.0, help="seconds for the training runs")
    ap.add_argument("--accelerator", default="gpu")
    ap.add_argument("--precision", default="bf16-mixed")
    ap.add_argument("--device", default="cuda", help="biodl evaluate/predict --device")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--eval-timeout", type=float, default=60.0, help="seconds for each evaluate / predict call")
    ap.add_argument("--models", nargs="+", default=list(CANDIDATES))
    ap.add_argument("--max-epochs", type=int, default=None, help="override the per-position default (tests)")
    args = ap.parse_args()
    out, work = Path(args.out), Path(args.work)
    out.mkdir(parents=True, exist_ok=True)
    work.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    import pandas as pd

    d = pd.read_csv(args.data, sep="\t", dtype={"resolved": str})
    val_file = work / "validation_chains.tsv"
    d[d.validation].to_csv(val_file, sep="\t", index=False)
    facts: dict[str, object] = {"python": platform.python_version(), "cpus": os.cpu_count()}
    try:
        import torch

        facts.update(torch=torch.__version__, cuda=torch.cuda.is_available(),
                     gpu=torch.cuda.get_device_name(0) if torch.cuda.is_available() else None)  # fmt: skip
    except Exception as exc:
        facts["torch_error"] = str(exc)
    contract = ["train", "--data-type", "sequence", "--alphabet", "protein", "--data-path", args.data,
                "--sequence-column", "seq", "--target-columns", "sst3", "--per-position", "--mask-column", "resolved",
                "--val-column", "validation", "--task", "classification",
                "--accelerator", args.accelerator, "--precision", args.precision, "--threads", str(args.threads)]  # fmt: skip
    if args.max_epochs:
        contract += ["--max-epochs", str(args.max_epochs)]
    procs: dict[str, tuple[subprocess.Popen[bytes], float]] = {}
    for name in args.models:
        run = work / name
        cmd = biodl(*contract, "--output-dir", str(run), *CANDIDATES[name])
        log = open(work / f"{name}.log", "wb")
        procs[name] = (subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env), time.perf_counter())
    results: dict[str, dict[str, Any]] = {}
    t_start = time.perf_counter()
    while procs:
        time.sleep(2)
        for name, (p, t0) in list(procs.items()):
            over = time.perf_counter() - t_start > args.deadline
            if p.poll() is None and not over:
                continue
            if p.poll() is None:
                p.kill()
                p.wait()
            run = work / name
            metrics = json.loads((run / "metrics.json").read_text()) if (run / "metrics.json").is_file() else {}
            ep = epochs_of(run)
            secs = time.perf_counter() - t0
            results[name] = {
                "extra_args": CANDIDATES[name], "returncode": p.returncode, "finished": (run / "metrics.json").is_file(),
                "seconds": round(secs, 1), "epochs": ep, "best_val_q3": max((e["val_q3"] for e in ep), default=None),
                "val_q3": metrics.get("val", {}).get("accuracy"), "val_sov": metrics.get("val", {}).get("sov"),
                "baseline_val_q3": (metrics.get("baseline", {}).get("val") or {}).get("accuracy")
                if isinstance(metrics.get("baseline"), dict) else None,
                "log_tail": (work / f"{name}.log").read_text(errors="replace")[-1500:] if p.returncode else "",
            }  # fmt: skip
            del procs[name]
            print(name, json.dumps({k: v for k, v in results[name].items() if k != "log_tail"}), flush=True)
            (out / "gpu_protein.json").write_text(json.dumps({"facts": facts, "runs": results}, indent=1))
    default = work / "default"
    predict: dict[str, dict[str, Any]] = {}
    if (default / "metrics.json").is_file():
        for device, precision in ((args.device, args.precision), ("cpu", "32-true")):
            key = f"{device}-{precision}"
            rc, secs = timed(biodl("evaluate", "--model-path", str(default), "--data-path", str(val_file), "--device",
                                   device, "--precision", precision, "--output", str(work / f"eval-{key}.json")),
                             work / f"eval-{key}.log", args.eval_timeout, env)  # fmt: skip
            ev = json.loads((work / f"eval-{key}.json").read_text()) if rc == 0 else {}
            rc2, secs2 = timed(biodl("predict", "--model-path", str(default), "--data-path", str(val_file), "--device",
                                     device, "--precision", precision, "--output", str(work / f"pred-{key}.parquet")),
                               work / f"pred-{key}.log", args.eval_timeout, env)  # fmt: skip
            predict[key] = {"evaluate_rc": rc, "evaluate_seconds": round(secs, 1),
                            "q3": ev.get("metrics", {}).get("accuracy"), "sov": ev.get("metrics", {}).get("sov"),
                            "predict_rc": rc2, "predict_seconds": round(secs2, 1), "chains": int(d.validation.sum()),
                            "log_tail": (work / f"eval-{key}.log").read_text(errors="replace")[-800:] if rc else ""}  # fmt: skip
            print(key, json.dumps(predict[key]), flush=True)
    doc = {"facts": facts, "command": " ".join(sys.argv), "runs": results, "predict_validation_chains": predict}
    (out / "gpu_protein.json").write_text(json.dumps(doc, indent=1))
    lines = [f"# Protein secondary structure on {facts.get('gpu') or 'CPU'} ({args.precision})", "",
             f"`{' '.join(sys.argv)}`; torch {facts.get('torch')}; {facts.get('cpus')} CPU cores; runs side by side on one GPU.",
             "", "| run | extra args | epochs done | best val Q3 (epoch) | final val Q3 / SOV | seconds | finished |",
             "|---|---|---|---|---|---|---|"]  # fmt: skip
    for name, r in results.items():
        ep = r["epochs"]
        best = max(ep, key=lambda e: e["val_q3"]) if ep else None
        lines.append(f"| {name} | `{' '.join(r['extra_args'])}` | {len(ep)} | "
                     f"{best['val_q3'] if best else '-'} ({best['epoch'] if best else '-'}) | {r['val_q3']} / {r['val_sov']} | "
                     f"{r['seconds']} | {r['finished']} |")  # fmt: skip
    if predict:
        lines += ["", "| evaluate / predict on the 1,080 validation chains | Q3 | SOV | evaluate s | predict s |",
                  "|---|---|---|---|---|"]  # fmt: skip
        for key, pr in predict.items():
            lines.append(f"| {key} | {pr['q3']} | {pr['sov']} | {pr['evaluate_seconds']} | {pr['predict_seconds']} |")
    (out / "gpu_protein.md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
