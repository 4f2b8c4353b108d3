"""``model.name: auto``: candidates that tie on validation accuracy are told apart by their validation log-loss.

Real data: the UCI wine recognition table that scikit-learn ships (178 wines, 13 measurements, three
cultivars), where a hundred-odd validation rows make accuracy ties common. The portfolio is two linear
softmax networks fitted by L-BFGS: the first with a weight decay so strong that its probabilities stay
near uniform (the same decisions, poorly calibrated), the second with a mild one. Both classify the
validation wines alike; the second must be chosen, and the record must say why.
"""

from __future__ import annotations

import contextlib
import io
import json
from typing import Any

import pytest

from biodl import Experiment
from biodl.data.tabular import Tabular

LINEAR: dict[str, Any] = {
    "name": "mlp", "hidden_sizes": [], "batch_norm": False,
    "train": {"optimizer": "lbfgs", "batch_size": 4096, "max_epochs": 20, "patience": 5},
}  # fmt: skip
TIED = (
    {**LINEAR, "train": {**LINEAR["train"], "weight_decay": 1.0}},
    {**LINEAR, "train": {**LINEAR["train"], "weight_decay": 1e-3}},
)


@pytest.fixture(scope="module")
def wine_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], str]:
    from sklearn.datasets import load_wine

    root = tmp_path_factory.mktemp("ties")
    frame = load_wine(as_frame=True).frame
    frame.to_csv(root / "wine.csv", index=False)
    patch = pytest.MonkeyPatch()
    patch.setattr(Tabular, "portfolio", TIED)
    try:
        exp = Experiment(
            data={"type": "tabular", "path": [str(root / "wine.csv")], "task": "classification",
                  "target_columns": ["target"], "split_sizes": [0.4, 0.4, 0.2]},
            train={"progress_bar": False, "seed": 0, "threads": 1, "refit": "never"},
            evaluate={"baselines": ["linear"], "plots": False},
        )  # fmt: skip
        out = root / "run"
        console = io.StringIO()
        with contextlib.redirect_stdout(console):
            exp.fit(out)
    finally:
        patch.undo()
    return json.loads((out / "metrics.json").read_text()), console.getvalue()


def test_a_tie_on_accuracy_goes_to_the_lower_log_loss(wine_run: tuple[dict[str, Any], str]) -> None:
    m, console = wine_run
    first, second = (c for c in m["model_selection"]["candidates"] if c["index"] in (0, 1))
    assert first["val"]["accuracy"] == second["val"]["accuracy"]  # the tie this test is about
    assert second["val"]["log_loss"] < first["val"]["log_loss"]  # the strongly decayed network is underconfident
    assert second["selected"] and not first["selected"]
    assert m["model_selection"]["selected"] == second["label"]
    assert "ties the best on validation accuracy; its lower validation log-loss decides" in console


def test_log_loss_is_reported_with_the_run_metrics(wine_run: tuple[dict[str, Any], str]) -> None:
    m, _ = wine_run
    for part in ("val", "test"):
        assert 0.0 < m[part]["log_loss"] < m["model_selection"]["candidates"][0]["val"]["log_loss"] + 1.0
        assert m["baseline"][part]["log_loss"] > 0.0
