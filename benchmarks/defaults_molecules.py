"""Defaults (``model.name: auto``) on the molecule sets in ../shared: ESOL (3 seeds) and Tox21, random 80/10/10.

No example config and no tuning flags: only the data, the task, the split the published figures use and
``--threads 1`` (the shared 2-core machine). Appends one JSON record per run to
``benchmarks/results/defaults_molecules.jsonl``: validation and test score of the chosen network, the
baseline's, every candidate's validation score, seconds. Test scores are reported, never used to choose.

    PYTHONPATH=src nice python benchmarks/defaults_molecules.py [esol|tox21|tox21_2k|solubility|esol:SEED ...] [-- extra flags]

Extra flags after ``--`` (e.g. ``--time-budget 1800``) are added to every run and recorded.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from biodl.cli.main import main

DATA = Path("../shared/datasets/molecules/moleculenet")
SOL = Path("../shared/datasets/molecules/rdkit_solubility")
SETS = {
    "esol": (["--data-path", str(DATA / "delaney.csv"), "--task", "regression", "--target-columns", "logp"], (0, 1, 2)),
    "tox21": (["--data-path", str(DATA / "tox21.csv"), "--task", "classification", "--skip-invalid"], (0,)),
    # Huuskonen aqueous solubility (RDKit's copy): trained on the train SDF, also scored on its own test SDF
    "solubility": (
        ["--data-path", str(SOL / "solubility.train.sdf"), "--task", "regression", "--target-columns", "SOL"], (0, 1, 2)
    ),
    # a BBBP/ClinTox/SIDER-sized classification set: 2,000 Tox21 molecules drawn once (seed 0), written to /tmp
    "tox21_2k": (["--data-path", "/tmp/biodl_defaults/tox21_2k.csv", "--task", "classification", "--skip-invalid"], (0, 1, 2)),
}
#: Subsets written before a run: name → (source file, rows drawn with seed 0).
SUBSETS = {"tox21_2k": (DATA / "tox21.csv", 2000)}
#: Data sets with a separate held-out file: the run's model is also scored on it (``biodl evaluate``).
EXTERNAL = {"solubility": SOL / "solubility.test.sdf"}
OUT = Path("benchmarks/results/defaults_molecules.jsonl")


def run(name: str, seed: int, extra: list[str]) -> dict[str, object]:
    args, _ = SETS[name]
    if name in SUBSETS:
        import pandas as pd

        source, rows = SUBSETS[name]
        target = Path(args[args.index("--data-path") + 1])
        if not target.is_file():
            target.parent.mkdir(parents=True, exist_ok=True)
            pd.read_csv(source).sample(n=rows, random_state=0).to_csv(target, index=False)
    out = Path(f"/tmp/biodl_defaults/{name}_{seed}{'_'.join(['', *extra]).replace('--', '')}")
    t0, c0 = time.time(), time.process_time()
    main(["train", "--data-type", "molecule", *args, "--split", "random", "--split-sizes", "0.8", "0.1", "0.1",
          "--seed", str(seed), "--threads", "1", "--output-dir", str(out), "--overwrite", *extra])  # fmt: skip
    m = json.loads((out / "metrics.json").read_text())
    metric = m["model_selection"]["metric"]
    external = {}
    if name in EXTERNAL:
        main(["evaluate", "--model-path", str(out), "--data-path", str(EXTERNAL[name]), "--output", str(out / "external.json")])
        external = {"external_test": json.loads((out / "external.json").read_text())["metrics"][metric]}
    sel = m["model_selection"]["candidates"]
    return {
        "data": name,
        "seed": seed,
        "extra_flags": extra,
        "metric": metric,
        "val": m["val"][metric],
        "test": m["test"][metric],
        "baseline": m["baseline"]["name"],
        "baseline_val": m["baseline"]["val"][metric],
        "baseline_test": m["baseline"]["test"][metric],
        **external,
        "network_beats_baseline": m.get("network_beats_baseline"),
        "baseline_margin": m.get("baseline_margin"),
        "selected": m["model_selection"]["selected"],
        "candidates": m["candidates"],
        "members": {c["label"]: c.get("ensemble_members") for c in sel if c.get("ensemble_members")},
        "stopped_by_budget": [c["label"] for c in sel if c.get("stopped_by_budget")],
        "seconds": round(time.time() - t0, 1),
        "cpu_seconds": round(time.process_time() - c0, 1),
    }


if __name__ == "__main__":
    argv = sys.argv[1:]
    names, extra = (argv[: argv.index("--")], argv[argv.index("--") + 1 :]) if "--" in argv else (argv, [])
    for spec in names or list(SETS):  # a data set, or DATA:SEED for one seed of it
        name, _, only = spec.partition(":")
        for seed in [int(only)] if only else SETS[name][1]:
            rec = run(name, seed, extra)
            with OUT.open("a") as fh:
                fh.write(json.dumps(rec) + "\n")
