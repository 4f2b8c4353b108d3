"""Training from an HDF5 or Zarr store (streamed) matches in-memory training."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from biodl import Experiment

BIODL = str(Path(sys.executable).parent / "biodl")


@pytest.mark.parametrize("suffix", [".h5", ".zarr"])
def test_convert_then_stream_train_matches_in_memory(small_csv: Path, tmp_path: Path, suffix: str) -> None:
    if suffix == ".zarr":
        pytest.importorskip("zarr", reason="Zarr stores need the optional zarr package (pip install 'biodl[zarr]')")
    genes = [c for c in pd.read_csv(small_csv, nrows=1).columns if c.startswith("g_")]
    store = tmp_path / f"small{suffix}"
    res = subprocess.run(
        [BIODL, "data", "convert", "--data-path", str(small_csv), "--task", "classification",
         "--target-columns", "is_mono", "--feature-columns", *genes, "--output", str(store), "--chunk-rows", "32"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    common = {
        "model": {"hidden_sizes": [32]},
        "train": {"max_epochs": 25, "batch_size": 32, "progress_bar": False, "early_stopping": False},
        "evaluate": {"baselines": ["linear"], "report": False},
    }
    mem = Experiment(
        data={"path": [str(small_csv)], "task": "classification", "target_columns": ["is_mono"], "feature_columns": genes},
        **common,
    ).fit(tmp_path / "mem")
    streamed = Experiment(data={"path": [str(store)]}, **common).fit(tmp_path / "stream")
    # the same split, the same baseline, and the network within noise of the in-memory run
    assert (
        json.loads((tmp_path / "mem" / "splits.json").read_text())["test"]
        == json.loads((tmp_path / "stream" / "splits.json").read_text())["test"]
    )
    assert streamed.metrics["baseline"]["test"]["auroc"] == pytest.approx(mem.metrics["baseline"]["test"]["auroc"])
    assert streamed.metrics["test"]["auroc"] == pytest.approx(mem.metrics["test"]["auroc"], abs=0.03)
    assert streamed.metrics["test"]["auroc"] > 0.85
    # the bundle of a streamed run predicts raw files like any other
    assert streamed.bundle is not None and streamed.bundle.data_config.feature_columns == genes
