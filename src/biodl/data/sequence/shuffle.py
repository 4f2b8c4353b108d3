"""Dinucleotide shuffling that keeps every dinucleotide count exactly (Altschul & Erikson 1985).

The sequence is a walk through the graph whose vertices are symbols and whose edges are the
``L - 1`` consecutive pairs. A shuffle is a random Eulerian walk over the same edges that
starts and ends with the same symbols: for every vertex but the final one a random "last
exit" edge is drawn until these edges form a tree towards the final symbol, the other exits
of each vertex are permuted at random, and the walk follows them. Every dinucleotide (and
mononucleotide) count is kept; this is how DeepBind made negatives for ChIP-seq peaks.

>>> import numpy as np
>>> from biodl.data.sequence.alphabet import encode_codes
>>> codes = encode_codes(b"ACGTTGCAACGT")
>>> shuffled = dinucleotide_shuffle(codes, np.random.default_rng(0))
>>> sorted(zip(shuffled[:-1], shuffled[1:])) == sorted(zip(codes[:-1], codes[1:]))
True
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def _reaches_root(last_exit: np.ndarray, active: np.ndarray, root: int) -> bool:
    """Whether following ``last_exit`` from every active vertex ends at ``root``."""
    k = len(last_exit)
    for v in np.flatnonzero(active):
        u, steps = int(v), 0
        while u != root:
            u = int(last_exit[u])
            steps += 1
            if steps > k:
                return False
    return True


def dinucleotide_shuffle(seq: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One dinucleotide-preserving shuffle.

    Parameters
    ----------
    seq
        ``(L,)`` integer codes (any symbols, e.g. alphabet codes or ASCII bytes).
    rng
        Random generator (the shuffle is reproducible from its state).

    Returns
    -------
    np.ndarray
        ``(L,)`` codes of the same dtype with the same first and last symbol and the same count
        of every ordered pair of neighbours.
    """
    seq = np.asarray(seq)
    n = len(seq)
    if n < 3:
        return seq.copy()
    symbols, inv = np.unique(seq, return_inverse=True)
    k = len(symbols)
    src, dst = inv[:-1], inv[1:]
    root = int(inv[-1])
    counts = np.bincount(src, minlength=k)
    order = np.argsort(src, kind="stable")
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    targets = dst[order]  # exits of vertex v: targets[starts[v] : starts[v] + counts[v]]
    active = counts > 0
    active[root] = False
    while True:
        pick = starts + (rng.random(k) * np.maximum(counts, 1)).astype(np.int64)
        last_exit = np.where(active, targets[np.minimum(pick, len(targets) - 1)], root)
        if _reaches_root(last_exit, active, root):
            break
    keys = rng.random(len(targets))
    keys[pick[active]] = 2.0  # the chosen last exit goes after the other exits of its vertex
    vertex = np.repeat(np.arange(k), counts)
    exits = targets[np.lexsort((keys, vertex))].tolist()
    pos = starts.tolist()
    out = [int(inv[0])]
    v = out[0]
    for _ in range(n - 1):
        nxt = exits[pos[v]]
        pos[v] += 1
        out.append(nxt)
        v = nxt
    return symbols[np.asarray(out)]


def shuffle_many(seqs: Sequence[np.ndarray], seed: int, times: int = 1) -> list[np.ndarray]:
    """``times`` dinucleotide shuffles of each sequence, in order ``seq0 × times, seq1 × times...``."""
    rng = np.random.default_rng(seed)
    return [dinucleotide_shuffle(s, rng) for s in seqs for _ in range(times)]


def dinucleotide_counts(seq: np.ndarray, size: int = 256) -> np.ndarray:
    """``(size, size)`` counts of ordered neighbour pairs of ``seq`` (codes below ``size``)."""
    s = np.asarray(seq, dtype=np.int64)
    return np.bincount(s[:-1] * size + s[1:], minlength=size * size).reshape(size, size)
