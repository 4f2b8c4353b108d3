"""Molecules: SMILES/SDF reading, the fragment rule, featurisers, packed graphs, scaffold splits,
and the ``molecule`` data type."""

from biodl.data.molecule.featurizers import FEATURIZERS, Featurizer, default_featurizer
from biodl.data.molecule.graph import GraphLayout, pack_graphs
from biodl.data.molecule.modality import MoleculeModality
from biodl.data.molecule.parse import parse_smiles
from biodl.data.molecule.readers import read_molecules
from biodl.data.molecule.scaffold import balanced_scaffold_split, murcko_scaffold, scaffolds
from biodl.data.molecule.similarity import TanimotoSimilarity

__all__ = [
    "FEATURIZERS",
    "Featurizer",
    "GraphLayout",
    "MoleculeModality",
    "TanimotoSimilarity",
    "balanced_scaffold_split",
    "default_featurizer",
    "murcko_scaffold",
    "pack_graphs",
    "parse_smiles",
    "read_molecules",
    "scaffolds",
]
