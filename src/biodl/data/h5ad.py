"""AnnData ``.h5ad`` inputs at atlas scale: sparse ``X`` kept sparse, rows streamed from disk.

* A sparse ``X`` (or layer) stays a CSR matrix; mini-batches are densified one batch at a time
  (:class:`SparseRows`), so memory holds the non-zeros, not cells × genes.
* ``data.h5ad_backed: true`` reads nothing but the row pointers into memory: each batch reads its
  rows' non-zeros from the file (like a biodl store; training streams both with
  :func:`biodl.data.store_stream.store_loader`). The file's size and modification time are checked on
  every read: a file modified during training is an error, not silently mixed data.
* Genes: ``data.h5ad_genes`` names a boolean ``var`` column (``highly_variable``) or ``@FILE``, a
  gene list (one per line); ``data.feature_columns`` works too. Unknown genes are an error that
  counts them and shows examples.
* ``data.h5ad_obsm: X_pca`` uses an ``obsm`` embedding as the inputs instead of ``X``.
* Targets and groups are ``obs`` columns (``--target-columns cell_type --group-column donor``).
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from biodl.config import DataConfig
from biodl.data.store import LazyRows
from biodl.errors import DataError

__all__ = ["SparseRows", "is_h5ad", "read_h5ad_inputs", "uses_lazy_reader", "write_h5ad_outputs"]

#: Rows read together from a backed file (the unit the chunk-shuffled sampler shuffles).
BACKED_CHUNK_ROWS = 512
#: Unneeded stored values one contiguous read of a backed CSR matrix may span between two wanted rows.
READ_GAP = 1 << 16


def is_h5ad(path: str | Path) -> bool:
    """True if ``path`` has the ``.h5ad`` suffix."""
    return Path(path).suffix.lower() == ".h5ad"


def _stat(path: Path) -> tuple[int, int]:
    st = os.stat(path)
    return st.st_size, st.st_mtime_ns


class SparseRows(LazyRows):
    """Rows of an AnnData matrix, densified per request: ``rows[idx]`` → float32 ``(len(idx), F)``.

    Parameters
    ----------
    path
        The ``.h5ad`` file.
    element
        ``X``, ``layers/<name>`` or ``obsm/<key>``.
    columns
        Column (gene) indices to keep, or ``None`` for all.
    matrix
        The matrix held in memory (scipy CSR or a NumPy array); ``None`` reads rows from the file
        at each request (backed mode; the handle is opened once per process).
    """

    def __init__(
        self, path: str | Path, element: str, n_rows: int, n_cols: int, *, columns: np.ndarray | None = None, matrix: Any = None
    ) -> None:
        self.path = Path(path)
        self.element = element
        self.columns = None if columns is None else np.asarray(columns, dtype=np.int64)
        self.matrix = matrix
        width = n_cols if self.columns is None else len(self.columns)
        self.shape = (int(n_rows), int(width))
        self.dtype = np.dtype(np.float32)
        self.ndim = 2
        self.chunk_rows = BACKED_CHUNK_ROWS if matrix is None else 1
        self.backed = matrix is None
        self._signature = _stat(self.path) if self.backed else None
        self._fh: Any = None
        self._pid = -1
        self._indptr: np.ndarray | None = None

    # ----------------------------------------------------------------- backed
    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_fh"], state["_pid"] = None, -1
        return state

    def _check_unchanged(self) -> None:
        if self._signature is None:
            return
        try:
            now = _stat(self.path)
        except OSError:
            raise DataError(f"{self.path}: the AnnData file disappeared while it was being read") from None
        if now != self._signature:
            size0, mtime0 = self._signature
            raise DataError(
                f"{self.path}: the AnnData file was modified while being read (size {size0} → {now[0]} bytes, "
                f"mtime changed by {(now[1] - mtime0) / 1e9:+.3f} s); rerun once it is no longer written to"
            )

    def _node(self) -> Any:
        if self._fh is None or self._pid != os.getpid():
            import h5py

            self._fh = h5py.File(self.path, "r")
            self._pid = os.getpid()
            node = self._fh[self.element]
            self._indptr = np.asarray(node["indptr"][()], dtype=np.int64) if _encoding(node) == "csr_matrix" else None
        return self._fh[self.element]

    def _read_backed(self, rows: np.ndarray) -> Any:
        """Rows ``rows`` (sorted, unique) from the file: a CSR matrix or a dense array.

        Rows close together on disk are read with one contiguous read each run (a batch of a
        chunk-shuffled epoch is one run); rows far apart (a random sample) are read separately, so
        a read never pulls in more than :data:`READ_GAP` values it does not need per run.
        """
        import scipy.sparse as sp

        self._check_unchanged()
        node = self._node()
        if self._indptr is None:  # a dense dataset
            if rows[-1] - rows[0] + 1 <= 4 * len(rows):
                block = np.asarray(node[int(rows[0]) : int(rows[-1]) + 1])
                return block[rows - rows[0]]
            return np.asarray(node[rows])  # h5py reads sorted row lists directly
        indptr = self._indptr
        starts, ends = indptr[rows], indptr[rows + 1]
        breaks = np.flatnonzero(starts[1:] - ends[:-1] > READ_GAP) + 1
        data_parts, index_parts = [], []
        for run in np.split(np.arange(len(rows)), breaks):
            lo, hi = int(starts[run[0]]), int(ends[run[-1]])
            data, indices = np.asarray(node["data"][lo:hi]), np.asarray(node["indices"][lo:hi])
            counts = ends[run] - starts[run]
            offsets = starts[run] - lo
            take = np.repeat(offsets - np.concatenate([[0], np.cumsum(counts)[:-1]]), counts) + np.arange(int(counts.sum()))
            data_parts.append(data[take])
            index_parts.append(indices[take])
        new_ptr = np.concatenate([[0], np.cumsum(ends - starts)])
        return sp.csr_matrix(
            (np.concatenate(data_parts), np.concatenate(index_parts), new_ptr), shape=(len(rows), self._full_width(node))
        )

    def _full_width(self, node: Any) -> int:
        return int(np.asarray(node.attrs["shape"])[1])

    # ----------------------------------------------------------------- access
    def _rows(self, rows: np.ndarray) -> Any:
        """Rows ``rows`` (sorted, unique), columns selected, sparse or dense."""
        block = self._read_backed(rows) if self.backed else self.matrix[rows]
        if self.columns is not None:
            block = block[:, self.columns]
        return block

    def fit_sample(self, idx: np.ndarray) -> Any:
        """Rows ``idx`` kept sparse when the matrix is (preprocessing statistics are computed sparsely)."""
        return self._rows(np.unique(np.asarray(idx, dtype=np.int64)))

    def __getitem__(self, idx: Any) -> np.ndarray:
        if isinstance(idx, slice):
            idx = np.arange(*idx.indices(self.shape[0]))
        idx = np.asarray(idx, dtype=np.int64)
        if idx.ndim == 0:
            return self[idx.reshape(1)][0]
        if len(idx) == 0:
            return np.zeros((0, self.shape[1]), dtype=np.float32)
        uniq, inverse = np.unique(idx, return_inverse=True)
        block = self._rows(uniq)
        dense = block.toarray() if hasattr(block, "toarray") else np.asarray(block)
        return np.asarray(dense, dtype=np.float32)[inverse]


def _encoding(node: Any) -> str:
    enc = node.attrs.get("encoding-type", "")
    return enc.decode() if isinstance(enc, bytes) else str(enc)


def uses_lazy_reader(cfg: DataConfig, paths: list[str]) -> bool:
    """True when ``paths`` is one ``.h5ad`` file that this module reads (sparse, backed, obsm or gene options).

    A dense in-memory ``X`` without those options keeps the plain matrix reader (and its
    gene-as-target columns, D-GEX style).
    """
    if len(paths) != 1 or not is_h5ad(paths[0]):
        return False
    if cfg.h5ad_backed or cfg.h5ad_obsm or cfg.h5ad_genes:
        return True
    if cfg.task == "reconstruction":
        return False
    return _element_is_sparse(Path(paths[0]), _element(cfg))


def _element(cfg: DataConfig) -> str:
    if cfg.h5ad_obsm:
        return f"obsm/{cfg.h5ad_obsm}"
    return f"layers/{cfg.h5ad_layer}" if cfg.h5ad_layer else "X"


def _element_is_sparse(path: Path, element: str) -> bool:
    import h5py

    try:
        with h5py.File(path, "r") as fh:
            return element in fh and _encoding(fh[element]) in ("csr_matrix", "csc_matrix")
    except OSError:
        return False  # the plain reader reports the unreadable file


class _BackedMeta:
    """What backed reading needs of an AnnData file, read element by element (``obs``, ``var``, the
    ``obsm`` key asked for): unlike ``anndata.read_h5ad(backed="r")`` it does not load the layers."""

    def __init__(self, path: Path) -> None:
        import h5py
        from anndata.io import read_elem

        self.file = h5py.File(path, "r")
        self.obs = read_elem(self.file["obs"])
        self.var = read_elem(self.file["var"])
        self.obs_names, self.var_names = self.obs.index, self.var.index
        self.n_obs = len(self.obs)
        self.layers = list(self.file["layers"].keys()) if "layers" in self.file else []
        self.obsm = _LazyGroup(self.file["obsm"] if "obsm" in self.file else None)


class _LazyGroup:
    """``group[key]`` read on access (an ``obsm`` entry), ``key in group``, ``keys()``."""

    def __init__(self, group: Any) -> None:
        self.group = group

    def keys(self) -> list[str]:
        return [] if self.group is None else list(self.group.keys())

    def __contains__(self, key: object) -> bool:
        return key in self.keys()

    def __getitem__(self, key: str) -> Any:
        from anndata.io import read_elem

        return read_elem(self.group[key])


def _read_meta(path: Path, backed: bool) -> Any:
    """The AnnData object in memory, or (backed) its ``obs``/``var`` with the matrices left on disk."""
    import anndata

    if not path.is_file():
        raise DataError(f"data file not found: {path}")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if backed:
                import h5py

                with h5py.File(path, "r") as fh:
                    modern = isinstance(fh.get("obs"), h5py.Group) and isinstance(fh.get("var"), h5py.Group)
                if modern:
                    return _BackedMeta(path)
            return anndata.read_h5ad(path, backed="r" if backed else None)  # legacy on-disk layouts too
    except Exception as exc:  # anndata/h5py raise many types for bad files
        raise DataError(f"{path}: cannot read as AnnData .h5ad: {exc}") from None


def _gene_selection(
    path: Path, var: pd.DataFrame, names: list[str], cfg: DataConfig, wanted: list[str] | None
) -> np.ndarray | None:
    """Column indices of the selected genes (``None``: all)."""
    pos = {n: i for i, n in enumerate(names)}
    spec = cfg.h5ad_genes
    if wanted is None and spec is not None:
        if spec.startswith("@"):
            from biodl.data.expression import read_name_file

            wanted = read_name_file(spec[1:])
        else:
            if spec not in var.columns:
                raise DataError(f"{path}: data.h5ad_genes: var has no column {spec!r}; var columns are {list(var.columns)[:20]}")
            col = var[spec]
            if col.dtype != bool:
                raise DataError(f"{path}: var column {spec!r} must be boolean (True = use the gene), got {col.dtype}")
            chosen = np.flatnonzero(col.to_numpy())
            if not len(chosen):
                raise DataError(f"{path}: var column {spec!r} selects no gene")
            return chosen
    if wanted is None:
        return None
    unknown = [w for w in wanted if w not in pos]
    if unknown:
        raise DataError(
            f"{path}: {len(unknown)} of {len(wanted)} genes in the gene list are not in var_names "
            f"(e.g. {', '.join(map(repr, unknown[:5]))}); var_names look like {', '.join(names[:3])}"
        )
    return np.asarray([pos[w] for w in wanted], dtype=np.int64)


def read_h5ad_inputs(
    path: str | Path, cfg: DataConfig, feature_names: list[str] | None
) -> tuple[pd.DataFrame, SparseRows, list[str]]:
    """Read one ``.h5ad`` for training or prediction.

    Parameters
    ----------
    cfg
        ``h5ad_backed``, ``h5ad_layer``, ``h5ad_obsm``, ``h5ad_genes`` and ``feature_columns`` apply.
    feature_names
        The genes a trained model expects (prediction), or ``None``.

    Returns
    -------
    frame
        ``obs`` with an ``obs_names`` column first (targets, groups, ids).
    rows
        The inputs ``(N, F)``, densified per request.
    names
        The ``F`` input names (genes, or ``<obsm key>_<i>``).
    """
    p = Path(path)
    adata = _read_meta(p, cfg.h5ad_backed)
    frame = adata.obs.copy()
    frame.insert(0, "obs_names", np.asarray(adata.obs_names, dtype=str))
    frame = frame.reset_index(drop=True)
    n = adata.n_obs
    element = _element(cfg)
    if cfg.h5ad_obsm:
        if cfg.h5ad_obsm not in adata.obsm:
            raise DataError(f"{p}: no obsm[{cfg.h5ad_obsm!r}]; obsm keys are {list(adata.obsm.keys())}")
        emb = np.asarray(adata.obsm[cfg.h5ad_obsm], dtype=np.float32)
        if hasattr(adata, "file"):
            adata.file.close()
        if emb.ndim != 2:
            raise DataError(f"{p}: obsm[{cfg.h5ad_obsm!r}] must be 2-D (cells × dims), got shape {emb.shape}")
        names = [f"{cfg.h5ad_obsm}_{i}" for i in range(emb.shape[1])]
        if feature_names is not None and feature_names != names:
            raise DataError(f"{p}: obsm[{cfg.h5ad_obsm!r}] has {len(names)} dims; the model expects {len(feature_names)}")
        return frame, SparseRows(p, element, n, emb.shape[1], matrix=emb), names
    var_names = list(map(str, adata.var_names))
    if cfg.h5ad_layer is not None and cfg.h5ad_layer not in adata.layers:
        raise DataError(f"{p}: no layer {cfg.h5ad_layer!r}; layers are {list(adata.layers)}")
    wanted = feature_names if feature_names is not None else cfg.feature_columns
    if wanted is not None and any(w.startswith("@") for w in wanted):
        from biodl.data.expression import _expand

        wanted = _expand(wanted)
    columns = _gene_selection(p, adata.var, var_names, cfg, wanted)
    names = var_names if columns is None else [var_names[i] for i in columns]
    matrix: Any = None
    if cfg.h5ad_backed:
        import h5py

        with h5py.File(p, "r") as fh:
            if element not in fh:
                raise DataError(f"{p}: no {element} to read")
            enc = _encoding(fh[element])
            if enc == "csc_matrix":
                raise DataError(f"{p}: {element} is stored column-wise (CSC), which cannot stream rows; save it as CSR")
            if isinstance(fh[element], h5py.Group) and enc != "csr_matrix":
                raise DataError(f"{p}: {element} has an unsupported encoding {enc!r} for backed reading")
        if hasattr(adata, "file"):
            adata.file.close()
    else:
        import scipy.sparse as sp

        mat = adata.layers[cfg.h5ad_layer] if cfg.h5ad_layer else adata.X
        if mat is None:
            raise DataError(f"{p}: the AnnData file has no X")
        matrix = sp.csr_matrix(mat, dtype=np.float32) if sp.issparse(mat) else np.asarray(mat, dtype=np.float32)
        if sp.issparse(matrix) and not np.isfinite(matrix.data).all():
            bad = int(np.flatnonzero(~np.isfinite(matrix.data))[0])
            row = int(np.searchsorted(matrix.indptr, bad, side="right") - 1)
            raise DataError(f"{p}: {element} has non-finite values (first in row {row + 1}); impute or drop them first")
    return frame, SparseRows(p, element, n, len(var_names), columns=columns, matrix=matrix), names


def write_h5ad_outputs(
    out: str | Path,
    source: str | Path,
    *,
    obs: dict[str, Any] | None = None,
    obsm: dict[str, np.ndarray] | None = None,
    uns: dict[str, Any] | None = None,
    backed: bool = False,
) -> Path:
    """Write ``source`` with model outputs added as an ``.h5ad`` (atomically), readable by scanpy.

    The whole input AnnData is copied, or, for a ``backed`` input (too large to hold), only its
    ``obs`` (``obs_names`` and columns) and ``var`` with an empty ``X``. ``obs`` values become
    ``obs`` columns (strings as categoricals), ``obsm`` arrays ``(N, K)`` go to ``obsm``, ``uns``
    to ``uns["biodl"]``.
    """
    import anndata

    src, dst = Path(source), Path(out)
    if dst.suffix.lower() != ".h5ad":
        raise DataError(f"{dst}: an AnnData output must end in .h5ad")
    if dst.resolve() == src.resolve():
        raise DataError(f"{dst}: refusing to overwrite the input file; choose another --output")
    adata = _read_meta(src, backed)
    if backed:
        result = anndata.AnnData(obs=adata.obs.copy(), var=adata.var.copy())
        if hasattr(adata, "file"):
            adata.file.close()
    else:
        result = adata
    n = result.n_obs
    for key, values in (obs or {}).items():
        values = np.asarray(values)
        if len(values) != n:
            raise DataError(f"{src}: {len(values)} outputs for {n} cells")
        result.obs[key] = pd.Categorical(values.astype(str)) if values.dtype.kind in "OUS" else values
    for key, arr in (obsm or {}).items():
        if len(arr) != n:
            raise DataError(f"{src}: {len(arr)} outputs for {n} cells")
        result.obsm[key] = np.asarray(arr, dtype=np.float32)
    if uns:
        result.uns["biodl"] = uns
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = dst.with_name(dst.name + ".tmp.h5ad")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result.write_h5ad(tmp)
    os.replace(tmp, dst)
    return dst
