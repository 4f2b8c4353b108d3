"""Shared fixtures: real data paths and one small trained run reused by many tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

REPO = Path(__file__).resolve().parents[1]
RESOURCES = REPO / "src" / "biodl" / "resources"
SHARED = REPO.parent / "shared" / "datasets"
PBMC = RESOURCES / "pbmc68k_reduced.h5ad"

#: Settings that keep test runs small and quiet.
FAST = ["train.progress_bar=false", "evaluate.baselines=[linear]"]


def shared_path(*parts: str) -> Path:
    """A file under ../shared/datasets, or skip the test with the reason."""
    p = SHARED.joinpath(*parts)
    if not p.exists():
        pytest.skip(f"shared data set not available: {p} (tests that need ../shared/datasets skip without it)")
    return p


@pytest.fixture(scope="session")
def pbmc_frame() -> pd.DataFrame:
    """The shipped PBMC data as one flat table: 765 gene columns + obs columns."""
    import warnings

    import anndata

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ad = anndata.read_h5ad(PBMC)
    frame = pd.DataFrame(np.asarray(ad.X, dtype=np.float32), columns=[f"g_{g}" for g in ad.var_names])
    for col in ("bulk_labels", "n_counts", "percent_mito", "n_genes"):
        frame[col] = ad.obs[col].to_numpy()
    frame.insert(0, "cell", np.asarray(ad.obs_names))
    return frame


@pytest.fixture(scope="session")
def small_csv(tmp_path_factory: pytest.TempPathFactory, pbmc_frame: pd.DataFrame) -> Path:
    """A real CSV: 60 genes, a cell-type label, two binary tasks with missing labels, regression targets."""
    rng = np.random.default_rng(0)
    genes = [c for c in pbmc_frame.columns if c.startswith("g_")][:60]
    df = pbmc_frame[["cell", *genes, "bulk_labels", "n_counts"]].copy()
    df["CST3"] = pbmc_frame["g_CST3"]  # a monocyte marker gene, predicted from the 60 others
    df["is_mono"] = (df["bulk_labels"] == "CD14+ Monocyte").astype(float)
    df["is_b"] = (df["bulk_labels"] == "CD19+ B").astype(float)
    df.loc[rng.random(len(df)) < 0.2, "is_b"] = np.nan
    df["donor"] = rng.integers(0, 8, len(df))
    path = tmp_path_factory.mktemp("data") / "pbmc_small.csv"
    df.to_csv(path, index=False)
    return path


@pytest.fixture(scope="session")
def pbmc_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One trained cell-type classifier on the full PBMC data (a few epochs)."""
    from biodl import Experiment

    out = tmp_path_factory.mktemp("runs") / "pbmc"
    exp = Experiment(
        data={"path": [str(PBMC)], "task": "classification", "target_columns": ["bulk_labels"]},
        model={"name": "mlp", "hidden_sizes": [64]},
        train={"max_epochs": 12, "progress_bar": False, "seed": 0},
    )
    exp.fit(out)
    return out
