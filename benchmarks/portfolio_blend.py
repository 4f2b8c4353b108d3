"""The average of ``model.name: auto`` candidates against the best single one, on runs already trained.

For every run directory given (a single split, or ``--cv`` runs with ``fold_k/``), the saved candidate bundles
(``candidates/*/model``) are re-scored: their validation and test headline metric, the average the portfolio
considers (of all candidates on the same inputs, or the best two), its gain over the best single candidate on
validation with the paired bootstrap standard error (:func:`biodl.experiment.blend.choose_average`, exactly as
the run computes it), which model each ``train.portfolio_blend`` rule and prior keeps, and that model's **test**
score. Test rows (and an ``--external`` file) only score here, they never choose. Writes
``benchmarks/results/portfolio_blend.{json,md}``.

    PYTHONPATH=src python benchmarks/portfolio_blend.py esol_0=/tmp/biodl_defaults/esol_0 ... \\
        [--external solubility=../shared/datasets/molecules/rdkit_solubility/solubility.test.sdf]

Runs whose candidates read different inputs (the tabular classification portfolio's candidate 0) are scored
within the largest set of candidates that share their inputs.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path
from typing import Any

import numpy as np
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import write_results

RULES = (("auto", "single"), ("auto", "average"), ("better", "single"))


def _paths(run: Path, cfg: dict[str, Any]) -> list[str]:
    root = Path(__file__).resolve().parents[1]  # relative paths: from the repository, else from the working directory
    return [
        p if Path(p).is_absolute() else str((root / p).resolve() if (root / p).exists() else Path(p).resolve())
        for p in cfg["data"]["path"]
    ]


def score_split(run: Path, rows: dict[str, np.ndarray], paths: list[str], external: str | None) -> dict[str, Any]:
    """One split's candidates: scores, the average's evidence, and each rule's choice with its test score."""
    from biodl.bundle import load
    from biodl.experiment.blend import choose_average, group_prior, score_preds
    from biodl.experiment.results import Inputs, Trained
    from biodl.metrics import main_metric

    bundles = {p.parent.name: load(p) for p in sorted((run / "candidates").glob("*/model"))}
    groups: dict[str, list[str]] = {}
    for name, b in bundles.items():  # candidates on the same inputs: same data section and input shape
        key = json.dumps([b.meta["data"], b.meta["model"]["in_shape"]], sort_keys=True, default=str)
        groups.setdefault(key, []).append(name)
    names = max(groups.values(), key=len)
    first = bundles[names[0]]
    data = first.modality.load(paths)
    inputs = Inputs(first.modality, data, None)
    metric, higher = main_metric(inputs.targets.kind)
    X = first.modality.transform(data.X)
    preds = {n: {part: bundles[n].predict_arrays(X[r]) for part, r in rows.items()} for n in names}
    ext: dict[str, np.ndarray] = {}
    ext_inputs = None
    if external:
        edata = first.modality.load([external])
        ext_inputs = Inputs(first.modality, edata, None)
        EX = first.modality.transform(edata.X)
        ext = {n: bundles[n].predict_arrays(EX) for n in names}
    pool = [(i, score_preds(inputs, rows["val"], preds[n]["val"], metric),
             Trained(bundle=bundles[n], history={}, best_epoch=None, epochs=0), preds[n]["val"])
            for i, n in enumerate(names)]  # fmt: skip
    out: dict[str, Any] = {"metric": metric, "candidates": {}}
    for n in names:
        out["candidates"][n] = {part: score_preds(inputs, rows[part], preds[n][part], metric) for part in ("val", "test")}
        if ext_inputs is not None:
            out["candidates"][n]["external"] = score_preds(ext_inputs, np.arange(len(ext[n])), ext[n], metric)
    sign = 1 if higher else -1
    best = names[max(range(len(names)), key=lambda i: sign * pool[i][1])]
    found = choose_average(inputs, rows["val"], pool, metric, higher, "auto", "single")
    if found is None:
        return out
    option, evidence = found
    members = [names[p[0]] for p in option]
    avg = {"members": members, "val": evidence["val"][metric], "gain_over_best": evidence["gain_over_best"],
           "standard_error": evidence["standard_error"],
           "test": score_preds(inputs, rows["test"], np.mean([preds[n]["test"] for n in members], 0), metric)}  # fmt: skip
    if ext_inputs is not None:
        avg["external"] = score_preds(ext_inputs, np.arange(len(ext[best])), np.mean([ext[n] for n in members], 0), metric)
    out["average"], out["best_single"] = avg, best
    # the product's rule: the data type's prior for the task, "single" when a candidate of the average was cut
    record = json.loads((run / "metrics.json").read_text())["model_selection"]["candidates"]
    group = {int(n.split("_")[0]) for n in names}
    cut = [r["index"] for r in record if r.get("stopped_by_budget") and r["index"] in group]
    task = str(first.meta.get("task") or inputs.targets.kind)
    product, _ = group_prior(type(first.modality).blend_prior_for(task), cut)
    out["product_prior"], out["stopped_by_budget"] = product, cut
    for key, (rule, prior) in [("product", ("auto", product)), *((f"{ru}/{pr}", (ru, pr)) for ru, pr in RULES)]:
        chose = choose_average(inputs, rows["val"], pool, metric, higher, rule, prior)  # type: ignore[arg-type]
        averaged = bool(chose and chose[1]["averaged"])
        pick = avg if averaged else out["candidates"][best]
        out[key] = {"averaged": averaged, "test": pick["test"], **({"external": pick["external"]} if ext else {})}
    return out


