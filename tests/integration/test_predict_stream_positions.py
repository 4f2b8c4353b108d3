"""Streamed ``biodl predict`` of a per-position (protein secondary structure) model: one row per chain, in chunks.

A tiny dilated CNN trained for one epoch on NetSurfP-2.0 chains; the streamed table (label string
and per-position probabilities) equals the one read whole, in input order, with chains of different
lengths in every chunk.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from biodl.cli.main import main
from conftest import PROTEIN_SS, TINY_POSITIONS, run_biodl, shared_path


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """100 training chains (TSV) and 45 other chains to predict (CSV, sequences only)."""
    d = pd.read_csv(shared_path(*PROTEIN_SS), sep="\t", dtype={"resolved": str})
    d = d[d.seq.str.len() <= 400]
    root = tmp_path_factory.mktemp("ss")
    paths = {"train": root / "train.tsv", "test": root / "test.csv"}
    d.iloc[:100].to_csv(paths["train"], sep="\t", index=False)
    d.iloc[100:145][["id", "seq"]].to_csv(paths["test"], index=False)
    return paths


@pytest.fixture(scope="module")
def run_dir(files: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("run") / "RUN"
    code = main([
        "train", "--data-type", "sequence", "--alphabet", "protein", "--data-path", str(files["train"]),
        "--sequence-column", "seq", "--target-columns", "sst3", "--per-position", "--mask-column", "resolved",
        "--task", "classification", "--output-dir", str(out), *TINY_POSITIONS,
    ])  # fmt: skip
    assert code == 0
    return out


def test_per_position_predictions_stream_one_row_per_chain(run_dir: Path, files: dict[str, Path], tmp_path: Path) -> None:
    args = ["predict", "--model-path", str(run_dir), "--data-path", str(files["test"]), "--engine", "torch"]
    args += ["--sequence-column", "seq", "--id-column", "id"]
    assert run_biodl(*args, "--output", str(tmp_path / "whole.parquet")).returncode == 0
    res = run_biodl(*args, "--output", str(tmp_path / "streamed.parquet"), "--chunk-rows", "10")
    assert res.returncode == 0, res.stderr
    assert "streamed in chunks of 10 rows" in res.stdout
    whole, streamed = pd.read_parquet(tmp_path / "whole.parquet"), pd.read_parquet(tmp_path / "streamed.parquet")
    test = pd.read_csv(files["test"])
    assert list(streamed.columns) == list(whole.columns) == ["id", "length", "predicted", "prob_C", "prob_E", "prob_H"]
    assert streamed["id"].astype(str).tolist() == test["id"].astype(str).tolist() == whole["id"].astype(str).tolist()
    assert (streamed["length"].to_numpy() == test["seq"].str.len().to_numpy()).all()
    assert streamed["predicted"].tolist() == whole["predicted"].tolist()
    for c in ("prob_C", "prob_E", "prob_H"):
        for a, b, n in zip(streamed[c], whole[c], streamed["length"], strict=True):
            assert len(a) == len(b) == n and np.abs(np.asarray(a) - np.asarray(b)).max() <= 2e-4  # values rounded to 4 decimals
    assert not list(tmp_path.glob("*.partial"))
