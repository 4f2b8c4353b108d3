"""Small real multiple-instance data sets built from ../shared/datasets for the MIL tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd


def bag_table(source: Path, folds: Path, out: Path, *, rep: int = 1, n_folds: int | None = None) -> Path:
    """``bag_id, bag_label, fold, f1..fD`` (the layout of the evaluation's BAGS.csv) from a MIDatasets
    file and its fold table; ``n_folds`` merges the 10 folds into fewer (fold mod n_folds)."""
    df = pd.read_csv(source)
    f = pd.read_csv(folds)[["bag_id", f"rep{rep}_test_fold"]].rename(columns={f"rep{rep}_test_fold": "fold"})
    if n_folds is not None:
        f["fold"] = f["fold"] % n_folds
    df = df.merge(f, on="bag_id").drop(columns=["instance"])
    cols = ["bag_id", "bag_label", "fold"] + [c for c in df.columns if c.startswith("f") and c != "fold"]
    df[cols].to_csv(out, index=False)
    return out


def breast_mosaics(npz: Path, root: Path, *, n_pos: int = 40, n_neg: int = 40, seed: int = 0) -> tuple[Path, dict[str, int]]:
    """Class folders of 56×56 mosaics of four distinct BreastMNIST images (each source image in one
    bag only). In a ``positive`` mosaic one tile, at a random corner, is intensity-inverted (the
    planted key instance); ``negative`` mosaics are unchanged. Returns the folder and, per positive
    file name (``positive/x.png``), the index of the inverted tile (0 top-left, 1 top-right, 2, 3)."""
    from PIL import Image

    d = np.load(npz)
    imgs = np.concatenate([d["train_images"], d["val_images"]])
    rng = np.random.default_rng(seed)
    order = list(rng.permutation(len(imgs)))
    planted: dict[str, int] = {}
    for cls, n in (("positive", n_pos), ("negative", n_neg)):
        (root / cls).mkdir(parents=True, exist_ok=True)
        for i in range(n):
            tiles = [imgs[order.pop()].astype(np.int64) for _ in range(4)]
            name = f"{cls}/{cls}_{i:03d}.png"
            if cls == "positive":
                k = int(rng.integers(4))
                tiles[k] = 255 - tiles[k]
                planted[name] = k
            mosaic = np.block([[tiles[0], tiles[1]], [tiles[2], tiles[3]]])
            Image.fromarray(mosaic.astype(np.uint8)).save(root / name)
    return root, planted
