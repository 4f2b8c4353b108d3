"""AnnData inputs: sparse rows densified per request, backed reads, gene selection, outputs, bad input."""

from __future__ import annotations

import warnings
from pathlib import Path

import anndata
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from biodl.config import DataConfig, NormalizeConfig
from biodl.data.h5ad import SparseRows, read_h5ad_inputs, uses_lazy_reader, write_h5ad_outputs
from biodl.data.normalise import Normaliser
from biodl.data.tabular import Tabular
from biodl.errors import DataError


def sparse_cells(path: Path, n: int = 300, genes: int = 80, seed: int = 0) -> anndata.AnnData:
    """A sparse AnnData (~5 % non-zero counts) with cell types, donors, a highly_variable flag and an obsm embedding."""
    rng = np.random.default_rng(seed)
    X = sp.random(n, genes, density=0.05, format="csr", dtype=np.float32, random_state=seed)
    X.data = rng.poisson(3, X.nnz).astype(np.float32) + 1
    obs = pd.DataFrame(
        {"cell_type": pd.Categorical(rng.choice(["B", "T", "NK"], n)), "donor": [f"d{i % 5}" for i in range(n)]},
        index=[f"cell{i}" for i in range(n)],
    )
    var = pd.DataFrame({"highly_variable": np.arange(genes) % 3 == 0}, index=[f"G{i}" for i in range(genes)])
    ad = anndata.AnnData(X=X, obs=obs, var=var)
    ad.obsm["X_pca"] = rng.normal(size=(n, 6)).astype(np.float32)
    ad.write_h5ad(path)
    return ad


@pytest.fixture()
def cells(tmp_path: Path) -> tuple[Path, anndata.AnnData]:
    path = tmp_path / "cells.h5ad"
    return path, sparse_cells(path)


@pytest.mark.parametrize("backed", [False, True])
def test_rows_equal_the_dense_matrix_for_any_index(cells: tuple[Path, anndata.AnnData], backed: bool) -> None:
    path, ad = cells
    frame, rows, names = read_h5ad_inputs(path, DataConfig(h5ad_backed=backed, h5ad_genes="highly_variable"), None)
    assert isinstance(rows, SparseRows) and rows.backed is backed
    dense = ad.X.toarray()[:, ad.var["highly_variable"].to_numpy()]
    assert names == [g for g, hv in zip(ad.var_names, ad.var["highly_variable"]) if hv]
    assert rows.shape == dense.shape and list(frame["obs_names"][:2]) == ["cell0", "cell1"]
    idx = np.array([250, 3, 3, 77, 0, 299])  # unsorted, repeated
    np.testing.assert_array_equal(rows[idx], dense[idx])
    np.testing.assert_array_equal(rows[10:20], dense[10:20])
    import biodl.data.h5ad as h5ad_module

    h5ad_module.READ_GAP = 0  # every row far from the next: one read per row instead of one span
    try:
        np.testing.assert_array_equal(rows[idx], dense[idx])
    finally:
        h5ad_module.READ_GAP = 1 << 16
    assert sp.issparse(rows.fit_sample(np.arange(50)))  # statistics are computed on the sparse rows


@pytest.mark.parametrize("backed", [False, True])
def test_a_layer_is_read_instead_of_x(tmp_path: Path, backed: bool) -> None:
    ad = sparse_cells(tmp_path / "plain.h5ad", n=50, genes=20)
    ad.layers["counts"] = sp.csr_matrix(ad.X * 3)
    ad.write_h5ad(tmp_path / "layers.h5ad")
    _, rows, _ = read_h5ad_inputs(tmp_path / "layers.h5ad", DataConfig(h5ad_layer="counts", h5ad_backed=backed), None)
    np.testing.assert_array_equal(rows[[4, 2]], ad.X.toarray()[[4, 2]] * 3)
    with pytest.raises(DataError, match=r"no layer 'raw'; layers are \['counts'\]"):
        read_h5ad_inputs(tmp_path / "layers.h5ad", DataConfig(h5ad_layer="raw", h5ad_backed=backed), None)


