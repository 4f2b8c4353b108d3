"""Protein secondary structure (NetSurfP-2.0 training chains): per-position model selection on validation chains.

Trains each candidate per-position model on a random subset of the training chains (``validation``
False) and scores Q3 / SOV on a subset of the validation chains (``validation`` True), with the
per-position defaults (``data.per_position``) except the named model parameters.

    PYTHONPATH=src python benchmarks/protein_ss.py --train-chains 1500 --val-chains 300 --epochs 3

``--summarise RUN`` instead writes ``results/protein_ss_default.{json,md}`` from a run directory of the
contract command (per-epoch validation Q3 from ``RUN/logs/metrics.csv``; Q3 / SOV / per-class F1 from
``RUN/metrics.json`` when the run finished):

    PYTHONPATH=src python benchmarks/protein_ss.py --summarise RUN --seconds 2280 --note "..."
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

DATA = (
    Path(__file__).resolve().parents[1] / ".." / "shared" / "datasets" / "protein" / "secondary_structure_netsurfp" / "train.tsv"
)

#: model parameters per candidate (``train``: training settings that differ from the per-position defaults)
CANDIDATES: dict[str, dict[str, object]] = {
    "dilated-cnn": {"name": "dilated-cnn"},
    "dilated-cnn-64": {"name": "dilated-cnn", "channels": 64, "train": {"label_smoothing": 0.0, "lr_schedule": "plateau"}},
    "cnn-birnn": {"name": "cnn-birnn"},
    "transformer": {"name": "transformer"},
    "gru": {"name": "gru", "conv_filters": 64},
}


CONTRACT = (
    "biodl train --data-type sequence --alphabet protein --data-path train.tsv --sequence-column seq "
    "--target-columns sst3 --per-position --mask-column resolved --val-column validation --task classification "
    "--output-dir RUN --set train.progress_bar=false"
)


def summarise(run: Path, seconds: float | None, note: str) -> None:
    """``results/protein_ss_default.{json,md}``: per-epoch validation Q3 and the final validation metrics of a run."""
    import csv

    import yaml
    from _common import write_results

    epochs: dict[int, dict[str, float]] = {}
    with (run / "logs" / "metrics.csv").open() as fh:
        for row in csv.DictReader(fh):
            for key in ("val_accuracy", "val_loss", "train_loss"):
                if row.get(key):
                    epochs.setdefault(int(row["epoch"]) + 1, {})[key] = round(float(row[key]), 4)
    metrics_path = run / "metrics.json"
    final = json.loads(metrics_path.read_text()) if metrics_path.exists() else None
    cfg = yaml.safe_load((run / "config.yaml").read_text())
    rows: list[list[object]] = [[e, v.get("val_accuracy", "–"), v.get("val_loss", "–")] for e, v in sorted(epochs.items())]
    payload: dict[str, object] = {
        "command": CONTRACT, "model": cfg["model"], "train": cfg["train"], "per_epoch": epochs,
        "seconds": seconds, "finished": final is not None, "note": note,
    }  # fmt: skip
    notes = [f"Command: `{CONTRACT}`", ""]
    if final is not None:
        val = final["val"]
        payload["val"] = {
            "q3": val["accuracy"], "sov": val["sov"], "macro_f1": val["f1"],
            "f1": {c: v["f1"] for c, v in val["per_class"].items()}, "n": val["n"], "n_sequences": val["n_sequences"],
        }  # fmt: skip
        payload["baseline"] = final.get("baseline")
        best = final["training"].get("best_epoch")
        best = best + 1 if isinstance(best, int) else best  # 1-based, as in the table
        f1 = " / ".join(f"{c} {v['f1']:.3f}" for c, v in val["per_class"].items())
        notes.append(
            f"Final (best epoch {best}): validation Q3 {val['accuracy']:.4f}, "
            f"SOV'99 {val['sov']:.1f}, F1 {f1} ({val['n']} residues, {val['n_sequences']} chains)."
        )
    else:
        notes.append("The run had not finished: per-epoch validation Q3 from logs/metrics.csv only.")
    if seconds is not None:
        notes.append(f"Wall-clock seconds: {seconds:.0f}.")
    if note:
        notes.append(note)
    write_results("protein_ss_default", payload, ["epoch", "validation Q3", "validation loss"], rows, notes="\n".join(notes))


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
    ap.add_argument("--summarise", type=Path, default=None, help="write results/protein_ss_default.* from this run dir")
    ap.add_argument("--seconds", type=float, default=None, help="--summarise: the run's wall-clock seconds")
    ap.add_argument("--note", default="", help="--summarise: a note for the results (machine load, ...)")
    args = ap.parse_args()
    if args.summarise is not None:
        summarise(args.summarise, args.seconds, args.note)
        return
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
        model = dict(CANDIDATES[key])
        own_train = dict(model.pop("train", {}))  # type: ignore[call-overload]
        exp = Experiment(
            data={"type": "sequence", "path": [str(path)], "target_columns": ["sst3"], "per_position": True,
                  "mask_column": "resolved", "val_column": "validation", "task": "classification",
                  "sequence": {"alphabet": "protein", "column": "seq"}},
            model=model,
            train={"max_epochs": args.epochs, "threads": args.threads, "progress_bar": False, "early_stopping": False,
                   **own_train},
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
