"""``train.ensemble_variants`` on real multi-label data (yeast): members alternate between the plain network and
the piecewise-linear encoded one, each encoding is fitted on the training rows only, and the saved bundle (a
blend of the members' own specs) reloads and reproduces the run's test metrics."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from biodl.bundle import load
from biodl.cli.main import main
from biodl.models.numeric_encoding import PiecewiseLinearEncoding
from conftest import shared_path

YEAST_LABELS = [f"Class{j}" for j in range(1, 15)]
PLE = {"numeric_encoding": "ple", "encoding_bins": 4}


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    data = shared_path("multilabel", "yeast", "yeast-train.arff")
    out = tmp_path_factory.mktemp("variants") / "run"
    rc = main(["train", "--data-path", str(data), "--task", "multilabel", "--target-columns", *YEAST_LABELS,
               "--model", "mlp", "--set", "model.hidden_sizes=[16]", "--ensemble-size", "3", "--max-epochs", "2",
               "--set", f"train.ensemble_variants=[{{}}, {json.dumps(PLE)}]", "--threads", "1",
               "--set", "train.progress_bar=false", "--set", "evaluate.report=false", "--set", "evaluate.plots=false",
               "--set", "evaluate.baselines=[linear]", "--output-dir", str(out)])  # fmt: skip
    assert rc == 0
    return out


def _encoders(member: torch.nn.Module) -> list[PiecewiseLinearEncoding]:
    return [m for m in member.modules() if isinstance(m, PiecewiseLinearEncoding)]


def test_members_alternate_and_the_encoding_is_fitted_on_the_training_rows(run: Path) -> None:
    bundle = load(run / "model_heldout")  # the measured model (model/ was trained again on training + test rows)
    members = list(bundle.model.members)  # type: ignore[union-attr]
    assert [len(_encoders(m)) for m in members] == [0, 1, 0]
    assert [m["params"].get("numeric_encoding") for m in bundle.meta["model"]["params"]["members"]] == ["none", "ple", "none"]
    data = bundle.modality.load([str(shared_path("multilabel", "yeast", "yeast-train.arff"))])
    X = bundle.modality.transform(data.X).astype(np.float64)
    tr = np.asarray(json.loads((run / "splits.json").read_text())["train"])
    enc = _encoders(members[1])[0]
    for f in (0, 50, 102):
        expected = np.unique(np.quantile(X[tr, f], np.linspace(0, 1, 5)))
        np.testing.assert_allclose(enc.edges(f), expected, rtol=1e-5, atol=1e-6)
        # the validation and test rows would have given other edges: the fit saw the training rows only
        assert not np.allclose(np.quantile(X[:, f], np.linspace(0, 1, 5)), expected, rtol=1e-5, atol=1e-6)
    # the refit model's encoding is fitted on the rows it learnt from: training + test, not validation
    refit = load(run / "model")
    assert [m["params"].get("numeric_encoding") for m in refit.meta["model"]["params"]["members"]] == ["none", "ple", "none"]
    splits = json.loads((run / "splits.json").read_text())
    rows = np.sort(np.concatenate([splits["train"], splits["test"]]))
    Xr = refit.modality.transform(data.X).astype(np.float64)
    enc = _encoders(list(refit.model.members)[1])[0]  # type: ignore[union-attr]
    np.testing.assert_allclose(enc.edges(50), np.unique(np.quantile(Xr[rows, 50], np.linspace(0, 1, 5))), rtol=1e-5, atol=1e-6)


def test_the_reloaded_blend_reproduces_the_runs_test_metrics(run: Path) -> None:
    metrics = json.loads((run / "metrics.json").read_text())
    bundle = load(run / "model_heldout")
    data = bundle.modality.load([str(shared_path("multilabel", "yeast", "yeast-train.arff"))])
    X, y = bundle.modality.transform(data.X), np.asarray(data.targets.y)
    te = np.asarray(json.loads((run / "splits.json").read_text())["test"])
    prob = bundle.predict_arrays(X[te])
    assert np.mean((prob > 0.5) != (y[te] > 0.5)) == pytest.approx(metrics["test"]["hamming_loss"], abs=1e-9)
    with torch.no_grad():  # the blend is the mean of its members' probabilities
        each = [torch.sigmoid(m(torch.from_numpy(X[te]))).numpy() for m in bundle.model.members]  # type: ignore[union-attr]
    np.testing.assert_allclose(prob, np.mean(each, axis=0), atol=1e-5)


def test_with_one_member_the_network_is_member_0(tmp_path: Path) -> None:
    data = shared_path("multilabel", "yeast", "yeast-train.arff")
    rc = main(["train", "--data-path", str(data), "--task", "multilabel", "--target-columns", *YEAST_LABELS[:3],
               "--model", "mlp", "--set", "model.hidden_sizes=[8]", "--max-epochs", "1", "--threads", "1",
               "--set", f"train.ensemble_variants=[{json.dumps(PLE)}, {{}}]", "--set", "train.progress_bar=false",
               "--set", "evaluate.report=false", "--set", "evaluate.plots=false", "--set", "evaluate.baselines=[linear]",
               "--output-dir", str(tmp_path / "run")])  # fmt: skip
    assert rc == 0
    bundle = load(tmp_path / "run" / "model")
    assert bundle.meta["model"]["name"] == "mlp" and bundle.meta["model"]["params"]["numeric_encoding"] == "ple"
    assert len(_encoders(bundle.model)) == 1
