"""Defaults (``model.name: auto``) on the tables in ../shared: PBMC cell types (60/10/30, seeds 0–3) and yeast
multi-label (5-fold cross-validation of the training file).

No example config and no tuning flags: only the data, the task, the split the issue's evaluation uses and
``--threads 1`` (the shared 2-core machine). ``run`` trains (the commands are written into the results);
``collect`` reads the run directories and writes ``benchmarks/results/defaults_tables.{json,md}``: the chosen
network's validation and test score, the run's baseline, every candidate's validation score, whether the
network beats the baseline, seconds. Test scores are reported, never used to choose.

    PYTHONPATH=src nice -n 10 python benchmarks/defaults_tables.py run [pbmc|yeast ...] --workdir DIR
    PYTHONPATH=src python benchmarks/defaults_tables.py collect --workdir DIR
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

PBMC = "../shared/datasets/expression/pbmc68k_reduced/10x_pbmc68k_reduced.h5ad"
YEAST = "../shared/datasets/multilabel/yeast/yeast-train.arff"
SEEDS = (0, 1, 2, 3)


def commands(workdir: Path) -> dict[str, list[str]]:
    """The exact ``biodl train`` argument lists, by run name."""
    out = {
        f"pbmc_s{s}": ["train", "--data-path", PBMC, "--task", "classification", "--target-columns", "bulk_labels",
                       "--split-sizes", "0.6", "0.1", "0.3", "--seed", str(s), "--threads", "1",
                       "--output-dir", str(workdir / f"pbmc_s{s}"), "--overwrite"]
        for s in SEEDS
    }  # fmt: skip
    labels = [f"Class{i}" for i in range(1, 15)]
    out["yeast_cv"] = ["train", "--data-path", YEAST, "--target-columns", *labels, "--task", "multilabel", "--cv", "5",
                       "--seed", "0", "--threads", "1", "--output-dir", str(workdir / "yeast_cv"), "--overwrite"]  # fmt: skip
    return out


def _run_record(run: Path) -> dict[str, Any]:
    m = json.loads((run / "metrics.json").read_text())
    sel = m["model_selection"]
    metric = sel["metric"]
    return {
        "selected": sel["selected"],
        "candidates_val": {c["label"]: (c.get("val") or {}).get(metric, c["status"]) for c in sel["candidates"]},
        "candidates_seconds": sel["seconds"],
        "stopped_by_budget": [c["label"] for c in sel["candidates"] if c.get("stopped_by_budget")],
        "val": m["val"],
        "test": m["test"],
        "baseline": {"name": m["baseline"]["name"], "val": m["baseline"]["val"], "test": m["baseline"]["test"]},
        "network_beats_baseline": m.get("network_beats_baseline"),
    }


def collect(workdir: Path) -> None:
    cmds = commands(workdir)
    payload: dict[str, Any] = {"commands": {k: "biodl " + " ".join(v) for k, v in cmds.items()}, "runs": {}}
    rows: list[list[Any]] = []
    pbmc = [_run_record(workdir / f"pbmc_s{s}") for s in SEEDS if (workdir / f"pbmc_s{s}" / "metrics.json").is_file()]
    for s, r in zip(SEEDS, pbmc, strict=False):
        payload["runs"][f"pbmc_s{s}"] = r
        rows.append([f"PBMC seed {s}", r["selected"].split(" (")[0], r["val"]["accuracy"], r["test"]["accuracy"],
                     f"{r['baseline']['name']} {r['baseline']['val']['accuracy']:.3f} / {r['baseline']['test']['accuracy']:.3f}",
                     r["network_beats_baseline"]])  # fmt: skip
    if len(pbmc) == len(SEEDS):
        net = float(np.mean([r["test"]["accuracy"] for r in pbmc]))
        base = float(np.mean([r["baseline"]["test"]["accuracy"] for r in pbmc]))
        payload["pbmc_mean"] = {"network_test": net, "baseline_test": base, "margin": net - base,
                                "network_val": float(np.mean([r["val"]["accuracy"] for r in pbmc])),
                                "baseline_val": float(np.mean([r["baseline"]["val"]["accuracy"] for r in pbmc]))}  # fmt: skip
        base_val = payload["pbmc_mean"]["baseline_val"]
        rows.append(["PBMC mean", "", payload["pbmc_mean"]["network_val"], net, f"{base_val:.3f} / {base:.3f}",
                     f"margin {net - base:+.3f} (bar +0.02)"])  # fmt: skip
    folds = sorted((workdir / "yeast_cv").glob("fold_*/metrics.json"))
    recs = [_run_record(f.parent) for f in folds]
    for f, r in zip(folds, recs, strict=True):
        payload["runs"][f"yeast_{f.parent.name}"] = r
        t, b = r["test"], r["baseline"]["test"]
        rows.append([f"yeast {f.parent.name}", r["selected"].split(" (")[0],
                     f"auroc {r['val']['auroc']:.3f}", f"{t['hamming_loss']:.4f} / {t['average_precision']:.4f}",
                     f"{r['baseline']['name']} {b['hamming_loss']:.4f} / {b['average_precision']:.4f}",
                     r["network_beats_baseline"]])  # fmt: skip
    if recs:
        mean = {k: float(np.mean([r["test"][k] for r in recs])) for k in ("hamming_loss", "average_precision")}
        sd = {k: float(np.std([r["test"][k] for r in recs])) for k in ("hamming_loss", "average_precision")}
        rf = {k: float(np.mean([r["baseline"]["test"][k] for r in recs])) for k in ("hamming_loss", "average_precision")}
        payload["yeast_mean"] = {"network_test": mean, "network_test_sd": sd, "baseline_test": rf, "folds": len(recs)}
        ham = f"{mean['hamming_loss']:.4f} ± {sd['hamming_loss']:.4f}"
        ap = f"{mean['average_precision']:.4f} ± {sd['average_precision']:.4f}"
        rows.append([f"yeast mean ({len(recs)} folds)", "", "", f"{ham} / {ap}",
                     f"{rf['hamming_loss']:.4f} / {rf['average_precision']:.4f}", "bars: ≤ 0.195 / ≥ 0.765"])  # fmt: skip
    for name in cmds:  # wall/CPU seconds, where the run was timed by /usr/bin/time into NAME.log
        log = workdir / f"{name}.log"
        timed = [ln for ln in log.read_text().splitlines() if "s wall" in ln] if log.is_file() else []
        if timed:
            payload.setdefault("time", {})[name] = timed[-1]
    notes = "Commands:\n\n" + "\n".join(f"- `{k}`: `{v}`" for k, v in payload["commands"].items())
    notes += "\n\nPBMC: accuracy; yeast: test Hamming loss / average precision, chosen on validation ROC-AUC."
    if payload.get("time"):
        notes += "\n\nTimes (`/usr/bin/time`, `nice`, 2 shared cores):\n\n" + "\n".join(
            f"- {k}: {v}" for k, v in payload["time"].items()
        )
    header = ["run", "chosen", "network val", "network test", "baseline of the run val / test", "network ≥ baseline (val)"]
    write_results("defaults_tables", payload, header, rows, notes)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("action", choices=("run", "collect"))
    parser.add_argument("which", nargs="*", default=["pbmc", "yeast"])
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/biodl_defaults_tables"))
    args = parser.parse_args(argv)
    if args.action == "run":
        from biodl.cli.main import main as biodl

        for name, cmd in commands(args.workdir).items():
            if name.split("_")[0] in args.which:
                biodl(cmd)
    collect(args.workdir)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
