"""Streamed batch prediction and embedding of large inputs: delimited tables, image folders and biodl stores.

A table is read a chunk of lines at a time (the header line repeated for every chunk); a folder
(or list) of image files a chunk of files at a time. Each chunk is read by the bundle's data
type exactly as the whole input would be and encoded for the model in a background thread
while the engine runs on the previous chunk, and each chunk's rows are appended to the output
in input order (image rows keep the ids a whole read gives them). The output is written to ``NAME.partial`` and
renamed to ``NAME`` only when every row is written, so an interrupted run never leaves a
complete-looking file. Peak memory depends on the chunk size, not on the number of rows.

A biodl store (HDF5/Zarr, ``biodl data convert``) is read in whole store chunks in stored order
(sequential reads, each compressed chunk decompressed once); a store written in shuffled order has
its results kept on disk meanwhile (:class:`~biodl.data.store_blocks.ColumnSpill`) and written out
in input order at the end, so the output's rows are in the order of the converted input either way.

>>> n = stream_predict(bundle, ["reads.tsv.gz"], "pred.parquet", run=engine.predict, chunk_rows=65536)
"""

from __future__ import annotations

import gzip
import os
import queue
import re
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from biodl.errors import DataError
from biodl.inference import H5_SUFFIXES, append_h5, load_data, output_columns, per_position_frame, position_columns

if TYPE_CHECKING:
    from biodl.bundle import Bundle
    from biodl.data.base import LoadedData

#: Rows per chunk unless ``--chunk-rows`` says otherwise.
CHUNK_ROWS = 16384
#: Inputs larger than this (bytes on disk, all files) are streamed without ``--chunk-rows``.
STREAM_BYTES = 64 << 20
#: Image inputs of more files than this are streamed without ``--chunk-rows``.
STREAM_IMAGES = 4 * CHUNK_ROWS
_TABLE_SUFFIXES = (".csv", ".tsv", ".txt", ".tab", ".seq")
_OUTPUT_SUFFIXES = (".csv", ".tsv", ".txt", ".parquet", ".h5", ".hdf5")


@dataclass
class Chunk:
    """One chunk of input rows: ids ``(n,)``, model inputs ``(n, *in_shape)`` and the loaded data."""

    ids: np.ndarray
    X_model: np.ndarray
    data: LoadedData
    #: ``(n,)`` input row of each chunk row when a store is read in stored order (``None``: input order).
    rows: np.ndarray | None = None


def store_input(paths: list[str]) -> str | None:
    """The path when ``paths`` is one biodl store (HDF5/Zarr written by ``biodl data convert``), else ``None``."""
    from biodl.data.store import is_store

    return paths[0] if len(paths) == 1 and is_store(paths[0]) else None


def _table_suffix(path: str) -> str:
    name = path.lower().removesuffix(".gz")
    return Path(name).suffix


def _image_files(paths: list[str]) -> bool:
    """Whether ``paths`` are image files and/or folders of image files (not NPZ, tables or class folders)."""
    from biodl.data.image.sources import detect_layout

    return bool(paths) and all(Path(p).exists() for p in paths) and detect_layout(paths, None) == "files"


def _npz_input(paths: list[str]) -> str | None:
    """The path when ``paths`` is one NPZ file of images."""
    return paths[0] if len(paths) == 1 and paths[0].lower().endswith(".npz") and Path(paths[0]).is_file() else None


