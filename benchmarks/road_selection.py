"""How should the road model choose its epoch and threshold? Leave-images-out evidence (issue 15).

The ``vgg_autoencoder`` defaults chose their best epoch and foreground threshold on the 4
validation images of an 80/20 split; trained on the 20 EPFL images they scored 16×16-patch F1
0.726 on 80 other tiles (validation: 0.92). This benchmark measures, without any image outside
the 20, how well each selection rule generalises:

* ``train`` (one call per fold, so folds can run as parallel processes): the 20 images in 5
  groups of 4 (a seeded permutation); fold ``k`` trains the model's defaults on the 16 images
  outside group ``k`` for ``--epochs`` epochs with no early stopping and, every ``--every``
  epochs, predicts group ``k`` (dihedral test-time augmentation and none) and stores, per
  threshold of the product's grid, the fraction of each 16×16 patch above it;
* ``analyse``: every rule is applied to fold ``k`` with its epoch and threshold chosen on
  other folds' held-out images only, and scored on group ``k`` (pooled patch F1 over the 20
  images, and the mean of the per-fold scores):

  - ``4 images`` — the old default's noise: epoch and threshold chosen on one other group
    (4 images, as an 80/20 split of 20 images gives), averaged over the 4 choices of group;
  - ``pooled CV`` — epoch and threshold chosen on the pooled held-out predictions of the
    other 4 folds (16 images): what ``train.select_by: cv`` does inside the training images;
  - fixed choices (last epoch, threshold 0.5) for reference.

Run (2 shared cores; each fold is one process on one thread)::

    for k in 0 1 2 3 4; do OMP_NUM_THREADS=1 nice python benchmarks/road_selection.py train --fold $k & done
    python benchmarks/road_selection.py analyse

or on a GPU ``python benchmarks/road_selection.py train --fold all && python benchmarks/road_selection.py analyse``.
Each fold's file is rewritten after every snapshot, so ``analyse`` works on a run that is still going
(on the epochs every fold has reached).
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

REPO = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("BIODL_ROADS", REPO.parent / "shared" / "datasets" / "images" / "roads_epfl"))
GRID = tuple(round(0.2 + 0.05 * i, 2) for i in range(13))  # the product's THRESHOLD_GRID
PATCH, ROAD = 16, 0.25


def groups(n: int = 20, k: int = 5, seed: int = 0) -> list[np.ndarray]:
    """``k`` groups of image rows (a seeded permutation)."""
    perm = np.random.default_rng(seed).permutation(n)
    return [np.sort(perm[i::k]) for i in range(k)]


def patch_means(masks: np.ndarray) -> np.ndarray:
    """Mean of each 16×16 patch of ``(N, H, W)`` masks → ``(N, H/16, W/16)``."""
    n, h, w = masks.shape
    return masks.reshape(n, h // PATCH, PATCH, w // PATCH, PATCH).mean(axis=(2, 4))


def train_fold(args: argparse.Namespace) -> None:
    """Train fold ``args.fold`` and store its held-out patch fractions every ``args.every`` epochs."""
    import lightning.pytorch as pl
    import torch

    from biodl.config import ExperimentConfig
    from biodl.data.splits import Split
    from biodl.experiment.load import load_inputs
    from biodl.experiment.prepare import fit_preprocessing
    from biodl.experiment.train import train_network
    from biodl.models.outputs import predict_outputs

    torch.set_num_threads(args.threads)
    cfg = ExperimentConfig.from_dict(
        {
            "data": {
                "type": "image",
                "path": [str(DATA / "images")],
                "task": "segmentation",
                "image": {"mask_dir": str(DATA / "groundtruth"), "mask_threshold": 128},
            },
            "model": {"name": "vgg_autoencoder", "input_scale": args.input_scale},
            "train": {
                "max_epochs": args.epochs,
                "early_stopping": False,
                "seed": args.seed,
                "progress_bar": False,
                "threads": args.threads,
            },
            "evaluate": {"baselines": [], "report": False, "plots": False},
        }
    )
    cfg, inputs = load_inputs(cfg)
    parts = groups(len(inputs.data))
    test = parts[args.fold]
    train = np.setdiff1d(np.arange(len(inputs.data)), test)
    split = Split(train=train, val=np.zeros(0, dtype=np.int64), test=test, method="road_selection")
    prepared = fit_preprocessing(cfg, inputs, split)
    assert prepared.X is not None
    truth = np.asarray(inputs.targets.y[test]).reshape(len(test), *inputs.targets.y.shape[-2:])
    snaps: dict[str, list[Any]] = {"epoch": [], "dihedral": [], "none": [], "seconds": []}
    start = time.time()
    out = Path(args.work)
    out.mkdir(parents=True, exist_ok=True)

    def save(loss: Any = ()) -> None:  # after every snapshot, so a partial run can be analysed
        np.savez_compressed(
            out / f"fold_{args.fold}.npz",
            epoch=np.array(snaps["epoch"]),
            seconds=np.array(snaps["seconds"]),
            dihedral=np.stack(snaps["dihedral"]),
            none=np.stack(snaps["none"]),
            truth=patch_means(truth.astype(np.float32)) > ROAD,
            test=test,
            train_loss=np.array(loss, dtype=np.float64),
        )

    class Snapshot(pl.Callback):
        def on_train_epoch_end(self, trainer: Any, pl_module: Any) -> None:
            epoch = trainer.current_epoch + 1
            if epoch % args.every and epoch != args.epochs:
                return
            model = pl_module.model
            was_training = model.training
            with torch.no_grad():
                for mode in ("dihedral", "none"):
                    model.params.tta = mode
                    p = predict_outputs(model, prepared.X[test], "segmentation", batch_size=4)[:, 0]
                    snaps[mode].append(np.stack([patch_means((p > t).astype(np.float32)) for t in GRID]).astype(np.float16))
            model.params.tta = "dihedral"
            model.train(was_training)
            snaps["epoch"].append(epoch)
            snaps["seconds"].append(time.time() - start)
            print(f"fold {args.fold} epoch {epoch} {time.time() - start:.0f}s", flush=True)
            save()

    trained = train_network(cfg, inputs, split, prepared, out / f"fold_{args.fold}", callbacks=[Snapshot()])
    save(trained.history.get("train_loss", []))
    meta = {"fold": args.fold, "epochs": args.epochs, "input_scale": args.input_scale, "seed": args.seed,
            "train_images": len(train), "seconds": time.time() - start, "threads": args.threads}  # fmt: skip
    (out / f"fold_{args.fold}.json").write_text(json.dumps(meta))


def f1(truth: list[np.ndarray], pred: list[np.ndarray]) -> float:
    """Patch F1 pooled over images (the product's ``patch_f1``)."""
    t = np.concatenate([a.ravel() for a in truth])
    p = np.concatenate([a.ravel() for a in pred])
    tp, fp, fn = int((t & p).sum()), int((~t & p).sum()), int((t & ~p).sum())
    return 2 * tp / max(2 * tp + fp + fn, 1)


def load_folds(work: Path) -> list[dict[str, Any]]:
    """The stored folds, cut to the epochs every fold reached."""
    folds = []
    for k in range(5):
        d = np.load(work / f"fold_{k}.npz")
        folds.append({key: d[key] for key in d.files})
    common = sorted(set.intersection(*(set(f["epoch"].tolist()) for f in folds)))
    for f in folds:
        keep = np.isin(f["epoch"], common)
        for mode in ("dihedral", "none"):
            f[mode] = f[mode][keep] > ROAD  # (epochs, thresholds, images, 25, 25) patch labels
        f["epoch"] = f["epoch"][keep]
    return folds


def table(folds: list[dict[str, Any]], mode: str) -> dict[int, dict[float, float]]:
    """Pooled patch F1 of ``folds`` per (epoch, threshold)."""
    epochs = folds[0]["epoch"].tolist()
    return {
        e: {t: f1([f["truth"] for f in folds], [f[mode][i, j] for f in folds]) for j, t in enumerate(GRID)}
        for i, e in enumerate(epochs)
    }


def apply(folds: list[dict[str, Any]], mode: str, picks: list[tuple[int, float]]) -> tuple[float, list[float]]:
    """Pooled patch F1 over all folds when fold ``k`` uses ``picks[k]`` = (epoch, threshold), and per fold."""
    preds, per = [], []
    for f, (e, t) in zip(folds, picks):
        i, j = f["epoch"].tolist().index(e), GRID.index(t)
        preds.append(f[mode][i, j])
        per.append(f1([f["truth"]], [preds[-1]]))
    return f1([f["truth"] for f in folds], preds), per


def analyse(work: Path, argv: list[str], name: str = "road_selection") -> None:
    """Score every selection rule with choices made on other folds only; write the results files."""
    sys.path.insert(0, str(REPO / "src"))
    sys.path.insert(0, str(REPO / "benchmarks"))
    from _common import write_results

    from biodl.experiment.select_cv import choose

    folds = load_folds(work)
    k = len(folds)
    last = int(folds[0]["epoch"][-1])
    metas = [json.loads((work / f"fold_{i}.json").read_text()) if (work / f"fold_{i}.json").exists() else {} for i in range(k)]
    rows, payload = [], {"epochs_reached": last, "folds": metas, "rules": {}, "curves": {}}
    for mode in ("dihedral", "none"):
        tabs = [table([f], mode) for f in folds]
        rules: dict[str, list[list[tuple[int, float]]]] = {}
        # pooled CV: the product's rule on the 4 other folds (16 images)
        rules["pooled CV of the other folds (16 images), smoothed epoch + threshold"] = [
            [choose(table([f for i, f in enumerate(folds) if i != kk], mode), higher=True)[1:] for kk in range(k)]
        ]
        # 4 images: raw best (epoch, threshold) on one other fold; every shift of the other fold
        rules["one other fold (4 images), best epoch + threshold"] = [
            [
                max(((e, t) for e in tabs[(kk + s) % k] for t in GRID), key=lambda et: tabs[(kk + s) % k][et[0]][et[1]])
                for kk in range(k)
            ]
            for s in range(1, k)
        ]
        rules["last epoch, threshold on one other fold (4 images)"] = [
            [(last, max(GRID, key=lambda t: tabs[(kk + s) % k][last][t])) for kk in range(k)] for s in range(1, k)
        ]
        rules["last epoch, threshold pooled over the other folds"] = [
            [
                (last, max(GRID, key=lambda t: table([f for i, f in enumerate(folds) if i != kk], mode)[last][t]))
                for kk in range(k)
            ]
        ]
        rules["last epoch, threshold 0.5"] = [[(last, 0.5)] * k]
        rules["oracle: best (epoch, threshold) on the fold itself (not a rule)"] = [
            [max(((e, t) for e in tabs[kk] for t in GRID), key=lambda et: tabs[kk][et[0]][et[1]]) for kk in range(k)]
        ]
        for rule, variants in rules.items():
            scored = [apply(folds, mode, picks) for picks in variants]
            pooled = float(np.mean([s[0] for s in scored]))
            per = np.mean([s[1] for s in scored], axis=0)
            picks = variants[0]
            payload["rules"][f"{mode}: {rule}"] = {"pooled_f1": pooled, "per_fold": per.tolist(), "picks": picks,
                                                  "variants": len(variants)}  # fmt: skip
            rows.append(
                [mode, name, round(pooled, 4), f"{per.mean():.3f} ± {per.std():.3f}", ", ".join(f"{e}/{t}" for e, t in picks)]
            )
        full = table(folds, mode)
        payload["curves"][mode] = {e: {"best": max(full[e].values()), "at_0.5": full[e][0.5],
                                       "threshold": max(full[e], key=full[e].get)} for e in full}  # fmt: skip
    curve_rows = [
        f"| {e} | {payload['curves']['dihedral'][e]['best']:.3f} ({payload['curves']['dihedral'][e]['threshold']}) "
        f"| {payload['curves']['dihedral'][e]['at_0.5']:.3f} | {payload['curves']['none'][e]['best']:.3f} |"
        for e in payload["curves"]["dihedral"]
    ]
    notes = "\n".join(
        [
            f"Epochs reached by every fold: {last}. Each rule picks (epoch, threshold) per fold from other folds' held-out "
            "images only and is scored on the fold's own 4 images; 'pooled' is the patch F1 over all 20 held-out images "
            "(the mean over the 4 choices of the other fold for the 4-image rules), 'per fold' the mean ± sd of the 5 "
            "folds' own scores. picks: the first variant's epoch/threshold per fold.",
            "",
            "Out-of-fold curve (all 20 images pooled): patch F1 per snapshot epoch.",
            "",
            "| epoch | dihedral best | dihedral 0.5 | none best |",
            "|---:|---:|---:|---:|",
            *curve_rows,
            "",
            "Command: python " + " ".join(argv) + " (after the train step's commands above, with the same options)",
        ]
    )
    write_results(name, payload, ["TTA", "rule", "pooled patch F1 (20 images)", "per fold", "picks"], rows, notes)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("step", choices=["train", "analyse"])
    ap.add_argument("--fold", default="0", help="0-4, or all (the five in turn)")
    ap.add_argument("--epochs", type=int, default=120)
    ap.add_argument("--every", type=int, default=4)
    ap.add_argument("--input-scale", type=float, default=0.25)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--work", default="/tmp/h15roads_selection")
    ap.add_argument("--name", default="road_selection", help="analyse: results file name")
    args = ap.parse_args(argv)
    if args.step == "train" and args.fold == "all":  # one after the other (a GPU)
        for k in range(5):
            train_fold(argparse.Namespace(**{**vars(args), "fold": k}))
    elif args.step == "train":
        args.fold = int(args.fold)
        train_fold(args)
    else:
        analyse(Path(args.work), sys.argv, args.name)
    return 0


if __name__ == "__main__":
    sys.exit(main())
