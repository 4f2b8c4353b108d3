from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pytest

from biodl.config import DataConfig
from biodl.data.base import LoadedData
from biodl.data.splits import random_split
from biodl.data.store import StoreRows, is_store, open_store, read_store_meta, write_store
from biodl.data.store_stream import ChunkBatchSampler
from biodl.data.tabular import Tabular
from biodl.data.targets import Targets
from biodl.errors import DataError
from conftest import PBMC


def _pbmc() -> tuple[LoadedData, DataConfig]:
    cfg = DataConfig(path=[str(PBMC)], task="classification", target_columns=["bulk_labels"])
    return Tabular(cfg).load(cfg.path), cfg


def test_roundtrip_equals_in_memory(tmp_path: Path) -> None:
    data, cfg = _pbmc()
    split = random_split(len(data), (0.6, 0.1, 0.3), seed=0)
    path = write_store(tmp_path / "s.h5", data, data_type="tabular", data_cfg=cfg, split=split, chunk_rows=50)
    lazy, meta = open_store(path)
    assert meta["n"] == 700 and meta["kind"] == "multiclass" and meta["chunk_rows"] == 50
    idx = np.array([699, 3, 3, 120, 0])  # unsorted, repeated: returned in the order asked
    np.testing.assert_array_equal(lazy.X[idx], data.X[idx])
    np.testing.assert_array_equal(lazy.X[10:20], data.X[10:20])
    assert lazy.targets is not None and data.targets is not None
    np.testing.assert_array_equal(lazy.targets.y, data.targets.y)
    assert lazy.targets.classes == data.targets.classes
    assert list(lazy.ids) == list(data.ids)
    with h5py.File(path) as fh:
        np.testing.assert_array_equal(fh["split/test"][()], split.test)
        assert fh["inputs"].chunks == (50, 765) and fh["inputs"].compression == "gzip"
        assert fh["label_mask"][()].all()


