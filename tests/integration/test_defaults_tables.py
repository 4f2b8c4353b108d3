"""The classification default of the tabular portfolio on real PBMC cells (docs/defaults-tables.md): the linear
candidate, trained by L-BFGS on winsorised features, reaches logistic regression's optimum and beats the run's
linear baseline on validation; the portfolio offers it for classification and regression (not multi-label).

One run of the real candidate (no shortened settings: it takes seconds) is shared by the module.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from tests.conftest import shared_path

from biodl import Experiment
from biodl.bundle import load
from biodl.data.tabular import Tabular


def _linear_candidate() -> dict[str, Any]:
    found = [dict(c) for c in Tabular.portfolio if c.get("train", {}).get("optimizer") == "lbfgs"]  # type: ignore[union-attr]
    assert len(found) == 1
    return found[0]


def test_the_linear_candidate_is_for_classes_and_values_on_winsorised_features() -> None:
    cand = _linear_candidate()
    assert cand["tasks"] == ["classification", "regression"] and cand["hidden_sizes"] == []
    assert cand["data"] == {"normalize": {"clip": 2.5, "rescale": True}}


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any], dict[str, Any]]:
    path = shared_path("expression", "pbmc68k_reduced", "10x_pbmc68k_reduced.h5ad")
    cand = _linear_candidate()
    cand.pop("tasks")
    train, data = cand.pop("train"), cand.pop("data")
    exp = Experiment(
        data={"path": [str(path)], "task": "classification", "target_columns": ["bulk_labels"],
              "split_sizes": [0.6, 0.1, 0.3], **data},
        model=cand,
        train={**train, "progress_bar": False, "seed": 0, "threads": 1},
        evaluate={"baselines": ["linear"], "plots": False, "report": False},
    )  # fmt: skip
    out = tmp_path_factory.mktemp("tab_lbfgs") / "run"
    exp.fit(out)
    return out, dict(json.loads((out / "metrics.json").read_text())), dict(train)


def test_lbfgs_reaches_logistic_regressions_optimum(run: tuple[Path, dict[str, Any], dict[str, Any]]) -> None:
    from sklearn.linear_model import LogisticRegression

    out, _, train = run
    bundle = load(out / "model_heldout")  # the measured model; model/ learnt from the test rows too (train.refit)
    splits = json.loads((out / "splits.json").read_text())
    tr = np.asarray(splits["train"])
    data = bundle.modality.load([str(shared_path("expression", "pbmc68k_reduced", "10x_pbmc68k_reduced.h5ad"))])
    X = bundle.modality.transform(data.X)
    np.testing.assert_allclose(X[tr].std(axis=0)[X[tr].std(axis=0) > 0], 1.0, atol=1e-3)  # standardised after clipping
    y = np.asarray(data.targets.y).ravel()
    # mean cross-entropy + wd/2 |W|^2 (biases free) is logistic regression with C = 1 / (N wd)
    lr = LogisticRegression(C=1.0 / (len(tr) * train["weight_decay"]), max_iter=5000).fit(X[tr], y[tr])
    ours = bundle.predict_arrays(X).argmax(axis=1)
    assert (ours == lr.predict(X)).mean() >= 0.97


def test_winsorising_beats_logistic_regression_on_plain_z_scores_on_validation(
    run: tuple[Path, dict[str, Any], dict[str, Any]],
) -> None:
    """What the run's linear baseline does (logistic regression on the plainly standardised matrix) loses on the
    validation cells; on the same winsorised features the baseline reaches the network's optimum."""
    from sklearn.linear_model import LogisticRegression

    out, m, _ = run
    splits = json.loads((out / "splits.json").read_text())
    tr, va = np.asarray(splits["train"]), np.asarray(splits["val"])
    data = load(out / "model").modality.load([str(shared_path("expression", "pbmc68k_reduced", "10x_pbmc68k_reduced.h5ad"))])
    X, y = np.asarray(data.X, dtype=np.float64), np.asarray(data.targets.y).ravel()
    X = (X - X[tr].mean(axis=0)) / np.where(X[tr].std(axis=0) > 0, X[tr].std(axis=0), 1.0)
    plain = (LogisticRegression(max_iter=5000).fit(X[tr], y[tr]).predict(X[va]) == y[va]).mean()
    assert m["val"]["accuracy"] > plain + 0.02  # seed 0: 0.857 against 0.814
    assert abs(m["val"]["accuracy"] - m["baseline"]["val"]["accuracy"]) <= 1.5 / len(va)  # same optimum


def test_the_winsorised_default_exports_with_its_preprocessing_spelled_out(
    run: tuple[Path, dict[str, Any], dict[str, Any]], tmp_path: Path
) -> None:
    """The manifest's steps (clip, then the second standardisation) reproduce the bundle's inputs, so the ONNX graph
    gives the bundle's outputs from raw cells."""
    import anndata
    import onnxruntime as ort

    from biodl.export import export_bundle
    from biodl.export.preprocessing import apply_steps

    out, _, _ = run
    bundle = load(out / "model")
    path = shared_path("expression", "pbmc68k_reduced", "10x_pbmc68k_reduced.h5ad")
    result = export_bundle(bundle, "onnx", tmp_path / "m.onnx", paths=[str(path)], rows=64)
    assert result.parity.passed and result.parity.preprocessing_max_abs_diff is not None
    manifest = json.loads((tmp_path / "m.onnx.json").read_text())
    ops = [s["op"] for s in manifest["preprocessing"]["steps"]]
    scale = {"divide", "multiply"}
    i = ops.index("clip")
    assert ops[i - 2] == ops[i + 1] == "subtract" and {ops[i - 1], ops[i + 2]} <= scale
    raw = np.asarray(anndata.read_h5ad(path).X, dtype=np.float32)[:100]
    x = apply_steps(manifest["preprocessing"], raw)
    np.testing.assert_allclose(x, bundle.modality.transform(raw), atol=1e-4)
    session = ort.InferenceSession(str(tmp_path / "m.onnx"), providers=["CPUExecutionProvider"])
    probs = session.run([manifest["output"]["name"]], {manifest["input"]["name"]: x})[0]
    assert np.abs(probs - bundle.predict_arrays(bundle.modality.transform(raw))).max() <= 1e-4
