"""The classical per-voxel baseline of 3-D segmentation: the same filter features as for 2-D images,
computed in 3-D, a logistic regression and a random forest chosen on validation Dice (a plain
`biodl train --task segmentation` on volumes ran the 2-D features and stopped with a traceback)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from biodl import Experiment
from biodl.data.image.features import N_FEATURES, pixel_features
from conftest import isbi_stacks


def test_voxel_features_filter_in_3d() -> None:
    vol = np.zeros((1, 1, 9, 9, 9), np.float32)
    vol[0, 0, 4, 4, 4] = 1.0  # a point: its smoothing spreads along depth too, symmetrically
    f = pixel_features(vol)
    assert f.shape == (1, N_FEATURES, 9, 9, 9)
    g1 = f[0, 1]
    assert g1[3, 4, 4] > 0 and np.isclose(g1[3, 4, 4], g1[4, 3, 4]) and np.isclose(g1[5, 4, 4], g1[4, 4, 5])
    planes = pixel_features(vol[:, :, 4])  # one plane alone: 2-D filters
    assert planes.shape == (1, N_FEATURES, 9, 9) and not np.isclose(planes[0, 1, 4, 4], g1[4, 4, 4])


def test_unet3d_run_reports_its_voxel_baseline(tmp_path: Path) -> None:
    a, b = isbi_stacks(tmp_path, 64)
    r = Experiment(
        data={"type": "volume", "path": [str(a), str(b)], "split": "ordered",
              "split_sizes": [0.5, 0.5, 0.0], "image": {"mask_dir": str(tmp_path / "mask")},
              "volume": {"tile_size": [4, 32, 32], "crops_per_volume": 2, "predict_tile_size": [6, 64, 64]}},
        model={"name": "unet3d", "depth": 2, "base_channels": 4},
        train={"progress_bar": False, "threads": 1, "seed": 0, "max_epochs": 1},
        evaluate={"report": False, "plots": False},  # the default baselines
    ).fit(tmp_path / "run")  # fmt: skip
    base = r.metrics["baseline"]
    assert set(base["candidates"]) == {"linear", "random_forest"}
    # membranes are darker than cells: filter responses separate them well above chance
    assert base["val"]["dice"] > 0.7 and base["val"]["pixels"] == 6 * 64 * 64
    assert r.metrics["baseline_comparison"]["metric"] == "dice"
