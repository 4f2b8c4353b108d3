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
from biodl.experiment.blend import choose_average, paired_se
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
    best_single = max(c["val"]["accuracy"] for c in trained)
    average = next(c for c in sel["candidates"] if c["index"] == "average")  # always scored and recorded
    rule = average["blend_rule"]
    assert rule["rule"] == "auto" and rule["prior"] == "single"  # tables: the best single candidate by default
    assert rule["gain_over_best"] == pytest.approx(average["val"]["accuracy"] - best_single)
    if average["status"] == "averaged":  # validation favoured the average by more than one standard error
        assert rule["gain_over_best"] > rule["standard_error"] > 0
        assert sel["selected"] == average["label"] and abs(m["val"]["accuracy"] - average["val"]["accuracy"]) < 1e-6
        assert load(out / "model").meta["model"]["name"] == "ensemble"
    else:
        assert average["status"] == "not chosen" and not rule["gain_over_best"] > rule["standard_error"] > 0
        assert abs(m["val"]["accuracy"] - best_single) < 1e-6
        assert "train.portfolio_blend: auto" in average["reason"]
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
    blended = average_if_better(inputs, rows, pool, "accuracy", True, -math.inf, rule="always")  # forced
    assert blended is not None
    trained, record = blended
    assert record["status"] == "averaged" and record["members"] == [0, 1]
    saved = load(trained.bundle.save(tmp_path / "blend"))
    assert saved.meta["model"]["name"] == "ensemble" and len(saved.meta["model"]["params"]["members"]) == 2
    assert not list((tmp_path / "blend").glob("*.pt*"))  # safetensors + JSON only
    np.testing.assert_allclose(saved.predict_arrays(X), np.mean(preds, axis=0), atol=1e-4)


def _validation_pool(out: Path, m: dict[str, Any]) -> tuple[Inputs, np.ndarray, list[Any]]:
    sel = m["model_selection"]
    bundles = [load(Path(c["model_dir"])) for c in sel["candidates"] if c["status"] == "trained"]
    run_bundle = load(out / "model")
    data = run_bundle.modality.load([str(shared_path("expression", "pbmc68k_reduced", "10x_pbmc68k_reduced.h5ad"))])
    rows = _val_rows(out)
    inputs = Inputs(run_bundle.modality, data, None)
    pool = []
    for i, b in enumerate(bundles):
        p = b.predict_arrays(b.modality.transform(data.X[rows]))
        pool.append((i, score_preds(inputs, rows, p, "accuracy"), Trained(bundle=b, history={}, best_epoch=None, epochs=1), p))
    return inputs, rows, pool


def test_paired_standard_error_matches_the_per_row_formula(run: tuple[Path, dict[str, Any], Experiment]) -> None:
    """For accuracy the paired difference is a mean over rows of (a right) − (b right): its bootstrap standard
    error is close to sd / sqrt(n) of that per-row difference."""
    out, m, _ = run
    inputs, rows, pool = _validation_pool(out, m)
    a, b = pool[0][3], pool[1][3]
    y = np.asarray(inputs.targets.y[rows])
    d = (a.argmax(1) == y).astype(float) - (b.argmax(1) == y).astype(float)
    assert score_preds(inputs, rows, a, "accuracy") - score_preds(inputs, rows, b, "accuracy") == pytest.approx(d.mean())
    se = paired_se(inputs, rows, a, b, "accuracy")
    assert paired_se(inputs, rows, a, b, "accuracy") == se  # seeded: the same resamples every time
    assert paired_se(inputs, rows, a, a.copy(), "accuracy") == 0.0
    formula = d.std() / math.sqrt(len(d))
    if formula > 0:
        assert 0.75 * formula < se < 1.25 * formula
    else:
        assert se == 0.0


