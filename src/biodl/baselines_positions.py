"""The classical baseline of per-position labelling: sliding-window one-hot logistic regression.

Each counted position is described by the one-hot residues in a window of ``±flank`` positions
around it (positions outside the sequence are all-zero, plus one "outside" indicator per window
slot), and a multinomial logistic regression predicts its class (the classical window methods of
secondary-structure prediction, e.g. Qian & Sejnowski 1988). Training positions are subsampled to
``max_train`` (uniformly at random, seeded) to bound the time; validation and test positions are
all scored. The metrics are those of the network (:func:`biodl.metrics.positions.positions_metrics`).
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from biodl.metrics.positions import positions_metrics

#: Window half-width (±7 residues: a 15-residue window).
FLANK = 7
#: Training positions the logistic regression is fitted on (a random subsample when there are more).
MAX_TRAIN_POSITIONS = 100_000


def window_features(X: np.ndarray, rows: np.ndarray, cols: np.ndarray, flank: int = FLANK) -> np.ndarray:
    """``(n, (2 flank + 1) (A + 1))`` float32 window features of positions ``(rows[k], cols[k])``.

    Parameters
    ----------
    X
        One-hot inputs ``(N, A, L)`` (zero columns after each sequence's end).
    rows, cols
        Sequence index and position of each described position.
    """
    n, a, length = X.shape
    width = 2 * flank + 1
    offsets = np.arange(-flank, flank + 1)
    out = np.empty((len(rows), width, a + 1), dtype=np.float32)
    order = np.argsort(rows, kind="stable")
    bounds = np.searchsorted(rows[order], np.arange(0, n + 512, 512))
    pos = np.arange(length + 2 * flank) - flank
    for b, start in enumerate(range(0, n, 512)):  # one block of sequences at a time bounds the memory
        sel = order[bounds[b] : bounds[b + 1]]
        if not len(sel):
            continue
        block = X[start : start + 512]
        padded = np.zeros((len(block), a + 1, length + 2 * flank), dtype=np.float32)
        padded[:, :a, flank : flank + length] = block
        inside: np.ndarray = np.asarray(block.any(axis=1))
        last = np.where(inside.any(axis=1), length - np.argmax(inside[:, ::-1], axis=1), 0)
        padded[:, a] = (pos[None, :] < 0) | (pos[None, :] >= last[:, None])
        idx = cols[sel, None] + offsets[None, :] + flank  # (k, W)
        out[sel] = padded[rows[sel, None] - start, :, idx]
    return out.reshape(len(rows), -1)


def _positions(y: np.ndarray, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    r, c = np.nonzero(y[idx] >= 0)
    return idx[r], c


def window_baseline(
    X: np.ndarray,
    y: np.ndarray,
    train: np.ndarray,
    val: np.ndarray,
    test: np.ndarray,
    *,
    classes: list[str],
    seed: int = 0,
    flank: int = FLANK,
    max_train: int = MAX_TRAIN_POSITIONS,
) -> dict[str, Any]:
    """Fit the window logistic regression on training positions; score validation and test sequences.

    Returns
    -------
    dict
        ``{"name": "window_logistic", "val": metrics, "test": metrics, "training_positions": n,
        "flank": flank, "seconds": s}`` (metrics as for the network; empty for an empty split).
    """
    from sklearn.linear_model import LogisticRegression

    t0 = time.perf_counter()
    rng = np.random.default_rng(seed)
    rows, cols = _positions(y, train)
    total = len(rows)
    if total > max_train:
        pick = np.sort(rng.choice(total, size=max_train, replace=False))
        rows, cols = rows[pick], cols[pick]
    # only the sequences we need, to keep the padded copy small
    needed = np.unique(rows)
    local = np.searchsorted(needed, rows)
    F = window_features(X[needed], local, cols, flank)
    clf = LogisticRegression(max_iter=300, C=1.0)
    clf.fit(F, y[rows, cols])
    out: dict[str, Any] = {
        "name": "window_logistic",
        "flank": flank,
        "training_positions": len(rows),
        "training_positions_available": int(total),
    }
    for part, idx in (("val", val), ("test", test)):
        if not len(idx):
            out[part] = {}
            continue
        probs = np.zeros((len(idx), len(classes), y.shape[1]), dtype=np.float32)
        sub_y = y[idx]
        r, c = np.nonzero(sub_y >= 0)
        for start in range(0, len(r), 200_000):
            rr, cc = r[start : start + 200_000], c[start : start + 200_000]
            needed = np.unique(rr)
            p = clf.predict_proba(window_features(X[idx[needed]], np.searchsorted(needed, rr), cc, flank))
            full = np.zeros((len(rr), len(classes)), dtype=np.float32)
            full[:, clf.classes_] = p
            probs[rr, :, cc] = full
        out[part] = positions_metrics(sub_y, probs, class_names=classes)
    out["seconds"] = round(time.perf_counter() - t0, 1)
    return out
