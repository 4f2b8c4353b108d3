"""Yeast multi-label defaults: every portfolio candidate of a ``biodl train ... --cv 5`` run scored on its test folds.

The run's own ``metrics.json`` holds only the selected model's test figures; this re-scores each fold's saved
candidate bundles (``fold_k/candidates/*/model``), their average and the run's model on the fold's test rows
(Hamming loss at 0.5, label-ranking average precision), so candidate recipes can be compared on the same folds
without the noise of the validation choice. Test rows only score here, they never choose.

    # one product run per recipe (PYTHONPATH: the sources whose portfolio is measured)
    PYTHONPATH=src python benchmarks/defaults_tables.py run yeast --workdir /tmp/dt_new
    python benchmarks/yeast_candidates.py new=/tmp/dt_new/yeast_cv old=/tmp/dt_old/yeast_cv
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import write_results

YEAST = Path(__file__).resolve().parents[1] / ".." / "shared" / "datasets" / "multilabel" / "yeast" / "yeast-train.arff"


def score_run(run: Path) -> dict[str, Any]:
    """Per fold: test Hamming / AP of each candidate, of candidates 0 and 1 averaged, and of the run's model."""
    from sklearn.metrics import label_ranking_average_precision_score

    from biodl.bundle import load

    folds = json.loads((run / "splits.json").read_text())["folds"]
    out: dict[str, Any] = {}
    for k, split in enumerate(folds):
        te = np.asarray(split["test"])
        models = {p.parent.name.split("_")[0]: p for p in sorted((run / f"fold_{k}" / "candidates").glob("*/model"))}
        models["run"] = run / f"fold_{k}" / "model"
        probs, y = {}, None
        for name, path in models.items():
            bundle = load(path)
            data = bundle.modality.load([str(YEAST)])
            X, y = bundle.modality.transform(data.X), np.asarray(data.targets.y)
            probs[f"candidate {name}" if name != "run" else "run"] = bundle.predict_arrays(X[te])
        if "candidate 0" in probs and "candidate 1" in probs:
            probs["average of 0, 1"] = (probs["candidate 0"] + probs["candidate 1"]) / 2
        assert y is not None
        yt = y[te]
        selected = json.loads((run / f"fold_{k}" / "metrics.json").read_text())["model_selection"]["selected"]
        out[str(k)] = {"selected": selected.split(" (")[0]} | {
            name: {"hamming": float(np.mean((p > 0.5) != (yt > 0.5))), "ap": float(label_ranking_average_precision_score(yt, p))}
            for name, p in probs.items()
        }
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("runs", nargs="+", help="LABEL=RUN_DIR (the yeast_cv directory of a 5-fold run)")
    p.add_argument("--notes", default="")
    args = p.parse_args()
    payload: dict[str, Any] = {"runs": {}}
    rows = []
    for item in args.runs:
        label, run = item.split("=", 1)
        scored = score_run(Path(run))
        payload["runs"][label] = scored
        names = [n for n in scored["0"] if n != "selected"]
        for name in names:
            ham = [scored[f][name]["hamming"] for f in scored]
            ap = [scored[f][name]["ap"] for f in scored]
            rows.append([label, name, " ".join(f"{h:.4f}" for h in ham), f"{np.mean(ham):.4f}", f"{np.mean(ap):.4f}"])
        rows.append([label, "selected per fold", ", ".join(scored[f]["selected"] for f in scored), "", ""])
    header = ["run", "model", "test Hamming per fold", "mean Hamming", "mean AP"]
    write_results("yeast_candidates", payload, header, rows, args.notes)


if __name__ == "__main__":
    main()
