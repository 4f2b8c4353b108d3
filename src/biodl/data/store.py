"""Out-of-core data: a chunked, compressed HDF5 (or Zarr) store read lazily during training.

``biodl data convert`` writes what a data type's reader produced (raw inputs, encoded targets with a
label mask, ids, groups, the split) plus the metadata needed to train. Training on the store reads
only the batches it needs: each worker process opens its own file handle, and memory stays flat as
the data grow.

Rows are written in a shuffled order (the permutation is stored in ``/row_order``), so that a chunk
holds a random sample of the data even when the input file was sorted (all peaks, then all
shuffled negatives). Reading presents the rows in their original order, so splits, ids and groups
are those of an in-memory run. Training draws batches through a shuffle buffer: the chunks are
visited in random order, ``buffer_chunks`` at a time, and the rows of those chunks are mixed (as
WebDataset's and tf.data's shuffle buffers do); a small chunk cache keeps each chunk decompressed
once per visit, so memory is bounded by ``buffer_chunks`` chunks.

Layout::

    /inputs        (N, ...) raw inputs, chunked along rows (uint8 one-hot, optionally bit-packed; float32 features;
                   sequence codes (N, L), optionally packed to a few bits per position)
    /row_order     (N,) int64: the original row stored at each position (absent: stored in input order)
    /targets       (N, T) float32 (NaN = missing) or (N,) int64 (-1 = missing)
    /label_mask    (N, T) or (N,) bool, True where a label is present
    /ids           (N,) UTF-8 strings
    /groups        (N,) UTF-8 strings (optional)
    /parts         (N,) UTF-8 strings: the data's own split, "train"/"val"/"test" (optional; MedMNIST files)
    /sources       (N,) UTF-8 strings: the id of the row each row was derived from (optional; splits keep them together)
    /split/{train,val,test}  row indices (optional)
    attrs          format, format_version, biodl_version, data_type, data_config (JSON), kind,
                   target_names, classes, input_shape, input_dtype, packed_axis, code_packing, chunk_rows, row_order

A path ending in ``.zarr`` is a Zarr v3 directory with the same layout (zstd-compressed; strings
as ``<name>_utf8`` bytes plus ``<name>_offsets``, as Zarr v3 has no standard string type). It
needs the optional ``zarr`` package (``pip install 'biodl[zarr]'``).
"""

from __future__ import annotations

import json
import os
import shutil
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from biodl._version import __version__
from biodl.config import DataConfig
from biodl.data.base import LoadedData
from biodl.data.splits import Split
from biodl.data.targets import Targets
from biodl.errors import DataError

STORE_FORMAT = "biodl-store"
STORE_VERSION = 1
ZARR_SUFFIX = ".zarr"


def is_zarr(path: str | Path) -> bool:
    """True if ``path`` names a Zarr store (by its ``.zarr`` suffix)."""
    return Path(path).suffix.lower() == ZARR_SUFFIX


def _zarr() -> Any:
    try:
        import zarr
    except ModuleNotFoundError:
        raise DataError("Zarr stores (.zarr) need the zarr package: pip install 'biodl[zarr]' (or use a .h5 store)") from None
    return zarr


@contextmanager
def _open_read(path: Path) -> Iterator[Any]:
    """The store's root group (an ``h5py.File`` or a ``zarr.Group``), read-only."""
    if is_zarr(path):
        zarr = _zarr()
        if not (path / "zarr.json").is_file():
            raise OSError(f"no zarr.json in {path}")
        yield zarr.open_group(str(path), mode="r")
        return
    import h5py

    with h5py.File(path, "r") as fh:
        yield fh


def _take(ds: Any, rows: np.ndarray) -> np.ndarray:
    """Rows ``rows`` (sorted, unique) of a store array."""
    return np.asarray(ds.oindex[rows] if hasattr(ds, "oindex") else ds[rows])


def _read_strings(root: Any, name: str, *, zarr_layout: bool) -> np.ndarray | None:
    if zarr_layout:
        if f"{name}_utf8" not in root:
            return None
        raw = np.asarray(root[f"{name}_utf8"][...]).tobytes()
        ends = np.asarray(root[f"{name}_offsets"][...])
        starts = np.concatenate([np.zeros(1, dtype=ends.dtype), ends[:-1]])[: len(ends)]
        return np.asarray([raw[a:b].decode("utf-8") for a, b in zip(starts, ends, strict=True)], dtype=object)
    if name not in root:
        return None
    return np.asarray(root[name].asstr()[()])


