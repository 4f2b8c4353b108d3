"""``train.refit`` on real cells (the PBMC resource): once measured, the model is trained again on training +
test rows and shipped as ``model/``; the measured model stays in ``model_heldout/`` and its figures are the
run's. The guard that keeps a refit worse on validation is exercised in ``test_portfolio.py`` (poisoned
test rows)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import anndata
import numpy as np
import pytest
from safetensors.numpy import load_file

from biodl import Experiment
from biodl.bundle import load
from biodl.data.tabular import Tabular
from biodl.metrics import compute_metrics

PBMC = Path(__file__).resolve().parents[2] / "src" / "biodl" / "resources" / "pbmc68k_reduced.h5ad"


def _run(out: Path, data: dict[str, Any] | None = None, **train: Any) -> dict[str, Any]:
    exp = Experiment(
        data={"path": [str(PBMC)], "task": "classification", "target_columns": ["bulk_labels"], **(data or {})},
        model={"name": "mlp", "hidden_sizes": [16]},
        train={"max_epochs": 4, "progress_bar": False, "seed": 0, "threads": 1, **train},
        evaluate={"baselines": [], "plots": False, "report": False},
    )
    exp.fit(out)
    return dict(json.loads((out / "metrics.json").read_text()))


@pytest.fixture(scope="module")
def refit_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    out = tmp_path_factory.mktemp("refit") / "run"
    return out, _run(out)  # train.refit: auto (a table of 700 rows)


def test_the_shipped_model_learnt_from_training_and_test_rows(refit_run: tuple[Path, dict[str, Any]]) -> None:
    out, m = refit_run
    split = json.loads((out / "splits.json").read_text())
    tr, va, te = (np.asarray(split[p]) for p in ("train", "val", "test"))
    r = m["refit"]
    assert r["shipped"] == "refit" and r["rows"] == len(tr) + len(te) and r["added_test_rows"] == len(te)
    assert r["validation_rows"] == len(va) and r["val"]["metric"] == "accuracy"
    X = np.asarray(anndata.read_h5ad(PBMC).X, dtype=np.float64)
    # the preprocessing of each bundle is fitted on the rows it learnt from: the refit's on training + test rows
    shipped = load_file(str(out / "model" / "preprocessing.safetensors"))["data.mean"]
    measured = load_file(str(out / "model_heldout" / "preprocessing.safetensors"))["data.mean"]
    assert np.allclose(shipped, X[np.sort(np.concatenate([tr, te]))].mean(0), atol=1e-5)
    assert np.allclose(measured, X[tr].mean(0), atol=1e-5)
    assert (out / "refit" / "model" / "checkpoints" / "last.ckpt").is_file()
    meta = json.loads((out / "model" / "bundle.json").read_text())
    assert meta["refit"]["rows"] == r["rows"] and meta["metrics"]["test"] == m["test"]


def test_the_runs_figures_are_the_measured_models(refit_run: tuple[Path, dict[str, Any]]) -> None:
    out, m = refit_run
    split = json.loads((out / "splits.json").read_text())
    te = np.asarray(split["test"])
    bundle = load(out / "model_heldout")
    data = bundle.modality.load([str(PBMC)])
    p = bundle.predict_arrays(bundle.modality.transform(data.X[te]))
    acc = compute_metrics("multiclass", data.targets.y[te], p, metrics=["accuracy"])["accuracy"]
    assert acc == pytest.approx(m["test"]["accuracy"], abs=1e-9)
    refit = load(out / "model")
    q = refit.predict_arrays(refit.modality.transform(data.X[te]))
    assert not np.allclose(p, q)  # another model: it has seen these rows
    card = (out / "model" / "README.md").read_text()
    assert f"Trained again on {m['refit']['rows']} rows" in card and "model_heldout/" in card


def test_evaluate_and_predict_say_the_refit_model_saw_the_runs_test_rows(
    refit_run: tuple[Path, dict[str, Any]], capsys: pytest.CaptureFixture[str]
) -> None:
    from biodl.cli.main import main

    out, m = refit_run
    assert main(["evaluate", "--model-path", str(out), "--data-path", str(PBMC)]) == 0
    said = capsys.readouterr().out
    assert f"this model learnt from {m['refit']['rows']} rows of its run, the test rows included" in said
    assert main(["evaluate", "--model-path", str(out / "model_heldout"), "--data-path", str(PBMC)]) == 0
    assert "test rows included" not in capsys.readouterr().out
    assert main(["predict", "--model-path", str(out), "--data-path", str(PBMC), "--output", str(out / "p.csv")]) == 0
    assert "the test rows included" in capsys.readouterr().out


def test_never_and_auto_over_the_size_limit_ship_the_measured_model(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    m = _run(tmp_path / "never", refit="never", max_epochs=1)
    assert m["refit"] == {"shipped": "measured", "reason": "train.refit: never"}
    assert not (tmp_path / "never" / "model_heldout").exists() and not (tmp_path / "never" / "refit").exists()
    monkeypatch.setattr(Tabular, "refit_rows", 500)
    m = _run(tmp_path / "big", max_epochs=1)
    assert m["refit"]["shipped"] == "measured" and "at most 500 rows, this run has 700" in m["refit"]["reason"]
    assert not (tmp_path / "big" / "model_heldout").exists()
    m = _run(tmp_path / "always", refit="always", max_epochs=1)  # always: whatever the size
    assert m["refit"]["shipped"] in ("refit", "model_heldout") and (tmp_path / "always" / "refit").is_dir()
    m = _run(tmp_path / "no_test", {"split_sizes": [0.9, 0.1, 0.0]}, refit="always", max_epochs=1)
    assert m["refit"] == {"shipped": "measured", "reason": "the run has no test rows to add"}


def test_auto_leaves_test_rows_the_data_named_unseen(refit_run: tuple[Path, dict[str, Any]]) -> None:
    """A predefined or chromosome split names its test rows (perhaps an official test set): ``auto`` keeps them out of
    every model; a random test split carved by biodl (``--val-column`` + ``split_sizes`` included) is refit."""
    from types import SimpleNamespace

    from biodl.config import ExperimentConfig
    from biodl.data.splits import Split
    from biodl.experiment.refit import refit_skipped

    out, _ = refit_run
    cfg = ExperimentConfig.from_yaml(out / "config.yaml")
    rows = np.arange(10)
    inputs = SimpleNamespace(modality=Tabular(cfg.data), data=rows)
    prepared = SimpleNamespace(X=np.zeros((10, 2)))

    def why(method: str, **data: Any) -> str | None:
        c = cfg.model_copy(update={"data": cfg.data.model_copy(update=data)})
        return refit_skipped(c, inputs, Split(rows[:6], rows[6:7], rows[7:], method), prepared)  # type: ignore[arg-type]

    assert why("stratified") is None and why("predefined", val_column="is_val") is None
    for method in ("predefined", "chromosome"):
        assert "leaves test rows the data named unseen" in str(why(method))
    c = cfg.model_copy(update={"train": cfg.train.model_copy(update={"refit": "always"})})
    assert refit_skipped(c, inputs, Split(rows[:6], rows[6:7], rows[7:], "predefined"), prepared) is None  # type: ignore[arg-type]
