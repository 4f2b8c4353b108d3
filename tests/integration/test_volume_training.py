"""Volumes end to end on real data: AdrenalMNIST3D classification (train → evaluate → predict →
export with ONNX parity → serve → explain), a 3-D U-Net on an ISBI 2012 EM stack, and per-clip /
per-frame time-lapse classification of synthetic clips built from real BreastMNIST images."""

from __future__ import annotations

import base64
import io
import json
from pathlib import Path

import numpy as np
import pytest
import tifffile

from biodl import Experiment
from biodl.bundle import load
from biodl.cli.main import main
from conftest import isbi_stacks, shared_path

FAST = {"progress_bar": False, "threads": 1, "seed": 0}


@pytest.fixture(scope="module")
def adrenal_small(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A real subset: 240 training and 60 validation volumes (train.npz), and 40 other validation volumes as test_* (test.npz)."""
    npz = shared_path("volumes", "adrenalmnist3d", "adrenalmnist3d_28_train_val.npz")
    d = tmp_path_factory.mktemp("adrenal")
    with np.load(npz) as z:
        np.savez(d / "train.npz", train_images=z["train_images"][:240], train_labels=z["train_labels"][:240],
                 val_images=z["val_images"][:58], val_labels=z["val_labels"][:58])  # fmt: skip
        np.savez(d / "test.npz", test_images=z["val_images"][58:], test_labels=z["val_labels"][58:])
    return d / "train.npz", d / "test.npz"


@pytest.fixture(scope="module")
def adrenal_run(adrenal_small: tuple[Path, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    run = tmp_path_factory.mktemp("adrenal_run") / "run"
    rc = main(["train", "--data-type", "volume", "--data-path", str(adrenal_small[0]), "--task", "classification",
               "--output-dir", str(run), "--max-epochs", "6", "--lr", "0.003", "--threads", "1",
               "--set", "train.progress_bar=false", "--set", "evaluate.baselines=[linear]",
               "--set", "evaluate.report=false"])  # fmt: skip
    assert rc == 0
    return run


def test_cli_round_trip(adrenal_run: Path, adrenal_small: tuple[Path, Path], tmp_path: Path) -> None:
    metrics = json.loads((adrenal_run / "metrics.json").read_text())
    assert metrics["val"]["n"] == 58 and metrics["test"] == {}  # MedMNIST's own split: val is validation
    assert metrics["val"]["auroc"] > 0.65  # learns within 6 epochs on 240 real volumes
    assert "auroc" in metrics["baseline"]["val"]
    bundle = load(adrenal_run)
    assert bundle.meta["model"]["name"] == "cnn3d" and bundle.meta["model"]["in_shape"] == [1, 28, 28, 28]
    # evaluate: the test_* arrays of a test file → metrics.auroc
    out = tmp_path / "eval.json"
    assert main(["evaluate", "--model-path", str(adrenal_run), "--data-path", str(adrenal_small[1]), "--output", str(out)]) == 0
    ev = json.loads(out.read_text())["metrics"]
    assert ev["n"] == 40 and 0.0 <= ev["auroc"] <= 1.0
    # predict, then the ONNX engine agrees
    pred = tmp_path / "pred.csv"
    assert (
        main(
            [
                "predict",
                "--model-path",
                str(adrenal_run),
                "--data-path",
                str(adrenal_small[1]),
                "--output",
                str(pred),
                "--engine",
                "torch",
            ]
        )
        == 0
    )
    assert (
        main(
            [
                "predict",
                "--model-path",
                str(adrenal_run),
                "--data-path",
                str(adrenal_small[1]),
                "--output",
                str(tmp_path / "p2.csv"),
                "--engine",
                "onnx",
            ]
        )
        == 0
    )
    a, b = (np.loadtxt(p, delimiter=",", skiprows=1, usecols=1) for p in (pred, tmp_path / "p2.csv"))
    assert len(a) == 40 and np.allclose(a, b, atol=1e-4)
    assert main(["export", "--model-path", str(adrenal_run), "--format", "onnx", "--output", str(tmp_path / "m.onnx"),
                 "--data-path", str(adrenal_small[1])]) == 0  # fmt: skip
    manifest = json.loads((tmp_path / "m.onnx.json").read_text())
    assert manifest["parity"]["passed"] is True and manifest["parity"]["real_inputs"] is True
    # explain: 3-D Grad-CAM maps of the volumes' shape
    assert main(["explain", "--model-path", str(adrenal_run), "--data-path", str(adrenal_small[1]), "--output-dir",
                 str(tmp_path / "ex"), "--plots", "2"]) == 0  # fmt: skip
    assert tifffile.imread(tmp_path / "ex" / "gradcam_maps.tif").shape == (2, 28, 28, 28)


def test_serve_answers_like_the_bundle(adrenal_run: Path, adrenal_small: tuple[Path, Path]) -> None:
    from fastapi.testclient import TestClient

    from biodl.engine import select_engine
    from biodl.serve.app import create_app

    bundle = load(adrenal_run)
    with np.load(adrenal_small[1]) as z:
        vols = z["test_images"][:2]
    buf = io.BytesIO()
    np.save(buf, vols[1])
    inputs = [vols[0].tolist(), {"volume": base64.b64encode(buf.getvalue()).decode()}]
    expected = bundle.predict_arrays(bundle.modality.transform(bundle.modality.parse_inputs(inputs)))
    with TestClient(create_app(bundle, select_engine(bundle, "torch"))) as client:
        res = client.post("/predict", json={"inputs": inputs})
        assert res.status_code == 200, res.text
        probs = [p["probabilities"]["1"] for p in res.json()["predictions"]]
        assert np.allclose(probs, expected[:, 0], atol=1e-5)
        bad = client.post("/predict", json={"inputs": [np.zeros((20, 28, 28)).tolist()]})
        assert bad.status_code == 422 and "input 0: volume is (20, 28, 28) but the model takes (28, 28, 28)" in bad.text


def test_unet3d_on_an_isbi_stack(tmp_path: Path) -> None:
    isbi_stacks(tmp_path, 96)
    run = tmp_path / "run"
    r = Experiment(
        data={"type": "volume", "path": [str(tmp_path / "img" / "a"), str(tmp_path / "img" / "b")], "split": "ordered",
              "split_sizes": [0.5, 0.5, 0.0], "image": {"mask_dir": str(tmp_path / "mask")},
              "volume": {"tile_size": [4, 32, 32], "crops_per_volume": 4, "predict_tile_size": [6, 64, 64],
                         "spacing": [50.0, 4.0, 4.0]}},
        model={"name": "unet3d", "depth": 2, "base_channels": 4},
        train={**FAST, "max_epochs": 3, "lr": 3e-3},
        evaluate={"baselines": [], "report": False, "plots": False},
    ).fit(run)  # fmt: skip
    assert r.bundle is not None and r.bundle.kind == "segmentation"
    # the voxel spacing reaches the network: 50 nm sections of 4 nm pixels → in-plane levels only at depth 2
    assert r.bundle.meta["model"]["params"]["spacing"] == [50.0, 4.0, 4.0]
    assert r.bundle.model.planar == [True, True, True]
    assert r.metrics["val"]["dice"] > 0.5  # membranes vs cells: better than nothing after 3 short epochs
    out = tmp_path / "pred.csv"
    assert main(["predict", "--model-path", str(run), "--data-path", str(tmp_path / "img" / "b"), "--output", str(out)]) == 0
    mask = tifffile.imread(tmp_path / "pred_masks" / "b.tif")
    assert mask.shape == (6, 96, 96) and set(np.unique(mask).tolist()) <= {0, 255}


def _clips(n: int, frames: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Clips of real BreastMNIST images drifting by one pixel per frame; in half of them a bright
    square appears at a random frame and stays (the planted event). Returns clips, clip labels,
    per-frame labels (1 from the event's frame on)."""
    npz = shared_path("images", "breastmnist", "breastmnist_train_val.npz")
    with np.load(npz) as z:
        imgs = z["train_images"][:n].astype(np.float32)
    rng = np.random.default_rng(seed)
    clips = np.stack([np.stack([np.roll(img, t, axis=1) for t in range(frames)]) for img in imgs])
    clip_y = (np.arange(n) % 2).astype(np.uint8)
    frame_y = np.zeros((n, frames), np.uint8)
    for i in np.flatnonzero(clip_y):
        start = int(rng.integers(1, frames - 1))
        r, c = rng.integers(4, 20, size=2)
        clips[i, start:, r : r + 5, c : c + 5] = 255
        frame_y[i, start:] = 1
    return clips.astype(np.uint8), clip_y, frame_y


def test_timelapse_per_clip_and_per_frame(tmp_path: Path) -> None:
    clips, clip_y, frame_y = _clips(96, 6, seed=0)
    np.savez(tmp_path / "clips.npz", images=clips, labels=clip_y)
    np.savez(tmp_path / "frames.npz", images=clips, labels=frame_y)
    run = tmp_path / "clip"
    r = Experiment(
        data={"type": "volume", "path": [str(tmp_path / "clips.npz")], "task": "classification", "volume": {"time_axis": True},
              "split_sizes": [0.7, 0.3, 0.0]},
        model={"name": "timelapse", "channels": [8, 16]},
        train={**FAST, "max_epochs": 6, "batch_size": 16, "lr": 3e-3},
        evaluate={"baselines": [], "report": False, "plots": False},
    ).fit(run)  # fmt: skip
    assert r.metrics["val"]["auroc"] > 0.8
    # per-frame scores of a clip with the event rise at the event's frame
    model = r.bundle.model  # type: ignore[union-attr]
    import torch

    i = int(np.flatnonzero(clip_y)[0])
    x = torch.from_numpy(r.bundle.modality.transform(clips[i : i + 1, None].astype(np.float32) / 255))  # type: ignore[union-attr]
    with torch.no_grad():
        scores = model.frame_scores(x)[0, :, 0].numpy()
    start = int(np.argmax(frame_y[i]))
    assert scores[start:].mean() > scores[:start].mean()
    # per-frame classification: one output per frame
    r2 = Experiment(
        data={"type": "volume", "path": [str(tmp_path / "frames.npz")], "task": "multilabel", "volume": {"time_axis": True},
              "split_sizes": [0.7, 0.3, 0.0]},
        model={"name": "timelapse", "channels": [8, 16], "output": "frame"},
        train={**FAST, "max_epochs": 6, "batch_size": 16, "lr": 3e-3},
        evaluate={"baselines": [], "report": False, "plots": False},
    ).fit(tmp_path / "frame")  # fmt: skip
    assert r2.bundle is not None and r2.bundle.target_names == [f"frame_{t}" for t in range(6)]
    assert r2.metrics["val"]["auroc"] > 0.8  # mean over frames
