"""Molecular graphs as fixed-size float arrays that a message-passing network unpacks per batch.

Each molecule becomes one ``(R, W)`` float32 array (the model input), with ``R - 1`` the atom
and bond capacity (``data.molecule.max_atoms``) and ``W = 14 + Q``:

=========  =====================================================================================
row 0      ``[n_atoms, n_bonds, 0, ...]`` (header)
row r ≥ 1  columns 0–7: atom ``r - 1`` as integer codes (:data:`ATOM_FIELDS`; mass / 100 as float);
           columns 8–13: bond ``r - 1`` as ``[begin atom, end atom, type, conjugated, in ring,
           stereo]`` (:data:`BOND_FIELDS`)
all rows   columns 14…: ``Q`` descriptor slots per row; read row-major they hold the molecule's
           extra feature vector (e.g. normalised RDKit descriptors), zero-padded to ``R · Q``
=========  =====================================================================================

The shape alone tells the network everything it needs (capacity ``R - 1``, ``R · Q`` descriptor
inputs), so models are built from ``in_shape`` like every other architecture and bundles need
nothing extra. Padding costs memory only: the network gathers the real atoms and bonds of a batch
into flat tensors before message passing. Atom features follow chemprop v1 (Yang et al., 2019).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from biodl.errors import DataError

#: Atom fields: (name, number of one-hot classes; the last class is "other"). ``mass`` is a float.
ATOM_FIELDS: tuple[tuple[str, int], ...] = (
    ("atomic_num", 101),
    ("degree", 7),
    ("formal_charge", 6),
    ("chiral_tag", 5),
    ("num_hs", 6),
    ("hybridization", 7),
    ("aromatic", 2),
    ("mass", 1),
)
#: Bond fields after the two atom indices.
BOND_FIELDS: tuple[tuple[str, int], ...] = (
    ("bond_type", 5),
    ("conjugated", 2),
    ("in_ring", 2),
    ("stereo", 7),
)
N_ATOM_COLS = len(ATOM_FIELDS)
BOND_COL = N_ATOM_COLS
N_BOND_COLS = 2 + len(BOND_FIELDS)
BASE_WIDTH = N_ATOM_COLS + N_BOND_COLS
#: Width of the one-hot atom features the network builds (134).
ATOM_FDIM = sum(n if n > 2 else 1 for _, n in ATOM_FIELDS)
#: Width of the one-hot bond features (14).
BOND_FDIM = sum(n if n > 2 else 1 for _, n in BOND_FIELDS)
#: Default minimum capacity: predictions on molecules up to this size always fit.
MIN_CAPACITY = 100

_HYBRIDIZATIONS = ("S", "SP", "SP2", "SP3", "SP3D", "SP3D2")
_BOND_TYPES = ("SINGLE", "DOUBLE", "TRIPLE", "AROMATIC")
_STEREO = ("STEREONONE", "STEREOANY", "STEREOZ", "STEREOE", "STEREOCIS", "STEREOTRANS")


def _bucket(value: int, lo: int, n_known: int) -> int:
    """``value - lo`` when in ``[0, n_known)``, else ``n_known`` (the "other" class)."""
    v = value - lo
    return v if 0 <= v < n_known else n_known


def atom_codes(atom: Any) -> list[float]:
    """Integer codes of one RDKit atom (see :data:`ATOM_FIELDS`)."""
    z = atom.GetAtomicNum()
    return [
        float(z if 1 <= z <= 100 else 0),
        float(_bucket(atom.GetDegree(), 0, 6)),
        float(_bucket(atom.GetFormalCharge(), -2, 5)),
        float(_bucket(int(atom.GetChiralTag()), 0, 4)),
        float(_bucket(atom.GetTotalNumHs(), 0, 5)),
        float(_name_index(str(atom.GetHybridization()), _HYBRIDIZATIONS)),
        float(atom.GetIsAromatic()),
        atom.GetMass() / 100.0,
    ]


def _name_index(name: str, names: Sequence[str]) -> int:
    return names.index(name) if name in names else len(names)


def bond_codes(bond: Any) -> list[float]:
    """``[begin, end, type, conjugated, in ring, stereo]`` of one RDKit bond."""
    return [
        float(bond.GetBeginAtomIdx()),
        float(bond.GetEndAtomIdx()),
        float(_name_index(str(bond.GetBondType()), _BOND_TYPES)),
        float(bond.GetIsConjugated()),
        float(bond.IsInRing()),
        float(_name_index(str(bond.GetStereo()), _STEREO)),
    ]


def graph_size(mol: Any) -> int:
    """Rows a molecule needs: ``max(atoms, bonds)``."""
    return max(mol.GetNumAtoms(), mol.GetNumBonds())


@dataclass(frozen=True)
class GraphLayout:
    """Geometry of the packed array: ``rows = capacity + 1`` and ``slots`` descriptor columns."""

    rows: int
    slots: int = 0

    @property
    def capacity(self) -> int:
        """Maximum number of atoms (and of bonds) per molecule."""
        return self.rows - 1

    @property
    def width(self) -> int:
        """Columns per row."""
        return BASE_WIDTH + self.slots

    @property
    def n_descriptors(self) -> int:
        """Descriptor inputs the network sees (``rows · slots``, zero-padded)."""
        return self.rows * self.slots

    @property
    def shape(self) -> tuple[int, int]:
        """``(rows, width)`` of one molecule."""
        return self.rows, self.width

    @classmethod
    def for_data(cls, capacity: int, n_descriptors: int) -> GraphLayout:
        """The smallest layout holding ``capacity`` atoms and ``n_descriptors`` extra features."""
        rows = capacity + 1
        return cls(rows, math.ceil(n_descriptors / rows) if n_descriptors else 0)

    @classmethod
    def from_shape(cls, shape: Sequence[int]) -> GraphLayout:
        """Recover the layout from a model's ``in_shape``."""
        if len(shape) != 2 or shape[0] < 2 or shape[1] < BASE_WIDTH:
            raise ValueError(
                f"a molecular-graph model needs inputs of shape (rows, >= {BASE_WIDTH}) from the 'graph' featuriser, "
                f"got {tuple(shape)}; set data.molecule.featurizer to include 'graph'"
            )
        return cls(int(shape[0]), int(shape[1]) - BASE_WIDTH)


