from __future__ import annotations

import gzip
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import pytest

from biodl.config import DataConfig
from biodl.data.readers import read_raw
from biodl.data.tabular import Tabular
from biodl.data.targets import encode_targets
from biodl.errors import DataError
from conftest import PBMC


def _load(path: Path, **cfg: object) -> Tabular:
    mod = Tabular(DataConfig.model_validate(cfg))
    return mod


def test_h5ad_targets_from_obs() -> None:
    mod = _load(PBMC, task="classification", target_columns=["bulk_labels"])
    data = mod.load([str(PBMC)])
    assert data.X.shape == (700, 765) and data.X.dtype == np.float32
    assert data.targets is not None and data.targets.kind == "multiclass"
    assert len(data.targets.classes or []) == 10
    assert data.ids[0].endswith("-1")


def test_csv_gz_tsv_parquet_hdf5_agree(tmp_path: Path, small_csv: Path) -> None:
    frame = pd.read_csv(small_csv)
    gz = tmp_path / "t.tsv.gz"
    with gzip.open(gz, "wt") as fh:
        frame.to_csv(fh, sep="\t", index=False)
    pq = tmp_path / "t.parquet"
    frame.to_parquet(pq)
    genes = [c for c in frame.columns if c.startswith("g_")]
    h5 = tmp_path / "t.h5"
    with h5py.File(h5, "w") as fh:
        fh["X"] = frame[genes].to_numpy(np.float32)
        fh["feature_names"] = np.array(genes, dtype="S")
        fh["n_counts"] = frame["n_counts"].to_numpy()
    loaded = []
    for p in (small_csv, gz, pq, h5):
        cfg = {"task": "regression", "target_columns": ["n_counts"], "feature_columns": genes}
        data = _load(p, **cfg).load([str(p)])
        loaded.append(data)
    for d in loaded[1:]:
        np.testing.assert_allclose(d.X, loaded[0].X, rtol=1e-6)
        assert d.targets is not None and loaded[0].targets is not None
        np.testing.assert_allclose(d.targets.y, loaded[0].targets.y, rtol=1e-6)


def test_default_features_exclude_targets_ids_groups(small_csv: Path) -> None:
    mod = _load(small_csv, task="multilabel", target_columns=["is_mono", "is_b"], id_column="cell", group_column="donor")
    data = mod.load([str(small_csv)])
    names = mod.columns()["feature_columns"]
    assert "is_mono" not in names and "donor" not in names and "n_counts" in names
    assert data.targets is not None and data.targets.kind == "binary" and data.targets.y.shape == (700, 2)
    assert np.isnan(data.targets.y[:, 1]).sum() > 50  # missing labels kept as NaN (masked), not dropped
    assert data.groups is not None and data.ids[0] == pd.read_csv(small_csv)["cell"][0]


def test_missing_file_and_column_errors(tmp_path: Path, small_csv: Path) -> None:
    with pytest.raises(DataError, match="data file not found"):
        read_raw(tmp_path / "nope.csv")
    with pytest.raises(DataError, match=r"target column 'nope' not found"):
        _load(small_csv, task="regression", target_columns=["nope"]).load([str(small_csv)])
    with pytest.raises(DataError, match=r"feature column 'zzz' not found"):
        _load(small_csv, task="regression", target_columns=["n_counts"], feature_columns=["zzz"]).load([str(small_csv)])
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    with pytest.raises(DataError, match="empty"):
        read_raw(empty)


def test_non_numeric_label_names_row(tmp_path: Path) -> None:
    p = tmp_path / "bad.csv"
    p.write_text("a,b,y\n1,2,3.5\n2,3,oops\n3,4,1\n")
    with pytest.raises(DataError, match=r"target column 'y' must be numeric; row 2 has 'oops'"):
        _load(p, task="regression", target_columns=["y"]).load([str(p)])
    p.write_text("a,b,y\n1,2,1\n2,3,2\n3,4,0\n")
    with pytest.raises(DataError, match=r"label column 'y' must hold 0/1"):
        _load(p, task="multilabel", target_columns=["y"]).load([str(p)])
    p.write_text("a,b,y\n1,,1\n2,3,0\n")
    with pytest.raises(DataError, match=r"missing/non-finite feature values \(first: row 1, column 'b'\)"):
        _load(p, task="multilabel", target_columns=["y"]).load([str(p)])


def test_classification_encoding_fixed_classes() -> None:
    frame = pd.DataFrame({"y": ["b", "a", None, "b"]})
    t = encode_targets(frame, ["y"], "classification", source="x")
    assert t.kind == "binary" and t.classes == ["a", "b"]
    assert np.isnan(t.y[2, 0]) and t.y[0, 0] == 1
    with pytest.raises(DataError, match="unknown to the model"):
        encode_targets(pd.DataFrame({"y": ["c"]}), ["y"], "classification", source="x", classes=["a", "b"])
    with pytest.raises(DataError, match="at least 2 classes"):
        encode_targets(pd.DataFrame({"y": ["a", "a"]}), ["y"], "classification", source="x")
