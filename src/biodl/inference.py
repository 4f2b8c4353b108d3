"""Predict with and evaluate a saved bundle on new files."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from biodl.bundle import Bundle
from biodl.config import DataConfig
from biodl.data.base import LoadedData
from biodl.errors import ConfigError, DataError
from biodl.metrics import compute_metrics, to_jsonable

if TYPE_CHECKING:
    from biodl.engine import Engine


def load_data(
    bundle: Bundle, paths: list[str], overrides: Mapping[str, Any] | None = None, *, require_targets: bool
) -> LoadedData:
    """Read ``paths`` with the bundle's column mapping (optionally overridden for this file)."""
    cfg = bundle.data_config
    if overrides:
        cfg = _override(cfg, overrides)
    bundle.modality.cfg = cfg
    if bundle.meta.get("task") == "reconstruction":  # the inputs are the targets
        from biodl.models.autoencoder import reconstruction_targets

        data = bundle.modality.load(paths, require_targets=False, classes=bundle.classes)
        data.targets = reconstruction_targets(data.X)
        return data
    return bundle.modality.load(paths, require_targets=require_targets, classes=bundle.classes)


def predict_frame(bundle: Bundle, data: LoadedData, engine: Engine | None = None) -> tuple[pd.DataFrame, np.ndarray]:
    """Predictions as a table (one row per input) and the raw output array ``(N, K)``.

    ``engine`` (:mod:`biodl.engine`) runs the model; default: the bundle's PyTorch model.
    """
    run = engine.predict if engine is not None else bundle.predict_arrays
    out = map_batches(lambda X: run(bundle.modality.transform(X)), data.X)
    if bundle.kind == "segmentation":
        cols: dict[str, Any] = {"id": data.ids, **_mask_summary(bundle, out)}
    elif bundle.kind == "positions":
        cols = {"id": data.ids, **position_columns(bundle, data, out)}
    else:
        cols = output_columns(bundle, data.ids, out)
    return pd.DataFrame(cols), out


def output_columns(bundle: Bundle, ids: Any, out: np.ndarray) -> dict[str, Any]:
    """The prediction table's columns for outputs ``(N, K)`` of a row-wise model (not segmentation or positions)."""
    cols: dict[str, Any] = {"id": ids}
    if bundle.kind == "multiclass":
        classes = bundle.classes or []
        for j, c in enumerate(classes):
            cols[f"prob_{c}"] = out[:, j]
        cols["predicted"] = [classes[i] for i in out.argmax(axis=1)]
    elif bundle.kind == "binary" and bundle.classes is not None:
        pos = bundle.classes[1]
        cols[f"prob_{pos}"] = out[:, 0]
        cols["predicted"] = np.where(out[:, 0] >= 0.5, pos, bundle.classes[0])
    else:
        for j, name in enumerate(bundle.target_names):
            cols[name] = out[:, j]
    return cols


#: Dense float32 bytes of streamed rows (sparse or backed AnnData) transformed at once when predicting.
PREDICT_BYTES = 64 << 20


