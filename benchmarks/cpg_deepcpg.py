"""DeepCpG CpG module on the two serum single cells (chr18): defaults chosen on validation, then held-out figures.

1. Selection: for each ``k`` (neighbouring CpGs per side) and GRU width, train ``deepcpg`` (CpG module) on the
   default split (contiguous 100 kb blocks: 60 % train, 10 % validation, 30 % test) with early stopping on the
   validation loss; pick the setting with the best mean validation AUROC (the test blocks are not looked at).
2. Held-out: the chosen setting's test AUROC per cell, against the neighbour-mean baseline (same cell, +-k CpGs,
   the run's own ``metrics.json`` baseline) and the bulk-rate baseline (the BS9N_SER / BS9N_2I bulk methylation
   rate at the site; sites without a bulk call get the bulk mean), on the same test sites.

    PYTHONPATH=src python benchmarks/cpg_deepcpg.py --threads 1 --out benchmarks/results/cpg_deepcpg.json
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "datasets" / "methylation" / "deepcpg_smallwood2014"
CELLS = ("BS27_4_SER", "BS28_2_SER")


def bulk_auroc(run: Path, bulk: str) -> dict[str, float]:
    """Test AUROC per cell of predicting the bulk methylation rate at each site."""
    import pandas as pd
    from sklearn.metrics import roc_auc_score

    test = set(json.loads((run / "splits.json").read_text())["test_ids"])
    rates = pd.read_csv(DATA / f"{bulk}_chr18.tsv.gz", sep="\t", header=None, names=["c", "p", "v"])
    rate = dict(zip((rates.c.astype(str) + ":" + rates.p.astype(str)).tolist(), rates.v.tolist(), strict=True))
    fill = float(rates.v.mean())
    out = {}
    for cell in CELLS:
        t = pd.read_csv(DATA / f"{cell}_chr18.tsv.gz", sep="\t", header=None, names=["c", "p", "v"])
        ids = (t.c.astype(str) + ":" + t.p.astype(str)).tolist()
        keep = [i for i, s in enumerate(ids) if s in test]
        y = t.v.to_numpy()[keep]
        p = np.array([rate.get(ids[i], fill) for i in keep])
        out[cell] = float(roc_auc_score(y, p))
        out[f"{cell}_covered"] = float(np.mean([ids[i] in rate for i in keep]))
    return out


def train(out: Path, k: int, gru: int, threads: int, extra: dict[str, object] | None = None) -> dict[str, object]:
    from biodl.experiment import Experiment

    paths = [str(DATA / f"{c}_chr18.tsv.gz") for c in CELLS]
    data: dict[str, object] = {"type": "cpg", "path": paths, "task": "classification", "cpg": {"k": k}}
    model: dict[str, object] = {"name": "deepcpg", "gru_hidden": gru}
    if extra:
        data["cpg"] = {"k": k, **extra}
    t0 = time.time()
    exp = Experiment(data=data, model=model,
                     train={"threads": threads, "progress_bar": False, "patience": 5},
                     evaluate={"plots": False, "report": False})  # fmt: skip
    res = exp.fit(out)
    m = res.metrics
    return {
        "k": k, "gru_hidden": gru, "extra": extra or {}, "seconds": round(time.time() - t0, 1),
        "best_epoch": m["training"]["best_epoch"], "epochs": m["training"]["epochs"],
        "val_auroc": m["val"]["auroc"], "test_auroc": m["test"]["auroc"],
        "val_per_cell": {c: m["val"]["per_task"][c]["auroc"] for c in CELLS},
        "test_per_cell": {c: m["test"]["per_task"][c]["auroc"] for c in CELLS},
        "baseline_val": {c: m["baseline"]["val"]["per_task"][c]["auroc"] for c in CELLS},
        "baseline_test": {c: m["baseline"]["test"]["per_task"][c]["auroc"] for c in CELLS},
        "sizes": json.loads((out / "splits.json").read_text())["sizes"],
    }  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--ks", type=int, nargs="+", default=[5, 10, 25])
    ap.add_argument("--grus", type=int, nargs="+", default=[16, 32, 64])
    ap.add_argument("--runs", default="/tmp/cpg_deepcpg_runs")
    ap.add_argument("--out", default="benchmarks/results/cpg_deepcpg.json")
    args = ap.parse_args()
    runs = Path(args.runs)
    rows = []
    for k in args.ks:
        for g in args.grus:
            rows.append(train(runs / f"k{k}_g{g}", k, g, args.threads))
            print(json.dumps(rows[-1]), flush=True)
            Path(args.out).write_text(json.dumps({"selection": rows}, indent=1))
    best = max(rows, key=lambda r: float(r["val_auroc"]))  # chosen on validation only
    run = runs / f"k{best['k']}_g{best['gru_hidden']}"
    doc = {
        "selection": rows,
        "chosen": {"k": best["k"], "gru_hidden": best["gru_hidden"], "best_epoch": best["best_epoch"]},
        "held_out": {
            "network": best["test_per_cell"],
            "neighbour_mean": best["baseline_test"],
            "bulk_BS9N_SER": bulk_auroc(run, "BS9N_SER"),
            "bulk_BS9N_2I": bulk_auroc(run, "BS9N_2I"),
        },
    }
    anno = [str(DATA / "CGI.bed.gz"), str(DATA / "exons.bed.gz")]
    doc["with_annotations"] = train(runs / "anno", int(best["k"]), int(best["gru_hidden"]), args.threads, {"annotations": anno})
    Path(args.out).write_text(json.dumps(doc, indent=1))
    print(json.dumps(doc["held_out"], indent=1))


if __name__ == "__main__":
    main()
