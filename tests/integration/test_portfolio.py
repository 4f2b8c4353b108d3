"""``model.name: auto`` on real molecules (ESOL subset): selection on validation rows only, the time budget,
and the "baseline wins" verdict in metrics.json, diagnostics and report.

The molecule portfolio is replaced by tiny candidates (small dense networks, few epochs) so the file runs in
seconds; the mechanism is the one the real defaults use.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

pytest.importorskip("rdkit")

from biodl import Experiment
from biodl.data.molecule.modality import MoleculeModality
from biodl.experiment.yardstick import compare_to_baseline

ESOL = Path(__file__).resolve().parents[1] / "data" / "esol_subset.csv"
TINY = (
    {"name": "ffn", "hidden_sizes": [8], "dropout": 0.0, "input_dropout": 0.0},
    {"name": "ffn", "hidden_sizes": [32], "dropout": 0.1, "data": {"molecule": {"featurizer": ["maccs"]}}},
)


def _run(path: Path, out: Path, *, evaluate: dict[str, Any] | None = None, **train: Any) -> dict[str, Any]:
    exp = Experiment(
        data={
            "type": "molecule",
            "path": [str(path)],
            "task": "regression",
            "target_columns": ["logp"],
            "split": "random",
            "split_sizes": [0.7, 0.15, 0.15],
            "molecule": {"featurizer": ["morgan_counts"], "n_bits": 256},
        },
        train={"max_epochs": 3, "batch_size": 32, "progress_bar": False, "seed": 0, "threads": 1, **train},
        evaluate=evaluate or {"baselines": ["linear"], "plots": False},
    )
    assert exp.config.model.name == "auto"  # the molecule default
    exp.fit(out)
    return dict(json.loads((out / "metrics.json").read_text()))


@pytest.fixture(scope="module")
def tiny_portfolio() -> Any:
    patch = pytest.MonkeyPatch()
    patch.setattr(MoleculeModality, "portfolio", TINY)
    yield TINY
    patch.undo()


@pytest.fixture(scope="module")
def plain_run(tiny_portfolio: Any, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    """The run and its metrics; what it printed is in ``metrics["_console"]``."""
    import contextlib
    import io

    out = tmp_path_factory.mktemp("auto") / "run"
    console = io.StringIO()
    with contextlib.redirect_stdout(console):
        m = _run(ESOL, out)
    return out, {**m, "_console": console.getvalue()}


def test_every_candidate_is_scored_on_validation_and_saved(plain_run: tuple[Path, dict[str, Any]]) -> None:
    out, m = plain_run
    sel = m["model_selection"]
    assert sel["metric"] == "rmse" and sel["selected_on"] == "val"
    trained = [c for c in sel["candidates"] if c["status"] == "trained"]
    assert len(trained) == 2 and sum(bool(c.get("selected")) for c in trained) == 1
    best = min(trained, key=lambda c: c["val"]["rmse"])
    assert best["selected"] and abs(m["val"]["rmse"] - best["val"]["rmse"]) < 1e-6  # the run's model is the best
    assert set(m["candidates"]) == {c["label"] for c in sel["candidates"]}
    for c in trained:  # every candidate is a network saved as safetensors
        assert (Path(c["model_dir"]) / "weights.safetensors").exists()
    assert "model selection" in (out / "report.html").read_text()


def test_poisoned_test_rows_do_not_change_the_choice(plain_run: tuple[Path, dict[str, Any]], tmp_path: Path) -> None:
    out, m = plain_run
    split = json.loads((out / "splits.json").read_text())
    frame = pd.read_csv(ESOL)
    frame.loc[split["test"], "logp"] = 1000.0  # absurd test targets
    poisoned = tmp_path / "esol_poisoned.csv"
    frame.to_csv(poisoned, index=False)
    m2 = _run(poisoned, tmp_path / "run", evaluate={"baselines": ["linear"], "plots": False, "report": False})
    assert m2["test"]["rmse"] > 100 * m["test"]["rmse"]  # the poison reached the test rows ...
    assert m2["model_selection"]["selected"] == m["model_selection"]["selected"]  # ... not the choice
    assert m2["candidates"] == m["candidates"]  # nor any validation score
    # train.refit then learns from the poisoned rows: validation says the refit is far worse, so it is not shipped
    assert m["refit"]["shipped"] == "refit" and (out / "model_heldout").is_dir()  # the clean run ships its refit
    html = (out / "report.html").read_text()
    assert f"trained again on {m['refit']['rows']} rows" in html and "measured model, model_heldout/" in html
    r = m2["refit"]
    assert r["shipped"] == "model_heldout" and "more than 2 standard errors" in r["reason"]
    assert r["val"]["refit"] > r["val"]["heldout"] + 2 * r["val"]["standard_error"]
    assert not (tmp_path / "run" / "model_heldout").exists()  # model/ is the measured model


def test_baseline_wins_on_a_small_real_subset(plain_run: tuple[Path, dict[str, Any]]) -> None:
    out, m = plain_run
    # 3 epochs of tiny networks on 168 molecules: ridge regression on the same counts is better, and we say so
    assert m["network_beats_baseline"] is False
    assert m["baseline_margin"] < 0
    c = m["baseline_comparison"]
    assert c["metric"] == "rmse" and c["network"] > c["baseline"] and c["baseline_name"] == "linear"
    assert c["baseline"] == pytest.approx(m["baseline"]["val"]["rmse"])
    findings = json.loads((out / "diagnostics.json").read_text())
    wins = [f for f in findings if f["kind"] == "baseline_wins"]
    assert wins and "Try:" in wins[0]["message"]
    assert "beats the network on validation" in (out / "report.html").read_text()
    # ... and on the console, as a warning line with both values
    said = f"WARNING: the classical baseline (linear) beats the network on validation: rmse {c['baseline']:.4f}"
    assert said in m["_console"] and f"the network's {c['network']:.4f}" in m["_console"]
    assert f"auto: {m['model_selection']['selected']}" in m["_console"].replace("\n", " ")  # the table's title
    # the margin comes with its paired bootstrap standard error over the validation rows, said in every place
    se = c["standard_error"]
    assert 0 < se < 1 and c["within_noise"] == (abs(c["margin"]) <= se)
    assert wins[0]["evidence"]["standard_error"] == se and "standard error of the difference" in wins[0]["message"]
    assert ("more validation rows" in wins[0]["message"]) == c["within_noise"]
    assert f"standard error of the difference {se:.4f}" in (out / "report.html").read_text()


def test_the_model_card_states_the_runs_own_verdict(plain_run: tuple[Path, dict[str, Any]]) -> None:
    from biodl.model_card import render_card

    out, m = plain_run
    c = m["baseline_comparison"]
    text = render_card(out)
    # the validation verdict with the validation values (not test values beside a validation margin)
    assert (
        f"On the validation split the network does **not** beat the classical baseline (linear) on rmse: "
        f"{c['network']:.4f} vs {c['baseline']:.4f} (margin {c['margin']:+.4f}" in text
    )
    assert f"standard error {c['standard_error']:.4f}" in text


def test_time_budget_stops_and_skips(tiny_portfolio: Any, tmp_path: Path) -> None:
    slow = (
        {"name": "ffn", "hidden_sizes": [8], "train": {"ensemble_size": 3, "max_epochs": 100_000, "early_stopping": False}},
        {"name": "ffn", "hidden_sizes": [8]},
    )
    patch = pytest.MonkeyPatch()
    patch.setattr(MoleculeModality, "portfolio", slow)
    try:
        m = _run(  # the experiment's own train keys win over a candidate's: the run asks for the long training
            ESOL, tmp_path / "run", evaluate={"baselines": [], "plots": False, "report": False}, time_budget=1.5,
            max_epochs=100_000, early_stopping=False,
        )  # fmt: skip
    finally:
        patch.undo()
    first, second = m["model_selection"]["candidates"]
    assert first["status"] == "trained" and first["stopped_by_budget"] is True
    assert first["ensemble_members"] == 1 and first["epochs"] < 100_000
    # the clock (CPU time) passes the budget by at most the epoch in progress and the candidate's saving
    assert first["cpu_seconds"] <= 1.5 + 2.0
    # the refit trains the candidate again no longer than the budget let it run (its log: one line per epoch)
    log = pd.read_csv(tmp_path / "run" / "refit" / "0_ffn" / "logs" / "metrics.csv")
    assert m["refit"]["shipped"] in ("refit", "model_heldout") and log["epoch"].max() + 1 <= first["epochs"]
    assert second["status"] == "skipped" and "time_budget" in second["reason"]
    assert m["model_selection"]["time_budget"] == 1.5 and m["model_selection"]["time_budget_clock"] == "cpu"
    assert "network_beats_baseline" not in m  # no baseline, no verdict


def test_an_ensemble_leaves_the_later_candidates_their_share(tiny_portfolio: Any, tmp_path: Path) -> None:
    many = (
        {"name": "ffn", "hidden_sizes": [8], "train": {"ensemble_size": 60}},
        {"name": "ffn", "hidden_sizes": [8]},
    )
    patch = pytest.MonkeyPatch()
    patch.setattr(MoleculeModality, "portfolio", many)
    try:
        m = _run(ESOL, tmp_path / "run", evaluate={"baselines": [], "plots": False, "report": False}, time_budget=4.0)
    finally:
        patch.undo()
    first, second = m["model_selection"]["candidates"][:2]
    assert 1 <= first["ensemble_members"] < 60 and first["stopped_by_budget"] is True  # no member after its half
    assert second["status"] == "trained"  # the second family still had its turn
    # molecules average their candidates by default, but not presuming a partner the budget cut short
    average = next(c for c in m["model_selection"]["candidates"] if c["index"] == "average")
    rule = average["blend_rule"]
    assert rule["prior"] == "single" and rule["prior_note"] == "candidate(s) [0] stopped by train.time_budget"
    assert average["status"] == ("averaged" if rule["gain_over_best"] > rule["standard_error"] > 0 else "not chosen")
    assert "stopped by train.time_budget" in average["reason"]


def test_a_standard_error_is_recorded_only_when_given() -> None:
    metrics: dict[str, Any] = {"val": {"rmse": 0.9}, "baseline": {"name": "linear", "val": {"rmse": 0.8}}}
    compare_to_baseline(metrics, "regression", standard_error=0.15)
    assert metrics["baseline_comparison"]["within_noise"] is True
    compare_to_baseline(metrics, "regression")  # e.g. on cross-validation fold means: no paired rows
    assert "standard_error" not in metrics["baseline_comparison"] and metrics["network_beats_baseline"] is False


def test_network_beats_baseline_when_it_does() -> None:
    metrics: dict[str, Any] = {"val": {"auroc": 0.86}, "baseline": {"name": "random_forest", "val": {"auroc": 0.80}}}
    c = compare_to_baseline(metrics, "binary")
    assert metrics["network_beats_baseline"] is True and c is not None
    assert metrics["baseline_margin"] == pytest.approx(0.06)