def score_run(run: Path, external: str | None) -> dict[str, Any]:
    cfg = yaml.safe_load((run / "config.yaml").read_text())
    paths = _paths(run, cfg)
    splits = json.loads((run / "splits.json").read_text())
    if "folds" in splits:
        return {f"fold_{k}": score_split(run / f"fold_{k}", {p: np.asarray(f[p]) for p in ("val", "test")}, paths, external)
                for k, f in enumerate(splits["folds"])}  # fmt: skip
    return {"split": score_split(run, {p: np.asarray(splits[p]) for p in ("val", "test")}, paths, external)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("runs", nargs="+", help="NAME=RUN_DIR")
    p.add_argument("--external", action="append", default=[], help="NAME_PREFIX=FILE: also score on this held-out file")
    p.add_argument("--name", default="portfolio_blend", help="results/NAME.{json,md} (default portfolio_blend)")
    args = p.parse_args()
    externals = dict(e.split("=", 1) for e in args.external)
    results: dict[str, Any] = {}
    rows = []
    for spec in args.runs:
        name, path = spec.split("=", 1)
        ext = next((f for prefix, f in externals.items() if name.startswith(prefix)), None)
        results[name] = score_run(Path(path), ext)
        print(name, json.dumps(results[name], default=str)[:400], flush=True)
        for split, r in results[name].items():
            if "average" not in r:
                continue
            a = r["average"]
            best = r["candidates"][r["best_single"]]
            z = a["gain_over_best"] / a["standard_error"] if a["standard_error"] > 0 else math.nan
            rows.append([f"{name} {split}" if split != "split" else name, r["metric"],
                         " / ".join(f"{n} {c['val']:.4f}" for n, c in r["candidates"].items()),
                         f"{a['val']:.4f} ({a['gain_over_best']:+.4f}, {z:+.2f} SE)",
                         f"{best['test']:.4f}" + (f" / {best['external']:.4f}" if "external" in best else ""),
                         f"{a['test']:.4f}" + (f" / {a['external']:.4f}" if "external" in a else ""),
                         ("average" if r["product"]["averaged"] else "single") + f" ({r['product']['test']:.4f})",
                         *[("average" if r[f"{ru}/{pr}"]["averaged"] else "single") for ru, pr in RULES]])  # fmt: skip
    header = ["run", "metric", "candidates' validation", "average: validation (gain, in SE)",
              "best single: test (/ external)", "average: test (/ external)", "train.portfolio_blend auto (its test)",
              *[f"{ru}, prior {pr}" for ru, pr in RULES]]  # fmt: skip
    notes = ("Saved candidates of `biodl train` runs re-scored (`benchmarks/portfolio_blend.py`); the average and its "
             "standard error exactly as `train.portfolio_blend` computes them on the validation rows. Test (and external) "
             "rows only score. The last columns: what each rule keeps, within the largest set of candidates sharing their "
             "inputs (PBMC: the run's candidates 1 and 2; the run itself also weighs candidate 0 on its own inputs, "
             "which kept the linear network on seed 3).")  # fmt: skip
    write_results(args.name, {"runs": results}, header, rows, notes)


if __name__ == "__main__":
    main()