def test_bitpacked_one_hot_roundtrip(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    codes = rng.integers(0, 4, size=(300, 101))
    onehot = np.zeros((300, 4, 101), dtype=np.uint8)
    np.put_along_axis(onehot, codes[:, None, :], 1, axis=1)
    y = rng.integers(0, 2, size=(300, 1)).astype(np.float32)
    y[5, 0] = np.nan
    data = LoadedData(onehot, Targets(y, "binary", ["bound"], None), np.arange(300).astype(str))
    plain = write_store(tmp_path / "plain.h5", data, data_type="tabular", data_cfg=DataConfig(), chunk_rows=64)
    packed = write_store(tmp_path / "packed.h5", data, data_type="tabular", data_cfg=DataConfig(), chunk_rows=64, pack_bits=True)
    rows = StoreRows(packed)
    assert rows.shape == (300, 4, 101) and rows.dtype == np.uint8
    np.testing.assert_array_equal(rows[np.arange(300)], onehot)
    with h5py.File(packed) as fh:
        assert fh["inputs"].shape == (300, 1, 101)
        stored_at = int(np.flatnonzero(fh["row_order"][()] == 5)[0])  # rows are stored in shuffled order
        assert not fh["label_mask"][stored_at, 0]
    assert packed.stat().st_size < plain.stat().st_size
    with pytest.raises(DataError, match="pack-bits"):
        write_store(
            tmp_path / "x.h5",
            LoadedData(onehot.astype(np.float32), None, data.ids),
            data_type="t",
            data_cfg=DataConfig(),
            pack_bits=True,
        )


def test_bad_stores_are_clear_errors(tmp_path: Path) -> None:
    data, cfg = _pbmc()
    path = write_store(tmp_path / "s.h5", data, data_type="tabular", data_cfg=cfg)
    truncated = tmp_path / "trunc.h5"
    truncated.write_bytes(path.read_bytes()[: path.stat().st_size // 3])
    with pytest.raises(DataError, match="truncated or corrupt"):
        read_store_meta(truncated)
    with h5py.File(path, "a") as fh:
        fh.attrs["format_version"] = 99
    with pytest.raises(DataError, match="store format version 99"):
        read_store_meta(path)
    plain = tmp_path / "plain.h5"
    with h5py.File(plain, "w") as fh:
        fh["X"] = np.zeros((3, 2))
    with pytest.raises(DataError, match="not a biodl data store"):
        read_store_meta(plain)


def test_chunk_sampler_covers_rows_once_and_reads_few_chunks() -> None:
    rows = np.random.default_rng(0).choice(10_000, size=6000, replace=False)
    sampler = ChunkBatchSampler(rows, chunk_rows=256, batch_size=128, shuffle=True, seed=1)
    epoch1 = list(sampler)
    epoch2 = list(sampler)
    flat = np.concatenate(epoch1)
    assert sorted(flat.tolist()) == sorted(rows.tolist()) and len(epoch1) == len(sampler)
    # a batch mixes the rows of the shuffle buffer's chunks (two buffers where it straddles them), never more
    assert max(len(np.unique(np.asarray(b) // 256)) for b in epoch1) <= 2 * sampler.buffer_chunks
    assert np.mean([len(np.unique(np.asarray(b) // 256)) for b in epoch1]) > 4
    assert not np.array_equal(np.concatenate(epoch2), flat)  # reshuffled each epoch


def _zarr_or_skip() -> None:
    pytest.importorskip("zarr", reason="Zarr stores need the optional zarr package (pip install 'biodl[zarr]')")


def test_zarr_store_reads_like_the_hdf5_store(tmp_path: Path) -> None:
    _zarr_or_skip()
    data, cfg = _pbmc()
    split = random_split(len(data), (0.6, 0.1, 0.3), seed=0)
    h5 = write_store(tmp_path / "s.h5", data, data_type="tabular", data_cfg=cfg, split=split, chunk_rows=50)
    zs = write_store(tmp_path / "s.zarr", data, data_type="tabular", data_cfg=cfg, split=split, chunk_rows=50)
    assert zs.is_dir() and is_store(zs) and is_store(h5) and not is_store(tmp_path)
    a, meta_a = open_store(h5)
    b, meta_b = open_store(zs)
    assert meta_a == meta_b
    idx = np.array([699, 3, 3, 120, 0])
    np.testing.assert_array_equal(b.X[idx], data.X[idx])
    np.testing.assert_array_equal(b.X[650:700], a.X[650:700])
    assert a.targets is not None and b.targets is not None
    np.testing.assert_array_equal(b.targets.y, a.targets.y)
    assert list(b.ids) == list(a.ids) == list(data.ids)
    # rewriting replaces the store whole; no temporary directory is left behind
    write_store(zs, data, data_type="tabular", data_cfg=cfg, chunk_rows=100)
    assert read_store_meta(zs)["chunk_rows"] == 100 and sorted(p.name for p in tmp_path.iterdir()) == ["s.h5", "s.zarr"]


def test_zarr_bitpacked_and_non_ascii_ids(tmp_path: Path) -> None:
    _zarr_or_skip()
    rng = np.random.default_rng(0)
    onehot = np.zeros((100, 4, 30), dtype=np.uint8)
    np.put_along_axis(onehot, rng.integers(0, 4, size=(100, 1, 30)), 1, axis=1)
    ids = np.asarray([f"séq-{i}" for i in range(100)], dtype=object)
    data = LoadedData(onehot, None, ids, groups=np.asarray(["α"] * 50 + ["β"] * 50, dtype=object))
    path = write_store(tmp_path / "p.zarr", data, data_type="tabular", data_cfg=DataConfig(), chunk_rows=16, pack_bits=True)
    lazy, meta = open_store(path)
    assert not meta["has_targets"]
    np.testing.assert_array_equal(lazy.X[np.arange(100)], onehot)
    assert list(lazy.ids) == list(ids) and lazy.groups is not None and set(lazy.groups) == {"α", "β"}


def test_damaged_zarr_store_is_a_clear_error(tmp_path: Path) -> None:
    _zarr_or_skip()
    data, cfg = _pbmc()
    path = write_store(tmp_path / "s.zarr", data, data_type="tabular", data_cfg=cfg, chunk_rows=64)
    chunk = next(p for p in (path / "inputs" / "c").rglob("*") if p.is_file() and p.parts[-2] == "0")
    chunk.unlink()  # e.g. an interrupted copy: zarr would silently read zeros for it
    with pytest.raises(DataError, match=r"truncated or corrupt: /inputs lacks 1 chunk file"):
        read_store_meta(path)
    (path / "zarr.json").unlink()
    with pytest.raises(DataError, match="cannot open the Zarr store"):
        read_store_meta(path)