def streamable(bundle: Bundle, paths: list[str], output: str | Path) -> str | None:
    """``None`` when these inputs and output can be streamed, else why not (one phrase)."""
    if bundle.modality.name not in ("sequence", "tabular", "image"):
        return f"{bundle.modality.name} inputs are not streamed"
    if bundle.kind == "segmentation" or (bundle.modality.cfg.per_position and bundle.kind != "positions"):
        return f"{bundle.kind} outputs are not streamed"
    if callable(getattr(bundle.model, "instance_outputs", None)):
        return "multiple-instance models are not streamed"
    if Path(output).suffix.lower() not in _OUTPUT_SUFFIXES:
        return f"{Path(output).suffix or 'this'} outputs are not streamed (use .csv, .tsv, .parquet or .h5)"
    store = store_input(paths)
    if store is not None:
        from biodl.data.store import read_store_meta

        stored = read_store_meta(store)["data_type"]
        if stored != bundle.data_config.type:
            return f"the store holds {stored} data but the model reads {bundle.data_config.type} data"
        return None
    if bundle.modality.name == "image":
        if not (_npz_input(paths) or _image_files(paths)):
            return "only image files, folders of image files and one NPZ file are streamed (not tables or class folders)"
        return None
    if not paths or any(_table_suffix(p) not in _TABLE_SUFFIXES for p in paths):
        return "only delimited text tables (.csv, .tsv, .txt, .seq, optionally .gz) are streamed"
    if any("=" in Path(p).name and not Path(p).exists() for p in paths):
        return "CLASS=PATH inputs are not streamed"
    return None


def should_stream(bundle: Bundle, paths: list[str], output: str | Path, chunk_rows: int | None) -> bool:
    """Stream when asked (``chunk_rows``) or when the inputs are large; raises when asked but impossible."""
    why = streamable(bundle, paths, output)
    store = store_input(paths)
    if store is not None:  # stores are only read streamed
        if why is not None:
            raise DataError(f"{store}: a biodl store is predicted in chunks, and {why}")
        return True
    if chunk_rows is not None:
        if why is not None:
            raise DataError(f"--chunk-rows: {why}")
        return True
    if why is None and bundle.modality.name == "image" and not _npz_input(paths):
        from biodl.data.image.sources import image_files

        return len(image_files(paths)[0]) > STREAM_IMAGES
    return why is None and sum(Path(p).stat().st_size for p in paths if Path(p).exists()) > STREAM_BYTES


def _open_text(path: str) -> IO[str]:
    if path.lower().endswith(".gz"):
        return gzip.open(path, "rt", newline="")
    return open(path, newline="")


def _has_header(bundle: Bundle, path: str, first_lines: list[str], tmp: Path) -> bool:
    """Whether the file's first line is a header (as the data type reads the whole file)."""
    if bundle.modality.name != "sequence":
        return True
    from biodl.data.sequence.records import read_sequence_table

    probe = tmp / f"probe{_table_suffix(path)}"
    probe.write_text("".join(first_lines))
    opts = bundle.modality.cfg.sequence
    column = opts.column or getattr(bundle.modality, "sequence_column", None)
    alphabet = bundle.modality.alphabet  # type: ignore[attr-defined]
    return bool(read_sequence_table(str(probe), alphabet, column=column, header=opts.header)[2])


def _line_chunks(bundle: Bundle, paths: list[str], chunk_rows: int, tmp: Path) -> Iterator[tuple[str, Path, int]]:
    """``(source path, temporary file, data lines before it)``: the header and the next ``chunk_rows`` data lines."""
    for path in paths:
        with _open_text(path) as fh:
            first = [line for _, line in zip(range(2), fh, strict=False)]
            if not first:
                continue
            header = first[0] if _has_header(bundle, path, first, tmp) else ""
            pending = first[1:] if header else first
            index = 0
            while True:
                lines = pending + [line for _, line in zip(range(chunk_rows - len(pending)), fh, strict=False)]
                pending = []
                if not any(line.strip() for line in lines):
                    break
                part = tmp / f"chunk{index % 3}{_table_suffix(path)}"  # at most 3 chunk files alive
                with open(part, "w", newline="") as out:
                    out.write(header)
                    out.writelines(lines)
                yield path, part, index * chunk_rows
                index += 1


def _image_chunks(bundle: Bundle, paths: list[str], overrides: Mapping[str, Any] | None, chunk_rows: int) -> Iterator[LoadedData]:
    """The image files of ``paths`` read ``chunk_rows`` files at a time, with the ids a whole read gives them."""
    from biodl.data.image.sources import image_files

    files, ids = image_files(paths)
    over = {**(overrides or {}), "image.layout": "auto"}  # the chunk's files, whatever layout the model was trained on
    for start in range(0, len(files), chunk_rows):
        data = load_data(bundle, [str(f) for f in files[start : start + chunk_rows]], over, require_targets=False)
        data.ids = np.asarray(ids[start : start + len(data.X)], dtype=object)
        yield data


