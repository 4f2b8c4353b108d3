"""Streamed ``biodl predict`` (``--chunk-rows``) on a folder of BreastMNIST images with a real (tiny) CNN."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from biodl import Experiment
from conftest import run_biodl, shared_path

IMAGES = 150  # several 64-image chunks and a partial last one


@pytest.fixture(scope="module")
def npz() -> Path:
    return shared_path("images", "breastmnist", "breastmnist_train_val.npz")


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory, npz: Path) -> Path:
    """A small CNN trained for one epoch on BreastMNIST (from its NPZ file)."""
    out = tmp_path_factory.mktemp("runs") / "bm"
    Experiment(
        data={"type": "image", "path": [str(npz)], "task": "classification"},
        model={"name": "cnn", "channels": [8], "convs_per_block": 1, "dense_units": 16},
        train={"max_epochs": 1, "progress_bar": False, "seed": 0, "batch_size": 64},
        evaluate={"baselines": [], "report": False, "plots": False},
    ).fit(out)
    return out


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory, npz: Path) -> Path:
    """150 training images of the NPZ file as PNG files (names sort naturally, not as strings)."""
    from PIL import Image

    out = tmp_path_factory.mktemp("images") / "bm"
    out.mkdir()
    with np.load(npz) as z:
        images = z["train_images"][:IMAGES]
    for i, img in enumerate(images):
        Image.fromarray(img).save(out / f"img{i}.png")
    return out


def _predict(run: Path, data: Path, output: Path, *extra: str) -> pd.DataFrame:
    res = run_biodl(
        "predict", "--model-path", str(run), "--data-path", str(data), "--output", str(output), "--engine", "torch", *extra
    )
    assert res.returncode == 0, res.stderr
    return pd.read_parquet(output) if output.suffix == ".parquet" else pd.read_csv(output)


def test_streamed_image_predictions_equal_in_memory_in_order(run: Path, folder: Path, tmp_path: Path) -> None:
    whole = _predict(run, folder, tmp_path / "whole.csv")
    streamed = _predict(run, folder, tmp_path / "streamed.parquet", "--chunk-rows", "64")
    assert len(whole) == len(streamed) == IMAGES
    expected = [f"img{i}.png" for i in range(IMAGES)]  # natural order, as the whole read
    assert whole["id"].tolist() == streamed["id"].tolist() == expected
    prob = [c for c in whole.columns if c.startswith("prob_")]
    assert prob and list(streamed.columns) == list(whole.columns)
    assert np.abs(whole[prob].to_numpy() - streamed[prob].to_numpy()).max() < 1e-5
    assert (whole["predicted"].astype(str) == streamed["predicted"].astype(str)).all()
    assert not list(tmp_path.glob("*.partial"))


def test_npz_inputs_are_not_streamed_with_a_reason(run: Path, npz: Path, tmp_path: Path) -> None:
    res = run_biodl(
        "predict", "--model-path", str(run), "--data-path", str(npz), "--output", str(tmp_path / "p.csv"), "--chunk-rows", "64"
    )
    assert res.returncode != 0 and "only image files and folders of image files are streamed" in res.stderr
    assert "Traceback" not in res.stderr
