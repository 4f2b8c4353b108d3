"""Per-position targets: one label per sequence position (sequence labelling).

The targets kind ``positions`` holds class indices ``y`` of shape ``(N, L)`` int64, where ``L`` is
the longest sequence and ``-1`` marks a position that does not count: padding after the end of a
shorter sequence, or a position its mask column leaves out (e.g. unresolved residues). Models
return scores ``(N, C, L)``; the loss and every metric use only positions with ``y >= 0``.

Inputs stay padded one-hot ``(N, A, L)`` with all-zero columns after each sequence's end; batches
are cut to their longest sequence (:class:`LengthBuckets` groups similar lengths), which changes
nothing for models that zero their padded positions (:mod:`biodl.models.positions_base`).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch.utils.data import Dataset, Sampler

from biodl.data.targets import Targets
from biodl.errors import DataError

_MISSING = {"", "na", "nan", "none", "null"}


def _cell_labels(value: Any) -> list[str] | None:
    """A label string (``"HHEC"``) or list (``["H", "H", "E", "C"]``, ``"H H E C"``) as per-position labels."""
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return None
    if isinstance(value, (list, tuple, np.ndarray)):
        return [str(v).strip() for v in value]
    text = str(value).strip()
    if text.lower() in _MISSING:
        return None
    for sep in (",", ";", " "):
        if sep in text:
            return [t for t in (p.strip() for p in text.split(sep)) if t]
    return list(text)


def _cell_mask(value: Any) -> np.ndarray | None:
    """A 0/1 string (``"0111"``) or list as a boolean array, or ``None`` if the value is not 0/1."""
    items = _cell_labels(value)
    if items is None:
        return None
    if not all(v in ("0", "1") for v in items):
        return None
    return np.array([v == "1" for v in items], dtype=bool)


def encode_position_targets(
    frame: pd.DataFrame,
    column: str,
    lengths: np.ndarray,
    *,
    where: Sequence[str],
    mask_column: str | None = None,
    classes: list[str] | None = None,
    width: int | None = None,
) -> tuple[Targets, dict[str, Any]]:
    """Encode per-position label strings into ``positions`` targets ``(N, width)``.

    Parameters
    ----------
    frame
        The rows, with the label column (and the mask column when it is present).
    column
        Label column: one string (or list) per row, as long as the row's sequence.
    lengths
        ``(N,)`` sequence lengths.
    where
        ``(N,)`` row descriptions (``file: row 5``) for errors.
    mask_column
        Optional 0/1 column of the same lengths; 0 = the position does not count. Absent from
        ``frame``: every position counts.
    classes
        A trained model's class order; new labels are errors. ``None``: the sorted labels seen.
    width
        ``L``, the padded width (default: the longest sequence).

    Returns
    -------
    (Targets, dict)
        The targets and facts for the run summary (positions, masked positions).

    Raises
    ------
    DataError
        A label string or mask whose length differs from its sequence's (naming the row, field and
        both lengths), a label outside ``classes``, a mask value other than 0/1.
    """
    if column not in frame.columns:
        raise DataError(f"{where[0].split(':')[0] if where else 'input'}: label column {column!r} not found")
    n = len(frame)
    L = int(width if width is not None else (lengths.max() if n else 0))
    rows: list[list[str] | None] = []
    for i, v in enumerate(frame[column].tolist()):
        labels = _cell_labels(v)
        if labels is not None and len(labels) != int(lengths[i]):
            raise DataError(
                f"{where[i]}: field {column!r}: {len(labels)} labels for a sequence of {int(lengths[i])} positions "
                "(one label per position expected)"
            )
        rows.append(labels)
    seen = sorted({t for r in rows if r for t in r})
    if classes is None:
        if len(seen) < 2:
            raise DataError(
                f"{where[0] if where else 'input'}: per-position target {column!r} needs at least 2 classes, found {seen}"
            )
        classes = seen
    index = {c: k for k, c in enumerate(classes)}
    y = np.full((n, L), -1, dtype=np.int64)
    for i, r in enumerate(rows):
        if r is None:
            continue
        try:
            y[i, : len(r)] = [index[t] for t in r]
        except KeyError:
            bad = next(t for t in r if t not in index)
            pos = r.index(bad) + 1
            raise DataError(
                f"{where[i]}: field {column!r}: label {bad!r} at position {pos} is not one of the classes {classes}"
            ) from None
    summary: dict[str, Any] = {"labelled positions": int((y >= 0).sum())}
    if mask_column is not None and mask_column in frame.columns:
        left_out = 0
        for i, v in enumerate(frame[mask_column].tolist()):
            items = _cell_labels(v)
            if items is None:
                continue
            m = _cell_mask(v)
            if m is None:
                bad = next(t for t in items if t not in ("0", "1"))
                raise DataError(f"{where[i]}: field {mask_column!r}: mask value {bad!r} (expected 0 or 1 per position)")
            if len(m) != int(lengths[i]):
                raise DataError(
                    f"{where[i]}: field {mask_column!r}: mask of {len(m)} positions for a sequence of {int(lengths[i])} positions"
                )
            drop = np.flatnonzero(~m)
            left_out += int((y[i, drop] >= 0).sum())
            y[i, drop] = -1
        summary[f"positions left out by the mask ({mask_column} = 0)"] = left_out
    elif mask_column is not None:
        summary[f"mask column {mask_column!r}"] = "absent: every position counts"
    return Targets(y, "positions", [column], list(classes)), summary


def sequence_lengths(X: np.ndarray) -> np.ndarray:
    """``(N,)`` length of each padded one-hot row ``(N, A, L)``: one past its last non-zero column."""
    if X.ndim != 3 or X.shape[-1] == 0:
        return np.full(len(X), X.shape[-1] if X.ndim else 0, dtype=np.int64)
    occupied: np.ndarray = np.asarray(X.any(axis=1))  # (N, L)
    last = np.where(occupied.any(axis=1), X.shape[-1] - np.argmax(occupied[:, ::-1], axis=1), 0)
    return last.astype(np.int64)


def length_order(X: np.ndarray, y: np.ndarray | None = None) -> np.ndarray:
    """Row order by length (for evaluation loaders: batches of similar lengths are cut shorter)."""
    lengths = sequence_lengths(X)
    if y is not None and y.ndim == 2:
        lengths = np.maximum(lengths, _label_extent(y))
    return np.argsort(lengths, kind="stable")


def _label_extent(y: np.ndarray) -> np.ndarray:
    counted = y >= 0
    return np.where(counted.any(axis=1), y.shape[1] - np.argmax(counted[:, ::-1], axis=1), 0)


def trim_batch(x: torch.Tensor, y: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Cut a padded batch ``(B, A, L)`` (and ``(B, L)`` targets) after its longest sequence."""
    occupied = x.detach().reshape(x.shape[0], x.shape[1], -1).ne(0).any(dim=1).any(dim=0)
    if y is not None:
        occupied = occupied | (y.detach() >= 0).any(dim=0)
    nz = torch.nonzero(occupied)
    end = int(nz[-1]) + 1 if len(nz) else 1
    if end == x.shape[-1]:
        return x, y
    return x[..., :end], (y[..., :end] if y is not None else None)


