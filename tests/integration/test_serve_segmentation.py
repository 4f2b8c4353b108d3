"""A segmentation model end to end: a tiny U-Net trained on ISBI 2012 crops, then ``biodl predict``
and ``biodl serve`` (a real uvicorn process) answer with masks of the input's size."""

from __future__ import annotations

import base64
import io
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest
import tifffile
from PIL import Image
from server_process import Server, serve

from biodl import Experiment
from biodl.bundle import load
from biodl.cli.main import main
from biodl.data.image.io import encode_png_base64
from conftest import shared_path


@pytest.fixture(scope="module")
def isbi() -> Path:
    return shared_path("images", "isbi2012_em", "train")


@pytest.fixture(scope="module")
def unet_run(isbi: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A depth-2 U-Net trained for a few steps on 64×64 crops of four ISBI slices."""
    run = tmp_path_factory.mktemp("isbi_unet") / "run"
    Experiment(
        data={
            "type": "image",
            "path": [str(isbi / "image" / f"{i}.png") for i in range(5)],
            "task": "segmentation",
            "split": "ordered",
            "split_sizes": [0.8, 0.2, 0.0],
            # predictions of 512×512 slices go through overlapping 256×256 windows
            "image": {"mask_dir": str(isbi / "label"), "tile_size": 64, "crops_per_image": 4, "predict_tile_size": 256},
        },
        model={"name": "unet", "depth": 2, "base_channels": 8},
        train={"max_epochs": 2, "lr": 3e-3, "progress_bar": False, "seed": 0},
        evaluate={"baselines": [], "report": False, "plots": False},
    ).fit(run)
    return run


@pytest.fixture(scope="module")
def server(unet_run: Path) -> Iterator[Server]:
    with serve(unet_run) as srv:
        yield srv


def _png(text: str) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(text))))


def _expected_mask(run: Path, image: np.ndarray) -> np.ndarray:
    """The mask of the in-process PyTorch model (probabilities thresholded at 0.5, values 0/255)."""
    bundle = load(run)
    X = bundle.modality.transform(bundle.modality.parse_inputs([encode_png_base64(image)]))
    probs = bundle.predict_arrays(X)
    return np.where(probs[0, 0] > 0.5, 255, 0) if probs.shape[1] == 1 else probs[0].argmax(0)


def test_server_returns_masks_of_the_image_size(server: Server, unet_run: Path, isbi: Path) -> None:
    card = httpx.get(f"{server.url}/model").json()
    assert card["kind"] == "segmentation" and card["labels"] == ["0", "255"]
    assert card["engine"]["name"] == "torch" and "sliding windows" in card["engine"]["reason"]
    slice16 = np.asarray(Image.open(isbi / "image" / "16.png"))
    odd = np.ascontiguousarray(np.tile(slice16, (2, 2))[:600, 100:537])  # 600 × 437: several windows, not square
    res = httpx.post(f"{server.url}/predict", json={"inputs": [encode_png_base64(odd)], "probability_maps": True}, timeout=120)
    assert res.status_code == 200, res.text
    (pred,) = res.json()["predictions"]
    mask = _png(pred["mask_png_base64"])
    assert mask.shape == (600, 437) == (pred["height"], pred["width"])
    assert set(np.unique(mask).tolist()) <= {0, 255}
    assert set(pred["class_fractions"]) == {"0", "255"} and sum(pred["class_fractions"].values()) == pytest.approx(1.0)
    prob = _png(pred["probability_maps_png_base64"]["255"])
    assert prob.shape == (600, 437) and prob.dtype == np.uint8
    assert np.mean((prob >= 128) == (mask == 255)) > 0.99  # the mask thresholds the probability map
    assert np.mean(mask == _expected_mask(unet_run, odd)) > 0.999
    # a batch of two 512×512 slices, no probability maps by default
    res = httpx.post(
        f"{server.url}/predict",
        json={"inputs": [encode_png_base64(slice16), encode_png_base64(np.asarray(Image.open(isbi / "image" / "17.png")))]},
        timeout=120,
    )
    assert res.status_code == 200, res.text
    preds = res.json()["predictions"]
    assert len(preds) == 2 and all(p["probability_maps_png_base64"] is None for p in preds)
    assert all(_png(p["mask_png_base64"]).shape == (512, 512) for p in preds)
    # explanations of segmentation models are a clear 501, not a crash
    res = httpx.post(f"{server.url}/explain", json={"input": encode_png_base64(slice16)}, timeout=60)
    assert res.status_code == 501 and "biodl explain" in res.json()["detail"]


def test_predict_writes_png_masks_and_probability_maps(unet_run: Path, isbi: Path, tmp_path: Path) -> None:
    out = tmp_path / "pred.csv"
    files = [str(isbi / "image" / "16.png"), str(isbi / "image" / "17.png")]
    rc = main(["predict", "--model-path", str(unet_run), "--data-path", *files, "--output", str(out), "--probability-maps"])
    assert rc == 0
    mask = np.asarray(Image.open(tmp_path / "pred_masks" / "16.png"))
    assert mask.shape == (512, 512) and set(np.unique(mask).tolist()) <= {0, 255}
    prob = tifffile.imread(tmp_path / "pred_probabilities" / "16.tif")
    assert prob.shape == (512, 512) and prob.dtype == np.float32 and 0 <= prob.min() <= prob.max() <= 1
    assert np.array_equal(mask == 255, prob > 0.5)  # masks threshold probabilities, not logits
    assert np.mean(mask == _expected_mask(unet_run, np.asarray(Image.open(files[0])))) > 0.999
    # ONNX graphs are traced at one image size: segmentation models refuse the ONNX engine with a reason
    assert main(["predict", "--model-path", str(unet_run), "--data-path", *files, "--output", str(out), "--engine", "onnx"]) == 2
