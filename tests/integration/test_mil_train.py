"""Multiple-instance learning on real data: MUSK1 with predefined cross-validation folds, and
BreastMNIST mosaics as image bags with a planted key instance."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from biodl.experiment import Experiment
from conftest import shared_path
from mil_data import bag_table, breast_mosaics

FAST = {"progress_bar": False, "threads": 1}


def test_musk1_two_fold_cv_column(tmp_path: Path) -> None:
    """``--cv-column``: each fold value is the test part once; bags never straddle a split."""
    src = shared_path("mil", "midatasets", "musk1.csv.gz")
    table = bag_table(src, src.with_name("musk1_cv_folds.csv"), tmp_path / "musk1.csv", n_folds=2)
    exp = Experiment(
        data={"type": "tabular", "path": [str(table)], "bag_column": "bag_id", "target_columns": ["bag_label"],
              "cv_column": "fold", "task": "classification"},
        model={"name": "mil"},
        train={**FAST, "max_epochs": 20},
        evaluate={"report": False, "plots": False},
    )  # fmt: skip
    result = exp.fit(tmp_path / "run")
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["cv"]["folds"] == 2 and metrics["cv"]["column"] == "fold"
    assert metrics["test"]["n"] == pytest.approx(46, abs=1)  # mean test bags per fold: 92 bags / 2
    assert metrics["test"]["accuracy"] >= 0.7  # MUSK1 is learnable from bag labels alone
    assert metrics["baseline"]["name"] == "linear"
    splits = json.loads((tmp_path / "run" / "splits.json").read_text())
    import pandas as pd

    frame = pd.read_csv(table)
    fold_of = dict(zip(frame["bag_id"].astype(str), frame["fold"]))
    for k, fold in enumerate(splits["folds"]):
        assert {fold_of[b] for b in fold["test_ids"]} == {k}  # the given test fold, nothing else
        assert not set(fold["test_ids"]) & set(fold["train_ids"] + fold["val_ids"])
        assert len(fold["train_ids"]) + len(fold["val_ids"]) + len(fold["test_ids"]) == 92
    assert result.bundle is not None and result.bundle.modality.name == "bags"


def test_image_bags_learn_a_planted_key_instance(tmp_path: Path) -> None:
    """Bags of 28×28 tiles of BreastMNIST mosaics: positive bags hold one inverted image. The network
    learns the bag label and its attention points at the planted tile."""
    npz = shared_path("images", "breastmnist", "breastmnist_train_val.npz")
    root, planted = breast_mosaics(npz, tmp_path / "mosaics", n_pos=40, n_neg=40)
    exp = Experiment(
        data={"type": "bags", "path": [str(root)], "task": "classification", "bags": {"tile_size": 28}},
        model={"name": "mil", "pooling": "attention", "members": 1},  # one network: the test is about its attention
        train={**FAST, "max_epochs": 15, "lr": 1e-3},
        evaluate={"report": False, "plots": True},
    )
    result = exp.fit(tmp_path / "run")
    assert result.metrics["test"]["accuracy"] >= 0.85
    assert (tmp_path / "run" / "figures" / "bag_weights_0.png").is_file()  # overlay of instance weights
    bundle = result.bundle
    assert bundle is not None and bundle.modality.kind == "image"
    from biodl.explain.bags import instance_table
    from biodl.inference import load_data

    data = load_data(bundle, [str(root)], require_targets=True)
    table = instance_table(bundle, data)
    assert len(table) == 4 * 80 and set(table["instance"]) == {"0,0", "0,28", "28,0", "28,28"}
    splits = json.loads((tmp_path / "run" / "splits.json").read_text())
    corner = {"0,0": 0, "0,28": 1, "28,0": 2, "28,28": 3}
    hits = []
    for bag in splits["test_ids"]:
        if bag in planted:
            rows = table[table["bag"] == bag]
            hits.append(corner[rows.loc[rows["weight"].idxmax(), "instance"]] == planted[bag])
    assert len(hits) >= 5 and np.mean(hits) >= 0.7


def _musk1_run(tmp_path: Path, name: str, model: dict[str, object]) -> Path:
    src = shared_path("mil", "midatasets", "musk1.csv.gz")
    table = bag_table(src, src.with_name("musk1_cv_folds.csv"), tmp_path / "musk1.csv", n_folds=2)
    Experiment(
        data={"type": "tabular", "path": [str(table)], "bag_column": "bag_id", "target_columns": ["bag_label"],
              "task": "classification"},
        model={"name": "mil", "members": 2, **model},
        train={**FAST, "max_epochs": 3},
        evaluate={"report": False, "plots": False, "baselines": ["linear"]},
    ).fit(tmp_path / name)  # fmt: skip
    return tmp_path / name


def test_the_piecewise_linear_encoding_is_fitted_on_the_training_bags_real_instances(tmp_path: Path) -> None:
    from biodl.bundle import load
    from biodl.data.bags import bag_mask
    from biodl.models.numeric_encoding import PiecewiseLinearEncoding

    run = _musk1_run(tmp_path, "ple", {"numeric_encoding": "ple"})
    bundle = load(run / "model")  # an encoded bundle loads encoded, whatever the default (now none, docs/mil.md)
    assert bundle.meta["model"]["params"]["numeric_encoding"] == "ple"
    data = bundle.modality.load([str(tmp_path / "musk1.csv")])
    X = bundle.modality.transform(data.X)
    tr = np.asarray(json.loads((run / "splits.json").read_text())["train"])
    real = X[tr][..., :-1][bag_mask(X[tr])].astype(np.float64)  # instances of training bags, padding left out
    encoders = [m for m in bundle.model.modules() if isinstance(m, PiecewiseLinearEncoding)]
    assert len(encoders) == 2
    for enc in encoders:
        for f in (0, 80, 165):
            expected = np.unique(np.quantile(real[:, f], np.linspace(0, 1, 17)))
            np.testing.assert_allclose(enc.edges(f), expected, rtol=1e-4, atol=1e-5)


def test_a_bundle_saved_before_the_encoding_default_loads_as_it_was_trained(tmp_path: Path) -> None:
    from biodl.bundle import load

    run = _musk1_run(tmp_path, "plain", {})
    meta_path = run / "model" / "bundle.json"
    meta = json.loads(meta_path.read_text())
    assert meta["model"]["params"]["numeric_encoding"] == "none"  # the default (docs/mil.md)
    del meta["model"]["params"]["numeric_encoding"]  # what an older biodl wrote
    meta_path.write_text(json.dumps(meta))
    bundle = load(run / "model")
    assert bundle.model.params.numeric_encoding == "none"  # type: ignore[attr-defined]
    data = bundle.modality.load([str(tmp_path / "musk1.csv")])
    prob = bundle.predict_arrays(bundle.modality.transform(data.X))
    metrics = json.loads((run / "metrics.json").read_text())
    te = np.asarray(json.loads((run / "splits.json").read_text())["test"])
    y = np.asarray(data.targets.y).ravel()
    assert ((prob[te].ravel() > 0.5) == (y[te] > 0.5)).mean() == pytest.approx(metrics["test"]["accuracy"])
