"""Bemis-Murcko scaffolds and the balanced scaffold split (chemprop's ``scaffold_balanced``).

All molecules sharing a scaffold land in the same part, so the test set holds chemotypes the model
has never seen — a harder, more realistic estimate than a random split.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from biodl.data.splits import balanced_scaffold_split

__all__ = ["balanced_scaffold_split", "murcko_scaffold", "scaffolds"]


def murcko_scaffold(mol: Any, include_chirality: bool = False) -> str:
    """Canonical SMILES of the Bemis-Murcko scaffold (``""`` for acyclic molecules)."""
    from rdkit.Chem.Scaffolds import MurckoScaffold

    return str(MurckoScaffold.MurckoScaffoldSmiles(mol=mol, includeChirality=include_chirality))


def scaffolds(mols: Sequence[Any]) -> np.ndarray:
    """``(N,)`` scaffold SMILES of each molecule."""
    return np.array([murcko_scaffold(m) for m in mols], dtype=object)
