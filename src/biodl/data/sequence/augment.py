"""Training-time augmentation of one-hot batches: random strand and random shift.

A random shift slices a wider window when the data have one (interval windows read with
``shift`` bp of flank on each side: :class:`FlankCropDataset`); sequences without flanks
(FASTA, tables) are shifted in place, the vacated positions becoming unknown (all-zero) bases.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset


def reverse_complement(x: torch.Tensor) -> torch.Tensor:
    """Reverse complement of one-hot DNA/RNA ``(N, 4, L)`` (channels ACGT/ACGU): flip both axes."""
    return x.flip(-2).flip(-1)


def shift_batch(x: torch.Tensor, shift: torch.Tensor) -> torch.Tensor:
    """Shift each sequence of ``(N, A, L)`` by ``shift[i]`` positions (right if positive).

    Vacated positions become all-zero columns (unknown bases); nothing wraps around.
    """
    n, a, length = x.shape
    src = torch.arange(length, device=x.device)[None, :] - shift[:, None].to(x.device)
    valid = (src >= 0) & (src < length)
    gathered = torch.gather(x, 2, src.clamp(0, length - 1)[:, None, :].expand(n, a, length))
    return torch.where(valid[:, None, :], gathered, torch.zeros((), dtype=x.dtype, device=x.device))


class FlankCropDataset(Dataset[tuple[torch.Tensor, torch.Tensor]]):
    """Training rows as random slices of windows that carry ``flank`` extra positions per side.

    Parameters
    ----------
    X
        ``(N, A, L + 2 * flank)`` one-hot windows (any dtype).
    y
        ``(N, ...)`` targets.
    flank
        Positions of context on each side; each fetch draws a shift in ``[-flank, flank]``
        per row and returns the ``L`` positions around the shifted centre.
    """

    def __init__(self, X: np.ndarray, y: np.ndarray, flank: int) -> None:
        self.X = torch.from_numpy(np.ascontiguousarray(X))
        self.y = torch.from_numpy(np.ascontiguousarray(y))
        self.flank = int(flank)
        self.length = int(self.X.shape[-1]) - 2 * self.flank
        if self.length < 1:
            raise ValueError(f"windows of {self.X.shape[-1]} positions cannot carry flanks of {self.flank}")

    def __len__(self) -> int:
        return int(self.X.shape[0])

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        x, y = self.__getitems__([i])
        return x[0], y[0]

    def __getitems__(self, idx: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
        index = torch.as_tensor(idx, dtype=torch.long)
        x = self.X[index]
        start = torch.randint(0, 2 * self.flank + 1, (len(index),))
        cols = (start[:, None] + torch.arange(self.length)[None, :])[:, None, :].expand(-1, x.shape[1], -1)
        return torch.gather(x, 2, cols), self.y[index]


class SequenceAugment:
    """Batch augmentation: a random strand per sequence and a random shift of up to ``shift``.

    Parameters
    ----------
    rc
        Replace each sequence by its reverse complement with probability 1/2.
    shift
        Shift each sequence by a uniform integer in ``[-shift, shift]``.
    flank
        The training windows carry this many extra positions per side: shifts are then random
        slices of them (:meth:`training_samples`) instead of in-place shifts.

    Works on any dtype (compact uint8 batches stay uint8) and returns ``(N, A, L)``.
    """

    def __init__(self, rc: bool = True, shift: int = 0, flank: int = 0) -> None:
        self.rc = rc
        self.flank = int(flank)
        self.shift = 0 if self.flank else int(shift)

    def training_samples(self, X: np.ndarray, y: np.ndarray) -> tuple[Any, SequenceAugment] | None:
        """With flanks: the training rows as random slices (:class:`FlankCropDataset`) and the
        strand augmentation still to apply per batch; ``None`` otherwise (rows as they are)."""
        if not self.flank:
            return None
        return FlankCropDataset(X, y, self.flank), SequenceAugment(rc=self.rc)

    def __call__(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        n = x.shape[0]
        if self.rc:
            flip = torch.rand(n, generator=generator) < 0.5
            x = torch.where(flip.to(x.device)[:, None, None], reverse_complement(x), x)
        if self.shift > 0:
            s = torch.randint(-self.shift, self.shift + 1, (n,), generator=generator)
            x = shift_batch(x, s)
        return x

    def __repr__(self) -> str:
        return f"SequenceAugment(rc={self.rc}, shift={self.shift}, flank={self.flank})"
