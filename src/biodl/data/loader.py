"""Fast in-memory batches: one indexing operation per batch, not per example."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset


class ArrayDataset(Dataset[tuple[torch.Tensor, torch.Tensor]]):
    """Inputs ``(N, ...)`` and targets ``(N, T)`` or ``(N,)`` served batch-wise.

    Inputs keep their compact dtype (e.g. uint8 one-hot); the model casts per batch.
    """

    def __init__(self, X: np.ndarray, y: np.ndarray | None) -> None:
        self.X = torch.from_numpy(np.ascontiguousarray(X))
        if y is None:
            self.y = torch.zeros(len(X), dtype=torch.float32)
        else:
            self.y = torch.from_numpy(np.ascontiguousarray(y))

    def __len__(self) -> int:
        return int(self.X.shape[0])

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.X[i], self.y[i]

    def __getitems__(self, idx: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
        index = torch.as_tensor(idx, dtype=torch.long)
        return self.X[index], self.y[index]


def _identity(batch: Any) -> Any:
    return batch


def make_loader(
    X: np.ndarray, y: np.ndarray | None, *, batch_size: int, shuffle: bool, num_workers: int = 0, seed: int = 0
) -> DataLoader[Any]:
    """A DataLoader over arrays that fetches each batch with one indexing call."""
    return dataset_loader(ArrayDataset(X, y), batch_size=batch_size, shuffle=shuffle, num_workers=num_workers, seed=seed)


def dataset_loader(
    dataset: Dataset[Any], *, batch_size: int, shuffle: bool, num_workers: int = 0, seed: int = 0
) -> DataLoader[Any]:
    """A DataLoader over a map-style dataset whose ``__getitems__`` returns whole batches."""
    gen = torch.Generator()
    gen.manual_seed(seed)
    return DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=shuffle,
        num_workers=num_workers,
        collate_fn=_identity,
        generator=gen,
        persistent_workers=num_workers > 0,
    )