def is_store(path: str | Path) -> bool:
    """True if ``path`` is an HDF5 file or a Zarr directory written by :func:`write_store`."""
    p = Path(path)
    if is_zarr(p):
        if not (p / "zarr.json").is_file():
            return False
    elif p.suffix.lower() not in (".h5", ".hdf5") or not p.is_file():
        return False
    try:
        with _open_read(p) as root:
            return bool(root.attrs.get("format") == STORE_FORMAT)
    except (OSError, ValueError):
        return False


class _Content(NamedTuple):
    """What a store holds, whatever the format."""

    arrays: dict[str, tuple[np.ndarray, int | None]]  # name -> (values, rows per chunk)
    strings: dict[str, Any]  # name -> (N,) strings
    split: Split | None
    attrs: dict[str, Any]


def write_store(
    path: str | Path,
    data: LoadedData,
    *,
    data_type: str,
    data_cfg: DataConfig,
    split: Split | None = None,
    chunk_rows: int = 1024,
    pack_bits: bool = False,
    shuffle_seed: int | None = 0,
) -> Path:
    """Write ``data`` to a chunked, gzip-compressed HDF5 store (atomically).

    Parameters
    ----------
    split
        Row indices of the split, in the input's row order.
    pack_bits
        Bit-pack a uint8 one-hot input ``(N, A, L)`` along the alphabet axis (8× smaller than
        uint8 one-hot before compression), or sequence codes ``(N, L)`` (what the sequence data
        type stores) to the fewest bits per position that hold every code present (3 bits for
        DNA with N: 2.7× smaller than the codes, 10.7× smaller than uint8 one-hot); unpacked
        transparently when read.
    shuffle_seed
        Rows are stored in the order of a random permutation with this seed (recorded in
        ``/row_order``; reading restores the input order). ``None``: input order.
    """
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    n = len(data.X)
    order = np.random.default_rng(shuffle_seed).permutation(n) if shuffle_seed is not None else None
    X = np.asarray(data.X) if order is None else np.asarray(data.X)[order]
    input_shape = tuple(int(s) for s in X.shape[1:])
    packed_axis = -1
    code_packing: dict[str, Any] | None = None
    if pack_bits:
        if X.dtype == np.uint8 and X.ndim == 2:
            X, code_packing = pack_codes(X)
        elif X.dtype != np.uint8 or X.ndim < 3 or not np.isin(X, (0, 1)).all():
            raise DataError("--pack-bits needs one-hot uint8 inputs of shape (N, alphabet, length) or sequence codes (N, length)")
        else:
            X = np.packbits(X, axis=1)
            packed_axis = 1
    rows = max(1, min(chunk_rows, len(X)))
    arrays: dict[str, tuple[np.ndarray, int | None]] = {"inputs": (X, rows)}  # name -> (data, chunk rows)

    def stored(values: np.ndarray) -> np.ndarray:
        return values if order is None else np.asarray(values)[order]

    if data.targets is not None:
        y = stored(data.targets.y)
        mask = (y >= 0) if data.targets.kind == "multiclass" else ~np.isnan(y)
        arrays["targets"] = (y, rows)
        arrays["label_mask"] = (mask, rows)
    if order is not None:
        arrays["row_order"] = (order.astype(np.int64), None)
    strings = {"ids": stored(data.ids)} | ({"groups": stored(data.groups)} if data.groups is not None else {})
    if data.sources is not None:
        strings["sources"] = stored(data.sources)
    if data.parts is not None:  # the data's own split (MedMNIST files)
        strings["parts"] = stored(data.parts)
    t = data.targets
    attrs = {
        "format": STORE_FORMAT,
        "format_version": STORE_VERSION,
        "biodl_version": __version__,
        "data_type": data_type,
        "data_config": json.dumps(data_cfg.model_dump(mode="json")),
        "kind": t.kind if t else "",
        "target_names": json.dumps(t.names if t else []),
        "classes": json.dumps(t.classes if t else None),
        "input_shape": json.dumps(input_shape),
        "input_dtype": str(data.X.dtype),
        "packed_axis": packed_axis,
        "code_packing": json.dumps(code_packing),
        "row_order": "input" if order is None else f"shuffled (seed {shuffle_seed})",
        "chunk_rows": rows,
        "summary": json.dumps(data.summary, default=str),
    }
    content = _Content(arrays, strings, split, attrs)
    if is_zarr(out):
        _write_zarr(tmp, content)
        old = out.with_name(out.name + ".old")
        if out.exists():
            os.replace(out, old)
        os.replace(tmp, out)
        shutil.rmtree(old, ignore_errors=True)
    else:
        _write_hdf5(tmp, content)
        os.replace(tmp, out)
    return out


