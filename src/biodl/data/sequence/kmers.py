"""k-mer count features (the classical baseline for sequences)."""

from __future__ import annotations

import itertools

import numpy as np


def kmer_counts(onehot: np.ndarray, k: int, *, batch: int = 2048) -> np.ndarray:
    """Counts of every k-mer in each one-hot sequence.

    Parameters
    ----------
    onehot
        ``(N, A, L)`` one-hot sequences; windows touching an all-zero (or uniform) column are
        not counted.
    k
        k-mer length.
    batch
        Rows processed per step (bounds temporary memory).

    Returns
    -------
    np.ndarray
        ``(N, A**k)`` float32 counts; column ``j`` is the k-mer whose base-``A`` digits are
        ``j`` (see :func:`kmer_names`).
    """
    x = np.asarray(onehot)
    if x.ndim != 3:
        raise ValueError(f"expected one-hot (N, A, L), got shape {x.shape}")
    n, size, length = x.shape
    n_kmers = size**k
    out = np.zeros((n, n_kmers), dtype=np.float32)
    width = length - k + 1
    if width <= 0:
        return out
    for start in range(0, n, batch):
        xb = x[start : start + batch]
        rows = len(xb)
        codes = xb.argmax(axis=1).astype(np.int64)
        valid = xb.max(axis=1) == 1
        idx = np.zeros((rows, width), dtype=np.int64)
        ok = np.ones((rows, width), dtype=bool)
        for j in range(k):
            idx = idx * size + codes[:, j : j + width]
            ok &= valid[:, j : j + width]
        flat = (np.arange(rows, dtype=np.int64)[:, None] * n_kmers + idx)[ok]
        out[start : start + rows] = np.bincount(flat, minlength=rows * n_kmers).reshape(rows, n_kmers)
    return out


def kmer_names(symbols: str, k: int) -> list[str]:
    """Names of the :func:`kmer_counts` columns, e.g. ``AA, AC, ...`` for DNA and ``k=2``."""
    return ["".join(p) for p in itertools.product(symbols, repeat=k)]
