"""The molecule data type: reading CSV/SDF, invalid rows, targets, state, and the scaffold split."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("rdkit")
from rdkit import Chem

from biodl.config import DataConfig
from biodl.data import DATA_TYPES
from biodl.data.molecule.scaffold import balanced_scaffold_split, murcko_scaffold, scaffolds
from biodl.data.splits import make_split
from biodl.errors import DataError

ROWS = [
    ("CCO", 1.0, 0),
    ("c1ccccc1O", 2.0, 1),
    ("not_a_smiles", 3.0, 0),
    ("CC(=O)Nc1ccc(O)cc1", 4.0, 1),
    ("", 5.0, 0),
    ("CCN.Cl", 6.0, 1),
    ("c1ccc2ccccc2c1", 7.0, ""),
]


def _cfg(path: Path, **kw: object) -> DataConfig:
    mol = dict(kw.pop("molecule", {}))  # type: ignore[call-overload]
    mol.setdefault("featurizer", ["morgan_counts"])
    mol.setdefault("n_bits", 64)
    return DataConfig.model_validate({"type": "molecule", "path": [str(path)], "molecule": mol, **kw})


@pytest.fixture
def csv_path(tmp_path: Path) -> Path:
    p = tmp_path / "mols.csv"
    pd.DataFrame(ROWS, columns=["SMILES", "sol", "active"]).to_csv(p, index=False)
    return p


def test_invalid_smiles_are_an_error_naming_rows(csv_path: Path) -> None:
    mod = DATA_TYPES["molecule"](_cfg(csv_path, task="regression", target_columns=["sol"]))
    with pytest.raises(DataError, match=r"2 of 7 molecule\(s\).*row 3: RDKit cannot parse.*row 5: empty SMILES"):
        mod.load([str(csv_path)])


def test_skip_invalid_counts_and_lists_rows(csv_path: Path) -> None:
    cfg = _cfg(csv_path, task="regression", target_columns=["sol"], molecule={"skip_invalid": True})
    mod = DATA_TYPES["molecule"](cfg)
    data = mod.load([str(csv_path)])
    assert len(data) == 5 and data.summary["invalid_skipped"] == 2
    assert [r["row"] for r in data.summary["skipped_rows"]] == [3, 5]
    assert data.summary["fragments_removed"] == 1 and data.summary["smiles_column"] == "SMILES"
    assert "CCN" in list(data.X)  # salt stripped
    np.testing.assert_array_equal(data.targets.y[:, 0], [1, 2, 4, 6, 7])  # type: ignore[union-attr]
    mod.fit(data.X)
    X = mod.transform(data.X)
    assert X.shape == (5, 64) and X.dtype == np.float32


def test_default_targets_are_the_other_columns_and_blank_is_missing(csv_path: Path) -> None:
    mod = DATA_TYPES["molecule"](_cfg(csv_path, task="regression", molecule={"skip_invalid": True}))
    data = mod.load([str(csv_path)])
    assert data.targets is not None and data.targets.names == ["sol", "active"]
    assert mod.cfg.target_columns == ["sol", "active"]  # resolved, stored with the model
    mod2 = DATA_TYPES["molecule"](
        _cfg(csv_path, task="classification", target_columns=["active"], molecule={"skip_invalid": True})
    )
    t = mod2.load([str(csv_path)]).targets
    assert t is not None and t.kind == "binary"
    assert np.isnan(t.y[-1, 0])  # blank label = missing
    assert mod2.columns()["smiles_column"] == "SMILES"


def test_sdf_targets_missing_fields_are_counted(tmp_path: Path) -> None:
    p = tmp_path / "m.sdf"
    w = Chem.SDWriter(str(p))
    for i, (smi, sol) in enumerate([("CCO", "1.5"), ("c1ccccc1", None), ("CCN", "-0.5")]):
        m = Chem.MolFromSmiles(smi)
        m.SetProp("_Name", f"mol{i}")
        if sol is not None:
            m.SetProp("SOL", sol)
        w.write(m)
    w.close()
    mod = DATA_TYPES["molecule"](_cfg(p, task="regression", target_columns=["SOL"]))
    data = mod.load([str(p)])
    assert list(data.ids) == ["mol0", "mol1", "mol2"]
    assert data.summary["records_without_target_field"] == {"SOL": 1}
    assert np.isnan(data.targets.y[1, 0]) and data.targets.y[0, 0] == pytest.approx(1.5)  # type: ignore[union-attr]
    bad = DATA_TYPES["molecule"](_cfg(p, task="regression", target_columns=["LOGS"]))
    with pytest.raises(DataError, match=r"no record has the target field 'LOGS'.*SOL"):
        bad.load([str(p)])
    nofield = DATA_TYPES["molecule"](_cfg(p, task="regression"))
    with pytest.raises(DataError, match="--target-columns"):
        nofield.load([str(p)])


def test_graph_state_roundtrip_and_parse_inputs(csv_path: Path) -> None:
    cfg = _cfg(
        csv_path, task="regression", target_columns=["sol"], molecule={"skip_invalid": True, "featurizer": ["graph", "rdkit2d"]}
    )
    mod = DATA_TYPES["molecule"](cfg)
    data = mod.load([str(csv_path)])
    mod.fit(data.X)
    X = mod.transform(data.X)
    assert X.ndim == 3 and X.shape[1] == 101  # capacity: at least 100 atoms
    meta, arrays = mod.state()
    other = DATA_TYPES["molecule"](mod.cfg)
    other.load_state(meta, arrays)
    np.testing.assert_array_equal(other.transform(data.X), X)
    slots = X.shape[1] * (X.shape[2] - 14)
    assert other.baseline_features(X).shape == (5, 106 + slots)  # bag of atoms + descriptors for arrays it did not make
    assert mod.baseline_features(X).shape == (5, 64)  # Morgan counts of the molecules it just featurised
    parsed = other.parse_inputs(["OCC", {"SMILES": "c1ccccc1O"}])
    assert list(parsed) == ["CCO", "Oc1ccccc1"]
    with pytest.raises(DataError, match="input 1"):
        other.parse_inputs(["CCO", "C1CC"])


def test_scaffold_split_keeps_each_scaffold_on_one_side() -> None:
    smiles = [
        "c1ccccc1C", "c1ccccc1CC", "c1ccccc1O", "c1ccccc1N", "c1ccccc1Cl", "c1ccccc1Br",  # benzene
        "C1CCCCC1C", "C1CCCCC1O", "C1CCCCC1N",  # cyclohexane
        "c1ccc2ccccc2c1", "c1ccc2ccccc2c1C",  # naphthalene
        "c1ccncc1", "c1ccncc1C", "c1ccncc1O",  # pyridine
        "CCO", "CCCC", "CCN",  # acyclic: scaffold ""
        "C1CCOC1", "C1CCNC1", "c1ccsc1",
    ]  # fmt: skip
    groups = scaffolds([Chem.MolFromSmiles(s) for s in smiles])
    assert murcko_scaffold(Chem.MolFromSmiles("c1ccccc1CCO")) == "c1ccccc1"
    for seed in range(5):
        split = make_split(len(smiles), (0.6, 0.2, 0.2), "scaffold", seed, groups=groups)
        parts = [set(groups[idx]) for idx in (split.train, split.val, split.test)]
        assert not (parts[0] & parts[1]) and not (parts[0] & parts[2]) and not (parts[1] & parts[2])
        assert sorted(np.concatenate([split.train, split.val, split.test]).tolist()) == list(range(len(smiles)))
        assert len(split.train) >= 10
    with pytest.raises(DataError, match="2 distinct"):
        balanced_scaffold_split(np.array(["a"] * 5), (0.8, 0.1, 0.1), 0)


def test_scaffold_split_through_the_modality(csv_path: Path) -> None:
    cfg = _cfg(csv_path, task="regression", target_columns=["sol"], split="scaffold", molecule={"skip_invalid": True})
    data = DATA_TYPES["molecule"](cfg).load([str(csv_path)])
    assert data.groups is not None and "c1ccccc1" in set(data.groups)
    with pytest.raises(DataError, match="scaffold"):
        make_split(5, (0.6, 0.2, 0.2), "scaffold", 0)
