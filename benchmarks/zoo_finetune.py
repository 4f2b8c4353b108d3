"""Fine-tuning a built-in zoo model vs training from scratch on the small DREAM5 ChIP-seq sets.

Each ``TF_*_CHIP_100_full_genomic.seq`` file of ``../shared/datasets/dna/dream5_chipseq/`` (500 bound + 500
genomic background, 101 nt) is run twice with the same 5-fold cross-validation (same folds, same seed,
DeepBind defaults): from a random initialisation, and with ``--init-from zoo:PARENT`` (an ENCODE DeepBind
model of the built-in zoo; its output head is re-initialised because the labels differ). Reported: mean ± std
test ROC-AUC over the folds.

Writes ``benchmarks/results/zoo_finetune.{json,md}``.

    python benchmarks/zoo_finetune.py [--parent encode-myc] [--tfs 23 25 31 40 44] [--set key=value ...]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import write_results

REPO = Path(__file__).resolve().parents[1]
DREAM5 = REPO.parent / "shared" / "datasets" / "dna" / "dream5_chipseq"
QUIET = ["--set", "train.progress_bar=false", "--set", "evaluate.plots=false", "--set", "evaluate.report=false"]


def run(tf: str, parent: str | None, workdir: Path, extra: list[str], freeze: int = 0) -> dict[str, Any]:
    """5-fold CV of one DREAM5 set, from scratch (``parent=None``) or fine-tuned from ``zoo:parent``."""
    from biodl.cli.main import main

    out = workdir / f"TF_{tf}_{parent or 'scratch'}_{freeze}"
    args = ["train", "--data-path", str(DREAM5 / f"TF_{tf}_CHIP_100_full_genomic.seq"), "--target-columns", "label",
            "--data-type", "sequence", "--model", "deepbind", "--cv", "5", "--threads", "1",
            "--set", "evaluate.baselines=[linear]", *QUIET, *extra, "--output-dir", str(out)]  # fmt: skip
    if parent:
        args += ["--init-from", f"zoo:{parent}", "--freeze", str(freeze)]
    t0 = time.perf_counter()
    assert main(args) == 0, f"training failed: {args}"
    m = json.loads((out / "metrics.json").read_text())
    return {
        "auroc": m["test"]["auroc"],
        "auroc_std": m["cv"]["test_std"]["auroc"],
        "baseline_auroc": (m.get("baseline") or {}).get("test", {}).get("auroc"),
        "seconds": round(time.perf_counter() - t0, 1),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--parent", default="encode-myc", help="built-in zoo model to fine-tune (default encode-myc)")
    ap.add_argument("--tfs", nargs="+", default=["23", "25", "31", "40", "44"])
    ap.add_argument("--freeze", type=int, default=0, help="also run a fine-tuned arm with the first N layers frozen")
    ap.add_argument("--set", dest="overrides", action="append", default=[], help="extra config overrides for both arms")
    args = ap.parse_args()
    extra = [x for o in args.overrides for x in ("--set", o)]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for tf in args.tfs:
            scratch = run(tf, None, Path(tmp), extra)
            tuned = run(tf, args.parent, Path(tmp), extra)
            row = {"tf": f"TF_{tf}", "scratch": scratch, "fine_tuned": tuned}
            if args.freeze:
                row["fine_tuned_frozen"] = run(tf, args.parent, Path(tmp), extra, freeze=args.freeze)
            rows.append(row)
            print(json.dumps(rows[-1]), flush=True)
    header = ["set", "scratch ROC-AUC", "fine-tuned ROC-AUC", "Δ", "k-mer LR ROC-AUC"]
    if args.freeze:
        header.insert(4, f"fine-tuned, first {args.freeze} layer(s) frozen")
    table = []
    for r in rows:
        s, f = r["scratch"], r["fine_tuned"]
        table.append([r["tf"], f"{s['auroc']:.3f} ± {s['auroc_std']:.3f}", f"{f['auroc']:.3f} ± {f['auroc_std']:.3f}",
                      f"{f['auroc'] - s['auroc']:+.3f}", f"{s['baseline_auroc']:.3f}"])  # fmt: skip
        if args.freeze:
            z = r["fine_tuned_frozen"]
            table[-1].insert(4, f"{z['auroc']:.3f} ± {z['auroc_std']:.3f}")
    mean_s = sum(r["scratch"]["auroc"] for r in rows) / len(rows)
    mean_f = sum(r["fine_tuned"]["auroc"] for r in rows) / len(rows)
    table.append(["**mean**", f"{mean_s:.3f}", f"{mean_f:.3f}", f"{mean_f - mean_s:+.3f}", ""])
    if args.freeze:
        table[-1].insert(4, f"{sum(r['fine_tuned_frozen']['auroc'] for r in rows) / len(rows):.3f}")
    settings = {"parent": args.parent, "tfs": args.tfs, "overrides": args.overrides, "cv": 5, "model": "deepbind",
                "freeze": args.freeze}  # fmt: skip
    notes = (
        "5-fold cross-validation of each TF_*_CHIP_100_full_genomic.seq (same folds for both arms); fine-tuned = "
        f"--init-from zoo:{args.parent} (head re-initialised, nothing frozen); mean ± std test ROC-AUC over the folds."
    )
    write_results("zoo_finetune", {"settings": settings, "rows": rows}, header, table, notes)


if __name__ == "__main__":
    main()
