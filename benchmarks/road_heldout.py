"""Held-out patch F1 of the plain road defaults (issue 15): one outer fold at a time.

``biodl train --data-type image --data-path roads_epfl/images --mask-dir roads_epfl/groundtruth
--mask-threshold 128 --model vgg_autoencoder --cv 5`` runs the plain defaults (``train.select_by``
auto → 4-fold CV over each outer fold's 16 training images for epoch and threshold, then one model
on all 16) on 5 outer folds of 4 held-out images, one after the other. On a shared 2-core machine
one outer fold takes 25-30 minutes, so this script runs ONE outer fold ``--fold k`` of exactly
those outer folds (the same ``cv_folds`` call, seed and config as the CLI), so folds can run as
parallel processes or in separate sessions, and ``--summary`` pools the finished folds::

    for k in 0 1; do OMP_NUM_THREADS=1 PYTHONPATH=src setsid nohup nice -n 19 \\
        python benchmarks/road_heldout.py --fold $k --work /tmp/road_heldout > /tmp/road_heldout_$k.log 2>&1 & done
    python benchmarks/road_heldout.py --summary --work /tmp/road_heldout

``--select-by val`` measures the old default (epoch and threshold on 3-4 validation images).
The held-out figure is the 16×16-patch F1 of the outer fold's 4 test images (never seen by the
selection or the training), written by the product to ``fold_k/metrics.json`` → ``test``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("BIODL_ROADS", REPO.parent / "shared" / "datasets" / "images" / "roads_epfl"))
RESULTS = REPO / "benchmarks" / "results"


def config(args: argparse.Namespace) -> dict[str, Any]:
    """The plain CLI call's configuration (plus quiet output and the thread count)."""
    train: dict[str, Any] = {"progress_bar": False, "threads": args.threads, "select_by": args.select_by}
    if args.max_epochs:
        train["max_epochs"] = args.max_epochs
    return {
        "data": {
            "type": "image",
            "path": [str(DATA / "images")],
            "image": {"mask_dir": str(DATA / "groundtruth"), "mask_threshold": 128},
            "cv": args.folds,
        },
        "model": {"name": "vgg_autoencoder"},
        "train": train,
        "evaluate": {"baselines": [], "report": False, "plots": False},
    }


def run_fold(args: argparse.Namespace) -> None:
    """Train and score outer fold ``args.fold`` (writes ``work/fold_k/metrics.json`` and ``fold_k.json``)."""
    from biodl.config import ExperimentConfig
    from biodl.experiment.core import Experiment
    from biodl.experiment.load import load_inputs
    from biodl.experiment.results import Inputs
    from biodl.experiment.split import cv_folds
    from biodl.training.threads import torch_threads

    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    cfg = ExperimentConfig.from_dict(config(args))
    exp = Experiment(cfg)
    start = time.time()
    with torch_threads(args.threads):
        run_cfg, inputs = load_inputs(cfg)
        exp.config = run_cfg
        folds = cv_folds(run_cfg, inputs, work)
        split = folds[args.fold]
        fold_inputs = Inputs(inputs.modality.for_fold(), inputs.data, inputs.chunk_rows)
        result = exp._run(fold_inputs, split, work / f"fold_{args.fold}", False)
    m = result.metrics
    doc = {
        "fold": args.fold,
        "select_by": args.select_by,
        "test_images": [str(inputs.data.ids[i]) for i in split.test],
        "test": m.get("test", {}),
        "val": m.get("val", {}),
        "selection": m.get("selection"),
        "threshold": m.get("threshold"),
        "seconds": round(time.time() - start, 1),
        "threads": args.threads,
        "loadavg_end": os.getloadavg(),
        "max_epochs_override": args.max_epochs,
    }
    (work / f"fold_{args.fold}.json").write_text(json.dumps(doc, indent=1, default=str))
    print(json.dumps({k: doc[k] for k in ("fold", "test", "seconds")}, default=str), flush=True)


def outer_fold(args: argparse.Namespace) -> tuple[Any, Any, Any, Any]:
    """The run's config and inputs, and outer fold ``args.fold``'s training and held-out row indices."""
    import numpy as np

    from biodl.config import ExperimentConfig
    from biodl.experiment.load import load_inputs

    cfg, inputs = load_inputs(ExperimentConfig.from_dict(config(args)))
    split = json.loads((Path(args.work) / "splits.json").read_text())["folds"][args.fold]
    index = {str(i): n for n, i in enumerate(inputs.data.ids)}
    rows = np.sort([index[i] for i in split["train_ids"] + split["val_ids"]])
    return cfg, inputs, rows, np.sort([index[i] for i in split["test_ids"]])


