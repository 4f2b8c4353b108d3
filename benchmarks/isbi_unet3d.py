"""ISBI 2012 EM stack as a real volume: 3-D U-Net next to the 2-D U-Net on the same held-out slices.

The 20 labelled 512×512 slices of ``../shared/datasets/images/isbi2012_em/train`` (a consecutive
part of the ISBI stack) are split by depth: slices 0–13 train both networks (the 2-D U-Net as 14
images, the 3-D U-Net as one 14-slice stack), slices 14–19 are held out (one 6-slice stack / 6
images). Neither network sees a held-out slice or a validation split (fixed epochs). Scored on the
held-out slices: pixel F1 of the membrane class (label 0) and of the cell class (label 255), and
their mean.

    nice python benchmarks/isbi_unet3d.py --epochs 20 --threads 1

writes ``benchmarks/results/isbi_unet3d.{json,md}``.
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
from _common import write_results
from PIL import Image

ISBI = Path(__file__).resolve().parents[1] / ".." / "shared" / "datasets" / "images" / "isbi2012_em" / "train"


def f1(pred: np.ndarray, true: np.ndarray) -> float:
    tp = float((pred & true).sum())
    return 2 * tp / max(float(pred.sum() + true.sum()), 1.0)


def scores(pred_cell: np.ndarray, true_cell: np.ndarray) -> dict[str, float]:
    """F1 of membrane (not cell) and cell pixels over the held-out slices."""
    out = {"membrane_f1": f1(~pred_cell, ~true_cell), "cell_f1": f1(pred_cell, true_cell)}
    out["mean_f1"] = (out["membrane_f1"] + out["cell_f1"]) / 2
    out["pixel_accuracy"] = float((pred_cell == true_cell).mean())
    return out


def layout(root: Path, side: int) -> None:
    """``img2d/{train,test}``, ``mask2d/...`` (slices as images) and ``img3d/{train,test}`` (slice
    folders = stacks), ``mask3d/...``; images cropped to the top-left ``side``×``side``."""
    for part, slices in (("train", range(0, 14)), ("test", range(14, 20))):
        for sub in ("img2d", "mask2d", "img3d", "mask3d"):
            (root / sub / (part if sub.endswith("2d") else "")).mkdir(parents=True, exist_ok=True)
        (root / "img3d" / part).mkdir(parents=True, exist_ok=True)
        (root / "mask3d" / part).mkdir(parents=True, exist_ok=True)
        for i in slices:
            img = Image.open(ISBI / "image" / f"{i}.png").crop((0, 0, side, side))
            lab = Image.open(ISBI / "label" / f"{i}.png").crop((0, 0, side, side))
            img.save(root / "img2d" / part / f"s{i:02d}.png")
            lab.save(root / "mask2d" / part / f"s{i:02d}.png")
            img.save(root / "img3d" / part / f"{i:02d}.png")
            lab.save(root / "mask3d" / part / f"{i:02d}.png")


def truth(root: Path) -> np.ndarray:
    return np.stack([np.asarray(Image.open(p)) > 127 for p in sorted((root / "mask2d" / "test").iterdir())])


def run_2d(root: Path, epochs: int, threads: int, lr: float = 1e-3) -> tuple[np.ndarray, float]:
    from biodl.cli.main import main
    from biodl.experiment import Experiment

    t0 = time.time()
    Experiment(
        data={"type": "image", "path": [str(root / "img2d" / "train")], "task": "segmentation", "split_sizes": [1.0, 0.0, 0.0],
              "image": {"mask_dir": str(root / "mask2d" / "train"), "tile_size": 128, "crops_per_image": 4}},
        model={"name": "unet"},
        train={"progress_bar": False, "threads": threads, "max_epochs": epochs, "early_stopping": False, "lr": lr},
        evaluate={"baselines": [], "report": False, "plots": False},
    ).fit(root / "run2d")  # fmt: skip
    secs = time.time() - t0
    out = root / "p2d.csv"
    test = str(root / "img2d" / "test")
    assert main(["predict", "--model-path", str(root / "run2d"), "--data-path", test, "--output", str(out)]) == 0
    masks = sorted((root / "p2d_masks").iterdir())
    return np.stack([np.asarray(Image.open(p)) > 127 for p in masks]), secs


#: ISBI 2012 voxel size (z, y, x) in nm: serial-section TEM, 50 nm sections, 4 nm pixels.
ISBI_SPACING = [50.0, 4.0, 4.0]


def run_3d(
    root: Path, epochs: int, threads: int, lr: float = 1e-3, params: dict | None = None, spacing: list[float] | None = None
) -> tuple[np.ndarray, float]:
    import tifffile

    from biodl.cli.main import main
    from biodl.experiment import Experiment

    t0 = time.time()
    Experiment(
        data={"type": "volume", "path": [str(root / "img3d" / "train")], "task": "segmentation", "split_sizes": [1.0, 0.0, 0.0],
              "image": {"mask_dir": str(root / "mask3d")},
              "volume": {"tile_size": [4, 128, 128], "crops_per_volume": 56, "predict_tile_size": [6, 256, 256],
                         "spacing": spacing}},
        model={"name": "unet3d", **(params if params is not None else {})},
        train={"progress_bar": False, "threads": threads, "max_epochs": epochs, "early_stopping": False, "lr": lr,
               "batch_size": 4},
        evaluate={"baselines": [], "report": False, "plots": False},
    ).fit(root / "run3d")  # fmt: skip
    secs = time.time() - t0
    out = root / "p3d.csv"
    test = str(root / "img3d" / "test")
    assert main(["predict", "--model-path", str(root / "run3d"), "--data-path", test, "--output", str(out)]) == 0
    return tifffile.imread(root / "p3d_masks" / "test.tif") > 127, secs


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=20)
    ap.add_argument("--side", type=int, default=256, help="top-left crop of every slice (512 = whole)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--lr3d", type=float, default=1e-3, help="learning rate of the 3-D U-Net (2-D: 1e-3)")
    ap.add_argument("--name", default="isbi_unet3d", help="results file stem")
    ap.add_argument(
        "--params3d",
        default="{}",
        help="unet3d parameters as JSON ({} = the defaults; the first runs used "
        '\'{"depth": 3, "base_channels": 8, "pool_depth": false}\' without the spacing)',
    )
    ap.add_argument("--no-spacing", action="store_true", help="do not give the 3-D U-Net the voxel spacing 50 × 4 × 4 nm")
    ap.add_argument(
        "--reuse-2d", default=None, help="take the 2-D U-Net row from this earlier results JSON (same --side/--epochs)"
    )
    args = ap.parse_args()
    root = Path(tempfile.mkdtemp(prefix="isbi_unet3d_"))
    try:
        layout(root, args.side)
        true = truth(root)
        rows, payload = [], {"args": vars(args), "train_slices": "0-13", "test_slices": "14-19", "results": {}}
        if args.reuse_2d:
            old = json.loads(Path(args.reuse_2d).read_text())
            assert old["args"]["side"] == args.side and old["args"]["epochs"] == args.epochs, "2-D row from other settings"
            r = old["results"]["unet (2-D)"]
            payload["results"]["unet (2-D)"] = {**r, "from": Path(args.reuse_2d).name}
            rows.append([f"unet (2-D), from {Path(args.reuse_2d).name}", r["membrane_f1"], r["cell_f1"], r["mean_f1"],
                         r["pixel_accuracy"], round(r["train_seconds"])])  # fmt: skip
        runs = (("unet3d", run_3d),) if args.reuse_2d else (("unet (2-D)", run_2d), ("unet3d", run_3d))
        for name, fn in runs:
            kw: dict = {}
            if fn is run_3d:
                kw = {"lr": args.lr3d, "params": json.loads(args.params3d), "spacing": None if args.no_spacing else ISBI_SPACING}
            pred, secs = fn(root, args.epochs, args.threads, **kw)
            assert pred.shape == true.shape, (name, pred.shape, true.shape)
            s = scores(pred, true)
            payload["results"][name] = {**s, "train_seconds": round(secs, 1)}
            rows.append([name, s["membrane_f1"], s["cell_f1"], s["mean_f1"], s["pixel_accuracy"], round(secs)])
        base = float(true.mean())
        rows.append(["all cell (constant)", 0.0, f1(np.ones_like(true), true), f1(np.ones_like(true), true) / 2, base, 0])
        write_results(
            args.name,
            payload,
            ["model", "membrane F1", "cell F1", "mean F1", "pixel accuracy", "train s"],
            rows,
            notes=f"ISBI 2012 slices 0-13 train, 14-19 held out; top-left {args.side}x{args.side} of each slice; "
            f"{args.epochs} epochs, no validation split; 3-D lr {args.lr3d}; unet3d params {args.params3d}, voxel spacing "
            f"{'not given' if args.no_spacing else ISBI_SPACING}; --threads {args.threads}.",
        )
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