class LengthBuckets(Dataset[tuple[torch.Tensor, torch.Tensor]]):
    """Training rows served in batches of similar lengths, each cut after its longest sequence.

    Each epoch shuffles the rows, sorts blocks of ``bucket`` batches by length, cuts them into
    batches and shuffles the batch order (the usual bucketing of variable-length batches).

    Parameters
    ----------
    X
        Padded one-hot inputs ``(N, A, L)``.
    y
        Per-position targets ``(N, L)`` (``-1`` = not counted).
    """

    def __init__(self, X: np.ndarray, y: np.ndarray, bucket: int = 50) -> None:
        self.X = torch.from_numpy(np.ascontiguousarray(X))
        self.y = torch.from_numpy(np.ascontiguousarray(y))
        self.lengths = np.maximum(sequence_lengths(X), _label_extent(y) if y.ndim == 2 else 0)
        self.bucket = bucket

    def __len__(self) -> int:
        return int(self.X.shape[0])

    def __getitems__(self, idx: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
        index = torch.as_tensor(idx, dtype=torch.long)
        end = max(1, int(self.lengths[idx].max()))
        return self.X[index][..., :end], self.y[index][..., :end]

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.X[i], self.y[i]

    def batch_sampler(self, batch_size: int, seed: int) -> Sampler[list[int]]:
        """The epoch-wise bucketed batches (seeded: the same seed gives the same batches)."""
        return _BucketSampler(self.lengths, batch_size, self.bucket, seed)


class _BucketSampler(Sampler[list[int]]):
    def __init__(self, lengths: np.ndarray, batch_size: int, bucket: int, seed: int) -> None:
        self.lengths, self.batch_size, self.bucket, self.seed = lengths, batch_size, bucket, seed
        self.epoch = 0

    def __len__(self) -> int:
        return -(-len(self.lengths) // self.batch_size)

    def __iter__(self) -> Iterator[list[int]]:
        rng = np.random.default_rng([self.seed, self.epoch])
        self.epoch += 1
        perm = rng.permutation(len(self.lengths))
        block = self.batch_size * self.bucket
        batches: list[np.ndarray] = []
        for start in range(0, len(perm), block):
            chunk = perm[start : start + block]
            chunk = chunk[np.argsort(self.lengths[chunk], kind="stable")]
            batches.extend(chunk[i : i + self.batch_size] for i in range(0, len(chunk), self.batch_size))
        for b in rng.permutation(len(batches)):
            yield [int(i) for i in batches[b]]


class PositionsSamples:
    """:class:`biodl.data.base.SampledAugment` of per-position data: bucketed, cut batches."""

    def training_samples(self, X: np.ndarray, y: np.ndarray) -> tuple[Any, Any] | None:
        """``(LengthBuckets, None)``."""
        return LengthBuckets(X, y), None
