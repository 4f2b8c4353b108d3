"""``--val-column``: flagged rows form the validation split for any table data type, and the column is no feature."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from biodl.errors import DataError
from biodl.experiment import Experiment

QUIET = {"max_epochs": 1, "progress_bar": False}
NO_EXTRAS = {"baselines": [], "report": False, "plots": False}


def _table(tmp_path: Path, flags: list[str]) -> Path:
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(rng.normal(size=(len(flags), 3)), columns=["a", "b", "c"])
    frame["y"] = (frame.a > 0).astype(int)
    frame["is_val"] = flags
    path = tmp_path / "t.csv"
    frame.to_csv(path, index=False)
    return path


def test_flagged_rows_validate_and_the_column_is_no_feature(tmp_path: Path) -> None:
    flags = ["yes" if i % 5 == 0 else "no" for i in range(60)]
    path = _table(tmp_path, flags)
    data = {"path": [str(path)], "task": "classification", "target_columns": ["y"], "val_column": "is_val"}
    res = Experiment(data=data, model={"name": "mlp"}, train=QUIET, evaluate=NO_EXTRAS).fit(tmp_path / "run")
    splits = json.loads((tmp_path / "run" / "splits.json").read_text())
    assert splits["val"] == [i for i in range(60) if i % 5 == 0] and splits["sizes"]["test"] == 0
    assert res.bundle is not None and res.bundle.modality.feature_names == ["a", "b", "c"]  # type: ignore[attr-defined]
    # explicit split sizes: the other rows are cut into train and test (train:test = 0.6:0.3)
    data2 = {**data, "split_sizes": [0.6, 0.1, 0.3]}
    Experiment(data=data2, model={"name": "mlp"}, train=QUIET, evaluate=NO_EXTRAS).fit(tmp_path / "run2")
    sizes = json.loads((tmp_path / "run2" / "splits.json").read_text())["sizes"]
    assert sizes == {"train": 32, "val": 12, "test": 16}


def test_bad_flag_names_file_row_and_column(tmp_path: Path) -> None:
    path = _table(tmp_path, ["1", "0", "perhaps", "0"] * 5)
    data = {"path": [str(path)], "task": "classification", "target_columns": ["y"], "val_column": "is_val"}
    with pytest.raises(DataError, match=r"t.csv: row 3: field 'is_val': 'perhaps' is not true/false"):
        Experiment(data=data, model={"name": "mlp"}, train=QUIET, evaluate=NO_EXTRAS).fit(tmp_path / "run")
    with pytest.raises(DataError, match=r"validation column 'missing' \(--val-column\) not found"):
        # (the features named: with the flag column no longer reserved, its 'perhaps' cells would be a bad-cell error first)
        missing = {**data, "val_column": "missing", "feature_columns": ["a", "b", "c"]}
        Experiment(data=missing, train=QUIET, evaluate=NO_EXTRAS).fit(tmp_path / "run3")
