"""10-fold CV bag accuracy of the ``mil`` defaults on MIDatasets (MUSK1, Elephant, Fox, Tiger).

Builds each set's contract table ``bag_id, bag_label, fold, f1..fD`` (MIDatasets' ``rep<R>_test_fold``
joined as ``fold``), runs the evaluation's contract command on it (defaults; ``--threads 1``, niced),
several sets side by side, and writes ``benchmarks/results/mil_cv_rep<R>.json`` and ``.md`` with
the per-set fold means, the mean-pooled logistic-regression baseline of the same folds, wall times
and machine facts.

    python benchmarks/mil_cv.py /tmp/milcv --rep 1 --jobs 2 [--sets musk1,fox] [-- --set model.members=1]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "datasets" / "mil" / "midatasets"
SETS = ("musk1", "elephant", "fox", "tiger")
CONTRACT = (
    "biodl train --data-type tabular --data-path {table} --bag-column bag_id --target-columns bag_label "
    "--cv-column fold --model mil --task classification --output-dir {run}"
)


def bag_table(name: str, rep: int, out: Path) -> Path:
    """The contract layout of one MIDatasets set with fold repetition ``rep``."""
    df = pd.read_csv(DATA / f"{name}.csv.gz")
    f = pd.read_csv(DATA / f"{name}_cv_folds.csv")[["bag_id", f"rep{rep}_test_fold"]]
    df = df.merge(f.rename(columns={f"rep{rep}_test_fold": "fold"}), on="bag_id").drop(columns=["instance"])
    cols = ["bag_id", "bag_label", "fold"] + [c for c in df.columns if c.startswith("f") and c != "fold"]
    df[cols].to_csv(out, index=False)
    return out


def run_one(name: str, rep: int, workdir: Path, extra: list[str]) -> dict[str, object]:
    table = bag_table(name, rep, workdir / f"{name}_bags.csv")
    run = workdir / f"run_{name}"
    cmd = [*CONTRACT.format(table=table, run=run).split(), "--threads", "1", "--set", "train.progress_bar=false", *extra]
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"))
    timing = workdir / f"{name}.wall"
    if (run / "metrics.json").exists() and timing.exists():  # finished before: collect only
        rc, wall = 0, float(timing.read_text())
    else:
        start = time.time()
        with open(workdir / f"{name}.log", "w") as log:
            rc = subprocess.run(
                ["nice", "-n", "10", sys.executable, "-m", "biodl", *cmd[1:]], env=env, stdout=log, stderr=subprocess.STDOUT
            ).returncode
        wall = time.time() - start
        timing.write_text(f"{wall:.0f}\n")
    if rc != 0:
        return {"set": name, "rc": rc, "wall_s": wall}
    m = json.loads((run / "metrics.json").read_text())
    per_fold = m["cv"]["per_fold"]
    lin = [
        json.loads((run / f["dir"] / "metrics.json").read_text())["baseline"]["candidates"]["linear"]["test"]["accuracy"]
        for f in per_fold
    ]
    return {
        "set": name,
        "rc": rc,
        "accuracy": m["test"]["accuracy"],
        "accuracy_std": m["cv"]["test_std"]["accuracy"],
        "auroc": m["test"].get("auroc"),
        "linear_accuracy": float(np.mean(lin)),
        "fold_accuracy": [f["test"]["accuracy"] for f in per_fold] if "test" in per_fold[0] else None,
        "wall_s": round(wall),
        "command": " ".join(cmd),
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("workdir", type=Path)
    ap.add_argument("--rep", type=int, default=1)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--sets", default=",".join(SETS))
    ap.add_argument("--tag", default="")
    ap.add_argument("extra", nargs="*", help="after --: extra flags for every run")
    a = ap.parse_args()
    a.workdir.mkdir(parents=True, exist_ok=True)
    sets = a.sets.split(",")
    with ThreadPoolExecutor(a.jobs) as pool:
        rows = list(pool.map(lambda s: run_one(s, a.rep, a.workdir, a.extra), sets))
    ok = [r for r in rows if r.get("rc") == 0]
    mean = float(np.mean([r["accuracy"] for r in ok])) if ok else None
    lin = float(np.mean([r["linear_accuracy"] for r in ok])) if ok else None
    facts = {
        "machine": f"{platform.machine()}, {os.cpu_count()} CPU cores (shared by other jobs), {platform.platform()}",
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "rep": a.rep,
        "extra": a.extra,
        "load_avg_end": os.getloadavg(),
    }
    res = {"facts": facts, "sets": rows, "mean_accuracy": mean, "mean_linear_accuracy": lin}
    stem = ROOT / "benchmarks" / "results" / f"mil_cv_rep{a.rep}{a.tag}"
    stem.with_suffix(".json").write_text(json.dumps(res, indent=1) + "\n")
    lines = [
        f"# mil: 10-fold CV bag accuracy (MIDatasets rep{a.rep}_test_fold), defaults{' ' + ' '.join(a.extra) if a.extra else ''}",
        "",
        f"{facts['machine']}; {facts['date']}; `--threads 1`, niced, {a.jobs} sets side by side.",
        "",
        "| set | mil (defaults) | ± fold std | AUROC | LR on mean-pooled instances | wall time |",
        "|---|---|---|---|---|---|",
    ]
    for r in ok:
        cells = (r["accuracy"], r["accuracy_std"], r["auroc"], r["linear_accuracy"])
        lines.append(f"| {r['set']} | " + " | ".join(f"{v:.3f}" for v in cells) + f" | {r['wall_s']} s |")
    if ok:
        lines.append(f"| **mean** | **{mean:.3f}** | | | **{lin:.3f}** | |")
    lines += ["", "Commands (one per set):", ""] + [f"    {r.get('command', '')}" for r in ok]
    stem.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
