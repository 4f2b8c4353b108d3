"""Reading a biodl store block by block in stored order, and putting per-row results back in input order.

Batch prediction on a store (:mod:`biodl.predict_stream`) reads the store's chunks sequentially
(each compressed chunk is decompressed once), which for a store written in shuffled order is not
the input order. :class:`ColumnSpill` keeps each block's results on disk in stored order (one
flat file per numeric column; UTF-8 bytes plus end offsets per string column) and hands them back
in input order, a block of rows at a time, so that memory stays flat however many rows there are.

>>> blocks = StoreBlocks("reads.h5")
>>> for rows, X, ids in blocks.blocks(16384): ...
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from biodl.data.store import StoreRows, _open_read, is_zarr, read_store_meta


class StoreBlocks:
    """A store's rows in stored order, ``block_rows`` at a time: original row indices, raw inputs and ids.

    Parameters
    ----------
    path
        An HDF5 (``.h5``) or Zarr (``.zarr``) store written by :func:`biodl.data.store.write_store`.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.meta = read_store_meta(self.path)
        self.rows = StoreRows(self.path)
        self.n = int(self.meta["n"])
        #: ``(N,)`` stored position of each original row (``None``: stored in input order).
        self.position = self.rows.position

    def _ids(self, root: Any, start: int, stop: int) -> np.ndarray:
        """Ids of stored rows ``start:stop`` (row numbers when the store has none)."""
        if is_zarr(self.path):
            if "ids_utf8" not in root:
                return np.asarray([str(i) for i in range(start, stop)], dtype=object)
            ends = np.asarray(root["ids_offsets"][start:stop], dtype=np.int64)
            first = int(root["ids_offsets"][start - 1]) if start > 0 else 0
            raw = np.asarray(root["ids_utf8"][first : int(ends[-1])] if len(ends) else np.zeros(0, np.uint8)).tobytes()
            starts = np.concatenate([[first], ends[:-1]]) - first
            return np.asarray([raw[a:b].decode("utf-8") for a, b in zip(starts, ends - first, strict=True)], dtype=object)
        if "ids" not in root:
            return np.asarray([str(i) for i in range(start, stop)], dtype=object)
        return np.asarray(root["ids"].asstr()[start:stop], dtype=object)

    def blocks(self, block_rows: int) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        """``(original row indices (n,), raw inputs (n, *input_shape), ids (n,))`` of consecutive stored rows.

        ``block_rows`` is rounded up to whole store chunks, so that no chunk is decompressed twice.
        """
        step = max(1, -(-block_rows // self.rows.chunk_rows)) * self.rows.chunk_rows
        with _open_read(self.path) as root:
            order = root["row_order"] if self.position is not None else None
            for start in range(0, self.n, step):
                stop = min(start + step, self.n)
                rows = np.asarray(order[start:stop], dtype=np.int64) if order is not None else np.arange(start, stop)
                X = self.rows.read_stored(start, stop)
                yield rows, X, self._ids(root, start, stop)


#: Rows gathered through one memory map: the map (and the file pages it touched, which count as
#: resident memory while mapped) lives for this many rows, so a take's memory does not grow with the file.
GATHER_ROWS = 2048


def _gather(path: Path, dtype: np.dtype[Any], index: np.ndarray) -> np.ndarray:
    """Items ``index`` of the flat binary file ``path`` (any order), through short-lived memory maps."""
    out = np.empty(len(index), dtype=dtype)
    for start in range(0, len(index), GATHER_ROWS):
        mapped = np.memmap(path, dtype=dtype, mode="r")
        out[start : start + GATHER_ROWS] = mapped[index[start : start + GATHER_ROWS]]
        del mapped
    return out


class ColumnSpill:
    """Table rows appended in one order and read back in another, through files in ``folder``.

    Numeric and boolean columns are flat binary files (read back through a memory map, a block of
    rows at a time); other columns are UTF-8 strings (bytes plus int64 end offsets).
    """

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)
        self.columns: list[str] = []
        self.dtypes: dict[str, np.dtype[Any] | None] = {}  # None: strings
        self.rows = 0
        self._ends: dict[str, int] = {}

    def _file(self, j: int, part: str) -> Path:
        return self.folder / f"col{j}.{part}"

    def append(self, frame: pd.DataFrame) -> None:
        """Append ``frame``'s rows (the first frame fixes the columns and their types)."""
        if not self.columns:
            self.columns = [str(c) for c in frame.columns]
            for c in frame.columns:
                kind = frame[c].dtype.kind
                self.dtypes[str(c)] = np.dtype(frame[c].dtype) if kind in "biufc" else None
                self._ends[str(c)] = 0
        for j, c in enumerate(self.columns):
            values = frame[c].to_numpy()
            dtype = self.dtypes[c]
            if dtype is not None:
                with open(self._file(j, "bin"), "ab") as fh:
                    fh.write(np.ascontiguousarray(values, dtype=dtype).tobytes())
                continue
            encoded = [str(v).encode("utf-8") for v in values]
            ends = self._ends[c] + np.cumsum([len(e) for e in encoded], dtype=np.int64)
            with open(self._file(j, "utf8"), "ab") as fh:
                fh.write(b"".join(encoded))
            with open(self._file(j, "ends"), "ab") as fh:
                fh.write(ends.tobytes())
            if len(ends):
                self._ends[c] = int(ends[-1])
        self.rows += len(frame)

    def take(self, index: np.ndarray) -> pd.DataFrame:
        """Rows ``index`` (positions in append order, any order) as a frame."""
        index = np.asarray(index, dtype=np.int64)
        cols: dict[str, Any] = {}
        for j, c in enumerate(self.columns):
            dtype = self.dtypes[c]
            if dtype is not None:
                cols[c] = _gather(self._file(j, "bin"), dtype, index) if len(index) else np.zeros(0, dtype)
                continue
            ends = _gather(self._file(j, "ends"), np.dtype(np.int64), index) if len(index) else np.zeros(0, np.int64)
            starts = np.where(index > 0, _gather(self._file(j, "ends"), np.dtype(np.int64), np.maximum(index - 1, 0)), 0)
            lengths = ends - starts
            total = int(lengths.sum())
            if total:
                before = np.cumsum(lengths) - lengths  # where each string starts in the gathered buffer
                at = np.repeat(starts - before, lengths) + np.arange(total)
                buf = _gather(self._file(j, "utf8"), np.dtype(np.uint8), at).tobytes()
            else:
                buf, before = b"", np.zeros(len(index), np.int64)
            bounds = zip(before.tolist(), (before + lengths).tolist(), strict=True)
            cols[c] = np.asarray([buf[a:b].decode("utf-8") for a, b in bounds], dtype=object)
        return pd.DataFrame(cols, columns=self.columns)


SPILL_PREFIX = ".biodl-spill-"


def remove_stale_spills(folder: Path) -> list[Path]:
    """Remove the spill folders in ``folder`` left by killed runs (their ``owner.pid`` names no live process)."""
    removed = []
    for d in folder.glob(f"{SPILL_PREFIX}*"):
        try:
            pid = int((d / "owner.pid").read_text())
        except (OSError, ValueError):
            continue  # not ours to judge (no or unreadable owner file)
        try:
            os.kill(pid, 0)
            continue  # its run is still going
        except ProcessLookupError:
            pass
        except PermissionError:
            continue  # a live process of another user
        shutil.rmtree(d, ignore_errors=True)
        removed.append(d)
    if removed:
        print(f"removed {len(removed)} spill folder(s) left by killed runs in {folder}")
    return removed
