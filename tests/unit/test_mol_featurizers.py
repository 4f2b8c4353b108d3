"""Molecule featurisers against RDKit reference values; SMILES parsing and the fragment rule."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("rdkit")
from rdkit import Chem
from rdkit.Chem import (
    Descriptors,
    MACCSkeys,
    rdFingerprintGenerator,
)

from biodl.config import MoleculeOptions
from biodl.data.molecule.featurizers import FEATURIZERS, RDKit2D, split_featurizers
from biodl.data.molecule.graph import ATOM_FDIM, BASE_WIDTH, BOND_COL, GraphLayout, pack_graphs, unpack_descriptors
from biodl.data.molecule.parse import parse_many, parse_smiles
from biodl.errors import ConfigError, DataError

SMILES = ["CCO", "c1ccccc1O", "CC(=O)Nc1ccc(O)cc1", "C[C@H](N)C(=O)O", "O=C(O)c1ccccc1OC(C)=O"]


@pytest.fixture(scope="module")
def mols() -> list[Chem.Mol]:
    return [Chem.MolFromSmiles(s) for s in SMILES]


@pytest.mark.parametrize("radius,n_bits", [(2, 2048), (3, 1024)])
def test_morgan_counts_and_bits_equal_rdkit(mols: list[Chem.Mol], radius: int, n_bits: int) -> None:
    opts = MoleculeOptions(radius=radius, n_bits=n_bits)
    gen = rdFingerprintGenerator.GetMorganGenerator(radius=radius, fpSize=n_bits)
    counts = FEATURIZERS["morgan_counts"](opts).featurize(mols)
    bits = FEATURIZERS["morgan-bits"](opts).featurize(mols)
    assert counts.shape == bits.shape == (len(mols), n_bits) and counts.dtype == np.float32
    for i, m in enumerate(mols):
        np.testing.assert_array_equal(counts[i], gen.GetCountFingerprintAsNumPy(m))
        np.testing.assert_array_equal(bits[i], gen.GetFingerprintAsNumPy(m))


def test_maccs_equals_rdkit(mols: list[Chem.Mol]) -> None:
    out = FEATURIZERS["maccs"](MoleculeOptions()).featurize(mols)
    for i, m in enumerate(mols):
        np.testing.assert_array_equal(out[i], np.array(list(MACCSkeys.GenMACCSKeys(m)), dtype=np.float32))


def test_rdkit2d_values_and_train_normalisation(mols: list[Chem.Mol]) -> None:
    f = RDKit2D(MoleculeOptions())
    raw = f.featurize(mols)
    names = f.names()
    for name, fn in (("MolLogP", Descriptors.MolLogP), ("MolWt", Descriptors.MolWt), ("TPSA", Descriptors.TPSA)):
        j = names.index(name)
        np.testing.assert_allclose(raw[:, j], [fn(m) for m in mols], rtol=1e-5)
    f.fit(raw)
    z = f.transform(raw)
    varying = raw.std(axis=0) > 1e-6
    np.testing.assert_allclose(z[:, varying].mean(axis=0), 0.0, atol=1e-4)
    bad = raw.copy()
    bad[0, 0] = np.nan
    assert np.isfinite(f.transform(bad)).all()  # NaN → training median
    meta, arrays = f.state()
    g = RDKit2D(MoleculeOptions())
    g.load_state(meta, arrays)
    np.testing.assert_array_equal(g.transform(raw), z)


def test_graph_packing_matches_rdkit(mols: list[Chem.Mol]) -> None:
    desc = np.arange(len(mols) * 7, dtype=np.float32).reshape(len(mols), 7)
    layout = GraphLayout.for_data(capacity=20, n_descriptors=7)
    X = pack_graphs(mols, layout, desc)
    assert X.shape == (len(mols), 21, BASE_WIDTH + 1)
    assert GraphLayout.from_shape(X.shape[1:]) == layout
    for i, m in enumerate(mols):
        assert X[i, 0, 0] == m.GetNumAtoms() and X[i, 0, 1] == m.GetNumBonds()
        np.testing.assert_array_equal(X[i, 1 : m.GetNumAtoms() + 1, 0], [a.GetAtomicNum() for a in m.GetAtoms()])
        ends = [(b.GetBeginAtomIdx(), b.GetEndAtomIdx()) for b in m.GetBonds()]
        np.testing.assert_array_equal(X[i, 1 : m.GetNumBonds() + 1, BOND_COL : BOND_COL + 2], ends)
    np.testing.assert_array_equal(unpack_descriptors(X)[:, :7], desc)
    assert ATOM_FDIM == 134
    with pytest.raises(DataError, match="capacity"):
        pack_graphs(mols, GraphLayout.for_data(capacity=5, n_descriptors=0))


def test_featurizer_names_are_checked() -> None:
    assert split_featurizers(["graph", "rdkit2d"]) == (True, ["rdkit2d"])
    with pytest.raises(ConfigError, match="morgan_counts"):
        split_featurizers(["morgan_count"])
    with pytest.raises(ConfigError, match="twice"):
        split_featurizers(["maccs", "maccs"])


@pytest.mark.parametrize(
    "text,expected",
    [("CCN.Cl", "CCN"), ("[Na+].O=C([O-])c1ccccc1", "O=C([O-])c1ccccc1"), ("Cl.Cl.NCCCCN", "NCCCCN")],
)
def test_largest_fragment_rule(text: str, expected: str) -> None:
    mol, reason, reduced = parse_smiles(text, "largest")
    assert mol is not None and reduced and reason == ""
    assert Chem.MolToSmiles(mol) == Chem.CanonSmiles(expected)


def test_fragment_modes_and_invalid_inputs() -> None:
    mol, _, reduced = parse_smiles("CCN.Cl", "keep")
    assert mol is not None and mol.GetNumAtoms() == 4 and not reduced
    assert parse_smiles("CCN.Cl", "error")[0] is None
    mols, report = parse_many(["CCO", "", "C1CC", None, "XYZ"], source="t.csv", fragments="largest")
    assert [m is not None for m in mols] == [True, False, False, False, False]
    assert [r.row for r in report.invalid] == [2, 3, 4, 5]
    assert report.invalid[0].reason == "empty SMILES"
    with pytest.raises(DataError, match=r"4 of 5 molecule\(s\).*t.csv row 3.*--skip-invalid"):
        report.raise_or_count(False, total=5)
    report.raise_or_count(True, total=5)
