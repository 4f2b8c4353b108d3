"""10-fold CV bag accuracy of the ``mil`` defaults on MIDatasets (MUSK1, Elephant, Fox, Tiger).

Builds each set's contract table ``bag_id, bag_label, fold, f1..fD`` (MIDatasets' ``rep<R>_test_fold``
joined as ``fold``), runs the evaluation's contract command on it (defaults; ``--threads 1``, niced),
several sets side by side, and writes ``benchmarks/results/mil_cv_rep<R>.json`` and ``.md`` with
the per-set fold means, the mean-pooled logistic-regression baseline of the same folds, wall times
and machine facts.

    python benchmarks/mil_cv.py /tmp/milcv --rep 1 --jobs 2 [--sets musk1,fox] [-- --set model.members=1]
    python benchmarks/mil_cv.py --summarise [--tag T]  # results/mil_cv_reps[T].{json,md}: every rep found, pooled

``--summarise`` reads the untagged ``mil_cv_rep<R>.json`` files and writes the per-set accuracy of each
fold repetition, the mean over repetitions (Ilse et al. report five runs of 10-fold CV) and the same
for the logistic-regression baseline.
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


def run_one(name: str, rep: int, workdir: Path, extra: list[str], table: Path | None = None) -> dict[str, object]:
    """Run the contract command on ``table`` (default: MIDatasets set ``name`` with fold repetition ``rep``)."""
    table = table or bag_table(name, rep, workdir / f"{name}_bags.csv")
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


def summarise(tag: str = "") -> None:
    """Pool every ``mil_cv_rep<R><tag>.json`` into ``mil_cv_reps<tag>.{json,md}``."""
    res_dir = ROOT / "benchmarks" / "results"
    reps = {}
    for f in sorted(res_dir.glob(f"mil_cv_rep*{tag}.json")):
        num = f.stem[len("mil_cv_rep") : len(f.stem) - len(tag)]
        if num.isdigit():
            reps[int(num)] = json.loads(f.read_text())
    if not reps:
        raise SystemExit(f"no mil_cv_rep<R>.json in {res_dir}")
    table = {r: {s["set"]: (s["accuracy"], s["linear_accuracy"]) for s in d["sets"] if s.get("rc") == 0} for r, d in reps.items()}
    sets = [s for s in SETS if all(s in t for t in table.values())]
    mil = {s: [table[r][s][0] for r in sorted(table)] for s in sets}
    lin = {s: [table[r][s][1] for r in sorted(table)] for s in sets}
    rep_means = {r: float(np.mean([table[r][s][0] for s in sets])) for r in sorted(table)}
    rep_lin = {r: float(np.mean([table[r][s][1] for s in sets])) for r in sorted(table)}
    out = {
        "reps": sorted(table),
        "sets": sets,
        "per_rep_mean_accuracy": rep_means,
        "per_rep_mean_linear_accuracy": rep_lin,
        "per_set_mean_accuracy": {s: float(np.mean(v)) for s, v in mil.items()},
        "per_set_mean_linear_accuracy": {s: float(np.mean(v)) for s, v in lin.items()},
        "mean_accuracy": float(np.mean(list(rep_means.values()))),
        "mean_linear_accuracy": float(np.mean(list(rep_lin.values()))),
        "dates": {r: d["facts"]["date"] for r, d in reps.items()},
    }
    (res_dir / f"mil_cv_reps{tag}.json").write_text(json.dumps(out, indent=1) + "\n")
    label = f" ({tag.strip('_')})" if tag else ""
    head = "| fold repetition | " + " | ".join(sets) + " | **mean** | LR on mean-pooled instances (mean) |"
    lines = [
        f"# mil: 10-fold CV bag accuracy of the defaults{label}, every MIDatasets fold repetition run",
        "",
        "One `biodl train ... --cv-column fold --model mil` run per set and repetition (`mil_cv_rep<R>.md`);",
        "the last row averages the repetitions (Ilse et al. report the mean of five 10-fold runs).",
        "",
        head,
        "|" + "---|" * (len(sets) + 3),
    ]
    for i, r in enumerate(sorted(table)):
        cells = " | ".join(f"{mil[s][i]:.3f}" for s in sets)
        lines.append(f"| rep{r} ({out['dates'][r]}) | {cells} | **{rep_means[r]:.3f}** | {rep_lin[r]:.3f} |")
    cells = " | ".join(f"{np.mean(mil[s]):.3f}" for s in sets)
    lines.append(f"| **mean of {len(table)}** | {cells} | **{out['mean_accuracy']:.3f}** | {out['mean_linear_accuracy']:.3f} |")
    (res_dir / f"mil_cv_reps{tag}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


def main() -> None:
    if "--summarise" in sys.argv[1:]:
        argv = sys.argv[1:]
        summarise(argv[argv.index("--tag") + 1] if "--tag" in argv else "")
        return
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
    recipe = "with " + " ".join(a.extra) if a.extra else "defaults"
    stem.with_suffix(".json").write_text(json.dumps(res, indent=1) + "\n")
    lines = [
        f"# mil: 10-fold CV bag accuracy (MIDatasets rep{a.rep}_test_fold), defaults{' ' + ' '.join(a.extra) if a.extra else ''}",
        "",
        f"{facts['machine']}; {facts['date']}; `--threads 1`, niced, {a.jobs} sets side by side.",
        "",
        f"| set | mil ({recipe}) | ± fold std | AUROC | LR on mean-pooled instances | wall time |",
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
