"""Depth, width, dropout, aggregation and ensembling of the molecule portfolio's D-MPNN (candidate 1).

The candidate exactly as ``model.name: auto`` trains it (``dmpnn`` with the normalised RDKit 2-D descriptors as
extra features, featuriser ``graph morgan_counts rdkit2d``, ``train.monitor: auto``), with one change per
variant, on the development sets only: ESOL and Huuskonen solubility (random 80/10/10, seeds 0–2) and the
2,000-molecule Tox21 subset (seed 0). The held-out sets (FreeSolv, Lipophilicity, MoleculeACE, BBBP, ClinTox,
SIDER) play no part. Validation decides; test is reported.

    PYTHONPATH=src nice python benchmarks/dmpnn_screen.py --out FILE [VARIANT:SET:SEED ...]
    cd benchmarks && python dmpnn_screen.py --summarise FILE ... > results/dmpnn_screen.md
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
from _common import screen_main

from biodl.cli.main import main

DATA = Path("../shared/datasets/molecules/moleculenet")
SOL = Path("../shared/datasets/molecules/rdkit_solubility")
SETS = {
    "esol": (["--data-path", str(DATA / "delaney.csv"), "--task", "regression", "--target-columns", "logp"], (0, 1, 2)),
    "solubility": (
        ["--data-path", str(SOL / "solubility.train.sdf"), "--task", "regression", "--target-columns", "SOL"],
        (0, 1, 2),
    ),
    # written by ``defaults_molecules.py tox21_2k`` (2,000 Tox21 molecules drawn once, seed 0)
    "tox2k": (["--data-path", "/tmp/biodl_defaults/tox21_2k.csv", "--task", "classification", "--skip-invalid"], (0,)),
}
CANDIDATE = [
    "--model", "dmpnn", "--set", "model.extra_features=[rdkit2d]", "--set", "train.monitor=auto",
    "--set", "data.molecule.featurizer=[graph,morgan_counts,rdkit2d]",
]  # fmt: skip
VARIANTS = {
    "base": [],
    "depth5": ["--set", "model.depth=5"],
    "drop10": ["--set", "model.dropout=0.1", "--set", "model.ffn_dropout=0.1"],
    "wide600": ["--set", "model.hidden_size=600"],
    "norm": ["--set", "model.aggregation=norm"],
    "ens3": ["--set", "train.ensemble_size=3"],
}
DESCRIBE = {
    "base": "candidate 1 as shipped: chemprop's depth 3, width 300, no dropout, mean aggregation",
    "depth5": "5 message-passing steps",
    "drop10": "dropout 0.1 in message passing and the FFN (chemprop's `--dropout`)",
    "wide600": "message / atom state size 600",
    "norm": "`norm` aggregation (sum / 100, chemprop v2's default)",
    "ens3": "3 networks averaged (`train.ensemble_size: 3`)",
}


def run(job: str, out: Path) -> None:
    variant, name, seed = job.split(":")
    args, _ = SETS[name]
    run_dir = Path(f"/tmp/biodl_dmpnn_screen/{variant}_{name}_{seed}")
    t0, c0 = time.time(), time.process_time()
    rc = main(["train", "--data-type", "molecule", *args, "--split", "random", "--split-sizes", "0.8", "0.1", "0.1",
               "--seed", seed, "--threads", "1", *CANDIDATE, *VARIANTS[variant], "--set", "train.refit=never",
               "--set", "evaluate.baselines=[]", "--set", "evaluate.plots=false", "--keep-checkpoints", "none",
               "--output-dir", str(run_dir), "--overwrite"])  # fmt: skip
    if rc != 0:
        raise SystemExit(f"{job}: biodl train returned {rc}")
    m = json.loads((run_dir / "metrics.json").read_text())
    metric = "rmse" if "rmse" in m["val"] else "auroc"
    rec = {"v": variant, "d": name, "seed": int(seed), "metric": metric, "val": m["val"][metric],
           "test": m["test"][metric], "epochs": m["training"]["epochs"], "best_epoch": m["training"]["best_epoch"],
           "sec": round(time.time() - t0), "cpu_sec": round(time.process_time() - c0)}  # fmt: skip
    with out.open("a") as fh:
        fh.write(json.dumps(rec) + "\n")
    for p in run_dir.rglob("weights.safetensors"):  # the bundles are not needed by the screen
        p.unlink()


def summarise(files: list[str]) -> str:
    recs = [json.loads(line) for f in files for line in Path(f).read_text().splitlines() if line.strip()]
    by: dict[str, dict[tuple[str, int], dict]] = {}  # type: ignore[type-arg]
    for r in recs:
        by.setdefault(r["v"], {})[(r["d"], r["seed"])] = r
    base = by["base"]
    lines = ["# dmpnn_screen", "",
             "Paired differences to `base` on the same split and seed, signed so that **positive favours the "
             "variant** (RMSE: base − variant; AUROC: variant − base).", "",
             "| variant | runs | val better (of paired) | mean val gain, regression (RMSE) | val gain, Tox21 2k (AUROC) | "
             "mean test gain, regression | test gain, Tox21 2k | CPU s per run (× base) |",
             "|---|---|---|---|---|---|---|---|"]  # fmt: skip
    for v, d in by.items():
        both = [k for k in sorted(d) if k in base]

        def gain(k: tuple[str, int], f: str, d: dict = d) -> float:  # type: ignore[type-arg]
            sign = -1.0 if d[k]["metric"] == "rmse" else 1.0
            return sign * (d[k][f] - base[k][f])

        reg = [k for k in both if d[k]["metric"] == "rmse"]
        cls = [k for k in both if d[k]["metric"] == "auroc"]
        better = sum(gain(k, "val") > 0 for k in both)

        def mean(ks: list[tuple[str, int]], f: str) -> str:
            return f"{np.mean([gain(k, f) for k in ks]):+.4f}" if ks else "–"

        cpu = np.mean([d[k]["cpu_sec"] for k in both]) / max(1.0, np.mean([base[k]["cpu_sec"] for k in both]))
        lines.append(
            f"| {v}: {DESCRIBE.get(v, v)} | {len(both)} | {better} / {len(both)} | {mean(reg, 'val')} | {mean(cls, 'val')} | "
            f"{mean(reg, 'test')} | {mean(cls, 'test')} | {np.mean([d[k]['cpu_sec'] for k in both]):.0f} ({cpu:.1f}×) |"
        )
    lines += ["", "Per run (validation / test; RMSE for ESOL and solubility, AUROC for Tox21 2k):", "",
              "| set | seed | " + " | ".join(by) + " |", "|---|---|" + "---|" * len(by)]  # fmt: skip
    for name, seed in sorted(base):
        cells = [f"{by[v][(name, seed)]['val']:.3f} / {by[v][(name, seed)]['test']:.3f}" if (name, seed) in by[v] else "–"
                 for v in by]  # fmt: skip
        lines.append(f"| {name} | {seed} | " + " | ".join(cells) + " |")
    lines += [
        "",
        "Command: `PYTHONPATH=src nice python benchmarks/dmpnn_screen.py --out FILE` (two processes, one torch",
        "thread each, on the 2 shared cores), then `--summarise`. Each variant differs from `base` in one setting;",
        "`train.refit: never` (the measured model), no baseline (the candidate alone is compared).",
    ]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    screen_main(__doc__, run, summarise, [f"{v}:{d}:{s}" for v in VARIANTS for d, (_, seeds) in SETS.items() for s in seeds])