def pack_codes(codes: np.ndarray) -> tuple[np.ndarray, dict[str, Any]]:
    """Codes ``(N, L)`` uint8 → ``(N, ceil(L * bits / 8))`` uint8, ``bits`` per position.

    Every code value present (alphabet codes, the N/blank codes) gets a small index; returns the
    packed array and ``{"bits", "values", "length"}`` for :func:`unpack_codes`.
    """
    values = np.unique(codes)
    bits = max(1, int(np.ceil(np.log2(max(len(values), 2)))))
    lut = np.zeros(256, dtype=np.uint8)
    lut[values] = np.arange(len(values), dtype=np.uint8)
    dense = lut[codes]
    planes = (dense[..., None] >> np.arange(bits, dtype=np.uint8)) & 1  # (N, L, bits), least significant first
    packed = np.packbits(planes.reshape(len(codes), -1), axis=1)
    return packed, {"bits": bits, "values": [int(v) for v in values], "length": int(codes.shape[1])}


def unpack_codes(packed: np.ndarray, packing: dict[str, Any]) -> np.ndarray:
    """Inverse of :func:`pack_codes`: ``(N, ceil(L * bits / 8))`` → codes ``(N, L)`` uint8."""
    bits, length = int(packing["bits"]), int(packing["length"])
    planes = np.unpackbits(packed, axis=1, count=length * bits).reshape(len(packed), length, bits)
    dense = (planes << np.arange(bits, dtype=np.uint8)).sum(axis=2, dtype=np.uint8)
    return np.asarray(packing["values"], dtype=np.uint8)[dense]


def _write_hdf5(path: Path, content: _Content) -> None:
    arrays, strings, split, attrs = content
    import h5py

    with h5py.File(path, "w") as fh:
        for name, (values, rows) in arrays.items():
            chunks = (rows, *values.shape[1:]) if rows else None
            extra = {"compression_opts": 4, "shuffle": True} if name == "inputs" else {}
            fh.create_dataset(name, data=values, chunks=chunks, compression="gzip", **extra)
        for name, values in strings.items():
            fh.create_dataset(name, data=np.asarray(values, dtype=object), dtype=h5py.string_dtype("utf-8"))
        if split is not None:
            grp = fh.create_group("split")
            for part in ("train", "val", "test"):
                grp.create_dataset(part, data=getattr(split, part).astype(np.int64))
            grp.attrs["method"] = split.method
        fh.attrs.update(attrs)


def _write_zarr(path: Path, content: _Content) -> None:
    arrays, strings, split, attrs = content
    zarr = _zarr()
    if path.exists():
        shutil.rmtree(path)
    root = zarr.open_group(str(path), mode="w")
    # every chunk is written, even all-zero ones, so a missing chunk file means a damaged store
    full = {"write_empty_chunks": True}
    for name, (values, rows) in arrays.items():
        chunks = (rows, *values.shape[1:]) if rows else values.shape
        root.create_array(name, data=values, chunks=chunks, config=full)
    for name, values in strings.items():
        encoded = [str(v).encode("utf-8") for v in values]
        raw = np.frombuffer(b"".join(encoded), dtype=np.uint8) if encoded else np.zeros(0, np.uint8)
        root.create_array(f"{name}_utf8", data=raw, config=full)
        root.create_array(f"{name}_offsets", data=np.cumsum([len(e) for e in encoded], dtype=np.int64), config=full)
    if split is not None:
        grp = root.create_group("split")
        for part in ("train", "val", "test"):
            grp.create_array(part, data=getattr(split, part).astype(np.int64), config=full)
        grp.attrs["method"] = split.method
    root.attrs.update(attrs)


