"""Defaults (``model.name: auto``) on tables nothing in biodl was chosen on: the kind of data where trees win.

Five real classification tables: three that scikit-learn ships (UCI handwritten digits, 1,797 × 64 pixel
counts, 10 classes; Wisconsin breast cancer, 569 × 30, binary; wine recognition, 178 × 13, 3 cultivars) and
two from the wheel of ``river`` on PyPI (UCI image segmentation, 2,310 × 18, 7 classes; UCI phishing
websites, 1,250 × 9, binary); and two regression tables (scikit-learn's diabetes progression, 442 × 10;
river's FiveThirtyEight Trump approval average from six pollsters' series and the date, 1,001 × 6).
``--fetch`` writes them as CSV files into ``$BIODL_EXTRA_DATA/tables`` (river's wheel downloaded without
dependencies, nothing installed, nothing copied into the repository).

Each set, seeds 0–2, is a plain ``biodl train --data-type tabular --data-path SET.csv --target-columns T
--task classification|regression --seed S --threads 1`` (the default 60/10/30 split); ``--summarise`` reads the run
directories (``WORKDIR/<set>_s<seed>_<label>``, one label per code version) and writes
``results/tables_heldout.{json,md}``: validation and test figures of the network and of the run's baseline,
and the chosen candidate. Test scores are reported, never used to choose.

    python benchmarks/tables_heldout.py --fetch
    PYTHONPATH=src python benchmarks/tables_heldout.py --run WORKDIR LABEL
    python benchmarks/tables_heldout.py --summarise WORKDIR LABEL [LABEL ...]
"""

from __future__ import annotations

import argparse
import gzip
import io
import json
import zipfile
from pathlib import Path

import numpy as np
from _common import EXTRA_DATA, download_wheels, write_results

TABLES = EXTRA_DATA / "tables"
#: name → (target column, headline metric of the run, task)
SETS = {
    "digits": ("target", "accuracy", "classification"),
    "breast_cancer": ("target", "auroc", "classification"),
    "wine": ("target", "accuracy", "classification"),
    "segment": ("category", "accuracy", "classification"),
    "phishing": ("is_phishing", "auroc", "classification"),
    "diabetes": ("target", "rmse", "regression"),
    "trump": ("five_thirty_eight", "rmse", "regression"),
}
SEEDS = (0, 1, 2)


def fetch() -> None:
    """Write the five tables as CSV files into :data:`TABLES`."""
    from sklearn import datasets

    TABLES.mkdir(parents=True, exist_ok=True)
    for name, load in (("digits", datasets.load_digits), ("breast_cancer", datasets.load_breast_cancer),
                       ("wine", datasets.load_wine), ("diabetes", datasets.load_diabetes)):  # fmt: skip
        frame = load(as_frame=True).frame
        frame.columns = [str(c).replace(" ", "_") for c in frame.columns]
        frame.to_csv(TABLES / f"{name}.csv", index=False)
    download_wheels("river==0.26.1")
    wheel = next(EXTRA_DATA.glob("river-0.26.1-*.whl"))
    with zipfile.ZipFile(wheel) as z:
        # river's segment.csv.zip holds one member, the CSV text (itself named segment.csv.zip)
        with zipfile.ZipFile(io.BytesIO(z.read("river/datasets/segment.csv.zip"))) as inner:
            (TABLES / "segment.csv").write_bytes(inner.read(inner.namelist()[0]))
        for name, member in (("phishing", "phishing.csv.gz"), ("trump", "trump_approval.csv.gz")):
            with gzip.open(io.BytesIO(z.read(f"river/datasets/{member}"))) as fh:
                (TABLES / f"{name}.csv").write_bytes(fh.read())


def command(name: str, seed: int, out: Path) -> list[str]:
    """The ``biodl train`` argument list of one run."""
    data = ["--data-type", "tabular", "--data-path", str(TABLES / f"{name}.csv"), "--target-columns", SETS[name][0]]
    return ["train", *data, "--task", SETS[name][2], "--seed", str(seed), "--threads", "1",
            "--output-dir", str(out), "--overwrite"]  # fmt: skip


def run(workdir: Path, label: str) -> None:
    from biodl.cli.main import main

    for name in SETS:
        if not (TABLES / f"{name}.csv").is_file():
            raise SystemExit(f"{TABLES / name}.csv not found: run `python benchmarks/tables_heldout.py --fetch` first")
        for seed in SEEDS:
            main(command(name, seed, workdir / f"{name}_s{seed}_{label}"))


def summarise(workdir: Path, labels: list[str], described: dict[str, str] | None = None) -> None:
    rows, payload = [], {}
    for name, (_, metric, _task) in SETS.items():
        for label in labels:
            runs = [workdir / f"{name}_s{s}_{label}" / "metrics.json" for s in SEEDS]
            found = [json.loads(p.read_text()) for p in runs if p.is_file()]
            if not found:
                continue
            net = [m["test"][metric] for m in found]
            base = [m["baseline"]["test"][metric] for m in found]
            payload[f"{name}/{label}"] = {
                "metric": metric,
                "val": [m["val"][metric] for m in found],
                "test": net,
                "baseline": [m["baseline"]["name"] for m in found],
                "baseline_val": [m["baseline"]["val"][metric] for m in found],
                "baseline_test": base,
                "selected": [(m.get("model_selection") or {}).get("selected", "the default network") for m in found],
            }
            rows.append([
                name, label, metric, len(found), float(np.mean([m["val"][metric] for m in found])), float(np.mean(net)),
                " / ".join(f"{v:.3f}" for v in net), float(np.mean(base)), " / ".join(f"{v:.3f}" for v in base),
                sum((a >= b) if metric != "rmse" else (a <= b) for a, b in zip(net, base)),
            ])  # fmt: skip
    header = ["set", "code", "metric", "seeds", "network val", "network test", "per seed", "baseline test", "per seed",
              "network at or above baseline (test)"]  # fmt: skip
    notes = ("Plain `biodl train`, default 60/10/30 split, seeds 0–2; the baseline is the run's own "
             "(the better of logistic regression and random forest on validation). Commands: "
             "`python benchmarks/tables_heldout.py --fetch`, `--run WORKDIR LABEL`, "
             "`--summarise WORKDIR LABEL ...`.")  # fmt: skip
    if described:
        notes += " Code: " + "; ".join(f"`{k}`: {v}" for k, v in described.items()) + "."
    write_results("tables_heldout", payload, header, rows, notes)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--fetch", action="store_true", help="write the five tables into $BIODL_EXTRA_DATA/tables")
    ap.add_argument("--run", nargs=2, metavar=("WORKDIR", "LABEL"), help="train every set and seed")
    ap.add_argument("--summarise", nargs="+", metavar="WORKDIR LABEL", help="the results tables")
    ap.add_argument("--describe", nargs="*", default=[], metavar="LABEL=TEXT", help="what each label's code was")
    args = ap.parse_args()
    if args.fetch:
        fetch()
    if args.run:
        run(Path(args.run[0]), args.run[1])
    if args.summarise:
        summarise(Path(args.summarise[0]), args.summarise[1:], dict(d.split("=", 1) for d in args.describe))


if __name__ == "__main__":
    main()