def pack_graphs(mols: Sequence[Any], layout: GraphLayout, descriptors: np.ndarray | None = None) -> np.ndarray:
    """Pack molecules (and optional ``(N, D)`` descriptors, ``D <= layout.n_descriptors``) into ``(N, R, W)``."""
    n = len(mols)
    out = np.zeros((n, layout.rows, layout.width), dtype=np.float32)
    for i, mol in enumerate(mols):
        n_atoms, n_bonds = mol.GetNumAtoms(), mol.GetNumBonds()
        if max(n_atoms, n_bonds) > layout.capacity:
            raise DataError(
                f"molecule {i} has {n_atoms} heavy atoms and {n_bonds} bonds, more than the graph capacity "
                f"{layout.capacity}; train with a larger data.molecule.max_atoms"
            )
        out[i, 0, 0], out[i, 0, 1] = n_atoms, n_bonds
        if n_atoms:
            out[i, 1 : n_atoms + 1, :N_ATOM_COLS] = [atom_codes(a) for a in mol.GetAtoms()]
        if n_bonds:
            out[i, 1 : n_bonds + 1, BOND_COL:BASE_WIDTH] = [bond_codes(b) for b in mol.GetBonds()]
    if descriptors is not None and descriptors.shape[1]:
        d = descriptors.shape[1]
        if d > layout.n_descriptors:
            raise DataError(f"{d} descriptors do not fit the graph layout's {layout.n_descriptors} slots")
        slots = np.zeros((n, layout.n_descriptors), dtype=np.float32)
        slots[:, :d] = descriptors
        out[:, :, BASE_WIDTH:] = slots.reshape(n, layout.rows, layout.slots)
    return out


def unpack_descriptors(X: np.ndarray) -> np.ndarray:
    """The descriptor slots ``(N, rows · slots)`` of packed graphs ``(N, R, W)``."""
    return np.ascontiguousarray(X[:, :, BASE_WIDTH:]).reshape(len(X), -1)


def atom_type_counts(X: np.ndarray) -> np.ndarray:
    """Bag-of-atoms features ``(N, 101 + 5)`` of packed graphs: element counts and bond-type counts."""
    n = len(X)
    out = np.zeros((n, 101 + 5), dtype=np.float32)
    for i in range(n):
        na, nb = int(X[i, 0, 0]), int(X[i, 0, 1])
        np.add.at(out[i], X[i, 1 : na + 1, 0].astype(np.int64), 1.0)
        np.add.at(out[i], 101 + X[i, 1 : nb + 1, BOND_COL + 2].astype(np.int64), 1.0)
    return out
