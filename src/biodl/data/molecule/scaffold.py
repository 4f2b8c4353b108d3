"""Bemis-Murcko scaffolds and the balanced scaffold split (chemprop's ``scaffold_balanced``).

All molecules sharing a scaffold land in the same part, so the test set holds chemotypes the model
has never seen — a harder, more realistic estimate than a random split.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from biodl.data.splits import Split, _counts
from biodl.errors import DataError


def murcko_scaffold(mol: Any, include_chirality: bool = False) -> str:
    """Canonical SMILES of the Bemis-Murcko scaffold (``""`` for acyclic molecules)."""
    from rdkit.Chem.Scaffolds import MurckoScaffold

    return str(MurckoScaffold.MurckoScaffoldSmiles(mol=mol, includeChirality=include_chirality))


def scaffolds(mols: Sequence[Any]) -> np.ndarray:
    """``(N,)`` scaffold SMILES of each molecule."""
    return np.array([murcko_scaffold(m) for m in mols], dtype=object)


def balanced_scaffold_split(groups: np.ndarray, sizes: Sequence[float], seed: int) -> Split:
    """Assign whole scaffold sets to train/val/test.

    Sets larger than half the validation or test size go first (into training while it has
    room), the others follow in a seeded random order, so the big, common scaffolds do not all end
    up in one part by chance (Yang et al., 2019).

    Parameters
    ----------
    groups
        ``(N,)`` scaffold of each row (any hashable labels).
    sizes
        ``(train, val, test)`` fractions.
    seed
        Order of the small scaffold sets.
    """
    n = len(groups)
    n_val, n_test = _counts(n, sizes)
    n_train = n - n_val - n_test
    keys = np.asarray(groups).astype(str)
    uniq, inverse = np.unique(keys, return_inverse=True)
    if len(uniq) < 2:
        raise DataError(f"a scaffold split needs at least 2 distinct scaffolds, found {len(uniq)}")
    sets = [np.flatnonzero(inverse == g) for g in range(len(uniq))]
    big = [s for s in sets if len(s) > n_val / 2 or len(s) > n_test / 2]
    small = [s for s in sets if not (len(s) > n_val / 2 or len(s) > n_test / 2)]
    rng = np.random.default_rng(seed)
    rng.shuffle(big)  # type: ignore[arg-type]
    rng.shuffle(small)  # type: ignore[arg-type]
    parts: dict[str, list[np.ndarray]] = {"train": [], "val": [], "test": []}
    filled = {"train": 0, "val": 0, "test": 0}
    for s in [*big, *small]:
        if filled["train"] + len(s) <= n_train:
            part = "train"
        elif filled["val"] + len(s) <= n_val:
            part = "val"
        else:
            part = "test"
        parts[part].append(s)
        filled[part] += len(s)
    train, val, test = (
        np.sort(np.concatenate(parts[p])) if parts[p] else np.zeros(0, np.int64) for p in ("train", "val", "test")
    )
    if len(train) == 0:
        raise DataError("the scaffold split leaves no training rows")
    return Split(train.astype(np.int64), val.astype(np.int64), test.astype(np.int64), "scaffold (balanced Bemis-Murcko)")