@pytest.mark.parametrize("prior", ["single", "average"])
def test_a_clearly_worse_partner_is_not_averaged_in(run: tuple[Path, dict[str, Any], Experiment], prior: str) -> None:
    """A candidate that is confidently wrong on every validation row drags the average far below the best
    candidate: rule auto keeps the best single one under either prior; always averages regardless; never and
    better behave as named."""
    out, m, _ = run
    inputs, rows, pool = _validation_pool(out, m)
    best = max(pool, key=lambda p: p[1])
    y = np.asarray(inputs.targets.y[rows])
    wrong = np.zeros_like(best[3])
    wrong[np.arange(len(rows)), (y + 1) % wrong.shape[1]] = 1.0  # the next class, never the right one
    worse = (1, score_preds(inputs, rows, wrong, "accuracy"), best[2], wrong)
    pair = [(0, best[1], best[2], best[3]), worse]
    assert worse[1] == 0.0
    found = choose_average(inputs, rows, pair, "accuracy", True, "auto", prior)
    assert found is not None
    option, evidence = found
    assert [p[0] for p in option] == [0, 1] and evidence["gain_over_best"] < -evidence["standard_error"] < 0
    assert evidence["averaged"] is False
    assert choose_average(inputs, rows, pair, "accuracy", True, "never", prior) is None
    assert choose_average(inputs, rows, pair, "accuracy", True, "always", prior)[1]["averaged"] is True
    assert choose_average(inputs, rows, pair, "accuracy", True, "better", prior)[1]["averaged"] is False
    # the same candidate twice: nothing to tell them apart (standard error 0), so the prior decides
    twin = [(0, best[1], best[2], best[3]), (1, best[1], best[2], best[3].copy())]
    same = choose_average(inputs, rows, twin, "accuracy", True, "auto", prior)
    assert same is not None and same[1]["standard_error"] == 0.0 and same[1]["averaged"] is (prior == "average")


def test_large_validation_sets_are_resampled_m_out_of_n(
    run: tuple[Path, dict[str, Any], Experiment], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Above ``BOOTSTRAP_MAX_ROWS`` each resample draws fewer rows and the standard error is rescaled by
    sqrt(m / n): it estimates the same quantity as the full bootstrap."""
    import biodl.experiment.blend as blend_module

    out, m, _ = run
    inputs, rows, pool = _validation_pool(out, m)
    a, b = pool[0][3], pool[1][3]
    full = paired_se(inputs, rows, a, b, "accuracy")
    if full == 0:
        pytest.skip("the two candidates agree on every validation row")
    monkeypatch.setattr(blend_module, "BOOTSTRAP_MAX_ROWS", len(rows) // 2)
    half = paired_se(inputs, rows, a, b, "accuracy")
    assert half != full and 0.6 * full < half < 1.4 * full


def test_of_two_averages_on_different_inputs_the_better_on_validation_is_kept(tmp_path: Path) -> None:
    """Two sets of candidates on different inputs (plain and winsorised features), ``portfolio_blend: always``:
    each set's average is scored; the run's model is the better on validation, the other is recorded as not
    chosen with the reason."""
    clip = {"normalize": {"clip": 2.5, "rescale": True}}
    four = (
        {"name": "mlp", "hidden_sizes": [], "batch_norm": False},
        {"name": "mlp", "hidden_sizes": [16], "batch_norm": False},
        {"name": "mlp", "hidden_sizes": [], "batch_norm": False, "data": clip},
        {"name": "mlp", "hidden_sizes": [16], "batch_norm": False, "data": clip},
    )
    patch = pytest.MonkeyPatch()
    patch.setattr(Tabular, "portfolio", four)
    out = tmp_path / "run"
    try:
        Experiment(
            data={"path": [str(shared_path("expression", "pbmc68k_reduced", "10x_pbmc68k_reduced.h5ad"))],
                  "task": "classification", "target_columns": ["bulk_labels"], "split_sizes": [0.6, 0.1, 0.3]},
            train={"max_epochs": 3, "progress_bar": False, "seed": 0, "threads": 1, "portfolio_blend": "always"},
            evaluate={"baselines": [], "plots": False, "report": False},
        ).fit(out)  # fmt: skip
    finally:
        patch.undo()
    m = json.loads((out / "metrics.json").read_text())
    averages = [c for c in m["model_selection"]["candidates"] if c["index"] == "average"]
    assert sorted(tuple(a["members"]) for a in averages) == [(0, 1), (2, 3)]
    kept = [a for a in averages if a["status"] == "averaged"]
    other = [a for a in averages if a["status"] == "not chosen"]
    assert len(kept) == 1 and len(other) == 1 and kept[0]["val"]["accuracy"] >= other[0]["val"]["accuracy"]
    assert other[0]["reason"].endswith("an average of other inputs scores at least as high")
    assert m["model_selection"]["selected"] == kept[0]["label"]
    assert abs(m["val"]["accuracy"] - kept[0]["val"]["accuracy"]) < 1e-6
