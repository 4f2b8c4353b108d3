"""Protein secondary structure (NetSurfP-2.0 training chains): per-position model selection on validation chains.

Trains each candidate per-position model on a random subset of the training chains (``validation``
False) and scores Q3 / SOV on a subset of the validation chains (``validation`` True), with the
per-position defaults (``data.per_position``) except the named model parameters.

    PYTHONPATH=src python benchmarks/protein_ss.py --train-chains 1500 --val-chains 300 --epochs 3
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

DATA = (
    Path(__file__).resolve().parents[1] / ".." / "shared" / "datasets" / "protein" / "secondary_structure_netsurfp" / "train.tsv"
)

CANDIDATES: dict[str, dict[str, object]] = {
    "dilated-cnn": {"name": "dilated-cnn"},
    "dilated-cnn-128": {"name": "dilated-cnn", "channels": 128},
    "cnn-birnn": {"name": "cnn-birnn"},
    "transformer": {"name": "transformer"},
    "gru": {"name": "gru", "conv_filters": 64},
}


def main() -> None:
    import pandas as pd

    from biodl.experiment import Experiment

    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default=str(DATA))
    ap.add_argument("--train-chains", type=int, default=1500)
    ap.add_argument("--val-chains", type=int, default=300)
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--models", nargs="+", default=list(CANDIDATES))
    ap.add_argument("--out", default="/tmp/protein_ss_bench")
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    d = pd.read_csv(args.data, sep="\t", dtype={"resolved": str})
    sub = pd.concat(
        [
            d[~d.validation].sample(args.train_chains, random_state=0),
            d[d.validation].sample(args.val_chains, random_state=0),
        ]
    )
    path = out / "subset.tsv"
    sub.to_csv(path, sep="\t", index=False)
    results = {}
    for key in args.models:
        model = CANDIDATES[key]
        exp = Experiment(
            data={"type": "sequence", "path": [str(path)], "target_columns": ["sst3"], "per_position": True,
                  "mask_column": "resolved", "val_column": "validation", "task": "classification",
                  "sequence": {"alphabet": "protein", "column": "seq"}},
            model=model,
            train={"max_epochs": args.epochs, "threads": args.threads, "progress_bar": False, "early_stopping": False},
            evaluate={"baselines": [], "report": False, "plots": False},
        )  # fmt: skip
        t0 = time.perf_counter()
        res = exp.fit(out / key)
        secs = time.perf_counter() - t0
        val = res.metrics["val"]
        results[key] = {
            "q3": val["accuracy"], "sov": val["sov"], "f1": {c: v["f1"] for c, v in val["per_class"].items()},
            "seconds": round(secs, 1), "epochs": args.epochs, "history_val_accuracy": res.history.get("val_accuracy"),
        }  # fmt: skip
        print(key, json.dumps(results[key]), flush=True)
        (out / "results.json").write_text(json.dumps({"args": vars(args), "results": results}, indent=1))


if __name__ == "__main__":
    main()