def test_sparse_normaliser_matches_the_dense_one() -> None:
    X = sp.random(200, 40, density=0.1, format="csr", random_state=3) * 10
    for cfg in (NormalizeConfig(), NormalizeConfig(log1p=True), NormalizeConfig(center=False)):
        a, b = Normaliser.fit(X, cfg), Normaliser.fit(X.toarray(), cfg)
        np.testing.assert_allclose(a.mean, b.mean, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(a.std, b.std, rtol=1e-4, atol=1e-6)


def test_sparse_x_uses_the_lazy_reader_and_a_dense_one_keeps_the_matrix_reader(cells: tuple[Path, anndata.AnnData]) -> None:
    path, _ = cells
    assert uses_lazy_reader(DataConfig(), [str(path)])
    from conftest import PBMC  # dense X: the plain reader (genes as D-GEX targets) unless an option asks

    assert not uses_lazy_reader(DataConfig(), [str(PBMC)])
    assert uses_lazy_reader(DataConfig(h5ad_backed=True), [str(PBMC)])


def test_obsm_embedding_as_inputs(cells: tuple[Path, anndata.AnnData]) -> None:
    path, ad = cells
    _, rows, names = read_h5ad_inputs(path, DataConfig(h5ad_obsm="X_pca"), None)
    assert names[0] == "X_pca_0" and rows.shape == (300, 6)
    np.testing.assert_array_equal(rows[[5, 1]], ad.obsm["X_pca"][[5, 1]])
    with pytest.raises(DataError, match=r"no obsm\['X_umap'\]; obsm keys are \['X_pca'\]"):
        read_h5ad_inputs(path, DataConfig(h5ad_obsm="X_umap"), None)


def test_unknown_genes_are_counted_with_examples(cells: tuple[Path, anndata.AnnData], tmp_path: Path) -> None:
    path, _ = cells
    genes = tmp_path / "genes.txt"
    genes.write_text("G1\nG2\nNOPE1\n# a comment\nNOPE2\nG3\n")
    with pytest.raises(DataError, match=r"2 of 5 genes in the gene list are not in var_names \(e.g. 'NOPE1', 'NOPE2'\)"):
        read_h5ad_inputs(path, DataConfig(h5ad_genes=f"@{genes}"), None)
    with pytest.raises(DataError, match="var has no column 'hvg'"):
        read_h5ad_inputs(path, DataConfig(h5ad_genes="hvg"), None)


def test_missing_target_lists_the_obs_columns(cells: tuple[Path, anndata.AnnData]) -> None:
    path, _ = cells
    mod = Tabular(DataConfig(task="classification", target_columns=["celltype"], h5ad_backed=True))
    with pytest.raises(DataError, match=r"obs has no target column 'celltype'; obs columns are \['cell_type', 'donor'\]"):
        mod.load([str(path)])


def test_backed_file_modified_while_reading_is_an_error(cells: tuple[Path, anndata.AnnData]) -> None:
    path, _ = cells
    _, rows, _ = read_h5ad_inputs(path, DataConfig(h5ad_backed=True), None)
    rows[[0, 1]]
    with open(path, "ab") as fh:  # another process appends to the file
        fh.write(b"\0" * 16)
    with pytest.raises(DataError, match="modified while being read"):
        rows[[2, 3]]


@pytest.mark.parametrize("backed", [False, True])
def test_outputs_written_as_anndata(cells: tuple[Path, anndata.AnnData], tmp_path: Path, backed: bool) -> None:
    path, ad = cells
    out = tmp_path / "out.h5ad"
    proba = np.random.default_rng(0).dirichlet(np.ones(3), size=ad.n_obs)
    pred = np.array(["B", "NK", "T"])[proba.argmax(1)]
    write_h5ad_outputs(
        out, path, obs={"biodl_pred": pred}, obsm={"biodl_proba": proba}, uns={"classes": ["B", "NK", "T"]}, backed=backed
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = anndata.read_h5ad(out)
    assert list(res.obs_names) == list(ad.obs_names) and list(res.var_names) == list(ad.var_names)
    assert list(res.obs["biodl_pred"]) == list(pred)
    np.testing.assert_allclose(res.obsm["biodl_proba"], proba, rtol=1e-6)
    assert ("X_pca" in res.obsm) is not backed  # a backed input: obs_names/var only, no copy of the matrix
    assert (res.X is None) is backed
    with pytest.raises(DataError, match="refusing to overwrite the input"):
        write_h5ad_outputs(path, path, obs={"biodl_pred": pred})
