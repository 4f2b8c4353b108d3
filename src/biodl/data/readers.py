"""Readers for tables and matrices: CSV/TSV (optionally gzipped), Parquet, HDF5, AnnData ``.h5ad``.

Every reader returns a :class:`RawTable`: an optional numeric matrix (HDF5/h5ad ``X``) plus a
data frame of per-row columns (targets, ids, groups, or the features themselves for flat tables).
"""

from __future__ import annotations

import gzip
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from biodl.errors import DataError


@dataclass
class RawTable:
    """What a file holds, before columns get their roles.

    Attributes
    ----------
    frame
        Per-row columns, ``N`` rows.
    matrix
        A numeric feature matrix ``(N, F)`` for matrix formats (HDF5, h5ad), else ``None``.
    matrix_names
        Column names of ``matrix`` (``F`` strings), else ``None``.
    path
        Where the data came from (for error messages).
    first_line
        Line number of the frame's first row in a text file (2 for a CSV with a header line),
        else ``None`` (errors then name the 1-based row).
    label_columns
        Columns the data set's own schema declares as labels (ARFF: the labels of a Mulan XML file
        beside it, else a nominal last attribute, Weka's class); never taken as default features.
    """

    frame: pd.DataFrame
    matrix: np.ndarray | None
    matrix_names: list[str] | None
    path: str
    first_line: int | None = None
    label_columns: list[str] = field(default_factory=list)

    def where(self, row: int) -> str:
        """``"file line L"`` (text files) or ``"file row R"`` for the 0-based frame row ``row``."""
        if self.first_line is not None:
            return f"{self.path} line {self.first_line + row}"
        return f"{self.path} row {row + 1}"


def _suffixes(path: Path) -> list[str]:
    return [s.lower() for s in path.suffixes]


def _sniff_sep(path: Path) -> str:
    opener = gzip.open if _suffixes(path)[-1:] == [".gz"] else open
    try:
        with opener(path, "rt") as fh:  # type: ignore[operator]
            first = fh.readline()
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: cannot read as text ({exc})") from None
    if "\t" in first:
        return "\t"
    if "," in first:
        return ","
    return r"\s+"


def read_delimited(path: Path) -> pd.DataFrame:
    """Read CSV/TSV (separator sniffed from the header line; ``.gz`` decompressed)."""
    sep = _sniff_sep(path)
    try:
        return pd.read_csv(path, sep=sep, engine="python" if sep == r"\s+" else "c")
    except (pd.errors.ParserError, ValueError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: cannot parse as a delimited table: {exc}") from None
    except pd.errors.EmptyDataError:
        raise DataError(f"{path}: the file is empty") from None


def read_h5ad(path: Path, layer: str | None = None) -> RawTable:
    """Read an AnnData file: ``X`` (or a layer) as the matrix, ``obs`` as the frame."""
    import warnings

    import anndata

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            adata = anndata.read_h5ad(path)
    except Exception as exc:  # anndata raises many types for bad files
        raise DataError(f"{path}: cannot read as AnnData .h5ad: {exc}") from None
    if layer is not None:
        if layer not in adata.layers:
            raise DataError(f"{path}: no layer {layer!r}; layers are {list(adata.layers)}")
        mat = adata.layers[layer]
    else:
        mat = adata.X
    if hasattr(mat, "toarray"):
        mat = mat.toarray()
    obs = adata.obs.copy()
    obs.insert(0, "obs_names", np.asarray(adata.obs_names, dtype=str))
    return RawTable(obs.reset_index(drop=True), np.asarray(mat, dtype=np.float32), list(map(str, adata.var_names)), str(path))


def read_hdf5(path: Path, features: str = "X") -> RawTable:
    """Read an HDF5 file holding a 2-D feature dataset plus 1-D per-row datasets.

    Layout: ``/<features>`` of shape ``(N, F)``; optional ``/feature_names`` (F strings); any other
    1-D dataset of length ``N`` at the root becomes a column (targets, ids, groups).
    """
    import h5py

    try:
        fh = h5py.File(path, "r")
    except OSError as exc:
        raise DataError(f"{path}: cannot open as HDF5: {exc}") from None
    with fh:
        if features not in fh:
            raise DataError(f"{path}: no dataset {features!r} (datasets: {sorted(fh.keys())})")
        mat = np.asarray(fh[features][()], dtype=np.float32)
        if mat.ndim != 2:
            raise DataError(f"{path}: dataset {features!r} must be 2-D (N, F), got shape {mat.shape}")
        names = None
        if "feature_names" in fh:
            names = [v.decode() if isinstance(v, bytes) else str(v) for v in fh["feature_names"][()]]
        cols: dict[str, np.ndarray] = {}
        for key in fh:
            ds = fh[key]
            if key in (features, "feature_names") or not hasattr(ds, "shape"):
                continue
            if ds.ndim == 1 and ds.shape[0] == mat.shape[0]:
                vals = ds[()]
                if vals.dtype.kind in "SO":
                    vals = np.array([v.decode() if isinstance(v, bytes) else str(v) for v in vals])
                cols[key] = vals
    return RawTable(pd.DataFrame(cols), mat, names, str(path))


def read_raw(path: str | Path, *, hdf5_features: str = "X", h5ad_layer: str | None = None) -> RawTable:
    """Read any supported table/matrix file by its extension."""
    p = Path(path)
    if not p.exists():
        raise DataError(f"data file not found: {p}")
    if p.is_dir():
        raise DataError(f"{p}: expected a file, got a directory")
    sfx = _suffixes(p)
    last = sfx[-1] if sfx else ""
    if last == ".h5ad":
        return read_h5ad(p, h5ad_layer)
    if last in (".h5", ".hdf5", ".hdf"):
        return read_hdf5(p, hdf5_features)
    if last in (".parquet", ".pq"):
        try:
            frame = pd.read_parquet(p)
        except Exception as exc:
            raise DataError(f"{p}: cannot read as Parquet: {exc}") from None
        return RawTable(frame, None, None, str(p))
    if last == ".arff" or sfx[-2:] == [".arff", ".gz"]:
        from biodl.data.arff import read_arff, schema_labels

        arff = read_arff(p)
        return RawTable(arff.frame, None, None, str(p), label_columns=schema_labels(arff))
    return RawTable(read_delimited(p), None, None, str(p), first_line=2)
