"""Molecule benchmarks: ESOL RMSE and Tox21 mean ROC-AUC, random 80/10/10 splits, 3 seeds.

Every run goes through :class:`biodl.Experiment` exactly as ``biodl train`` would (the config is
printed in the results), with data seed = training seed = ``0, 1, 2``. Results of single runs are
appended to ``results/molecules_runs.jsonl``; ``results/molecules.{json,md}`` summarise them
(mean ± population std over seeds, as chemprop reports) next to the reference numbers.

Usage::

    nice -n 10 python benchmarks/molecules.py --dataset esol --configs ffn dmpnn --seeds 0 1 2
    python benchmarks/molecules.py --summarize

Defaults were chosen on the validation splits only (``val`` columns of the JSONL); test numbers are
reported, never used for selection.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import RESULTS, machine, write_results

SHARED = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "molecules" / "moleculenet"
RUNS = RESULTS / "molecules_runs.jsonl"
#: Seeds whose test scores are reported (the issue's protocol); others only inform the choice of defaults.
REPORT_SEEDS = (0, 1, 2)

DATASETS: dict[str, dict[str, Any]] = {
    "esol": {
        "data": {"path": [str(SHARED / "delaney.csv")], "task": "regression", "target_columns": ["logp"]},
        "metric": "rmse",
        "higher": False,
    },
    "tox21": {
        "data": {"path": [str(SHARED / "tox21.csv")], "task": "classification", "molecule": {"skip_invalid": True}},
        "train": {"batch_size": 128},
        "metric": "auroc",
        "higher": True,
    },
}

#: Reference numbers (chemprop README table; chemprop 2.3.1 defaults run on this machine, issue 8).
REFERENCES: dict[str, list[tuple[str, str]]] = {
    "esol": [
        ("MoleculeNet best (chemprop README)", "0.58 ± 0.03"),
        ("chemprop D-MPNN (chemprop README)", "0.555 ± 0.047"),
        ("chemprop 2.3.1 defaults, this machine", "0.644 ± 0.116 (88 s/run)"),
    ],
    "tox21": [
        ("MoleculeNet best (chemprop README)", "0.829 ± 0.006"),
        ("chemprop D-MPNN (chemprop README)", "0.851 ± 0.002"),
        ("chemprop 2.3.1 defaults, this machine", "0.824 (629 s/run)"),
    ],
}

#: Named configurations: overrides of the experiment sections.
CONFIGS: dict[str, dict[str, Any]] = {
    "ffn": {"model": {"name": "ffn"}},
    "ffn_x5": {"model": {"name": "ffn"}, "train": {"ensemble_size": 5}},
    "ffn_morgan": {"model": {"name": "ffn"}, "data": {"molecule": {"featurizer": ["morgan_counts"]}}},
    "ffn_rdkit": {"model": {"name": "ffn"}, "data": {"molecule": {"featurizer": ["rdkit2d"]}}},
    "dmpnn": {"model": {"name": "dmpnn"}, "data": {"molecule": {"featurizer": ["graph"]}}},
    "dmpnn_bn": {"model": {"name": "dmpnn", "batch_norm": True}, "data": {"molecule": {"featurizer": ["graph"]}}},
    "dmpnn_rdkit": {"model": {"name": "dmpnn"}, "data": {"molecule": {"featurizer": ["graph", "rdkit2d"]}}},
    "dmpnn_rdkit_bn": {
        "model": {"name": "dmpnn", "batch_norm": True},
        "data": {"molecule": {"featurizer": ["graph", "rdkit2d"]}},
    },
    "ffn_rdkit_x5": {"model": {"name": "ffn"}, "data": {"molecule": {"featurizer": ["rdkit2d"]}}, "train": {"ensemble_size": 5}},
    "dmpnn_rdkit_x3": {
        "model": {"name": "dmpnn"},
        "data": {"molecule": {"featurizer": ["graph", "rdkit2d"]}},
        "train": {"ensemble_size": 3},
    },
}

BASE: dict[str, Any] = {
    "data": {"type": "molecule", "split": "random", "split_sizes": [0.8, 0.1, 0.1]},
    "train": {"progress_bar": False, "max_epochs": 100, "batch_size": 50},
    "evaluate": {"baselines": [], "report": False, "plots": False},
}


def _merge(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    out = dict(a)
    for k, v in b.items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def experiment_config(dataset: str, config: str, seed: int, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """The full experiment sections of one benchmark run."""
    cfg = _merge(BASE, {"data": DATASETS[dataset]["data"], "train": DATASETS[dataset].get("train", {})})
    cfg = _merge(cfg, CONFIGS[config])
    cfg = _merge(cfg, {"train": {"seed": seed}})
    return _merge(cfg, extra or {})


def run_one(
    dataset: str, config: str, seed: int, workdir: Path, extra: dict[str, Any] | None = None, label: str | None = None
) -> dict[str, Any]:
    """Train one model; returns the JSON record appended to the runs file (``label`` names a variant)."""
    from biodl import Experiment

    sections = experiment_config(dataset, config, seed, extra)
    metric = DATASETS[dataset]["metric"]
    t0, c0 = time.perf_counter(), time.process_time()
    name = label or config
    result = Experiment(sections).fit(workdir / f"{dataset}_{config}_s{seed}")
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    m = result.metrics
    record = {
        "dataset": dataset,
        "config": name,
        "seed": seed,
        "val": m["val"].get(metric),
        "test": m["test"].get(metric),
        "metric": metric,
        "wall_s": round(wall, 1),
        "cpu_s": round(cpu, 1),
        "epochs": m.get("training", {}).get("epochs"),
        "best_epoch": m.get("training", {}).get("best_epoch"),
        "sections": sections,
        "load_1min": os.getloadavg()[0],
        "torch_threads": _threads(),
    }
    if metric == "auroc" and "per_task" in m["test"]:
        record["test_per_task"] = {k: v.get("auroc") for k, v in m["test"]["per_task"].items()}
    RESULTS.mkdir(parents=True, exist_ok=True)
    with RUNS.open("a") as fh:
        fh.write(json.dumps(record) + "\n")
    print(f"{dataset} {name} seed {seed}: val {record['val']:.4f} test {record['test']:.4f} ({wall:.0f} s)", flush=True)
    return record


def _threads() -> int:
    import torch

    return int(torch.get_num_threads())


def summarize() -> None:
    """Aggregate ``molecules_runs.jsonl`` into ``molecules.{json,md}`` (latest run per dataset/config/seed)."""
    if not RUNS.exists():
        print("no runs yet")
        return
    latest: dict[tuple[str, str, int], dict[str, Any]] = {}
    for line in RUNS.read_text().splitlines():
        if line.strip():
            r = json.loads(line)
            latest[(r["dataset"], r["config"], r["seed"])] = r
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for (ds, cfg, _), r in sorted(latest.items()):
        groups.setdefault((ds, cfg), []).append(r)
    rows, table = [], []
    for (ds, cfg), runs_all in groups.items():
        runs = [r for r in runs_all if r["seed"] in REPORT_SEEDS]
        if not runs:
            continue
        test = np.array([r["test"] for r in runs], dtype=float)
        val = np.array([r["val"] for r in runs], dtype=float)
        val_all = np.array([r["val"] for r in runs_all], dtype=float)
        wall = np.array([r["wall_s"] for r in runs], dtype=float)
        cpu = np.array([r["cpu_s"] for r in runs], dtype=float)
        entry = {
            "dataset": ds,
            "config": cfg,
            "metric": runs[0]["metric"],
            "seeds": [r["seed"] for r in runs],
            "test_mean": float(test.mean()),
            "test_std": float(test.std()),
            "val_mean": float(val.mean()),
            "selection_seeds": [r["seed"] for r in runs_all],
            "selection_val_mean": float(val_all.mean()),
            "wall_s_mean": float(wall.mean()),
            "cpu_s_mean": float(cpu.mean()),
            "sections": runs[0]["sections"],
        }
        rows.append(entry)
        table.append(
            [ds, cfg, runs[0]["metric"], len(runs), f"{test.mean():.3f} ± {test.std():.3f}", f"{val.mean():.3f}",
             f"{val_all.mean():.3f} ({len(runs_all)})", f"{wall.mean():.0f}", f"{cpu.mean():.0f}"]
        )  # fmt: skip
    for ds, refs in REFERENCES.items():
        for name, value in refs:
            table.append([ds, name, DATASETS[ds]["metric"], "–", value, "–", "–", "–", "–"])
    best = {}
    for ds in DATASETS:
        cands = [r for r in rows if r["dataset"] == ds and len(r["seeds"]) >= len(REPORT_SEEDS)]
        if cands:  # compare validation means over the same seeds: the configs run on the most seeds
            most = max(len(r["selection_seeds"]) for r in cands)
            cands = [r for r in cands if len(r["selection_seeds"]) == most]
            pick = (max if DATASETS[ds]["higher"] else min)(cands, key=lambda r: r["selection_val_mean"])
            best[ds] = (
                f"{pick['config']}: test {pick['test_mean']:.3f} ± {pick['test_std']:.3f} "
                f"(best validation mean over {most} seeds among {len(cands)} configs)"
            )
    notes = (
        "Random 80/10/10 splits, data seed = training seed ∈ {0, 1, 2}; test: mean ± population std over these seeds. "
        "'val (selection)': mean validation score over every seed run for the config (extra seeds 3-5 only give "
        "validation evidence for choosing; their test scores are not reported). "
        "Tox21: mean ROC-AUC over the 12 assays (8 SMILES RDKit cannot parse are skipped). "
        "wall/cpu: seconds per run (featurisation + training + evaluation) on a 2-core machine shared with other jobs; "
        "wall time is inflated by the load (see load_1min in the JSONL)."
    )
    write_results(
        "molecules",
        {"headline": "; ".join(f"{k}: {v}" for k, v in best.items()), "configs": rows},
        ["data set", "config", "metric", "seeds", "test (mean ± std)", "val mean", "val (selection)", "wall s/run", "cpu s/run"],
        table,
        notes,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", nargs="+", choices=[*DATASETS, "all"], default=["all"])
    parser.add_argument("--configs", nargs="+", default=["ffn"], choices=list(CONFIGS))
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--threads", type=int, default=1, help="torch threads (1 is fastest on a shared machine)")
    parser.add_argument("--workdir", default="/tmp/biodl_bench_molecules", help="run directories (not kept in the repo)")
    parser.add_argument(
        "--set", action="append", default=[], metavar="KEY=VALUE", help="extra config override, e.g. train.lr=3e-4"
    )
    parser.add_argument("--summarize", action="store_true", help="only rebuild results/molecules.{json,md}")
    args = parser.parse_args(argv)
    if args.summarize:
        summarize()
        return 0
    import torch

    torch.set_num_threads(args.threads)
    if not SHARED.exists():
        print(f"data not found: {SHARED}", file=sys.stderr)
        return 2
    extra: dict[str, Any] = {}
    if args.set:
        from biodl.config import apply_overrides

        apply_overrides(extra, args.set)
    datasets = list(DATASETS) if "all" in args.dataset else args.dataset
    print(json.dumps(machine()))
    for ds in datasets:
        for cfg in args.configs:
            for seed in args.seeds:
                label = f"{cfg}[{','.join(args.set)}]" if args.set else cfg
                run_one(ds, cfg, seed, Path(args.workdir), extra, label)
    summarize()
    return 0


if __name__ == "__main__":
    sys.exit(main())
