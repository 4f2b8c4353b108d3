"""AnnData end to end: train streamed (backed) or sparse, group split by donor, predict/embed to .h5ad."""

from __future__ import annotations

import json
import sys
import warnings
from pathlib import Path

import anndata
import lightning as L
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from biodl import Experiment
from biodl.errors import DataError
from conftest import run_biodl, shared_path

BIODL = str(Path(sys.executable).parent / "biodl")
QUICK = {
    "model": {"hidden_sizes": [32]},
    "train": {"max_epochs": 12, "batch_size": 32, "lr": 0.01, "progress_bar": False},
    "evaluate": {"baselines": ["linear"], "report": False, "plots": False},
}


def marker_cells(path: Path, n: int = 400, genes: int = 300, seed: int = 0) -> None:
    """A sparse AnnData (~5 % non-zero) whose cell type shows in 5 marker genes per type."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, n)
    X = sp.random(n, genes, density=0.05, format="lil", dtype=np.float32, random_state=seed)
    for k in range(3):
        X[np.flatnonzero(y == k)[:, None], np.arange(5 * k, 5 * k + 5)] = 6.0
    obs = pd.DataFrame(
        {"cell_type": pd.Categorical(np.array(["B", "T", "NK"])[y]), "donor": [f"donor{i % 8}" for i in range(n)]},
        index=[f"cell{i}" for i in range(n)],
    )
    anndata.AnnData(X=X.tocsr(), obs=obs, var=pd.DataFrame(index=[f"G{i}" for i in range(genes)])).write_h5ad(path)


def _read(path: Path) -> anndata.AnnData:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return anndata.read_h5ad(path)


def test_backed_training_with_donor_split_then_h5ad_outputs(tmp_path: Path) -> None:
    cells = tmp_path / "cells.h5ad"
    marker_cells(cells)
    run = tmp_path / "run"
    res = run_biodl(
        "train", "--data-path", str(cells), "--task", "classification", "--target-columns", "cell_type",
         "--set", "data.h5ad_backed=true", "--output-dir", str(run), "--split", "group", "--group-column", "donor",
         "--max-epochs", "12", "--lr", "0.01", "--set", "model.hidden_sizes=[32]", "--set", "train.progress_bar=false",
         "--set", "evaluate.baselines=[linear]", "--threads", "1",
    )  # fmt: skip
    assert res.returncode == 0, res.stderr[-2000:]
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["test"]["accuracy"] > 0.8  # marker genes make the types separable; chance is 1/3
    splits = json.loads((run / "splits.json").read_text())
    donors = {part: {f"donor{int(i[4:]) % 8}" for i in splits[f"{part}_ids"]} for part in ("train", "val", "test")}
    assert not donors["train"] & donors["test"] and not donors["train"] & donors["val"]  # no donor in two splits

    pred, emb = tmp_path / "pred.h5ad", tmp_path / "emb.h5ad"
    for cmd, out in (("predict", pred), ("embed", emb)):
        r = run_biodl(
        cmd, "--model-path", str(run), "--data-path", str(cells), "--output", str(out),
    )  # fmt: skip
        assert r.returncode == 0, r.stderr[-2000:]
    p = _read(pred)
    assert p.X is None and list(p.obs_names) == [f"cell{i}" for i in range(400)]  # backed input: obs_names/var only
    assert set(p.obs["biodl_pred"].unique()) <= {"B", "NK", "T"}
    proba = p.obsm["biodl_proba"]
    assert proba.shape == (400, 3) and np.allclose(proba.sum(1), 1, atol=1e-4)
    classes = list(p.uns["biodl"]["classes"])
    assert list(p.obs["biodl_pred"]) == [classes[i] for i in proba.argmax(1)]
    acc = float((p.obs["biodl_pred"].astype(str) == p.obs["cell_type"].astype(str)).mean())
    assert acc > 0.8
    e = _read(emb)
    assert e.obsm["X_biodl"].shape[0] == 400 and np.isfinite(e.obsm["X_biodl"]).all()


def test_sparse_in_memory_matches_backed_inputs(tmp_path: Path) -> None:
    """The same cells read sparse in memory or backed give the same model inputs, so the same split and baseline."""
    cells = tmp_path / "cells.h5ad"
    marker_cells(cells, n=240, genes=120)
    data = {"path": [str(cells)], "task": "classification", "target_columns": ["cell_type"]}
    mem = Experiment(data=data, **QUICK).fit(tmp_path / "mem")
    backed = Experiment(data={**data, "h5ad_backed": True}, **QUICK).fit(tmp_path / "backed")
    assert mem.metrics["baseline"]["test"] == backed.metrics["baseline"]["test"]
    assert (
        json.loads((tmp_path / "mem" / "splits.json").read_text())["test"]
        == json.loads((tmp_path / "backed" / "splits.json").read_text())["test"]
    )


class _Appender(L.Callback):
    """Appends to the training file after the first epoch, as a second writer would."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.current_epoch == 0:
            with open(self.path, "ab") as fh:
                fh.write(b"\0" * 64)


