"""Target columns of a molecule table whose targets were not named (``data.targets.default_targets``).

The frames carry the headers of the MoleculeNet files as distributed (BBBP ``num,name,p_np,smiles``,
Lipophilicity ``CMPD_CHEMBLID,exp,smiles``, ClinTox, Tox21 with ``mol_id``); the last test reads real Tox21
molecules through the molecule data type.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from tests.conftest import shared_path

from biodl.data.targets import default_targets, encode_targets
from biodl.errors import DataError


def _others(frame: pd.DataFrame, smiles: str = "smiles") -> list[str]:
    return [c for c in frame.columns if c != smiles]


def test_bbbp_layout_keeps_the_label_and_says_why_num_and_name_are_not_targets() -> None:
    frame = pd.DataFrame({"num": [1, 2, 3, 4], "name": ["a", "b", "c", "d"], "p_np": [1, 0, 1, 1], "smiles": ["C"] * 4})
    targets, left = default_targets(frame, _others(frame), "classification", source="BBBP.csv")
    assert targets == ["p_np"]
    assert left == {"num": "an identifier", "name": "an identifier"}


def test_running_row_numbers_and_free_text_are_left_out_whatever_their_name() -> None:
    frame = pd.DataFrame(
        {"k": [3, 4, 5, 7, 8], "note": ["x1", "x2", "x3", "x4", "x5"], "tox": [0, 1, None, 0, 1], "smiles": ["C"] * 5}
    )
    targets, left = default_targets(frame, _others(frame), "classification", source="f.csv")
    assert targets == ["tox"] and left == {"k": "row numbers", "note": "text"}


def test_lipophilicity_layout_regression_keeps_the_value_not_the_chembl_id() -> None:
    frame = pd.DataFrame({"CMPD_CHEMBLID": ["CHEMBL1", "CHEMBL2", "CHEMBL3"], "exp": [3.54, -1.18, 3.69], "smiles": ["C"] * 3})
    targets, left = default_targets(frame, _others(frame), "regression", source="Lipophilicity.csv")
    assert targets == ["exp"] and left == {"CMPD_CHEMBLID": "an identifier"}


def test_multi_task_files_keep_every_label_in_file_order() -> None:
    frame = pd.DataFrame(
        {
            "smiles": ["C"] * 4,
            "FDA_APPROVED": [1, 1, 0, 1],
            "CT_TOX": [0, 0, 1, 0],
            "mol_id": ["TOX1", "TOX2", "TOX3", "TOX4"],
            "NR-AR": [0, None, 1, np.nan],
        }
    )
    targets, left = default_targets(frame, _others(frame), "classification", source="f.csv")
    assert targets == ["FDA_APPROVED", "CT_TOX", "NR-AR"] and left == {"mol_id": "an identifier"}


def test_a_label_column_with_a_bad_cell_stays_so_the_encoder_names_the_row() -> None:
    frame = pd.DataFrame({"smiles": ["C"] * 4, "a": [0, 1, 0, 1], "b": ["0", "1", "oops", "0"]})
    targets, _ = default_targets(frame, _others(frame), "classification", source="f.csv")
    assert targets == ["a", "b"]
    with pytest.raises(DataError, match=r"'b'.*row 3 has 'oops'"):
        encode_targets(frame, targets, "classification", source="f.csv")


def test_a_single_text_or_integer_class_column_is_the_target() -> None:
    frame = pd.DataFrame(
        {"compound": ["m1", "m2", "m3", "m4"], "activity": ["active", "inactive", "active", "inactive"], "smiles": ["C"] * 4}
    )
    assert default_targets(frame, _others(frame), "classification", source="f.csv")[0] == ["activity"]
    frame = pd.DataFrame({"id": range(10, 16), "kind": [0, 2, 1, 2, 0, 0], "smiles": ["C"] * 6})
    assert default_targets(frame, _others(frame), "classification", source="f.csv")[0] == ["kind"]


def test_a_multilabel_label_list_column_beside_an_identifier_is_the_target() -> None:
    frame = pd.DataFrame({"mol_id": ["a", "b", "c"], "labels": ["x;y", "y", ""], "smiles": ["C"] * 3})
    targets, left = default_targets(frame, _others(frame), "multilabel", source="f.csv")
    assert targets == ["labels"] and left == {"mol_id": "an identifier"}
    t = encode_targets(frame, targets, "multilabel", source="f.csv")
    assert t.names == ["x", "y"] and t.y.tolist() == [[1, 1], [0, 1], [0, 0]]


def test_no_possible_target_is_an_error_naming_the_columns_and_reasons() -> None:
    frame = pd.DataFrame({"name": ["a", "b", "c"], "value": [0.3, 1.7, 2.2], "smiles": ["C"] * 3})
    with pytest.raises(
        DataError, match=r"f\.csv: no column can be the classification target.*name: an identifier; value: not 0/1 labels"
    ):
        default_targets(frame, _others(frame), "classification", source="f.csv")


def test_one_column_or_no_task_keeps_everything() -> None:
    frame = pd.DataFrame({"name": ["a", "b"], "y": [1.0, 2.0], "smiles": ["C", "CC"]})
    assert default_targets(frame, ["name"], "regression", source="f.csv") == (["name"], {})
    assert default_targets(frame, ["name", "y"], None, source="f.csv") == (["name", "y"], {})


def test_bbbp_like_file_of_real_tox21_molecules_trains_on_its_label(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("rdkit")
    from rdkit import Chem

    from biodl.config import DataConfig
    from biodl.data import DATA_TYPES

    tox = pd.read_csv(shared_path("molecules", "moleculenet", "tox21.csv")).dropna(subset=["SR-MMP"])
    tox = tox[[Chem.MolFromSmiles(s) is not None for s in tox["smiles"]]].head(60)
    path = tmp_path / "bbbp_like.csv"
    pd.DataFrame(
        {"num": range(1, 61), "name": [f"mol {i}" for i in range(60)], "p_np": tox["SR-MMP"].astype(int), "smiles": tox["smiles"]}
    ).to_csv(path, index=False)
    cfg = DataConfig.model_validate(
        {"type": "molecule", "path": [str(path)], "task": "classification", "molecule": {"featurizer": ["morgan_counts"]}}
    )
    mod = DATA_TYPES["molecule"](cfg)
    data = mod.load([str(path)])
    assert data.targets is not None and data.targets.names == ["p_np"]
    assert mod.cfg.target_columns == ["p_np"]  # stored with the model
    np.testing.assert_array_equal(data.targets.y[:, 0], tox["SR-MMP"].to_numpy())
    assert "targets p_np; left out: num (an identifier); name (an identifier)" in capsys.readouterr().err
