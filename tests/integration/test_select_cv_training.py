"""train.select_by: cv on real (synthetic-image) training: folds over the non-test images, epoch and
threshold from the pooled out-of-fold predictions, the final model trained on all of them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image
from test_image_training import _squares

from biodl import Experiment
from biodl.bundle import load
from biodl.experiment.select_cv import choose, snapshot_epochs
from biodl.inference import evaluate, load_data


def _fit(folder: Path, run: Path, **train: Any) -> Any:
    return Experiment(
        data={
            "type": "image", "path": [str(folder / "images")], "split": "ordered", "split_sizes": [0.5, 0.25, 0.25],
            "image": {"mask_dir": str(folder / "masks"), "tile_size": 32, "crops_per_image": 2},
        },
        model={"name": "unet", "depth": 2, "base_channels": 4, "tta": "flip"},
        train={"progress_bar": False, "seed": 0, "threads": 1, "max_epochs": 3, "select_by": "cv", "select_folds": 3, **train},
        evaluate={"baselines": [], "report": False, "plots": False, "select_threshold": "dice"},
    ).fit(run)  # fmt: skip


@pytest.fixture(scope="module")
def selected(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Any]:
    root = tmp_path_factory.mktemp("select_cv")
    _squares(root / "data", 12)
    return root, _fit(root / "data", root / "run")


def test_folds_cover_the_training_and_validation_images_only(selected: tuple[Path, Any]) -> None:
    root, result = selected
    splits = json.loads((root / "run" / "splits.json").read_text())
    doc = json.loads((root / "run" / "selection.json").read_text())
    held = sorted(i for fold in doc["fold_ids"] for i in fold)
    assert held == sorted(splits["train_ids"] + splits["val_ids"])  # every non-test image held out once
    assert not set(held) & set(splits["test_ids"])
    assert result.metrics["selection"]["folds"] == 3 and result.metrics["selection"]["rows"] == 9
    assert [c["epoch"] for c in doc["curve"]] == snapshot_epochs(3)


def test_epoch_and_threshold_are_the_pooled_choice_and_the_final_model_uses_them(selected: tuple[Path, Any]) -> None:
    root, result = selected
    doc = json.loads((root / "run" / "selection.json").read_text())
    table = {c["epoch"]: {c["threshold"]: c["score"]} for c in doc["curve"]}
    _, epoch, threshold = choose(table, higher=True)
    assert (doc["epochs"], doc["threshold"]) == (epoch, threshold)
    picked = result.metrics["threshold"]
    assert (picked["metric"], picked["value"], picked["method"]) == ("dice", threshold, "cv")
    assert len(picked["validation"]) == 13 and max(picked["validation"].values()) == doc["out_of_fold_score"]
    # val is the pooled out-of-fold score at the choice; the final model trained on all 9 images for those epochs
    assert result.metrics["val"]["dice"] == pytest.approx(doc["out_of_fold_score"])
    assert result.metrics["training"]["epochs"] == epoch
    assert result.metrics["selection"]["best_at_max_epochs"] == (epoch == 3)  # "raise max_epochs" is flagged
    assert load(root / "run").meta["model"]["params"]["threshold"] == threshold
    assert len(list((root / "run" / "selection").glob("fold_*"))) == 3


def test_poisoned_test_masks_do_not_change_the_choice(selected: tuple[Path, Any], tmp_path: Path) -> None:
    root, result = selected
    test_ids = json.loads((root / "run" / "splits.json").read_text())["test_ids"]
    poisoned = tmp_path / "data"
    for part in ("images", "masks"):
        (poisoned / part).mkdir(parents=True)
        for f in (root / "data" / part).iterdir():
            (poisoned / part / f.name).write_bytes(f.read_bytes())
    for name in test_ids:  # inverted masks on the test images only
        m = np.asarray(Image.open(poisoned / "masks" / name))
        Image.fromarray((255 - m).astype(np.uint8)).save(poisoned / "masks" / name)
    again = _fit(poisoned, tmp_path / "run")
    same = {k: v for k, v in result.metrics["selection"].items() if k != "fold_seconds"}
    assert {k: v for k, v in again.metrics["selection"].items() if k != "fold_seconds"} == same
    assert again.metrics["val"] == result.metrics["val"]
    assert again.metrics["test"]["dice"] != result.metrics["test"]["dice"]  # the poison did reach the test scores


def test_select_ensemble_averages_the_fold_networks_with_the_final_one(selected: tuple[Path, Any], tmp_path: Path) -> None:
    """``train.select_ensemble``: the bundle holds the final network and each selection fold's network after its
    last epoch, averaged, with the chosen threshold on the average; the saved bundle predicts what was scored."""
    import torch

    from biodl.models.ensemble import Ensemble

    root, plain = selected
    result = _fit(root / "data", tmp_path / "run", select_ensemble=True)
    sel = result.metrics["selection"]
    assert sel["ensemble"] is True and {k: sel[k] for k in ("epochs", "threshold")} == {
        k: plain.metrics["selection"][k] for k in ("epochs", "threshold")
    }  # the same choice as without the ensemble
    bundle = load(tmp_path / "run")
    assert isinstance(bundle.model, Ensemble) and len(bundle.model.members) == 4
    assert bundle.meta["model"]["params"]["threshold"] == sel["threshold"] == bundle.model.params.threshold
    for j in range(3):  # member j + 1 is selection fold j's network after its last epoch
        ckpt = torch.load(tmp_path / "run" / "selection" / f"fold_{j}" / "checkpoints" / "last.ckpt", weights_only=False)
        assert ckpt["epoch"] == 2
        weights = {k.removeprefix("model."): v for k, v in ckpt["state_dict"].items() if k.startswith("model.")}
        for name, t in bundle.model.members[j + 1].state_dict().items():
            torch.testing.assert_close(t, weights[name], msg=name)
    final = {k.removeprefix("model."): v for k, v in torch.load(
        tmp_path / "run" / "checkpoints" / "last.ckpt", weights_only=False)["state_dict"].items()}  # fmt: skip
    for name, t in bundle.model.members[0].state_dict().items():
        torch.testing.assert_close(t, final[name], msg=name)
    test_ids = json.loads((tmp_path / "run" / "splits.json").read_text())["test_ids"]
    files = [str(root / "data" / "images" / i) for i in test_ids]
    data = load_data(bundle, files, {"image": {"mask_dir": str(root / "data" / "masks")}}, require_targets=True)
    assert evaluate(bundle, data)["dice"] == pytest.approx(result.metrics["test"]["dice"], abs=1e-6)


def test_regression_folds_are_pooled_on_the_original_scale(tmp_path: Path) -> None:
    """Each fold standardises its own targets; the pooled out-of-fold RMSE is in the targets' units."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(40, 3))
    y = 1000.0 + 100.0 * x[:, 0] + rng.normal(scale=10.0, size=40)
    lines = ["a,b,c,y", *(f"{r[0]:.4f},{r[1]:.4f},{r[2]:.4f},{v:.3f}" for r, v in zip(x, y))]
    (tmp_path / "t.csv").write_text("\n".join(lines) + "\n")
    result = Experiment(
        data={"type": "tabular", "path": [str(tmp_path / "t.csv")], "target_columns": ["y"], "task": "regression"},
        model={"name": "mlp", "hidden_sizes": [8]},
        train={"progress_bar": False, "seed": 0, "threads": 1, "max_epochs": 4, "select_by": "cv", "select_folds": 2},
        evaluate={"baselines": [], "report": False, "plots": False},
    ).fit(tmp_path / "run")
    assert result.metrics["selection"]["metric"] == "rmse"
    assert result.metrics["val"]["rmse"] == pytest.approx(result.metrics["selection"]["out_of_fold_score"])
    assert result.metrics["val"]["rmse"] < 3 * y.std()  # standardised predictions would be ~1000 off
