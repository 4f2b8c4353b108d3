"""Short real trainings: BreastMNIST classification, ISBI 2012 EM crops, synthetic segmentation via the CLI."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import tifffile
from lightning.pytorch import Callback
from PIL import Image

from biodl import Experiment
from biodl.bundle import load
from biodl.cli.main import main
from biodl.config import SEGMENTATION_BATCH_SIZE
from biodl.data.image.io import encode_png_base64
from biodl.inference import evaluate, load_data
from conftest import shared_path

QUIET = {"progress_bar": False, "seed": 0}


def _falls(history: dict[str, list[float]]) -> bool:
    loss = history["train_loss"]
    return len(loss) >= 2 and loss[-1] < loss[0]


def test_breastmnist_short_training(tmp_path: Path) -> None:
    npz = shared_path("images", "breastmnist", "breastmnist_train_val.npz")
    exp = Experiment(
        data={"type": "image", "path": [str(npz)], "task": "classification"},
        model={"name": "cnn", "channels": [8, 16], "convs_per_block": 1, "dense_units": 32},
        train={**QUIET, "max_epochs": 3, "batch_size": 32},
        evaluate={"baselines": ["linear"], "report": True},
    )
    result = exp.fit(tmp_path / "bm")
    assert _falls(result.history)
    assert result.metrics["training"]["epochs"] == 3
    split = json.loads((tmp_path / "bm" / "splits.json").read_text())
    assert split["method"] == "predefined" and split["sizes"] == {"train": 546, "val": 78, "test": 0}
    assert 0.0 <= result.metrics["val"]["auroc"] <= 1.0
    assert result.metrics["baseline"]["val"]["auroc"] > 0.6
    assert (tmp_path / "bm" / "figures" / "embedding.png").exists()
    # the bundle answers base64 requests
    bundle = load(tmp_path / "bm")
    X = bundle.modality.parse_inputs([encode_png_base64(np.zeros((28, 28), np.uint8))])
    probs = bundle.predict_arrays(bundle.modality.transform(X))
    assert probs.shape == (1, 1) and 0 <= probs[0, 0] <= 1
    # biodl explain dispatches image models to the image explainers
    rc = main(["explain", "--model-path", str(tmp_path / "bm"), "--data-path", str(npz), "--method", "gradcam",
               "--target", "1", "--plots", "2", "--output-dir", str(tmp_path / "explain")])  # fmt: skip
    assert rc == 0 and (tmp_path / "explain" / "gradcam.png").exists()
    maps = tifffile.imread(tmp_path / "explain" / "gradcam_maps.tif")
    assert maps.shape == (2, 28, 28)


def test_isbi_crops_short_training(tmp_path: Path) -> None:
    root = shared_path("images", "isbi2012_em", "train")
    files = [str(root / "image" / f"{i}.png") for i in range(6)]
    exp = Experiment(
        data={
            "type": "image",
            "path": files,
            "task": "segmentation",
            "split": "ordered",
            "split_sizes": [4 / 6, 2 / 6, 0.0],
            "image": {"mask_dir": str(root / "label"), "tile_size": 64, "crops_per_image": 4, "predict_tile_size": 256},
        },
        model={"name": "unet", "depth": 2, "base_channels": 8},
        train={**QUIET, "max_epochs": 4, "batch_size": 4, "lr": 3e-3},
        evaluate={"baselines": ["linear"], "report": True},
    )
    result = exp.fit(tmp_path / "isbi")
    assert _falls(result.history)
    val = result.metrics["val"]
    assert set(val["per_class"]) == {"0", "255"}  # membrane (black) and cell (white)
    assert 0 <= val["pixel_f1"] <= 1 and result.metrics["baseline"]["val"]["pixel_f1"] > 0.5
    # the network is judged against its baseline on validation Dice, as classifiers are on their metric
    comparison = result.metrics["baseline_comparison"]
    assert comparison["metric"] == "dice" and comparison["baseline"] == result.metrics["baseline"]["val"]["dice"]
    assert result.metrics["network_beats_baseline"] == (val["dice"] >= comparison["baseline"])
    assert (tmp_path / "isbi" / "figures" / "segmentation_overlays.png").exists()
    # a saved model predicts whole 512×512 slices in sliding windows and writes 0/255 masks
    out = tmp_path / "pred" / "masks.csv"
    rc = main(["predict", "--model-path", str(tmp_path / "isbi"), "--data-path", files[4], files[5], "--output", str(out)])
    assert rc == 0
    mask = np.asarray(Image.open(tmp_path / "pred" / "masks_masks" / "4.png"))
    assert mask.shape == (512, 512) and set(np.unique(mask)) <= {0, 255}
    bundle = load(tmp_path / "isbi")
    data = load_data(bundle, files[4:], {"image.mask_dir": str(root / "label")}, require_targets=True)
    metrics = evaluate(bundle, data)
    assert metrics["pixel_f1"] == pytest.approx(val["pixel_f1"], abs=1e-6)


def _squares(folder: Path, n: int, size: int = 48, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    for i in range(n):
        img = rng.integers(0, 60, (size, size, 3), dtype=np.uint8)
        mask = np.zeros((size, size), np.uint8)
        r, c = rng.integers(4, size - 16, 2)
        img[r : r + 12, c : c + 12] = 220
        mask[r : r + 12, c : c + 12] = 255
        (folder / "images").mkdir(parents=True, exist_ok=True)
        (folder / "masks").mkdir(parents=True, exist_ok=True)
        Image.fromarray(img).save(folder / "images" / f"img{i}.png")
        Image.fromarray(mask).save(folder / "masks" / f"img{i}.png")


class _StepCounter(Callback):
    def __init__(self) -> None:
        self.batches: list[tuple[int, ...]] = []

    def on_train_batch_start(self, trainer: Any, pl_module: Any, batch: Any, batch_idx: int) -> None:
        self.batches.append(tuple(batch[0].shape))


def test_segmentation_epoch_is_crops_and_batch_size_counts_crops(tmp_path: Path) -> None:
    _squares(tmp_path / "data", 10)
    exp = Experiment(
        data={
            "type": "image", "path": [str(tmp_path / "data" / "images")], "split": "ordered", "split_sizes": [0.7, 0.3, 0.0],
            "image": {"mask_dir": str(tmp_path / "data" / "masks"), "tile_size": 32, "crops_per_image": 4,
                      "augment_strategy": "classic"},
        },
        model={"name": "unet", "depth": 2, "base_channels": 4},
        train={**QUIET, "max_epochs": 1},
        evaluate={"baselines": [], "report": False, "plots": False},
    )  # fmt: skip
    assert exp.config.train.batch_size == SEGMENTATION_BATCH_SIZE  # crops, not the 128 rows of other tasks
    counter = _StepCounter()
    exp.fit(tmp_path / "run", callbacks=[counter])
    crops = 7 * 4 * 4  # 7 training images x 4 crops x (original + 3 rotations)
    assert len(counter.batches) == -(-crops // SEGMENTATION_BATCH_SIZE)
    assert counter.batches[0] == (SEGMENTATION_BATCH_SIZE, 3, 32, 32)


def test_segmentation_cli_train_evaluate_predict_explain(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _squares(tmp_path / "data", 12)
    run = tmp_path / "run"
    rc = main(
        [
            "train", "--data-type", "image", "--data-path", str(tmp_path / "data" / "images"),
            "--mask-dir", str(tmp_path / "data" / "masks"), "--model", "vgg_autoencoder", "--tile-size", "32",
            "--augment-strategy", "filter", "--max-epochs", "2", "--batch-size", "4", "--optimizer", "rmsprop",
            "--output-dir", str(run), "--set", "train.progress_bar=false", "--set", "evaluate.baselines=[]",
            "--set", "model.decoder_channels=[16,8,8,8]", "--split-sizes", "0.6", "0.2", "0.2", "--select-folds", "2",
        ]
    )  # fmt: skip
    assert rc == 0
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["selection"]["folds"] == 2  # vgg_autoencoder on few images: epochs and threshold by CV (select_by auto)
    assert "patch_f1" in metrics["test"] and "iou_per_image" in metrics["test"]
    meta = json.loads((run / "model" / "bundle.json").read_text())
    assert meta["kind"] == "segmentation" and meta["classes"] == ["0", "255"]
    out = tmp_path / "eval.json"
    assert (
        main(["evaluate", "--model-path", str(run), "--data-path", str(tmp_path / "data" / "images"), "--output", str(out)]) == 0
    )
    assert "dice" in json.loads(out.read_text())["metrics"]
    # the saved model is the fold ensemble (train.select_ensemble, the vgg_autoencoder default): it exports with parity
    assert meta["model"]["name"] == "ensemble" and meta["model"]["params"]["size"] == 3
    assert main(["export", "--model-path", str(run), "--format", "onnx", "--output", str(tmp_path / "m.onnx")]) == 0
    assert json.loads((tmp_path / "m.onnx.json").read_text())["parity"]["passed"]
    rc = main(["explain", "--model-path", str(run), "--data-path", str(tmp_path / "data" / "images" / "img0.png"),
               "--method", "occlusion", "--output-dir", str(tmp_path / "ex")])  # fmt: skip
    assert rc == 0 and tifffile.imread(tmp_path / "ex" / "occlusion_maps.tif").shape[-2:] == (48, 48)
    # a mask of the wrong size is a clear one-line error naming the file
    Image.fromarray(np.zeros((10, 10), np.uint8)).save(tmp_path / "data" / "masks" / "img3.png")
    capsys.readouterr()
    assert main(["evaluate", "--model-path", str(run), "--data-path", str(tmp_path / "data" / "images")]) == 2
    assert "img3.png: mask is 10×10 but its image" in capsys.readouterr().err


def test_threshold_selected_on_validation_is_saved_and_applied(tmp_path: Path) -> None:
    """evaluate.select_threshold picks the foreground threshold on the validation images; the
    bundle keeps it, so evaluating the saved model reproduces the run's test scores."""
    _squares(tmp_path / "data", 12)
    run = tmp_path / "run"
    exp = Experiment(
        data={
            "type": "image", "path": [str(tmp_path / "data" / "images")], "split": "ordered", "split_sizes": [0.5, 0.25, 0.25],
            "image": {"mask_dir": str(tmp_path / "data" / "masks"), "tile_size": 32, "crops_per_image": 2},
        },
        model={"name": "unet", "depth": 2, "base_channels": 4, "tta": "flip"},
        train={**QUIET, "max_epochs": 2},
        evaluate={"baselines": [], "report": False, "plots": False, "select_threshold": "dice"},
    )  # fmt: skip
    result = exp.fit(run)
    picked = result.metrics["threshold"]
    assert picked["metric"] == "dice" and len(picked["validation"]) == 13
    best = max(picked["validation"].values())
    assert picked["validation"][str(picked["value"])] == best
    assert result.metrics["val"]["dice"] == pytest.approx(best, abs=1e-6)  # val is scored at the chosen threshold
    bundle = load(run)
    assert bundle.meta["model"]["params"]["threshold"] == picked["value"]
    test_dir = tmp_path / "test"
    (test_dir / "images").mkdir(parents=True)
    (test_dir / "masks").mkdir()
    for name in json.loads((run / "splits.json").read_text())["test_ids"]:
        (test_dir / "images" / name).write_bytes((tmp_path / "data" / "images" / name).read_bytes())
        (test_dir / "masks" / name).write_bytes((tmp_path / "data" / "masks" / name).read_bytes())
    data = load_data(bundle, [str(test_dir / "images")], {"image": {"mask_dir": str(test_dir / "masks")}}, require_targets=True)
    again = evaluate(bundle, data)
    assert again["dice"] == pytest.approx(result.metrics["test"]["dice"], abs=1e-6)
