"""DeepBind ENCODE benchmark: the default sequence model vs the k-mer baseline on 10 TFs.

For each ``*_AC.seq.gz`` file of ``../shared/datasets/dna/deepbind_encode_train/`` (bound peaks
only) the script

1. holds out ``--test-positives`` peaks (500, as DeepBind's test sets; by default the odd-ranked
   peaks among the 1,000 strongest, the same kind of peaks as DeepBind's even-ranked fold-B test
   files, which are not shipped) and adds one dinucleotide shuffle of each as negatives: the
   held-out test set (1,000 sequences);
2. trains ``biodl``'s defaults for ``--data-type sequence`` on the remaining peaks (at most
   ``--max-positives``) with ``--negatives dinucleotide-shuffle`` (two shuffles per peak, the
   default) and the usual 60/10/30 split,
   early stopping on the validation loss;
3. fits the classical baseline (logistic regression on k-mer counts) on the same training rows;
4. writes per-TF test ROC-AUC of both to ``benchmarks/results/encode_tfs.{json,md}``.

Run: ``.venv/bin/python benchmarks/encode_tfs.py`` (about 15 minutes on 2 CPU cores).
Model/training options can be changed for experiments with ``--set key=value`` (validation
AUCs are reported next to test AUCs so that choices are made on validation data only).
"""

from __future__ import annotations

import argparse
import gzip
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "datasets" / "dna" / "deepbind_encode_train"
RESULTS = REPO / "benchmarks" / "results"


def tf_name(path: Path) -> str:
    """``ARID3A_K562_ARID3A_(sc-8821)_Stanford_AC.seq.gz`` → ``ARID3A``."""
    return path.name.split("_")[0]


def hold_out(path: Path, n_test: int, max_pos: int | None, seed: int, workdir: Path, mode: str = "top") -> tuple[Path, Path, int]:
    """Write a training file (the rest, capped) and a test file (``n_test`` positives).

    ``top``: the first ``n_test`` rows, which in these files are the odd-ranked peaks among the
    1,000 strongest (``seq_00001_peak``, ``seq_00003_peak``...); DeepBind's test files (fold B,
    not shipped here) hold the even-ranked ones, so these are the closest stand-in.
    ``random``: random peaks.
    """
    frame = pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False)
    rng = np.random.default_rng(seed)
    order = np.arange(len(frame)) if mode == "top" else rng.permutation(len(frame))
    test, train = frame.iloc[np.sort(order[:n_test])], frame.iloc[np.sort(order[n_test:])]
    if max_pos and len(train) > max_pos:
        train = train.iloc[np.sort(rng.choice(len(train), size=max_pos, replace=False))]
    name = tf_name(path)
    tr, te = workdir / f"{name}_train.seq.gz", workdir / f"{name}_test.seq.gz"
    for part, out in ((train, tr), (test, te)):
        with gzip.open(out, "wt") as fh:
            part.to_csv(fh, sep="\t", index=False)
    return tr, te, len(train)


