"""Wall time of one ``mil`` contract run (MUSK1, MIDatasets' ``rep1_test_fold``, 10 folds, ``--threads 1``).

Runs the evaluation's contract command in a fresh process per run, alternating the optimisers'
per-tensor update (``before``: ``biodl.training.optim.FOREACH = False``, the loop PyTorch uses on
CPU by default) and the multi-tensor update biodl now uses (``after``), and checks that both give
the same weights in every fold, byte for byte. Writes ``benchmarks/results/mil_runtime.json`` and
``.md`` with the load average and machine facts. Run it at normal priority on a quiet machine:

    python benchmarks/mil_runtime.py /tmp/milrt --rounds 2
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

from mil_cv import CONTRACT, bag_table  # noqa: E402


def one(variant: str, table: str, out: str) -> None:
    """Child process: the contract command in-process with the chosen optimiser update."""
    from biodl.cli.main import main
    from biodl.training import optim

    optim.FOREACH = variant == "after"
    args = CONTRACT.format(table=table, run=out).split()[1:]
    sys.exit(main([*args, "--threads", "1", "--set", "train.progress_bar=false"]))


def weights(run: Path) -> list[bytes]:
    return [p.read_bytes() for p in sorted(run.glob("fold_*/model/weights.safetensors"))]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("workdir", type=Path)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--one", nargs=3, metavar=("VARIANT", "TABLE", "OUT"), help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.one:
        one(*a.one)
    a.workdir.mkdir(parents=True, exist_ok=True)
    table = bag_table("musk1", 1, a.workdir / "musk1_bags.csv")
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"))
    load_start = os.getloadavg()
    runs: list[dict[str, object]] = []
    for r in range(a.rounds):
        for variant in ("before", "after"):
            out = a.workdir / f"run_{variant}_{r}"
            start, cpu0 = time.perf_counter(), resource.getrusage(resource.RUSAGE_CHILDREN)
            subprocess.run(
                [sys.executable, __file__, str(a.workdir), "--one", variant, str(table), str(out)],
                env=env, check=True, stdout=subprocess.DEVNULL,
            )  # fmt: skip
            wall = time.perf_counter() - start
            cpu1 = resource.getrusage(resource.RUSAGE_CHILDREN)
            cpu = cpu1.ru_utime + cpu1.ru_stime - cpu0.ru_utime - cpu0.ru_stime  # less sensitive to other jobs
            acc = json.loads((out / "metrics.json").read_text())["test"]["accuracy"]
            row = {"variant": variant, "round": r, "wall_s": round(wall, 1), "cpu_s": round(cpu, 1), "accuracy": acc}
            runs.append({**row, "dir": out})
            print(variant, r, f"{wall:.1f} s wall, {cpu:.1f} s CPU", f"accuracy {acc:.4f}", flush=True)
    same = all(weights(Path(str(x["dir"]))) == weights(Path(str(runs[0]["dir"]))) for x in runs)
    mean = {v: sum(float(str(x["wall_s"])) for x in runs if x["variant"] == v) / a.rounds for v in ("before", "after")}
    mean_cpu = {v: sum(float(str(x["cpu_s"])) for x in runs if x["variant"] == v) / a.rounds for v in ("before", "after")}
    facts = {
        "machine": f"{platform.machine()}, {os.cpu_count()} CPU cores (shared by other jobs), {platform.platform()}",
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "load_avg_start": load_start,
        "load_avg_end": os.getloadavg(),
        "command": CONTRACT.format(table="musk1_bags.csv", run="RUN") + " --threads 1 --set train.progress_bar=false",
    }
    res = {
        "facts": facts,
        "runs": [{k: v for k, v in x.items() if k != "dir"} for x in runs],
        "mean_wall_s": mean,
        "mean_cpu_s": mean_cpu,
        "same_weights_in_every_fold": same,
    }
    stem = ROOT / "benchmarks" / "results" / "mil_runtime"
    stem.with_suffix(".json").write_text(json.dumps(res, indent=1) + "\n")
    lines = [
        "# mil: wall time of one contract run (MUSK1, 10 folds, `--threads 1`)",
        "",
        f"{facts['machine']}; {facts['date']}; load average {load_start[0]:.1f} at the start, "
        f"{facts['load_avg_end'][0]:.1f} at the end; one process at a time, normal priority.",
        "",
        "| optimiser update | wall time of each run (s) | mean (s) | CPU time of each run (s) | mean (s) |",
        "|---|---|---|---|---|",
    ]
    for v, label in (("before", "per tensor (PyTorch's CPU default)"), ("after", "multi-tensor (`foreach`, biodl now)")):
        walls = ", ".join(str(x["wall_s"]) for x in runs if x["variant"] == v)
        cpus = ", ".join(str(x["cpu_s"]) for x in runs if x["variant"] == v)
        lines.append(f"| {label} | {walls} | {mean[v]:.1f} | {cpus} | {mean_cpu[v]:.1f} |")
    lines += ["", f"Same weights in every fold of every run, byte for byte: {same}.", "", f"    {facts['command']}"]
    stem.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
