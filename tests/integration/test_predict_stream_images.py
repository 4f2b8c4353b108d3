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


@pytest.fixture(scope="module")
def small_npz(tmp_path_factory: pytest.TempPathFactory, npz: Path) -> tuple[Path, Path]:
    """BreastMNIST subsets: a compressed MedMNIST-layout file (100 train, 78 "test" = val images) and a plain
    uncompressed ``images`` array (75 train images)."""
    out = tmp_path_factory.mktemp("npz")
    with np.load(npz) as z:
        tr, trl, va, val = z["train_images"][:100], z["train_labels"][:100], z["val_images"], z["val_labels"]
    np.savez_compressed(out / "medmnist.npz", train_images=tr, train_labels=trl, test_images=va, test_labels=val)
    np.savez(out / "plain.npz", images=tr[:75])
    return out / "medmnist.npz", out / "plain.npz"


@pytest.mark.parametrize(
    ("which", "extra", "ids"),
    [
        (0, (), [f"test/{i}" for i in range(78)]),  # a saved model reads the test part
        (0, ("--npz-parts", "train", "test"), [f"train/{i}" for i in range(100)] + [f"test/{i}" for i in range(78)]),
        (1, (), [str(i) for i in range(75)]),
    ],
)
def test_npz_predictions_stream_in_blocks_equal_in_memory(
    run: Path, small_npz: tuple[Path, Path], tmp_path: Path, which: int, extra: tuple[str, ...], ids: list[str]
) -> None:
    data = small_npz[which]
    whole = _predict(run, data, tmp_path / "whole.csv", *extra)
    streamed = _predict(run, data, tmp_path / "streamed.parquet", "--chunk-rows", "32", *extra)
    assert whole["id"].astype(str).tolist() == streamed["id"].astype(str).tolist() == ids
    prob = [c for c in whole.columns if c.startswith("prob_")]
    assert prob and list(streamed.columns) == list(whole.columns)
    assert np.abs(whole[prob].to_numpy() - streamed[prob].to_numpy()).max() < 1e-5
    assert (whole["predicted"].astype(str) == streamed["predicted"].astype(str)).all()
    assert not list(tmp_path.glob("*.partial"))


def test_npz_row_blocks_read_compressed_members_in_order(small_npz: tuple[Path, Path]) -> None:
    from biodl.data.image.sources import npz_row_blocks

    for path, key in ((small_npz[0], "test_images"), (small_npz[1], "images")):
        blocks = list(npz_row_blocks(str(path), key, 16))
        assert all(len(b) == 16 for b in blocks[:-1]) and 0 < len(blocks[-1]) <= 16
        with np.load(path) as z:
            assert np.array_equal(np.concatenate(blocks), z[key])


def test_a_table_of_image_paths_is_not_streamed_with_a_reason(run: Path, folder: Path, tmp_path: Path) -> None:
    table = tmp_path / "paths.csv"
    pd.DataFrame({"path": [str(p) for p in sorted(folder.iterdir())[:5]]}).to_csv(table, index=False)
    res = run_biodl(
        "predict", "--model-path", str(run), "--data-path", str(table), "--output", str(tmp_path / "p.csv"), "--chunk-rows", "64"
    )
    assert res.returncode != 0 and "image files, folders of image files and one NPZ file are streamed" in res.stderr
    assert "Traceback" not in res.stderr