def _npz_chunks(
    bundle: Bundle, path: str, overrides: Mapping[str, Any] | None, chunk_rows: int, tmp: Path
) -> Iterator[LoadedData]:
    """The images of an NPZ file (the arrays a whole read takes) ``chunk_rows`` rows at a time, with its ids.

    Each block is read from the zip member as a stream and written to a small uncompressed NPZ
    that the image data type reads as it reads the whole file.
    """
    from biodl.data.image.sources import npz_image_keys, npz_row_blocks
    from biodl.inference import _override

    bundle.modality.cfg = _override(bundle.data_config, overrides) if overrides else bundle.data_config
    parts = bundle.modality._npz_parts(path, bundle.classes)  # type: ignore[attr-defined]
    over = {**(overrides or {}), "image.layout": "auto"}
    index = 0
    for key, prefix in npz_image_keys(path, parts):
        start = 0
        for block in npz_row_blocks(path, key, chunk_rows):
            part = tmp / f"chunk{index % 3}.npz"  # at most 3 chunk files alive
            np.savez(part, images=block)
            data = load_data(bundle, [str(part)], over, require_targets=False)
            data.ids = np.asarray([f"{prefix}{start + i}" for i in range(len(block))], dtype=object)
            start += len(block)
            index += 1
            yield data


def _source_message(message: str, part: Path, source: str, before: int) -> str:
    """``message`` about chunk file ``part`` rewritten to name ``source`` and its row numbers."""
    message = re.sub(rf"{re.escape(part.name)} row (\d+)", lambda m: f"{Path(source).name} row {int(m[1]) + before}", message)
    return message.replace(str(part), source).replace(part.name, Path(source).name)


def iter_chunks(
    bundle: Bundle,
    paths: list[str],
    overrides: Mapping[str, Any] | None,
    chunk_rows: int,
    encode: Callable[[np.ndarray], np.ndarray],
) -> Iterator[Chunk]:
    """Chunks of the inputs in order, read and encoded one chunk ahead in a background thread.

    Row ids that the data type numbers itself (no id column) continue across chunks as they
    would across one whole read.
    """
    done = object()
    q: queue.Queue[Any] = queue.Queue(maxsize=1)
    stop = threading.Event()

    def tables(tmp: Path) -> Iterator[LoadedData]:
        offset = 0
        for source, part, before in _line_chunks(bundle, paths, chunk_rows, tmp):
            try:
                data = load_data(bundle, [str(part)], overrides, require_targets=False)
            except DataError as exc:  # name the input file and its row, not the chunk's
                raise DataError(_source_message(str(exc), part, source, before)) from None
            ids = np.asarray(data.ids, dtype=object)
            if bundle.modality.cfg.id_column is None and len(ids) and ids[0] == "0" and ids[-1] == str(len(ids) - 1):
                ids = np.array([str(offset + i) for i in range(len(ids))], dtype=object)
            offset += len(ids)
            data.ids = ids
            yield data

    def put(chunk: Chunk) -> bool:
        """Hand ``chunk`` to the consumer; False when it stopped reading."""
        while not stop.is_set():
            try:
                q.put(chunk, timeout=0.2)
                return True
            except queue.Full:
                continue
        return False

    def produce(tmp: Path) -> None:
        try:
            store = store_input(paths)
            if store is not None:
                from biodl.data.base import LoadedData
                from biodl.data.store_blocks import StoreBlocks

                for rows, X, ids in StoreBlocks(store).blocks(chunk_rows):
                    chunk = Chunk(ids, encode(X), LoadedData(X, None, ids, None, {}), rows)
                    if not put(chunk):
                        return
                q.put(done)
                return
            npz = _npz_input(paths) if bundle.modality.name == "image" else None
            if npz is not None:
                source: Iterator[LoadedData] = _npz_chunks(bundle, npz, overrides, chunk_rows, tmp)
            elif bundle.modality.name == "image":
                source = _image_chunks(bundle, paths, overrides, chunk_rows)
            else:
                source = tables(tmp)
            for data in source:
                if not put(Chunk(np.asarray(data.ids, dtype=object), encode(np.asarray(data.X)), data)):
                    return
            q.put(done)
        except BaseException as exc:  # handed to the consumer, raised there
            q.put(exc)

    with tempfile.TemporaryDirectory(prefix="biodl-stream-") as tmp:
        worker = threading.Thread(target=produce, args=(Path(tmp),), name="biodl-reader", daemon=True)
        worker.start()
        try:
            while True:
                item = q.get()
                if item is done:
                    return
                if isinstance(item, BaseException):
                    raise item
                yield item
        finally:
            stop.set()
            while worker.is_alive():
                try:
                    q.get(timeout=0.1)
                except queue.Empty:
                    pass
            worker.join()


