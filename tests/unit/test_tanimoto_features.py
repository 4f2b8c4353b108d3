"""The ``tanimoto`` featuriser: similarities to training molecules, against RDKit's own Tanimoto."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("rdkit")
from rdkit import Chem, DataStructs
from rdkit.Chem import rdFingerprintGenerator

from biodl.config import MoleculeOptions
from biodl.data.molecule import FEATURIZERS
from biodl.data.molecule import similarity as sim
from conftest import REPO

ESOL = REPO / "tests" / "data" / "esol_subset.csv"


def _mols(n: int) -> list[Chem.Mol]:
    smiles = pd.read_csv(ESOL)["smiles"].tolist()[:n]
    return [Chem.MolFromSmiles(s) for s in smiles]


def test_similarities_equal_rdkits_bulk_tanimoto_on_real_molecules() -> None:
    opts = MoleculeOptions(radius=2, n_bits=1024)
    mols = _mols(60)
    train, new = mols[:40], mols[40:]
    feat = FEATURIZERS["tanimoto"](opts)
    feat.fit(feat.featurize(train))
    got = feat.transform(feat.featurize(new))
    assert got.shape == (20, 40) and feat.dim == 40
    gen = rdFingerprintGenerator.GetMorganGenerator(radius=2, fpSize=1024)
    fps = [gen.GetFingerprint(m) for m in mols]
    want = np.array([DataStructs.BulkTanimotoSimilarity(fps[40 + i], fps[:40]) for i in range(20)])
    np.testing.assert_allclose(got, want, atol=1e-6)
    self_sim = feat.transform(feat.featurize(train))
    np.testing.assert_allclose(np.diag(self_sim), 1.0)  # each prototype is itself


def test_state_round_trip_and_a_capped_deterministic_prototype_set(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sim, "MAX_PROTOTYPES", 16)
    opts = MoleculeOptions(radius=2, n_bits=512)
    mols = _mols(50)
    a, b = FEATURIZERS["tanimoto"](opts), FEATURIZERS["tanimoto"](opts)
    a.fit(a.featurize(mols))
    b.fit(b.featurize(mols))
    assert a.dim == 16 and np.array_equal(a.prototypes, b.prototypes)  # type: ignore[attr-defined]
    meta, arrays = a.state()
    assert arrays["prototypes"].dtype == np.uint8
    c = FEATURIZERS["tanimoto"](opts)
    c.load_state(meta, arrays)
    raw = c.featurize(mols[:5])
    np.testing.assert_array_equal(c.transform(raw), a.transform(raw))


def test_two_empty_fingerprints_have_similarity_zero_and_transform_needs_fit() -> None:
    assert sim.tanimoto(np.zeros((1, 8)), np.zeros((2, 8))).tolist() == [[0.0, 0.0]]
    feat = FEATURIZERS["tanimoto"](MoleculeOptions())
    with pytest.raises(RuntimeError, match="fit"):
        feat.transform(np.zeros((1, 8)))


def test_the_molecule_data_type_stores_the_prototypes_with_the_model() -> None:
    from biodl.config import DataConfig
    from biodl.data import DATA_TYPES

    cfg = DataConfig.model_validate(
        {"type": "molecule", "path": [str(ESOL)], "task": "regression", "target_columns": ["logp"],
         "molecule": {"featurizer": ["tanimoto", "rdkit2d"], "n_bits": 256}}
    )  # fmt: skip
    mod = DATA_TYPES["molecule"](cfg)
    data = mod.load([str(ESOL)])
    train, new = data.X[:150], data.X[150:]
    mod.fit(train)
    X = mod.transform(new)
    assert X.shape[1] == 150 + FEATURIZERS["rdkit2d"](MoleculeOptions()).dim  # one similarity per training molecule
    meta, arrays = mod.state()
    other = DATA_TYPES["molecule"](mod.cfg)
    other.load_state(meta, arrays)
    np.testing.assert_array_equal(other.transform(new), X)
