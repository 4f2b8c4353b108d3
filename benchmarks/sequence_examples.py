"""The sequence examples' figures: Oct4 vs MafK on janggu's held-out peaks, and the DREAM5 ChIP sets.

* Oct4 vs MafK (``examples/oct4_mafk.yaml``, janggu's data): trained with the example config
  (biodl's defaults: DeepBind, strand averaging), then scored on the 200 ``*_test.fa`` peaks
  exactly as ``biodl evaluate`` does. Target: test accuracy ≥ 0.95.
* DREAM5 ChIP-seq (``examples/dream5_tf23.yaml`` and the same settings for the other TFs of
  ``../shared/datasets/dna/dream5_chipseq/``): each ``TF_*_CHIP_100_full_genomic.seq`` file
  (500 bound + 500 genomic background) trained with the defaults; held-out test ROC-AUC of the
  network and of the k-mer logistic-regression baseline on the run's own test split.

Writes ``benchmarks/results/sequence_examples.{json,md}``.

    python benchmarks/sequence_examples.py [--skip-dream5] [--set key=value ...]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import write_results

REPO = Path(__file__).resolve().parents[1]
DNA = REPO.parent / "shared" / "datasets" / "dna"


def oct4_mafk(workdir: Path, overrides: list[str]) -> dict[str, Any]:
    """Train ``examples/oct4_mafk.yaml`` and evaluate on janggu's 200 held-out peaks."""
    import biodl
    from biodl.inference import evaluate, load_data

    out = workdir / "oct4_mafk"
    t0 = time.perf_counter()
    exp = biodl.Experiment.from_yaml(REPO / "examples" / "oct4_mafk.yaml", overrides=["train.progress_bar=false", *overrides])
    result = exp.fit(out)
    seconds = time.perf_counter() - t0
    bundle = biodl.load(out)
    d = DNA / "janggu_oct4_mafk"
    data = load_data(bundle, [str(d / "sample_test.fa"), str(d / "sample2_test.fa")], require_targets=True)
    test = evaluate(bundle, data)
    return {
        "dataset": "Oct4 vs MafK (janggu), 200 *_test.fa peaks",
        "test_accuracy": test["accuracy"],
        "test_auroc": test["auroc"],
        "internal_test_accuracy": result.metrics["test"]["accuracy"],
        "baseline_internal_test_accuracy": result.metrics.get("baseline", {}).get("test", {}).get("accuracy"),
        "epochs": max((len(v) for v in result.history.values()), default=None),
        "train_seconds": round(seconds, 1),
    }


def dream5(path: Path, workdir: Path, overrides: list[str]) -> dict[str, Any]:
    """Train the DREAM5 example settings on one TF file; test ROC-AUC of network and k-mer baseline."""
    import biodl

    out = workdir / path.stem
    t0 = time.perf_counter()
    exp = biodl.Experiment.from_yaml(
        REPO / "examples" / "dream5_tf23.yaml",
        overrides=[f"data.path=[{str(path)!r}]", "train.progress_bar=false", *overrides],
    )
    result = exp.fit(out)
    base = result.metrics.get("baseline", {})
    return {
        "dataset": f"DREAM5 {path.stem}",
        "test_auroc": result.metrics["test"]["auroc"],
        "baseline": base.get("name"),
        "baseline_test_auroc": base.get("test", {}).get("auroc"),
        "train_seconds": round(time.perf_counter() - t0, 1),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--skip-dream5", action="store_true")
    parser.add_argument("--set", action="append", default=[], help="config override, e.g. model.filters=64")
    args = parser.parse_args(argv)
    if not (DNA / "janggu_oct4_mafk").is_dir():
        print(f"skipped: {DNA} is absent")
        return 0
    rows: list[list[Any]] = []
    payload: dict[str, Any] = {"overrides": args.set}
    with tempfile.TemporaryDirectory(prefix="biodl_seq_examples_") as tmp:
        work = Path(tmp)
        oct4 = oct4_mafk(work, args.set)
        payload["oct4_mafk"] = oct4
        print(oct4, flush=True)
        rows.append([oct4["dataset"], "accuracy", oct4["test_accuracy"], f"ROC-AUC {oct4['test_auroc']:.3f}",
                     "k-mer LR (internal test split) accuracy "
                     f"{oct4['baseline_internal_test_accuracy']:.3f}" if oct4["baseline_internal_test_accuracy"] else "-",
                     oct4["train_seconds"]])  # fmt: skip
        payload["dream5"] = []
        if not args.skip_dream5:
            for path in sorted((DNA / "dream5_chipseq").glob("TF_*_CHIP_100_full_genomic.seq")):
                res = dream5(path, work, args.set)
                payload["dream5"].append(res)
                print(res, flush=True)
                rows.append([res["dataset"], "ROC-AUC (run's test split)", res["test_auroc"], "-",
                             f"{res['baseline']} {res['baseline_test_auroc']:.3f}", res["train_seconds"]])  # fmt: skip
    write_results(
        "sequence_examples",
        payload,
        ["data set", "metric", "biodl (defaults)", "also", "k-mer baseline", "train s"],
        rows,
        notes="Oct4/MafK: target test accuracy ≥ 0.95 on janggu's 200 held-out peaks (janggu's docs: 0.85).",
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