def test_backed_file_modified_during_training_stops_it(tmp_path: Path) -> None:
    cells = tmp_path / "cells.h5ad"
    marker_cells(cells, n=200, genes=60)
    exp = Experiment(
        data={"path": [str(cells)], "task": "classification", "target_columns": ["cell_type"], "h5ad_backed": True}, **QUICK
    )
    with pytest.raises(DataError, match="modified while being read"):
        exp.fit(tmp_path / "run", callbacks=[_Appender(cells)])


def test_pbmc68k_reduced_backed_with_a_gene_list_and_obsm(tmp_path: Path) -> None:
    """The real scanpy example (legacy on-disk format, dense X): backed rows of 100 listed genes; then X_pca inputs."""
    path = shared_path("expression", "pbmc68k_reduced", "10x_pbmc68k_reduced.h5ad")
    ad = _read(path)
    genes = tmp_path / "genes.txt"
    genes.write_text("\n".join(map(str, ad.var_names[:100])) + "\n")
    data = {"path": [str(path)], "task": "classification", "target_columns": ["bulk_labels"], "h5ad_genes": f"@{genes}"}
    res = Experiment(data={**data, "h5ad_backed": True}, **QUICK).fit(tmp_path / "genes")
    assert res.bundle is not None and res.bundle.modality.columns()["feature_columns"] == list(map(str, ad.var_names[:100]))
    assert res.metrics["test"]["accuracy"] > 0.4  # 10 cell types; chance ≈ 0.1-0.2
    pca = Experiment(data={**data, "h5ad_genes": None, "h5ad_obsm": "X_pca"}, **QUICK).fit(tmp_path / "pca")
    assert pca.metrics["test"]["accuracy"] > 0.4
    r = run_biodl(
        "predict", "--model-path", str(tmp_path / "pca"), "--data-path", str(path), "--output", str(tmp_path / "p.h5ad"),
    )  # fmt: skip
    assert r.returncode == 0, r.stderr[-2000:]
    out = _read(tmp_path / "p.h5ad")
    assert "X_umap" in out.obsm and out.obsm["biodl_proba"].shape == (700, 10)  # an in-memory input is copied whole


def test_cli_missing_target_is_one_line(tmp_path: Path) -> None:
    cells = tmp_path / "cells.h5ad"
    marker_cells(cells, n=60, genes=30)
    r = run_biodl(
        "train", "--data-path", str(cells), "--task", "classification", "--target-columns", "celltype",
         "--set", "data.h5ad_backed=true", "--output-dir", str(tmp_path / "run"),
    )  # fmt: skip
    assert r.returncode == 2
    assert r.stderr.strip().count("\n") == 0 and "obs columns are ['cell_type', 'donor']" in r.stderr