def probe(args: argparse.Namespace) -> None:
    """A partial run's proxy: the last checkpoint of inner selection fold 0 of outer fold ``args.fold`` (trained on
    3/4 of the outer fold's training images, no validation rows) scored on the outer fold's test images at the
    fixed threshold 0.5 and at 0.35 (nothing chosen on them), with the model's dihedral test-time augmentation."""
    import numpy as np
    import torch

    from biodl.data.splits import Split
    from biodl.experiment.prepare import fit_preprocessing
    from biodl.experiment.select_cv import fold_rows
    from biodl.metrics import compute_metrics
    from biodl.models import build_model
    from biodl.models.outputs import predict_outputs

    torch.set_num_threads(args.threads)
    work = Path(args.work)
    cfg, inputs, rows, test = outer_fold(args)
    held = fold_rows(rows, cfg.train.select_folds, cfg.train.seed, inputs.data.groups)[0]
    none = np.zeros(0, np.int64)
    prepared = fit_preprocessing(cfg, inputs, Split(np.setdiff1d(rows, held), none, none, "probe"))
    ckpt = torch.load(work / f"fold_{args.fold}" / "selection" / "fold_0" / "checkpoints" / "last.ckpt",
                      map_location="cpu", weights_only=False)  # fmt: skip
    params = {**cfg.model.params(), **inputs.modality.model_params()}
    model = build_model(str(cfg.model.name), prepared.in_shape, inputs.targets.num_outputs, params)
    model.load_state_dict({k.removeprefix("model."): v for k, v in ckpt["state_dict"].items() if k.startswith("model.")})
    model.eval()
    assert prepared.X is not None
    p = predict_outputs(model, prepared.X[test], "segmentation", batch_size=2)
    y = np.asarray(inputs.targets.y)[test]
    out = {"outer_fold": args.fold, "epoch": ckpt["epoch"], "train_images": int(len(rows) - len(held)),
           "test_images": [str(inputs.data.ids[i]) for i in test]}  # fmt: skip
    for t in (0.5, 0.35):
        m = compute_metrics("segmentation", y, (p > t).astype(np.float32), metrics=["patch_f1", "dice"])
        out[f"threshold_{t}"] = {k: float(m[k]) for k in ("patch_f1", "dice")}
    (work / f"probe_fold_{args.fold}.json").write_text(json.dumps(out, indent=1))
    print(json.dumps(out))


def rescore(args: argparse.Namespace) -> None:
    """Re-score a fold run before two product changes from its checkpoints (nothing retrained, nothing chosen).

    Adds ``rescored`` to ``fold_k.json``: the held-out patch F1 at the fold's chosen threshold (and at 0.5) of
    (a) ``last_epoch``: the final network after its last epoch (``last.ckpt``; what training without
    validation rows now keeps: runs before that restored the epoch of lowest training loss), and
    (b) ``ensemble``: the mean probability of that network and the 4 selection folds' networks after their last
    epoch (``train.select_ensemble``, the new ``vgg_autoencoder`` default), every member on inputs standardised
    with the 16 training images' statistics, as the product's ensemble does; plus each fold network alone.
    """
    import numpy as np
    import torch

    from biodl.data.splits import Split
    from biodl.experiment.prepare import fit_preprocessing
    from biodl.metrics import compute_metrics
    from biodl.models import build_model
    from biodl.models.outputs import predict_outputs

    torch.set_num_threads(args.threads)
    work, fold_dir = Path(args.work), Path(args.work) / f"fold_{args.fold}"
    cfg, inputs, rows, test = outer_fold(args)
    none = np.zeros(0, np.int64)
    prepared = fit_preprocessing(cfg, inputs, Split(rows, none, none, "rescore"))
    assert prepared.X is not None
    params = {**cfg.model.params(), **inputs.modality.model_params()}
    y = np.asarray(inputs.targets.y)[test]

    def predict(ckpt_path: Path) -> np.ndarray:
        ckpt = torch.load(ckpt_path, map_location="cpu", weights_only=False)
        model = build_model(str(cfg.model.name), prepared.in_shape, inputs.targets.num_outputs, params)
        model.load_state_dict({k.removeprefix("model."): v for k, v in ckpt["state_dict"].items() if k.startswith("model.")})
        return predict_outputs(model.eval(), prepared.X[test], "segmentation", batch_size=2)

    def f1(p: np.ndarray, t: float) -> float:
        return float(compute_metrics("segmentation", y, (p > t).astype(np.float32), metrics=["patch_f1"])["patch_f1"])

    doc_path = work / f"fold_{args.fold}.json"
    doc = json.loads(doc_path.read_text())
    t = float(doc["threshold"]["value"])
    final = predict(fold_dir / "checkpoints" / "last.ckpt")
    folds = [predict(f / "checkpoints" / "last.ckpt") for f in sorted((fold_dir / "selection").glob("fold_*"))]
    mean = np.mean([final, *folds], axis=0)
    doc["rescored"] = {
        "threshold": t,
        "last_epoch": {"patch_f1": f1(final, t), "patch_f1_at_0.5": f1(final, 0.5)},
        "ensemble": {"patch_f1": f1(mean, t), "patch_f1_at_0.5": f1(mean, 0.5), "members": 1 + len(folds)},
        "fold_networks_alone": [f1(p, t) for p in folds],
    }
    doc_path.write_text(json.dumps(doc, indent=1, default=str))
    print(json.dumps(doc["rescored"]))


