"""``model.name: auto`` on a real expression matrix (PBMC cell types): the default for a plain classification
run on a table, the choice recorded, the run's bundle (one network or the average of candidates) predicting
what was selected, and a blend of candidates saved and re-loaded as one safetensors bundle.

The tabular portfolio is replaced by two tiny candidates on the same inputs (few epochs) so the file runs in
seconds; the mechanism is the one the real defaults use.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from tests.conftest import shared_path

from biodl import Experiment
from biodl.bundle import load
from biodl.data.tabular import Tabular
from biodl.experiment.portfolio import average_if_better, score_preds
from biodl.experiment.results import Inputs, Trained

TINY = (
    {"name": "mlp", "hidden_sizes": [], "batch_norm": False, "train": {"weight_decay": 1e-3}},
    {"name": "mlp", "hidden_sizes": [16], "input_dropout": 0.5, "batch_norm": False},
    {"name": "mlp", "hidden_sizes": [8], "tasks": ["multilabel"]},  # not a candidate for classes
)


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any], Experiment]:
    path = shared_path("expression", "pbmc68k_reduced", "10x_pbmc68k_reduced.h5ad")
    patch = pytest.MonkeyPatch()
    patch.setattr(Tabular, "portfolio", TINY)
    try:
        exp = Experiment(
            data={"path": [str(path)], "task": "classification", "target_columns": ["bulk_labels"],
                  "split_sizes": [0.6, 0.1, 0.3]},
            train={"max_epochs": 4, "progress_bar": False, "seed": 0, "threads": 1},
            evaluate={"baselines": ["linear"], "plots": False},
        )  # fmt: skip
        assert exp.config.model.name == "auto"  # plain classification on a table: the portfolio
        out = tmp_path_factory.mktemp("tab_auto") / "run"
        exp.fit(out)
    finally:
        patch.undo()
    return out, dict(json.loads((out / "metrics.json").read_text())), exp


def _val_rows(out: Path) -> np.ndarray:
    split = json.loads((out / "splits.json").read_text())
    return np.asarray(split["val"] if "val" in split else split["indices"]["val"])


def test_choice_is_recorded_and_the_bundle_predicts_it(run: tuple[Path, dict[str, Any], Experiment]) -> None:
    out, m, _ = run
    sel = m["model_selection"]
    assert sel["metric"] == "accuracy" and sel["selected_on"] == "val"
    trained = [c for c in sel["candidates"] if c["status"] == "trained"]
    assert len(trained) == 2  # the multi-label-only candidate is not trained for classes
    averaged = [c for c in sel["candidates"] if c["status"] == "averaged"]
    best_single = max(c["val"]["accuracy"] for c in trained)
    if averaged:  # the average won on validation: it is the run's model
        assert sel["selected"] == averaged[0]["label"] and averaged[0]["val"]["accuracy"] > best_single
        assert abs(m["val"]["accuracy"] - averaged[0]["val"]["accuracy"]) < 1e-6
        assert load(out / "model").meta["model"]["name"] == "ensemble"
    else:
        assert abs(m["val"]["accuracy"] - best_single) < 1e-6
    assert isinstance(m["network_beats_baseline"], bool)


def test_a_blend_of_candidates_is_one_bundle_that_predicts_their_mean(
    run: tuple[Path, dict[str, Any], Experiment], tmp_path: Path
) -> None:
    out, m, exp = run
    sel = m["model_selection"]
    dirs = [Path(c["model_dir"]) for c in sel["candidates"] if c["status"] == "trained"]
    bundles = [load(d) for d in dirs]
    run_bundle = load(out / "model")
    data = run_bundle.modality.load(list(exp.config.data.path))
    rows = np.arange(60)
    X = run_bundle.modality.transform(data.X[rows])
    preds = [b.predict_arrays(X) for b in bundles]
    inputs = Inputs(run_bundle.modality, data, None)
    pool = [
        (i, score_preds(inputs, rows, p, "accuracy"), Trained(bundle=b, history={}, best_epoch=None, epochs=1), p)
        for i, (b, p) in enumerate(zip(bundles, preds, strict=True))
    ]
    blended = average_if_better(inputs, rows, pool, "accuracy", True, -math.inf)  # forced: any average "wins"
    assert blended is not None
    trained, record = blended
    assert record["status"] == "averaged" and record["members"] == [0, 1]
    saved = load(trained.bundle.save(tmp_path / "blend"))
    assert saved.meta["model"]["name"] == "ensemble" and len(saved.meta["model"]["params"]["members"]) == 2
    assert not list((tmp_path / "blend").glob("*.pt*"))  # safetensors + JSON only
    np.testing.assert_allclose(saved.predict_arrays(X), np.mean(preds, axis=0), atol=1e-4)