class TableAppender:
    """Append frames to a CSV/TSV/Parquet/HDF5 file written as ``NAME.partial`` and renamed on :meth:`commit`."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.partial = self.path.with_name(self.path.name + ".partial")
        self.suffix = self.path.suffix.lower()
        self.rows = 0
        self._parquet: Any = None
        self._h5: Any = None
        self._fh: IO[str] | None = None

    def write(self, frame: pd.DataFrame) -> None:
        """Append ``frame`` (the first call writes the header / schema)."""
        if self.suffix in H5_SUFFIXES:  # one dataset per column, extended chunk by chunk
            import h5py

            if self._h5 is None:
                self._h5 = h5py.File(self.partial, "w")
            append_h5(self._h5, frame)
        elif self.suffix == ".parquet":
            import pyarrow as pa
            import pyarrow.parquet as pq

            table = pa.Table.from_pandas(frame, preserve_index=False)
            if self._parquet is None:
                self._parquet = pq.ParquetWriter(self.partial, table.schema)
            self._parquet.write_table(table.cast(self._parquet.schema))
        else:
            if self._fh is None:
                self._fh = open(self.partial, "w", newline="")
            sep = "," if self.suffix == ".csv" else "\t"
            frame.to_csv(self._fh, sep=sep, index=False, header=self.rows == 0)
        self.rows += len(frame)

    def _close(self) -> None:
        if self._h5 is not None:
            self._h5.close()
            self._h5 = None
        if self._parquet is not None:
            self._parquet.close()
            self._parquet = None
        if self._fh is not None:
            self._fh.close()
            self._fh = None

    def commit(self) -> Path:
        """Close and rename the file to its final name."""
        self._close()
        if not self.partial.exists():  # no rows at all
            self.partial.write_text("")
        os.replace(self.partial, self.path)
        return self.path

    def abort(self) -> None:
        """Close and delete the partial file."""
        self._close()
        self.partial.unlink(missing_ok=True)


class Progress:
    """Progress with rows/s on stderr: a bar on a terminal, else a line every ``every_s`` seconds (logs).

    Parameters
    ----------
    what
        The command (``predict``, ``embed``) named in the bar or line.
    every_s
        Seconds between two lines when stderr is not a terminal.
    """

    def __init__(self, what: str, every_s: float = 30.0) -> None:
        from tqdm.auto import tqdm

        self.what = what
        self.every_s = every_s
        self.start = self._shown = time.perf_counter()
        self.rows = 0
        self.tty = sys.stderr.isatty()
        self.bar = tqdm(desc=what, unit=" rows", unit_scale=True, file=sys.stderr, disable=not self.tty)

    def update(self, n: int) -> None:
        self.rows += n
        self.bar.update(n)
        now = time.perf_counter()
        if not self.tty and now - self._shown >= self.every_s:
            self._shown = now
            rate = self.rows / max(now - self.start, 1e-9)
            print(f"{self.what}: {self.rows:,} rows, {rate:,.0f} rows/s", file=sys.stderr, flush=True)

    def close(self) -> float:
        """Rows per second overall."""
        self.bar.close()
        seconds = max(time.perf_counter() - self.start, 1e-9)
        return self.rows / seconds


class _Allocator:
    """Gives freed chunk memory back to the system after every chunk (glibc ``malloc_trim``).

    Chunk-sized arrays come from heap arenas (one per thread) that would otherwise keep their
    freed pages and grow over millions of rows; trimming once per chunk keeps peak memory flat.
    The allocator's own thresholds stay as they are: forcing every block over 1 MiB into a fresh
    ``mmap`` (an earlier way to the same end) made the engine page-fault its large intermediate
    tensors on every batch, some 10 % of its speed. No effect outside Linux/glibc.
    """

    def __init__(self) -> None:
        self._trim: Callable[[int], int] | None = None
        if sys.platform.startswith("linux"):
            try:
                import ctypes

                self._trim = ctypes.CDLL("libc.so.6").malloc_trim
            except (OSError, AttributeError):
                self._trim = None

    def trim(self) -> None:
        """Return free pages of every arena to the system."""
        if self._trim is not None:
            self._trim(0)


def stream_rows(
    bundle: Bundle,
    paths: list[str],
    output: str | Path,
    compute: Callable[[Chunk], pd.DataFrame],
    *,
    overrides: Mapping[str, Any] | None = None,
    chunk_rows: int = CHUNK_ROWS,
    what: str = "predict",
    first: Callable[[Chunk], None] | None = None,
) -> tuple[Path, int, float]:
    """Stream ``paths`` through ``compute`` (one output frame per chunk) into ``output``.

    Returns
    -------
    tuple
        The output path, the number of rows and the overall rows/s.
    """
    if chunk_rows < 1:
        raise DataError("--chunk-rows must be at least 1")
    allocator = _Allocator()
    writer = TableAppender(output)
    progress = Progress(what)
    from biodl.data.store_blocks import SPILL_PREFIX, remove_stale_spills

    remove_stale_spills(writer.path.parent)
    spill_dir = tempfile.TemporaryDirectory(prefix=SPILL_PREFIX, dir=writer.path.parent)
    (Path(spill_dir.name) / "owner.pid").write_text(str(os.getpid()))
    store = store_input(paths)
    position = None
    if store is not None:
        from biodl.data.store import StoreRows
        from biodl.data.store_blocks import ColumnSpill

        position = StoreRows(store).position  # a store in shuffled order: results kept on disk until every row is done
    spill = ColumnSpill(spill_dir.name) if position is not None else None
    try:
        for i, chunk in enumerate(iter_chunks(bundle, paths, overrides, chunk_rows, bundle.modality.transform)):
            if i == 0 and first is not None:
                first(chunk)
            frame = compute(chunk)
            if spill is not None:
                spill.append(frame)
            else:
                writer.write(frame)
            progress.update(len(chunk.ids))
            del chunk, frame
            allocator.trim()
        if spill is not None and position is not None:  # the input order, a block of rows at a time
            for start in range(0, len(position), chunk_rows):
                writer.write(spill.take(position[start : start + chunk_rows]))
                allocator.trim()
        path = writer.commit()
    except BaseException:
        writer.abort()
        progress.close()
        raise
    finally:
        spill_dir.cleanup()
    return path, writer.rows, progress.close()


def stream_predict(
    bundle: Bundle,
    paths: list[str],
    output: str | Path,
    run: Callable[[np.ndarray], np.ndarray],
    *,
    overrides: Mapping[str, Any] | None = None,
    chunk_rows: int = CHUNK_ROWS,
    first: Callable[[Chunk], None] | None = None,
    per_residue: bool = False,
) -> tuple[Path, int, float]:
    """Predictions of ``run`` (an engine's ``predict``) for every row, streamed into ``output``.

    ``per_residue`` (per-position models): the long table, one output row per position of every input
    sequence (:func:`biodl.inference.per_position_frame`), written chunk by chunk like the rest (the caller
    checks that ``bundle`` is one: ``biodl predict`` refuses ``--per-residue`` otherwise, before reading).
    """

    def compute(chunk: Chunk) -> pd.DataFrame:
        out = run(chunk.X_model)
        if per_residue:
            return per_position_frame(bundle, chunk.data, out)
        if bundle.kind == "positions":  # one row per sequence: its label string and per-position probabilities
            return pd.DataFrame({"id": chunk.ids, **position_columns(bundle, chunk.data, out)})
        return pd.DataFrame(output_columns(bundle, chunk.ids, out))

    return stream_rows(bundle, paths, output, compute, overrides=overrides, chunk_rows=chunk_rows, first=first)