def summary(args: argparse.Namespace) -> None:
    """Pool the finished folds into ``benchmarks/results/<name>.{json,md}``."""
    import numpy as np

    docs = [json.loads(p.read_text()) for p in sorted(Path(args.work).glob("fold_*.json"))]
    if not docs:
        sys.exit(f"no finished fold under {args.work}")
    f1 = [d["test"]["patch_f1"] for d in docs]
    rows = []
    for d in docs:
        sel = d.get("selection") or {}
        thr = (d.get("threshold") or {}).get("value")
        rows.append(
            f"| {d['fold']} | {', '.join(Path(t).name for t in d['test_images'])} | {d['test']['patch_f1']:.4f} | "
            f"{d['test'].get('dice', float('nan')):.4f} | {d['val'].get('patch_f1', float('nan')):.4f} | "
            f"{sel.get('epochs', '-')} | {thr} | {d['seconds'] / 60:.1f} |"
        )
    rescored = [d for d in docs if "rescored" in d]
    if rescored:
        rows += [
            "",
            "Re-scored from the same runs' checkpoints (`--rescore`; these folds ran before two changes): the final "
            "network after its last epoch (what training without validation rows keeps now; the runs above restored "
            "the epoch of lowest training loss) and the new default, that network averaged with the 4 selection "
            "folds' networks (`train.select_ensemble`); same threshold, same held-out images:",
            "",
            "| outer fold | as run | last epoch | **ensemble (default)** | fold networks alone |",
            "|---:|---:|---:|---:|---|",
        ]
        for d in rescored:
            r = d["rescored"]
            rows.append(
                f"| {d['fold']} | {d['test']['patch_f1']:.4f} | {r['last_epoch']['patch_f1']:.4f} | "
                f"**{r['ensemble']['patch_f1']:.4f}** | {', '.join(f'{v:.3f}' for v in r['fold_networks_alone'])} |"
            )
        means = [np.mean([d["test"]["patch_f1"] for d in rescored])] + [
            np.mean([d["rescored"][k]["patch_f1"] for d in rescored]) for k in ("last_epoch", "ensemble")
        ]
        rows.append(f"| **mean** | {means[0]:.4f} | {means[1]:.4f} | **{means[2]:.4f}** | |")
    out = {
        "name": args.name,
        "select_by": docs[0]["select_by"],
        "folds": docs,
        "mean_patch_f1": float(np.mean(f1)),
        "mean_patch_f1_rescored": {
            k: float(np.mean([d["rescored"][k]["patch_f1"] for d in docs if "rescored" in d])) for k in ("last_epoch", "ensemble")
        }
        if any("rescored" in d for d in docs)
        else None,
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count(), "loadavg_at_summary": os.getloadavg()},
        "command": args.command,
        "notes": args.notes,
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"{args.name}.json").write_text(json.dumps(out, indent=1, default=str))
    md = [
        f"# {args.name}: held-out 16×16-patch F1 of the plain road defaults",
        "",
        f"`select_by: {docs[0]['select_by']}`; outer folds of `biodl train ... --model vgg_autoencoder --cv 5` "
        f"(4 held-out images each, never seen by selection or training); {len(docs)} of 5 outer folds run.",
        "",
        "| outer fold | held-out images | test patch F1 | test dice | pooled inner-CV patch F1 | epochs chosen "
        "| threshold | minutes |",
        "|---:|---|---:|---:|---:|---:|---:|---:|",
        *rows,
        "",
        f"Mean test patch F1 over the {len(docs)} fold(s): **{np.mean(f1):.4f}** "
        "(bar 0.80; the old default on the evaluators' 80 tiles: 0.726).",
        "",
        f"Machine: {platform.platform()}, {os.cpu_count()} CPUs shared; load average at the end of each fold: "
        + "; ".join(f"fold {d['fold']}: {', '.join(f'{x:.1f}' for x in d['loadavg_end'])}" for d in docs),
        "",
        f"Command: {args.command}",
    ]
    if args.notes:
        md += ["", args.notes]
    (RESULTS / f"{args.name}.md").write_text("\n".join(md) + "\n")
    print("\n".join(md))


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--fold", type=int, default=0, help="outer fold to run (0..folds-1)")
    p.add_argument("--folds", type=int, default=5, help="outer folds (as --cv)")
    p.add_argument("--select-by", default="auto", choices=["auto", "cv", "val"])
    p.add_argument("--max-epochs", type=int, default=0, help="override train.max_epochs (0: the default)")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--work", default="/tmp/road_heldout")
    p.add_argument("--summary", action="store_true", help="pool the finished folds into benchmarks/results")
    p.add_argument("--probe", action="store_true", help="score a partial run's inner fold-0 checkpoint (see probe())")
    p.add_argument("--rescore", action="store_true", help="re-score a finished fold from its checkpoints (see rescore())")
    p.add_argument("--name", default="road_heldout")
    p.add_argument("--command", default="", help="the train commands, recorded in the result files")
    p.add_argument("--notes", default="")
    args = p.parse_args(argv)
    if args.summary:
        summary(args)
    elif args.probe:
        probe(args)
    elif args.rescore:
        rescore(args)
    else:
        run_fold(args)


if __name__ == "__main__":
    main()
