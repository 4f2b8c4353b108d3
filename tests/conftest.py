"""Shared fixtures: real data paths and one small trained run reused by many tests."""

from __future__ import annotations

import gzip
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

REPO = Path(__file__).resolve().parents[1]
RESOURCES = REPO / "src" / "biodl" / "resources"
SHARED = REPO.parent / "shared" / "datasets"
PBMC = RESOURCES / "pbmc68k_reduced.h5ad"


def pytest_configure(config: pytest.Config) -> None:
    """Under pytest-xdist (``make test`` runs ``-n 2``) each worker trains on one CPU thread, so
    two workers share the machine's cores instead of oversubscribing them."""
    import os

    if os.environ.get("PYTEST_XDIST_WORKER"):
        import torch

        torch.set_num_threads(1)


def pbmc_cells(n: int = 600, genes: int = 100) -> tuple[np.ndarray, np.ndarray]:
    """The first ``n`` real PBMC cells: ``(n, genes)`` float32 expression and their cell types ``(n,)`` as text."""
    import warnings

    import anndata

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ad = anndata.read_h5ad(PBMC)
    return np.asarray(ad.X[:n, :genes], dtype=np.float32), ad.obs["bulk_labels"].astype(str).to_numpy()[:n]


#: Settings that keep test runs small and quiet.
FAST = ["train.progress_bar=false", "evaluate.baselines=[linear]"]


def isbi_stacks(root: Path, crop: int) -> tuple[Path, Path]:
    """ISBI 2012 slices 0–5 and 6–11 as two volumes (folders of ``crop`` × ``crop`` PNG slices) under
    ``root/img/{a,b}``, their membrane masks under ``root/mask/{a,b}``; returns the two image folders."""
    from PIL import Image

    isbi = shared_path("images", "isbi2012_em", "train")
    for part, slices in (("a", range(0, 6)), ("b", range(6, 12))):
        for sub in ("img", "mask"):
            (root / sub / part).mkdir(parents=True)
        for i in slices:
            Image.open(isbi / "image" / f"{i}.png").crop((0, 0, crop, crop)).save(root / "img" / part / f"{i}.png")
            Image.open(isbi / "label" / f"{i}.png").crop((0, 0, crop, crop)).save(root / "mask" / part / f"{i}.png")
    return root / "img" / "a", root / "img" / "b"


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


def run_biodl(*args: str, cwd: Path | None = None, timeout: int | None = None) -> subprocess.CompletedProcess[str]:
    """Run ``biodl ARGS`` in this process and return what the console script would.

    The CLI's ``main`` is called with stdout/stderr captured, the working directory, the
    environment and torch's thread count restored afterwards; an uncaught exception becomes exit
    code 1 with its traceback on stderr, as from the console script. In-process runs save the
    4–6 s interpreter + torch start-up of a subprocess; ``tests/cli/test_cli.py`` keeps one real
    console-script round trip. ``timeout`` is accepted for call compatibility and ignored.
    """
    import contextlib
    import io
    import os
    import traceback

    import torch

    from biodl.cli.main import main

    out, err = io.StringIO(), io.StringIO()
    env, old_cwd, threads = dict(os.environ), os.getcwd(), torch.get_num_threads()
    try:
        if cwd is not None:
            os.chdir(cwd)
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                code = main(list(args))
            except SystemExit as exc:  # argparse usage errors
                code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 2)
            except Exception:
                traceback.print_exc()
                code = 1
    finally:
        os.chdir(old_cwd)
        os.environ.clear()
        os.environ.update(env)
        torch.set_num_threads(threads)
    return subprocess.CompletedProcess(["biodl", *args], code, out.getvalue(), err.getvalue())


#: NetSurfP-2.0 training chains (per-residue secondary structure) in ../shared
PROTEIN_SS = ("protein", "secondary_structure_netsurfp", "train.tsv")
#: a tiny per-position network and one epoch: tests that check the plumbing, not the accuracy
TINY_POSITIONS = ["--max-epochs", "1", "--threads", "1", "--set", "train.progress_bar=false", "--set", "model.channels=16",
                  "--set", "model.blocks=2", "--set", "evaluate.plots=false", "--set", "evaluate.report=false"]  # fmt: skip

REST_ROWS = 300  # several 64-row prediction chunks and a partial last one


def _rest_peaks(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """300 REST ChIP-seq peaks of DeepBind's ENCODE file (a TSV with an id column)."""
    src = shared_path("dna", "deepbind_encode_train", "REST_GM12878_NRSF_HudsonAlpha_AC.seq.gz")
    with gzip.open(src, "rt") as fh:
        frame = pd.read_csv(fh, sep="\t").head(REST_ROWS)
    out = tmp_path_factory.mktemp("data") / "rest.tsv"
    frame.to_csv(out, sep="\t", index=False)
    return out


def _rest_deepbind_run(tmp_path_factory: pytest.TempPathFactory, peaks: Path) -> Path:
    """A DeepBind model trained for one epoch on the peaks and their dinucleotide shuffles."""
    from biodl import Experiment

    out = tmp_path_factory.mktemp("runs") / "rest"
    Experiment(
        data={
            "type": "sequence",
            "path": [str(peaks)],
            "target_columns": ["Bound"],
            "sequence": {"column": "seq", "negatives": "dinucleotide-shuffle"},
        },
        model={"name": "deepbind"},
        train={"max_epochs": 1, "progress_bar": False, "seed": 0, "batch_size": 64},
        evaluate={"baselines": [], "report": False, "plots": False},
    ).fit(out)
    return out


@pytest.fixture(scope="module")
def rest_peaks(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """300 ENCODE REST peaks as a TSV (one copy per test module)."""
    return _rest_peaks(tmp_path_factory)


@pytest.fixture(scope="module")
def rest_deepbind_run(tmp_path_factory: pytest.TempPathFactory, rest_peaks: Path) -> Path:
    """A one-epoch DeepBind run on :func:`rest_peaks` (one per test module)."""
    return _rest_deepbind_run(tmp_path_factory, rest_peaks)