def run_tf(path: Path, args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    """Train, evaluate and baseline one TF."""
    from biodl.baselines import BASELINES
    from biodl.experiment import Experiment
    from biodl.inference import evaluate, load_data
    from biodl.metrics import compute_metrics

    name = tf_name(path)
    n_test, cap = args.test_positives, args.max_positives
    train_file, test_file, n_pos = hold_out(path, n_test, cap, args.seed, workdir, args.holdout)
    exp = Experiment(
        data={
            "type": "sequence",
            "path": [str(train_file)],
            "target_columns": ["Bound"],
            "sequence": {"column": "seq", "negatives": "dinucleotide-shuffle", "seed": args.seed},
        },
        train={"progress_bar": False, "seed": args.seed},
        evaluate={"baselines": ["linear"], "report": False, "plots": False},
    )
    if args.set:
        exp = exp.with_overrides(args.set)
    t0 = time.perf_counter()
    result = exp.fit(workdir / name)
    seconds = time.perf_counter() - t0
    bundle = result.bundle
    assert bundle is not None
    # held-out test: 500 bound peaks + one dinucleotide shuffle of each (seeded differently from training)
    # (one shuffle per peak whatever the training ratio: DeepBind's 500 + 500 test sets)
    test = load_data(
        bundle, [str(test_file)], {"sequence.seed": args.seed + 1000, "sequence.negatives_ratio": 1}, require_targets=True
    )
    net = evaluate(bundle, test)
    # the k-mer baseline, fitted on the run's training rows
    modality = bundle.modality
    train = load_data(bundle, [str(train_file)], {"sequence.seed": args.seed}, require_targets=True)
    assert train.targets is not None and test.targets is not None
    splits = json.loads((workdir / name / "splits.json").read_text())
    tr = np.asarray(splits["train"], dtype=np.int64)
    F_train = modality.baseline_features(modality.transform(train.X))
    F_test = modality.baseline_features(modality.transform(test.X))
    base = BASELINES["linear"]("binary", seed=args.seed).fit(F_train[tr], train.targets.y[tr])
    base_test = compute_metrics("binary", test.targets.y, base.predict(F_test), metrics=["auroc", "auprc", "accuracy"])
    row = {
        "tf": name,
        "file": path.name,
        "train_positives": n_pos,
        "network_val_auroc": result.metrics["val"].get("auroc"),
        "network_test_auroc": net.get("auroc"),
        "network_test_auprc": net.get("auprc"),
        "network_test_accuracy": net.get("accuracy"),
        "kmer_val_auroc": result.metrics.get("baseline", {}).get("val", {}).get("auroc"),
        "kmer_test_auroc": base_test.get("auroc"),
        "kmer_test_auprc": base_test.get("auprc"),
        "epochs": result.metrics["training"]["epochs"],
        "best_epoch": result.metrics["training"]["best_epoch"],
        "train_seconds": round(seconds, 1),
    }
    print(json.dumps(row), flush=True)
    return row


def markdown(rows: list[dict[str, Any]], settings: dict[str, Any]) -> str:
    """The results table."""
    lines = [
        "# DeepBind ENCODE benchmark (biodl defaults vs k-mer logistic regression)",
        "",
        f"Settings: {json.dumps(settings)}",
        "",
        "| TF | train peaks | network val ROC-AUC | network test ROC-AUC | k-mer baseline test ROC-AUC | Δ | epochs |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        diff = r["network_test_auroc"] - r["kmer_test_auroc"]
        lines.append(
            f"| {r['tf']} | {r['train_positives']} | {r['network_val_auroc']:.3f} | {r['network_test_auroc']:.3f} | "
            f"{r['kmer_test_auroc']:.3f} | {diff:+.3f} | {r['epochs']} |"
        )
    net = float(np.mean([r["network_test_auroc"] for r in rows]))
    kmer = float(np.mean([r["kmer_test_auroc"] for r in rows]))
    val = float(np.mean([r["network_val_auroc"] for r in rows]))
    wins = sum(r["network_test_auroc"] > r["kmer_test_auroc"] for r in rows)
    lines += [
        f"| **mean** | | {val:.3f} | **{net:.3f}** | {kmer:.3f} | {net - kmer:+.3f} | |",
        "",
        f"The network beats the k-mer baseline on {wins} of {len(rows)} TFs.",
    ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tfs", nargs="*", help="TF names (default: all 10)")
    parser.add_argument("--test-positives", type=int, default=500)
    parser.add_argument("--holdout", choices=("top", "random"), default="top", help="which peaks form the test set")
    parser.add_argument("--max-positives", type=int, default=0, help="cap on training peaks per TF (0 = all)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--set", action="append", default=[], help="config override, e.g. model.filters=64")
    parser.add_argument("--workdir", default="/tmp/biodl_encode_bench")
    parser.add_argument("--tag", default="encode_tfs", help="result file name")
    args = parser.parse_args(argv)
    if not DATA.is_dir():
        print(f"data not found: {DATA}", file=sys.stderr)
        return 1
    files = sorted(DATA.glob("*_AC.seq.gz"))
    if args.tfs:
        files = [f for f in files if tf_name(f) in args.tfs]
    workdir = Path(args.workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    rows = [run_tf(f, args, workdir) for f in files]
    settings = {
        "test_positives": args.test_positives,
        "holdout": args.holdout,
        "max_positives": args.max_positives,
        "seed": args.seed,
        "overrides": args.set,
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"{args.tag}.json").write_text(json.dumps({"settings": settings, "rows": rows}, indent=1))
    (RESULTS / f"{args.tag}.md").write_text(markdown(rows, settings))
    print(markdown(rows, settings))
    return 0


if __name__ == "__main__":
    sys.exit(main())
