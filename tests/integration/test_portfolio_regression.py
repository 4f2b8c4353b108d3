"""A plain ``biodl train`` on a regression table runs the tabular portfolio (docs/defaults-tables.md).

Real data: scikit-learn's diabetes progression table (442 patients, 10 measurements), the whole default
portfolio (it takes seconds here). The choice is made on validation RMSE in the target's own units, the
linear (ridge) candidate is among the candidates, and the run's figures are the chosen candidate's.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from biodl import Experiment


@pytest.fixture(scope="module")
def diabetes_run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    from sklearn.datasets import load_diabetes

    root = tmp_path_factory.mktemp("regression_auto")
    load_diabetes(as_frame=True).frame.to_csv(root / "diabetes.csv", index=False)
    exp = Experiment(
        data={"type": "tabular", "path": [str(root / "diabetes.csv")], "task": "regression", "target_columns": ["target"]},
        train={"progress_bar": False, "seed": 0, "threads": 1, "refit": "never"},
        evaluate={"plots": False, "report": False},
    )
    assert exp.config.model.name == "auto"
    out: Path = root / "run"
    exp.fit(out)
    return dict(json.loads((out / "metrics.json").read_text()))


def test_regression_tables_choose_among_the_portfolio_on_validation_rmse(diabetes_run: dict[str, Any]) -> None:
    sel = diabetes_run["model_selection"]
    assert sel["metric"] == "rmse" and sel["higher_is_better"] is False
    trained = [c for c in sel["candidates"] if c["status"] == "trained" and c["index"] != "average"]
    assert len(trained) == 5  # ridge by L-BFGS, [128] and its five, the defaults' five, their encoded five
    assert any(c["model"].get("hidden_sizes") == [] for c in trained)
    assert any(c["model"].get("numeric_encoding") == "ple" for c in trained)  # 10 features: the encoded one applies
    assert all("log_loss" not in c["val"] for c in trained)  # no tie-break key for values
    best = min(trained, key=lambda c: c["val"]["rmse"])
    if not any(c["index"] == "average" and c["status"] == "averaged" for c in sel["candidates"]):
        assert sel["selected"] == best["label"]
        assert diabetes_run["val"]["rmse"] == pytest.approx(best["val"]["rmse"], rel=1e-5)
    assert 30.0 < diabetes_run["val"]["rmse"] < 80.0  # the target's own units (progression score, sd ≈ 77)
    assert isinstance(diabetes_run["network_beats_baseline"], bool)
