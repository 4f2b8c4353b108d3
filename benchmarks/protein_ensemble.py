"""Validation Q3 of an ensemble of finished per-position runs (members trained with seeds 0, 1, ...).

Builds the bundle ``--ensemble-size K`` would have written from K runs trained alone with seeds
``0 .. K-1`` (the same members), then scores it and every member on the validation chains with
``biodl evaluate``:

    python benchmarks/protein_ensemble.py --runs RUN_SEED0 RUN_SEED1 --data train.tsv --val-column validation \
        --out /tmp/protein_ensemble
    # -> benchmarks/results/protein_ensemble.{json,md}
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import pandas as pd

from biodl.bundle import Bundle, load
from biodl.cli.main import main as biodl_main
from biodl.models.ensemble import Ensemble

RESULTS = Path(__file__).parent / "results"


def build(runs: list[Path], out: Path) -> Path:
    """Write the ensemble bundle of ``runs`` (same architecture and preprocessing) to ``out/model``."""
    bundles = [load(r) for r in runs]
    first = bundles[0]
    spec = first.meta["model"]
    for b, r in zip(bundles[1:], runs[1:], strict=True):
        if b.meta["model"]["params"] != spec["params"]:
            raise SystemExit(f"{r}: a different architecture than {runs[0]}")
    ens = Ensemble.from_members([b.model for b in bundles], spec["name"], spec["params"], first.kind).eval()
    name, params = ens.spec()
    meta = dict(first.meta)
    meta["model"] = {**spec, "name": name, "params": params}
    Bundle(model=ens, modality=first.modality, meta=meta, target_scaler=first.target_scaler).save(out / "model")
    return out / "model"


def evaluate(model: Path, data: Path, out: Path) -> dict:
    biodl_main(["evaluate", "--model-path", str(model), "--data-path", str(data), "--output", str(out)])
    return json.loads(out.read_text())["metrics"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--runs", nargs="+", type=Path, required=True)
    ap.add_argument("--data", type=Path, required=True, help="the training table (its validation rows are scored)")
    ap.add_argument("--val-column", default="validation")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--name", default="protein_ensemble", help="results file stem in benchmarks/results")
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    table = pd.read_csv(args.data, sep="\t")
    val = args.out / "validation.tsv"
    table[table[args.val_column].astype(bool)].to_csv(val, sep="\t", index=False)
    rows = []
    for k, run in enumerate(args.runs):
        t0 = time.time()
        m = evaluate(run, val, args.out / f"member_{k}.json")
        rows.append({"model": f"member {k} ({run})", **m, "seconds": round(time.time() - t0, 1)})
    t0 = time.time()
    m = evaluate(build(args.runs, args.out), val, args.out / "ensemble.json")
    rows.append({"model": f"ensemble of {len(args.runs)}", **m, "seconds": round(time.time() - t0, 1)})
    keys = ["accuracy", "sov", "mcc"]
    result = {
        "benchmark": "protein_ensemble",
        "machine": {"cpu_count": __import__("os").cpu_count(), "platform": platform.platform()},
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "validation_chains": int(table[args.val_column].astype(bool).sum()),
        "rows": rows,
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{args.name}.json").write_text(json.dumps(result, indent=1, default=str))
    lines = [f"# {args.name}", "", "| model | Q3 | SOV'99 | MCC | F1 C / E / H |", "|---|---|---|---|---|"]
    for r in rows:
        f1 = " / ".join(f"{r.get('per_class', {}).get(c, {}).get('f1', float('nan')):.3f}" for c in "CEH")
        lines.append(f"| {r['model']} | " + " | ".join(f"{r.get(k, float('nan')):.4g}" for k in keys) + f" | {f1} |")
    lines += ["", f"Validation chains of `{args.data.name}` (`{args.val_column}` true): {result['validation_chains']}."]
    (RESULTS / f"{args.name}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
