"""Streaming batches from a data store: a shuffle buffer over stored chunks, per-batch preprocessing.

See :mod:`biodl.data.store` for the layout. :func:`store_loader` is what training uses.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from biodl.data.store import LazyRows

#: Chunks mixed together by the streaming shuffle buffer (memory: this many decompressed chunks).
SHUFFLE_BUFFER_CHUNKS = 8


class StoreDataset(Dataset[tuple[torch.Tensor, torch.Tensor]]):
    """Batches from a store: rows read lazily, preprocessing applied per batch.

    Parameters
    ----------
    rows
        Lazy inputs.
    y
        Targets ``(N, T)`` / ``(N,)`` for all rows (already scaled), in memory.
    transform
        Raw inputs → model inputs, applied to each batch (``Modality.transform``).
    """

    def __init__(self, rows: LazyRows, y: np.ndarray, transform: Callable[[np.ndarray], np.ndarray]) -> None:
        self.rows, self.y, self.transform = rows, y, transform

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        x, y = self.__getitems__([i])
        return x[0], y[0]

    def __getitems__(self, idx: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
        index = np.asarray(idx, dtype=np.int64)
        x = self.transform(self.rows[index])
        return torch.from_numpy(np.ascontiguousarray(x)), torch.from_numpy(np.ascontiguousarray(self.y[index]))


class ChunkBatchSampler(Sampler[list[int]]):
    """Batches of ``rows`` drawn through a shuffle buffer of ``buffer_chunks`` stored chunks.

    With ``shuffle`` the chunks are visited in random order, ``buffer_chunks`` at a time, and the
    rows of those chunks are mixed before they are cut into batches: a batch holds rows of several
    chunks (not one chunk's rows, which in a sorted file would be one class), while memory is
    bounded by the buffer. Without ``shuffle`` rows come chunk by chunk in stored order. In a
    distributed run every rank takes an equal share of the chunks.

    Parameters
    ----------
    rows
        Row indices (original order) to draw.
    positions
        ``(N,)`` stored position of every row of the store (``LazyRows.position``), or ``None``
        when rows are stored in input order.
    """

    def __init__(
        self,
        rows: np.ndarray,
        *,
        chunk_rows: int,
        batch_size: int,
        shuffle: bool,
        seed: int = 0,
        positions: np.ndarray | None = None,
        buffer_chunks: int = SHUFFLE_BUFFER_CHUNKS,
    ) -> None:
        rows = np.asarray(rows, dtype=np.int64)
        pos = rows if positions is None else np.asarray(positions)[rows]
        order = np.argsort(pos, kind="stable")
        self.rows = rows[order]
        self.chunk_rows, self.batch_size, self.shuffle, self.seed = chunk_rows, batch_size, shuffle, seed
        self.buffer_chunks = max(1, buffer_chunks)
        self.epoch = 0
        chunk_id = pos[order] // chunk_rows
        bounds = np.flatnonzero(np.diff(chunk_id)) + 1
        self.chunks = np.split(self.rows, bounds) if len(self.rows) else []

    def _my_chunks(self) -> list[np.ndarray]:
        rng = np.random.default_rng(self.seed + self.epoch)
        order = rng.permutation(len(self.chunks)) if self.shuffle else np.arange(len(self.chunks))
        chunks = [self.chunks[i] for i in order]
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            rank, world = torch.distributed.get_rank(), torch.distributed.get_world_size()
            chunks = chunks[rank::world]
        if self.shuffle:
            k = self.buffer_chunks
            chunks = [rng.permutation(np.concatenate(chunks[i : i + k])) for i in range(0, len(chunks), k)]
        return chunks

    def __iter__(self) -> Iterator[list[int]]:
        chunks = self._my_chunks()
        self.epoch += 1
        flat = np.concatenate(chunks) if chunks else np.zeros(0, dtype=np.int64)
        for start in range(0, len(flat), self.batch_size):
            yield flat[start : start + self.batch_size].tolist()

    def __len__(self) -> int:
        n = sum(len(c) for c in self._my_chunks())
        return (n + self.batch_size - 1) // self.batch_size


def _identity(batch: Any) -> Any:
    return batch


def store_loader(
    rows: LazyRows,
    y: np.ndarray,
    index: np.ndarray,
    transform: Callable[[np.ndarray], np.ndarray],
    *,
    chunk_rows: int,
    batch_size: int,
    shuffle: bool,
    num_workers: int = 0,
    seed: int = 0,
    buffer_chunks: int = SHUFFLE_BUFFER_CHUNKS,
) -> DataLoader[Any]:
    """A DataLoader streaming ``index`` rows of a store in batches mixed by a shuffle buffer of
    ``buffer_chunks`` chunks (see :class:`ChunkBatchSampler`)."""
    sampler = ChunkBatchSampler(
        index, chunk_rows=chunk_rows, batch_size=batch_size, shuffle=shuffle, seed=seed,
        positions=rows.position, buffer_chunks=buffer_chunks if shuffle else 1,
    )  # fmt: skip
    rows.cache_chunks = max(rows.cache_chunks, buffer_chunks if shuffle else 1)
    return DataLoader(
        StoreDataset(rows, y, transform),
        batch_sampler=sampler,
        num_workers=num_workers,
        collate_fn=_identity,
        persistent_workers=num_workers > 0,
    )
