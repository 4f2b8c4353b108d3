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
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "datasets" / "images" / "roads_epfl"
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


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("step", choices=["train", "analyse"])
    ap.add_argument("--fold", type=int, default=0)
    ap.add_argument("--epochs", type=int, default=120)
    ap.add_argument("--every", type=int, default=4)
    ap.add_argument("--input-scale", type=float, default=0.25)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--work", default="/tmp/h15roads_selection")
    args = ap.parse_args(argv)
    if args.step == "train":
        train_fold(args)
    else:
        from road_selection_analysis import analyse

        analyse(Path(args.work))
    return 0


if __name__ == "__main__":
    sys.exit(main())
