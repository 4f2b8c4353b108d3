"""The road paper's experiment (Kebir et al. 2021): VGG16/12/10 encoder-decoders × three training strategies.

Trains ``vgg_autoencoder`` with ``encoder`` vgg16, vgg12 and vgg10 under the strategies of the
paper's Table 1 (``few-data``: originals; ``classic``: + rotations by 90/180/270°; ``filter``:
+ CONTOUR / DETAIL / EDGE_ENHANCE / FIND_EDGES copies) on the EPFL road images of
``../shared/datasets/images/roads_epfl/`` (never copied into this repository), with the paper's
training settings (RMSprop, binary cross-entropy, 80/20 train/validation of the training images)
at a resolution a CPU allows (``--scale``: the networks see the images downscaled, outputs are
upsampled back and scored at full resolution), and writes

* Table 2's form — trainable parameters and training time (s) per strategy;
* Table 3's form — F-measure, precision and specificity of the road class on held-out images;
* plus IoU and the EPFL benchmark's 16×16-patch F1 (patch = road when > 25 % of it is road),

to ``benchmarks/results/road_strategies.{json,md}``. The same split, seed and number of
epochs are used for every run, as in the paper (so a strategy's time grows with its samples).

Run: ``.venv/bin/python benchmarks/road_strategies.py`` (see ``--help``; the defaults took the
time reported in the results file on 2 shared CPU cores).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "datasets" / "images" / "roads_epfl"
RESULTS = REPO / "benchmarks" / "results"
MODELS = ("vgg16", "vgg12", "vgg10")
STRATEGIES = ("few-data", "classic", "filter")
#: Table 2 and Table 3 of the paper (Teselas data, 150 epochs, GTX 1080 Ti).
PAPER = {
    "params": {"vgg16": 18_087_715, "vgg12": 9_590_145, "vgg10": 5_460_097},
    "time_s": {
        "vgg16": {"few-data": 328045, "classic": 1315534, "filter": 1312389},
        "vgg12": {"few-data": 218174, "classic": 860137, "filter": 883612},
        "vgg10": {"few-data": 163077, "classic": 658538, "filter": 635932},
    },
    "test": {"vgg16": (0.785, 0.863, 0.966), "vgg12": (0.797, 0.899, 0.971), "vgg10": (0.841, 0.913, 0.976)},
}


def config(encoder: str, strategy: str, args: argparse.Namespace) -> dict[str, Any]:
    """The experiment of one cell of the table."""
    return {
        "data": {
            "type": "image",
            "path": [str(args.data / "images")],
            "task": "segmentation",
            "split": "random",
            "split_sizes": list(args.split),
            "image": {
                "mask_dir": str(args.data / "groundtruth"),
                "mask_threshold": 128,
                "tile_size": args.tile,
                "crops_per_image": args.crops,
                "augment": [],
                "augment_strategy": strategy,
            },
        },
        "model": {"name": "vgg_autoencoder", "encoder": encoder, "input_scale": args.scale},
        "train": {
            "optimizer": "rmsprop",
            "lr": args.lr,
            "batch_size": args.batch_size,
            "max_epochs": args.epochs,
            "early_stopping": False,
            "lr_schedule": "none",
            "seed": args.seed,
            "progress_bar": False,
        },
        "evaluate": {"baselines": [], "report": False, "plots": False},
    }


def run(args: argparse.Namespace) -> dict[str, Any]:
    from biodl import Experiment

    rows: list[dict[str, Any]] = []
    for encoder in args.models:
        for strategy in args.strategies:
            exp = Experiment(config(encoder, strategy, args))
            t0 = time.perf_counter()
            result = exp.fit(args.workdir / f"{encoder}_{strategy}")
            seconds = time.perf_counter() - t0
            test = result.metrics.get("test") or result.metrics["val"]
            bundle = result.bundle
            params = int(bundle.meta["model"]["trainable_parameters"]) if bundle else None
            row = {
                "model": encoder,
                "strategy": strategy,
                "trainable_parameters": params,
                "seconds": round(seconds, 1),
                "train_seconds_per_epoch": round(seconds / max(1, result.metrics["training"]["epochs"]), 1),
                "f_measure": test["pixel_f1"],
                "precision": test["pixel_precision"],
                "specificity": test["pixel_specificity"],
                "recall": test["pixel_recall"],
                "iou": test["iou"],
                "patch_f1": test["patch_f1"],
                "val_patch_f1": result.metrics["val"].get("patch_f1"),
                "val_loss_best": min(v for v in result.history.get("val_loss", [float("nan")]) if v == v),
                "epochs": result.metrics["training"]["epochs"],
            }
            rows.append(row)
            print(json.dumps(row), flush=True)
            with open(args.workdir / "runs.jsonl", "a") as fh:  # partial results survive an interruption
                fh.write(json.dumps(row) + "\n")
    return {"settings": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()}, "runs": rows, "paper": PAPER}


def _f(v: Any, digits: int = 3) -> str:
    return "–" if v is None else f"{v:.{digits}f}"


def markdown(doc: dict[str, Any]) -> str:
    runs = doc["runs"]
    s = doc["settings"]
    by = {(r["model"], r["strategy"]): r for r in runs}
    models = [m for m in MODELS if any(r["model"] == m for r in runs)]
    strategies = [t for t in STRATEGIES if any(r["strategy"] == t for r in runs)]
    lines = [
        "# Road segmentation: VGG16/12/10 encoder-decoders × training strategies",
        "",
        f"EPFL road images (`../shared/datasets/images/roads_epfl`, {s['n_images']} images of 400×400), random split "
        f"{s['split']} (train/validation/test; the test images are held out), networks at {s['scale']}× resolution "
        f"(scored at full resolution), {s['epochs']} epochs, RMSprop lr {s['lr']}, batch {s['batch_size']} images, "
        f"training crops {s['tile']} px × {s['crops']} per image, seed {s['seed']}. Measured on {s['machine']}.",
        "",
        "## Table 2 (form of the paper): trainable parameters (ours with batch norm) and training time (s)",
        "",
        "| model | parameters (ours) | parameters (paper) | " + " | ".join(strategies) + " |",
        "|---|---:|---:|" + "---:|" * len(strategies),
    ]
    for m in models:
        p = next(r["trainable_parameters"] for r in runs if r["model"] == m)
        times = [_f(by[(m, t)]["seconds"], 0) if (m, t) in by else "–" for t in strategies]
        lines.append(f"| VGG{m[3:]} AE | {p:,} | {PAPER['params'][m]:,} | " + " | ".join(times) + " |")
    lines += [
        "",
        "## Table 3 (form of the paper): road class on the held-out test images",
        "",
        "| model | strategy | F-measure | precision | specificity | recall | IoU | 16×16-patch F1 |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for m in models:
        for t in strategies:
            r = by.get((m, t))
            if r:
                lines.append(
                    f"| VGG{m[3:]} AE | {t} | {_f(r['f_measure'])} | {_f(r['precision'])} | {_f(r['specificity'])} | "
                    f"{_f(r['recall'])} | {_f(r['iou'])} | {_f(r['patch_f1'])} |"
                )
    lines += [
        "",
        "Paper (Teselas data, 150 epochs, filter strategy): "
        + "; ".join(f"VGG{m[3:]} AE FM {v[0]} / Pr {v[1]} / Sp {v[2]}" for m, v in PAPER["test"].items())
        + ".",
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, default=DATA)
    ap.add_argument("--models", nargs="+", default=list(MODELS)[::-1], choices=MODELS)
    ap.add_argument("--strategies", nargs="+", default=list(STRATEGIES), choices=STRATEGIES)
    ap.add_argument("--epochs", type=int, default=20)
    ap.add_argument("--scale", type=float, default=0.25, help="working resolution (fraction of 400 px)")
    ap.add_argument("--tile", type=int, default=400, help="training crop side at full resolution (400 = whole images)")
    ap.add_argument("--crops", type=int, default=1)
    ap.add_argument("--batch-size", type=int, default=2)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--split", type=float, nargs=3, default=[0.5, 0.1, 0.4])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--workdir", type=Path, default=Path("/tmp/biodl_road_strategies"))
    ap.add_argument("--machine", default="2 shared CPU cores")
    ap.add_argument("--out", type=Path, default=RESULTS)
    ap.add_argument("--report-only", action="store_true", help="write the tables from WORKDIR/runs.jsonl (finished runs) only")
    args = ap.parse_args(argv)
    if not (args.data / "images").is_dir():
        print(f"road images not found under {args.data} (the EPFL set is read from ../shared, never committed)", file=sys.stderr)
        return 2
    args.n_images = len(list((args.data / "images").glob("*.png")))
    if args.report_only:
        rows = [json.loads(line) for line in (args.workdir / "runs.jsonl").read_text().splitlines() if line.strip()]
        doc = {
            "settings": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
            "runs": rows,
            "paper": PAPER,
        }
    else:
        doc = run(args)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "road_strategies.json").write_text(json.dumps(doc, indent=1))
    (args.out / "road_strategies.md").write_text(markdown(doc))
    print(markdown(doc))
    return 0


if __name__ == "__main__":
    sys.exit(main())
