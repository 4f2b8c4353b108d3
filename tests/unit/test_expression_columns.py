"""D-GEX column lists: ``@FILE`` names, ``@others`` targets, genes moved from the matrix to the targets."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from biodl.config import DataConfig
from biodl.data import DATA_TYPES
from biodl.data.expression import read_name_file, resolve_columns
from biodl.data.readers import RawTable
from biodl.errors import DataError
from biodl.metrics.multilabel import single_class_labels


def _raw() -> RawTable:
    rng = np.random.default_rng(0)
    return RawTable(pd.DataFrame({"cell": ["a", "b", "c"]}), rng.normal(size=(3, 5)).astype(np.float32), list("ABCDE"), "m.h5")


def test_file_lists_and_others(tmp_path: Path) -> None:
    f = tmp_path / "landmarks.txt"
    f.write_text("# landmarks\nA\n\nC  # a comment\n")
    assert read_name_file(f) == ["A", "C"]
    raw = _raw()
    cfg = DataConfig.model_validate({"path": ["m.h5"], "feature_columns": [f"@{f}"], "target_columns": ["@others"]})
    new_raw, new_cfg = resolve_columns(raw, cfg)
    assert new_cfg.feature_columns == ["A", "C"] and new_cfg.target_columns == ["B", "D", "E"]
    assert new_raw.matrix_names == ["A", "C"] and new_raw.matrix is not None and new_raw.matrix.shape == (3, 2)
    np.testing.assert_array_equal(new_raw.frame["D"].to_numpy(), raw.matrix[:, 3])  # type: ignore[index]
    with pytest.raises(DataError, match="needs the feature"):
        resolve_columns(raw, DataConfig.model_validate({"path": ["x"], "target_columns": ["@others"]}))
    with pytest.raises(DataError, match="both features and targets"):
        resolve_columns(raw, DataConfig.model_validate({"path": ["x"], "feature_columns": ["A"], "target_columns": ["A"]}))


def test_gene_targets_from_h5ad(tmp_path: Path) -> None:
    import anndata

    rng = np.random.default_rng(0)
    X = rng.normal(size=(30, 6)).astype(np.float32)
    X[:, 5] = X[:, 0] + X[:, 1]
    path = tmp_path / "expr.h5ad"
    anndata.AnnData(X, var=pd.DataFrame(index=[f"g{i}" for i in range(6)])).write_h5ad(path)
    cfg = DataConfig.model_validate(
        {"path": [str(path)], "task": "regression", "feature_columns": ["g0", "g1", "g2"], "target_columns": ["@others"]}
    )
    mod = DATA_TYPES["tabular"](cfg)
    data = mod.load([str(path)])
    assert data.X.shape == (30, 3) and data.targets is not None and data.targets.names == ["g3", "g4", "g5"]
    np.testing.assert_allclose(data.targets.y[:, 2], X[:, 5])
    assert mod.cfg.target_columns == ["g3", "g4", "g5"]


def test_single_class_labels_are_listed() -> None:
    Y = np.array([[0, 1, 1], [0, 0, 1], [np.nan, 1, 1]])
    assert single_class_labels(Y, ["a", "b", "c"]) == ["a", "c"]
