"""Time-lapse clips with one label per frame choose the per-frame ``timelapse`` model by themselves, and
how the pages of multi-page TIFF stacks were read is said on the console: real AdrenalMNIST3D volumes
(depth read as time for the clips), tiny networks, few epochs."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import tifffile
from sklearn.metrics import roc_auc_score

from biodl.cli.main import main
from biodl.data.image.io import read_raw
from biodl.errors import DataError
from conftest import shared_path

QUIET = ["--threads", "1", "--set", "train.progress_bar=false", "--set", "evaluate.baselines=[]",
         "--set", "evaluate.report=false", "--set", "evaluate.plots=false"]  # fmt: skip


def _adrenal(n: int, part: str = "train") -> tuple[np.ndarray, np.ndarray]:
    """``n`` real AdrenalMNIST3D volumes (uint8 0/255, 28³) and their labels."""
    npz = shared_path("volumes", "adrenalmnist3d", "adrenalmnist3d_28_train_val.npz")
    with np.load(npz) as z:
        return z[f"{part}_images"][:n], z[f"{part}_labels"][:n, 0]


def _frame_labels(clips: np.ndarray) -> np.ndarray:
    """Per-frame labels ``(N, T)``: whether the frame's gland-mask area exceeds the clip's median frame area."""
    area = (clips > 0).reshape(len(clips), clips.shape[1], -1).sum(axis=-1)
    return (area > np.median(area, axis=1, keepdims=True)).astype(np.uint8)


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """160 training clips (depth as time, 28 frames) with per-frame labels; 40 held-out clips without labels."""
    d = tmp_path_factory.mktemp("clips")
    train, _ = _adrenal(160)
    held, _ = _adrenal(40, "val")
    np.savez(d / "clips.npz", images=train, labels=_frame_labels(train))
    np.savez(d / "new.npz", images=held)
    np.save(d / "new_labels.npy", _frame_labels(held))
    return d


def test_per_frame_labels_train_a_per_frame_model(clips: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run = tmp_path / "run"
    rc = main(["train", "--data-type", "volume", "--data-path", str(clips / "clips.npz"), "--time-axis",
               "--task", "classification", "--output-dir", str(run), "--max-epochs", "4", "--lr", "3e-3",
               "--set", "model.channels=[8,16]", *QUIET])  # fmt: skip
    out = capsys.readouterr().out
    assert rc == 0
    notes = [line for line in out.splitlines() if "one label per frame" in line]
    assert notes == ["note: clips.npz has one label per frame (28 frames): timelapse predicts every frame "
                     "(model.output: frame, chosen from the labels)"]  # fmt: skip
    bundle = json.loads((run / "model" / "bundle.json").read_text())
    assert bundle["model"]["name"] == "timelapse" and bundle["model"]["params"]["output"] == "frame"
    assert bundle["target_names"] == [f"frame_{t}" for t in range(28)]
    assert "output: auto" in (run / "config.yaml").read_text()  # re-running the config resolves it again
    # predict: one probability column per frame, each frame scored on its own
    pred = tmp_path / "pred.csv"
    assert main(["predict", "--model-path", str(run), "--data-path", str(clips / "new.npz"), "--output", str(pred)]) == 0
    table = pd.read_csv(pred)
    assert list(table.columns) == ["id"] + [f"frame_{t}" for t in range(28)] and len(table) == 40
    probs = table[[f"frame_{t}" for t in range(28)]].to_numpy()
    truth = np.load(clips / "new_labels.npy")
    assert roc_auc_score(truth.ravel(), probs.ravel()) > 0.9  # large-area frames score above the others
    within = [roc_auc_score(t, p) for t, p in zip(truth, probs, strict=True) if 0 < t.sum() < len(t)]
    assert np.mean(within) > 0.9  # and within each clip, frame by frame


def test_explicit_per_clip_model_with_per_frame_labels_is_an_error(
    clips: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rc = main(["train", "--data-type", "volume", "--data-path", str(clips / "clips.npz"), "--time-axis",
               "--task", "classification", "--output-dir", str(tmp_path / "run"), "--max-epochs", "1",
               "--set", "model.output=clip", *QUIET])  # fmt: skip
    captured = capsys.readouterr()
    assert rc == 2
    err = [line for line in (captured.out + captured.err).splitlines() if line.strip()]
    assert err == [
        "error: model.output=clip predicts one label per clip, but clips.npz has one label per frame (labels (N, 28)); "
        "leave model.output unset (per-frame labels train a per-frame model, output: frame) or give one label per clip"
    ]
    assert not (tmp_path / "run" / "model").exists()


def test_per_clip_labels_keep_the_per_clip_model(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    vols, y = _adrenal(48)
    np.savez(tmp_path / "clips.npz", images=vols[:, 8:20], labels=y)
    run = tmp_path / "run"
    rc = main(["train", "--data-type", "volume", "--data-path", str(tmp_path / "clips.npz"), "--time-axis",
               "--task", "classification", "--output-dir", str(run), "--max-epochs", "1",
               "--set", "model.channels=[4]", *QUIET])  # fmt: skip
    assert rc == 0 and "one label per frame" not in capsys.readouterr().out
    assert json.loads((run / "model" / "bundle.json").read_text())["model"]["params"]["output"] == "clip"
    pred = tmp_path / "pred.csv"
    assert main(["predict", "--model-path", str(run), "--data-path", str(tmp_path / "clips.npz"), "--output", str(pred)]) == 0
    assert list(pd.read_csv(pred).columns) == ["id", "prob_1", "predicted"]  # one prediction per clip


def test_how_tiff_pages_were_read_is_printed_once(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    vols, y = _adrenal(24)
    for i, (v, label) in enumerate(zip(vols[:, 10:18], y, strict=True)):  # 8 real planes a stack
        (tmp_path / "stacks" / str(label)).mkdir(parents=True, exist_ok=True)
        path = tmp_path / "stacks" / str(label) / f"v{i}.tif"
        if i < 20:
            tifffile.imwrite(path, v, metadata=None)  # 8 pages, no metadata
        else:
            tifffile.imwrite(path, v, imagej=True, metadata={"axes": "ZYX"})
    stacks, run = str(tmp_path / "stacks"), tmp_path / "run"
    expected = ("note: 24 stacks read: 20 with 8 pages read as planes (no metadata); "
                "4 with 8 z-slices (ImageJ metadata, axes ZYX)")  # fmt: skip
    rc = main(["train", "--data-type", "volume", "--data-path", stacks, "--task", "classification",
               "--output-dir", str(run), "--max-epochs", "1", "--set", "model.channels=[4]", *QUIET])  # fmt: skip
    assert rc == 0
    assert [line for line in capsys.readouterr().out.splitlines() if "stacks read" in line] == [expected]
    assert main(["evaluate", "--model-path", str(run), "--data-path", stacks]) == 0
    assert [line for line in capsys.readouterr().out.splitlines() if "stacks read" in line] == [expected]
    one = str(tmp_path / "stacks" / str(y[0]) / "v0.tif")
    assert main(["predict", "--model-path", str(run), "--data-path", one, "--output", str(tmp_path / "p.csv")]) == 0
    lines = [line for line in capsys.readouterr().out.splitlines() if "stack read" in line]
    assert lines == ["note: 1 stack read: 8 pages read as planes (no metadata)"]


def test_two_d_read_of_a_tzyx_stack_names_its_planes(tmp_path: Path) -> None:
    vols, _ = _adrenal(3)
    tifffile.imwrite(tmp_path / "movie.tif", vols[:, 10:14], imagej=True, metadata={"axes": "TZYX"})  # 3 × 4 planes
    with pytest.raises(DataError) as exc:
        read_raw(tmp_path / "movie.tif")
    assert str(exc.value) == (
        f"{tmp_path / 'movie.tif'}: holds 12 planes over time and z (ImageJ metadata, axes TZYX), not one 2-D image; "
        "read stacks with --data-type volume (one time point per file, or one z per file with --time-axis)"
    )