def map_batches(fn: Any, X: Any) -> np.ndarray:
    """``fn(X)`` for in-memory inputs; for streamed rows (:class:`~biodl.data.store.LazyRows`) ``fn`` of
    bounded row blocks, concatenated, so a sparse or backed matrix is densified a block at a time."""
    from biodl.data.store import LazyRows

    if not isinstance(X, LazyRows):
        return np.asarray(fn(X))
    width = int(np.prod(X.shape[1:])) if len(X.shape) > 1 else 1
    step = max(256, PREDICT_BYTES // max(4 * width, 1))
    parts = [np.asarray(fn(X[i : i + step])) for i in range(0, len(X), step)]
    return np.concatenate(parts) if parts else np.zeros((0, 0), np.float32)


def h5ad_outputs(
    bundle: Bundle, out: np.ndarray, frame: pd.DataFrame
) -> tuple[dict[str, Any], dict[str, np.ndarray], dict[str, Any]]:
    """Predictions as AnnData ``obs`` / ``obsm`` entries: ``obs["biodl_pred"]`` (class or value) and, for
    classifiers, ``obsm["biodl_proba"]`` ``(N, K)`` in the order of ``uns["biodl"]["classes"]``."""
    obs: dict[str, Any] = {}
    obsm: dict[str, np.ndarray] = {}
    uns: dict[str, Any] = {"kind": bundle.kind, "target_names": list(bundle.target_names)}
    if bundle.kind == "multiclass":
        obs["biodl_pred"] = frame["predicted"].astype(str).to_numpy()
        obsm["biodl_proba"] = out
        uns["classes"] = list(bundle.classes or [])
    elif bundle.kind == "binary" and bundle.classes is not None and out.shape[1] == 1:
        obs["biodl_pred"] = frame["predicted"].astype(str).to_numpy()
        obsm["biodl_proba"] = np.concatenate([1 - out, out], axis=1)
        uns["classes"] = list(bundle.classes)
    elif out.ndim == 2 and out.shape[1] == 1:
        obs["biodl_pred"] = out[:, 0]
    else:  # several targets (multilabel, multi-output regression): one column each
        obsm["biodl_pred"] = out.reshape(len(out), -1)
        if bundle.kind != "regression":
            obsm["biodl_proba"] = obsm["biodl_pred"]
    return obs, obsm, uns


#: HDF5 table outputs: one group holding a 1-D dataset per column (``"0"``, ``"1"``, … in column
#: order; the names are the group's ``columns`` attribute). Strings are UTF-8, numbers keep their dtype.
H5_SUFFIXES = (".h5", ".hdf5")
H5_GROUP = "predictions"


def append_h5(h5: Any, frame: pd.DataFrame) -> None:
    """Append ``frame``'s rows to the table in the open h5py file ``h5`` (created by the first call)."""
    import json

    import h5py

    group = h5.get(H5_GROUP)
    if group is None:
        group = h5.create_group(H5_GROUP)
        group.attrs["columns"] = json.dumps([str(c) for c in frame.columns])
        for i, col in enumerate(frame.columns):
            values = frame[col].to_numpy()
            dtype = h5py.string_dtype("utf-8") if values.dtype.kind in "OUS" else values.dtype
            group.create_dataset(str(i), shape=(0,), maxshape=(None,), dtype=dtype, chunks=(65536,))
    n = len(frame)
    for i, col in enumerate(frame.columns):
        ds = group[str(i)]
        values = frame[col].to_numpy()
        if values.dtype.kind in "OUS":
            values = np.array(["" if v is None or v != v else str(v) for v in values], dtype=object)
        ds.resize((ds.shape[0] + n,))
        ds[ds.shape[0] - n :] = values


def read_h5_table(path: str | Path) -> pd.DataFrame:
    """The table written by :func:`append_h5` (or :func:`write_table` with ``.h5``)."""
    import json

    import h5py

    with h5py.File(path, "r") as h5:
        group = h5[H5_GROUP]
        names = json.loads(group.attrs["columns"])
        cols = {}
        for i, name in enumerate(names):
            ds = group[str(i)]
            cols[name] = ds.asstr()[:] if h5py.check_string_dtype(ds.dtype) else ds[:]
    return pd.DataFrame(cols)


def write_table(frame: pd.DataFrame, path: str | Path) -> Path:
    """Write CSV, TSV, Parquet or an HDF5 table (``.h5``/``.hdf5``) by extension (atomically via a temporary file)."""
    import os

    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    suffix = p.suffix.lower()
    tmp = p.with_name(p.name + ".tmp")
    if suffix == ".parquet":
        frame.to_parquet(tmp, index=False)
    elif suffix in (".tsv", ".txt"):
        frame.to_csv(tmp, sep="\t", index=False)
    elif suffix == ".csv":
        frame.to_csv(tmp, index=False)
    elif suffix in H5_SUFFIXES:
        import h5py

        with h5py.File(tmp, "w") as h5:
            append_h5(h5, frame)
    else:
        raise DataError(f"{p}: unsupported output format {suffix!r}; use .csv, .tsv, .parquet or .h5")
    os.replace(tmp, p)
    return p


def evaluate(bundle: Bundle, data: LoadedData, metrics: list[str] | None = None) -> dict[str, Any]:
    """Metrics of the bundle on labelled data."""
    if data.targets is None:
        raise DataError("the file has no target columns to evaluate against")
    _, out = predict_frame(bundle, data)
    if bundle.meta.get("task") == "multilabel":  # as in training: per-label and example-based scores
        from biodl.metrics.multilabel import multilabel_task_metrics

        res = multilabel_task_metrics(data.targets.y, out, target_names=data.targets.names, metrics=metrics)
    else:
        names = data.targets.classes if data.targets.kind == "positions" else data.targets.names
        res = compute_metrics(data.targets.kind, data.targets.y, out, target_names=names, metrics=metrics)
    return dict(to_jsonable(res))


def _override(cfg: DataConfig, overrides: Mapping[str, Any]) -> DataConfig:
    """``cfg`` with ``key`` / ``section.key`` values replaced (validated)."""
    from pydantic import ValidationError

    from biodl.config import set_nested

    raw = cfg.model_dump(mode="json")
    for key, value in overrides.items():
        if value is not None:
            set_nested(raw, key.split("."), value)
    try:
        return DataConfig.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(f"data options: {exc.errors()[0]['loc']}: {exc.errors()[0]['msg']}") from None


def sequence_lengths_of(data: LoadedData) -> np.ndarray:
    """``(N,)`` length of each sequence of per-position data (codes ``(N, L)``, padding = blank code; with
    feature tracks ``(N, 1 + K, L)``, padding = NaN tracks)."""
    from biodl.data.sequence.alphabet import BLANK

    X = np.asarray(data.X)
    # with per-position feature tracks (N, 1 + K, L) a position is real where its tracks are (NaN after the end)
    filled = np.isfinite(X[:, 1]) if X.ndim == 3 else X != BLANK
    return np.where(filled.any(axis=1), X.shape[-1] - np.argmax(filled[:, ::-1], axis=1), 0).astype(np.int64)


def position_columns(bundle: Bundle, data: LoadedData, probs: np.ndarray) -> dict[str, Any]:
    """One row per sequence: ``length``, the ``predicted`` label string and ``prob_<class>`` arrays (one value per position)."""
    classes = bundle.classes or []
    lengths = sequence_lengths_of(data)
    hard = probs.argmax(axis=1)
    symbols = np.asarray(classes, dtype=object)
    cols: dict[str, Any] = {
        "length": lengths,
        "predicted": ["".join(symbols[hard[i, :n]]) if all(len(c) == 1 for c in classes) else " ".join(symbols[hard[i, :n]])
                      for i, n in enumerate(lengths)],
    }  # fmt: skip
    for j, c in enumerate(classes):
        cols[f"prob_{c}"] = [np.round(probs[i, j, :n], 4).astype(np.float32) for i, n in enumerate(lengths)]
    return cols


def per_position_frame(bundle: Bundle, data: LoadedData, probs: np.ndarray) -> pd.DataFrame:
    """A long table of per-position predictions: ``id``, ``position`` (1-based), ``residue``, ``predicted``, ``prob_<class>``."""
    from biodl.data.sequence.alphabet import decode_codes

    classes = bundle.classes or []
    lengths = sequence_lengths_of(data)
    rows = np.repeat(np.arange(len(lengths)), lengths)
    pos = np.concatenate([np.arange(n) for n in lengths]) if len(lengths) else np.zeros(0, np.int64)
    seqs = decode_codes(bundle.modality.codes(np.asarray(data.X)), bundle.modality.alphabet)  # type: ignore[attr-defined]
    cols: dict[str, Any] = {
        "id": np.asarray(data.ids, dtype=object)[rows],
        "position": pos + 1,
        "residue": [seqs[r][p] for r, p in zip(rows, pos, strict=True)],
        "predicted": np.asarray(classes, dtype=object)[probs[rows, :, pos].argmax(axis=1)] if len(rows) else [],
    }
    for j, c in enumerate(classes):
        cols[f"prob_{c}"] = probs[rows, j, pos]
    return pd.DataFrame(cols)


def _mask_summary(bundle: Bundle, probs: np.ndarray) -> dict[str, Any]:
    """Per-image size and predicted class fractions of segmentation outputs ``(N, K, H, W)``."""
    from biodl.metrics.segmentation import as_hard

    hard = as_hard(probs)
    classes = bundle.classes or ["0", "1"]
    if hard.ndim == 4:  # volumes: (N, D, H, W)
        shapes = getattr(bundle.modality, "volume_shapes", []) or [hard.shape[1:]] * len(hard)
        vcols: dict[str, Any] = {"shape": ["×".join(str(int(s)) for s in sh) for sh in shapes]}
        for j, c in enumerate(classes):
            vcols[f"fraction_{c}"] = [float((hard[i, : sh[0], : sh[1], : sh[2]] == j).mean()) for i, sh in enumerate(shapes)]
        return vcols
    sizes = getattr(bundle.modality, "image_sizes", []) or [hard.shape[-2:]] * len(hard)
    cols: dict[str, Any] = {"height": [int(h) for h, _ in sizes], "width": [int(w) for _, w in sizes]}
    fractions = np.zeros((len(hard), len(classes)))
    for i, (h, w) in enumerate(sizes):
        fractions[i] = np.bincount(hard[i, :h, :w].ravel(), minlength=len(classes))[: len(classes)] / max(1, h * w)
    for j, c in enumerate(classes):
        cols[f"fraction_{c}"] = fractions[:, j]
    return cols


def write_masks(bundle: Bundle, data: LoadedData, probs: np.ndarray, frame: pd.DataFrame, output: str | Path) -> pd.DataFrame:
    """Write predicted masks as PNG files next to the predictions table (``<table stem>_masks/``).

    Masks have the input images' sizes and the training masks' values (0/255 for thresholded
    binary masks). Returns ``frame`` with a ``mask_file`` column.
    """
    return _write_beside(bundle, data, probs, frame, output, writer="write_masks", column="mask_file", what="masks")


def write_probability_maps(
    bundle: Bundle, data: LoadedData, probs: np.ndarray, frame: pd.DataFrame, output: str | Path
) -> pd.DataFrame:
    """Write per-pixel probabilities as float32 TIFF files next to the table (``<table stem>_probabilities/``).

    Binary models write the foreground probability ``(H, W)``, multi-class models ``(K, H, W)`` in
    the order of the model's classes. Returns ``frame`` with a ``probability_file`` column.
    """
    return _write_beside(
        bundle, data, probs, frame, output,
        writer="write_probabilities", column="probability_file", what="probability maps", folder="probabilities",
    )  # fmt: skip


def _write_beside(
    bundle: Bundle,
    data: LoadedData,
    probs: np.ndarray,
    frame: pd.DataFrame,
    output: str | Path,
    *,
    writer: str,
    column: str,
    what: str,
    folder: str | None = None,
) -> pd.DataFrame:
    """Write one file per sample with a modality writer into a folder next to the predictions table.

    Parameters
    ----------
    bundle, data, probs, frame, output
        As for :func:`write_masks`.
    writer
        Name of the modality's method ``writer(probs, out_dir, ids) -> paths``.
    column
        Column of ``frame`` that gets the written paths.
    what
        What the files hold, for the error message.
    folder
        Suffix of the folder ``<table stem>_<folder>/`` (default: ``what``).

    Returns
    -------
    pandas.DataFrame
        A copy of ``frame`` with ``column``.

    Raises
    ------
    DataError
        The data type has no such writer.
    """
    out_dir = Path(output).with_name(f"{Path(output).stem}_{folder or what}")
    write = getattr(bundle.modality, writer, None)
    if write is None:
        raise DataError(f"data type {bundle.data_config.type!r} cannot write {what}")
    paths = write(probs, out_dir, [str(i) for i in data.ids])
    frame = frame.copy()
    frame[column] = [str(p) for p in paths]
    return frame