def _missing_chunks(path: Path, ds: Any) -> int:
    """Chunk files a Zarr array should have but lacks (0 for HDF5, which checks itself)."""
    if not is_zarr(path):
        return 0
    expected = int(np.prod([-(-n // c) for n, c in zip(ds.shape, ds.chunks, strict=True)]))
    found = sum(len(files) for _, _, files in os.walk(path / "inputs" / "c"))
    return max(0, expected - found)


class LazyRows:
    """Rows read on demand, like an array: ``rows[idx]`` returns only those rows as a dense block.

    The common interface of streamed inputs (a biodl store, an AnnData file read in backed mode,
    a sparse matrix densified per batch); training streams any of them with :func:`store_loader`.

    Attributes
    ----------
    shape, dtype, ndim
        Of the whole (virtual) dense array.
    chunk_rows
        Rows read together efficiently (the unit :class:`ChunkBatchSampler` shuffles).
    """

    shape: tuple[int, ...]
    dtype: np.dtype[Any]
    ndim: int
    chunk_rows: int = 1024
    #: ``(N,)`` stored position of each row when rows are stored in another order (``None``: input order).
    position: np.ndarray | None = None
    #: Chunks kept decompressed in memory (the streaming shuffle buffer sets it; 0: none).
    cache_chunks: int = 0

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, idx: Any) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def fit_sample(self, idx: np.ndarray) -> Any:
        """Rows ``idx`` (sorted) in the form preprocessing is fitted on (default: a dense block)."""
        return self[idx]


class StoreRows(LazyRows):
    """Lazy row access to a store's inputs, like an array: ``rows[idx]`` reads only those rows.

    Rows are indexed in the input's original order (a shuffled store maps them to their stored
    positions). With ``cache_chunks > 0`` the last chunks read stay decompressed in memory (the
    streaming shuffle buffer reads rows of a few chunks at a time). Safe across processes: the
    file handle is opened on first use in each process.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._fh: Any = None
        self._pid = -1
        meta = read_store_meta(self.path)
        self.shape: tuple[int, ...] = (meta["n"], *meta["input_shape"])
        self.dtype = np.dtype(meta["input_dtype"])
        self.packed_axis: int = meta["packed_axis"]
        self.code_packing: dict[str, Any] | None = meta["code_packing"]
        self.chunk_rows: int = meta["chunk_rows"]
        self.ndim = len(self.shape)
        #: ``(N,)`` stored position of each original row (``None``: stored in input order).
        self.position: np.ndarray | None = None
        if meta["shuffled"]:
            with _open_read(self.path) as fh:
                order = np.asarray(fh["row_order"][...], dtype=np.int64)
            self.position = np.empty_like(order)
            self.position[order] = np.arange(len(order))
        self.cache_chunks = 0
        self._cache: OrderedDict[int, np.ndarray] = OrderedDict()

    def _handle(self) -> Any:
        if self._fh is None or self._pid != os.getpid():
            if is_zarr(self.path):
                self._fh = _zarr().open_group(str(self.path), mode="r")
            else:
                import h5py

                self._fh = h5py.File(self.path, "r")
            self._pid = os.getpid()
            self._cache = OrderedDict()
        return self._fh["inputs"]

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_fh"], state["_pid"], state["_cache"] = None, -1, OrderedDict()
        return state

    def stored_order(self) -> np.ndarray:
        """Original row indices in stored order (reading them in slices of this is sequential)."""
        if self.position is None:
            return np.arange(len(self))
        order = np.empty_like(self.position)
        order[self.position] = np.arange(len(self.position))
        return order

    def stored_positions(self, idx: np.ndarray) -> np.ndarray:
        """Stored positions of original rows ``idx``."""
        idx = np.asarray(idx, dtype=np.int64)
        return idx if self.position is None else self.position[idx]

    def _chunk(self, ds: Any, c: int) -> np.ndarray:
        block = self._cache.get(c)
        if block is None:
            block = np.asarray(ds[c * self.chunk_rows : (c + 1) * self.chunk_rows])
            if self.cache_chunks > 0:
                self._cache[c] = block
                while len(self._cache) > self.cache_chunks:
                    self._cache.popitem(last=False)
        else:
            self._cache.move_to_end(c)
        return block

    def _read(self, ds: Any, pos: np.ndarray) -> np.ndarray:
        """Stored rows at positions ``pos`` (any order, repeats allowed)."""
        if self.cache_chunks > 0:
            chunk = pos // self.chunk_rows
            out: np.ndarray | None = None
            for c in np.unique(chunk):
                sel = np.flatnonzero(chunk == c)
                block = self._chunk(ds, int(c))
                if out is None:
                    out = np.empty((len(pos), *block.shape[1:]), dtype=block.dtype)
                out[sel] = block[pos[sel] - c * self.chunk_rows]
            assert out is not None
            return out
        order = np.argsort(pos, kind="stable")
        uniq, inverse = np.unique(pos[order], return_inverse=True)
        block = _take(ds, uniq)[inverse]
        out = np.empty_like(block)
        out[order] = block
        return out

    def _decoded(self, block: np.ndarray) -> np.ndarray:
        """Stored (possibly bit-packed) rows as the inputs' dtype and shape."""
        if self.packed_axis >= 0:
            block = np.unpackbits(block, axis=self.packed_axis, count=self.shape[self.packed_axis])
        elif self.code_packing:
            block = unpack_codes(block, self.code_packing)
        return np.asarray(block, dtype=self.dtype)

    def read_stored(self, start: int, stop: int) -> np.ndarray:
        """The rows stored at positions ``start:stop`` (a sequential read, whatever the row order)."""
        return self._decoded(np.asarray(self._handle()[start:stop]))

    def __getitem__(self, idx: Any) -> np.ndarray:
        ds = self._handle()
        if isinstance(idx, slice) and self.position is None:
            block = np.asarray(ds[idx])
        else:
            if isinstance(idx, slice):
                idx = np.arange(len(self))[idx]
            idx = np.asarray(idx, dtype=np.int64)
            if idx.ndim == 0:
                return self[idx.reshape(1)][0]
            block = self._read(ds, self.stored_positions(idx)) if len(idx) else np.asarray(ds[0:0])
        return self._decoded(block)


def read_store_meta(path: str | Path) -> dict[str, Any]:
    """Validate a store and return its metadata (raises :class:`DataError` with the reason)."""
    p = Path(path)
    kind = "Zarr" if is_zarr(p) else "HDF5"
    try:
        opened = _open_read(p)
        fh = opened.__enter__()
    except (OSError, ValueError) as exc:
        raise DataError(f"{p}: cannot open the {kind} store (truncated or corrupt?): {exc}") from None
    try:
        attrs = dict(fh.attrs)
        if attrs.get("format") != STORE_FORMAT:
            raise DataError(f"{p}: not a biodl data store (write one with `biodl data convert`)")
        if int(attrs.get("format_version", -1)) != STORE_VERSION:
            raise DataError(
                f"{p}: store format version {attrs.get('format_version')} (biodl {attrs.get('biodl_version')}) "
                f"is not readable by biodl {__version__} (store version {STORE_VERSION}); convert the data again"
            )
        if "inputs" not in fh:
            raise DataError(f"{p}: store has no /inputs dataset")
        try:
            n = int(fh["inputs"].shape[0])
            fh["inputs"][max(n - 1, 0) : n]  # the last chunk must be readable
            missing = _missing_chunks(p, fh["inputs"])
        except (OSError, KeyError, ValueError) as exc:
            raise DataError(f"{p}: the store is truncated or corrupt: {exc}") from None
        if missing:
            raise DataError(f"{p}: the store is truncated or corrupt: /inputs lacks {missing} chunk file(s)")
        meta: dict[str, Any] = {
            "n": n,
            "data_type": str(attrs["data_type"]),
            "data_config": json.loads(attrs["data_config"]),
            "kind": str(attrs["kind"]),
            "target_names": json.loads(attrs["target_names"]),
            "classes": json.loads(attrs["classes"]),
            "input_shape": tuple(json.loads(attrs["input_shape"])),
            "input_dtype": str(attrs["input_dtype"]),
            "packed_axis": int(attrs["packed_axis"]),
            "code_packing": json.loads(attrs.get("code_packing", "null")),
            "shuffled": "row_order" in fh,
            "row_order": str(attrs.get("row_order", "input")),
            "chunk_rows": int(attrs["chunk_rows"]),
            "summary": json.loads(attrs.get("summary", "{}")),
            "has_targets": "targets" in fh,
        }
    finally:
        opened.__exit__(None, None, None)
    return meta


def open_store(path: str | Path) -> tuple[LoadedData, dict[str, Any]]:
    """A :class:`LoadedData` whose ``X`` is a lazy :class:`StoreRows`; targets/ids are read into memory."""
    meta = read_store_meta(path)
    rows = StoreRows(path)

    def original(values: np.ndarray | None) -> np.ndarray | None:
        return values if values is None or rows.position is None else values[rows.position]

    with _open_read(Path(path)) as fh:
        targets = None
        if meta["has_targets"]:
            y = original(np.asarray(fh["targets"][...]))
            assert y is not None
            targets = Targets(y, meta["kind"], meta["target_names"], meta["classes"])
        ids = original(_read_strings(fh, "ids", zarr_layout=is_zarr(path)))
        groups = original(_read_strings(fh, "groups", zarr_layout=is_zarr(path)))
        sources = original(_read_strings(fh, "sources", zarr_layout=is_zarr(path)))
        parts = original(_read_strings(fh, "parts", zarr_layout=is_zarr(path)))
    summary = dict(meta["summary"])
    summary.update(store=str(path), streamed=True, **{"store row order": meta["row_order"]})
    return LoadedData(rows, targets, ids, groups, summary, parts=parts, sources=sources), meta  # type: ignore[arg-type]
