"""The MIL command of the evaluation contract end to end: train (``--bag-column``, ``--cv-column``)
→ predict (with instance weights) → evaluate → export (ONNX parity, bags of any size) → serve."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest
from server_process import Server, serve

from biodl.cli.main import main
from conftest import shared_path
from mil_data import bag_table


@pytest.fixture(scope="module")
def musk_table(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """30 MUSK1 bags (15 per class) in the contract's layout ``bag_id, bag_label, fold, f1..``, 2 folds."""
    src = shared_path("mil", "midatasets", "musk1.csv.gz")
    out = tmp_path_factory.mktemp("musk") / "bags.csv"
    bag_table(src, src.with_name("musk1_cv_folds.csv"), out, n_folds=2)
    frame = pd.read_csv(out)
    labels = frame.groupby("bag_id")["bag_label"].first()
    keep = list(labels[labels == 1].index[:15]) + list(labels[labels == 0].index[:15])
    frame[frame["bag_id"].isin(keep)].to_csv(out, index=False)
    return out


@pytest.fixture(scope="module")
def run_dir(musk_table: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("mil") / "run"
    rc = main(
        ["train", "--data-type", "tabular", "--data-path", str(musk_table), "--bag-column", "bag_id",
         "--target-columns", "bag_label", "--cv-column", "fold", "--model", "mil", "--task", "classification",
         "--output-dir", str(out), "--max-epochs", "8", "--threads", "1",
         "--set", "train.progress_bar=false", "--set", "evaluate.report=false", "--set", "evaluate.plots=false"]
    )  # fmt: skip
    assert rc == 0
    return out


def test_train_writes_fold_means(run_dir: Path) -> None:
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["cv"]["folds"] == 2 and len(metrics["cv"]["per_fold"]) == 2
    assert {"accuracy", "auroc"} <= set(metrics["test"]) and "accuracy" in metrics["baseline"]["test"]
    cfg = (run_dir / "config.yaml").read_text()
    assert "type: bags" in cfg and "bag_column: bag_id" in cfg
    assert "instance_dropout: 0.3" in cfg  # the mil default: training on random sub-bags
    bundle_meta = json.loads((run_dir / "model" / "bundle.json").read_text())
    assert "fold" not in bundle_meta["columns"]["feature_columns"]  # --cv-column is never a feature
    assert len(bundle_meta["columns"]["feature_columns"]) == 166


def test_predict_evaluate_with_instance_weights(run_dir: Path, musk_table: Path, tmp_path: Path) -> None:
    pred = tmp_path / "pred.csv"
    assert main(["predict", "--model-path", str(run_dir), "--data-path", str(musk_table), "--output", str(pred)]) == 0
    frame = pd.read_csv(pred)
    assert len(frame) == 30 and {"id", "prob_1", "predicted"} <= set(frame.columns)
    inst = pd.read_csv(tmp_path / "pred_instances.csv")
    table = pd.read_csv(musk_table)
    assert len(inst) == len(table)  # one row per instance
    sums = inst.groupby("bag")["weight"].sum()
    np.testing.assert_allclose(sums.to_numpy(), 1.0, atol=1e-4)  # attention weights of a bag sum to 1
    out = tmp_path / "eval.json"
    assert main(["evaluate", "--model-path", str(run_dir), "--data-path", str(musk_table), "--output", str(out)]) == 0
    ev = json.loads(out.read_text())["metrics"]
    assert ev["n"] == 30 and 0.0 <= ev["accuracy"] <= 1.0
    expl = tmp_path / "explain"
    assert main(["explain", "--model-path", str(run_dir), "--data-path", str(musk_table), "--output-dir", str(expl)]) == 0
    assert (expl / "instances.csv").is_file() and (expl / "figures" / "bag_weights.png").is_file()


def test_onnx_export_parity_for_any_bag_size(run_dir: Path, musk_table: Path, tmp_path: Path) -> None:
    import onnxruntime as ort
    import torch

    from biodl import load
    from biodl.data.bags import pack_bags

    out = tmp_path / "mil.onnx"
    assert main(["export", "--model-path", str(run_dir), "--output", str(out), "--data-path", str(musk_table)]) == 0
    manifest = json.loads(out.with_name("mil.onnx.json").read_text())
    assert manifest["parity"]["passed"]
    bundle = load(run_dir)
    rng = np.random.default_rng(0)
    big = pack_bags([rng.normal(size=(k, 166)).astype(np.float32) for k in (3, 60)])  # larger than any training bag
    X = bundle.modality.transform(big)
    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    got = session.run(None, {"input": X})[0]
    with torch.no_grad():
        ref = torch.sigmoid(bundle.model(torch.from_numpy(X))).numpy()
    np.testing.assert_allclose(got, ref, atol=1e-4)


@pytest.fixture(scope="module")
def server(run_dir: Path) -> Iterator[Server]:
    with serve(run_dir) as srv:
        yield srv


def test_serve_predicts_bags_of_different_sizes(server: Server, run_dir: Path, musk_table: Path) -> None:
    from biodl import load

    table = pd.read_csv(musk_table)
    feats = [c for c in table.columns if c.startswith("f") and c != "fold"]
    groups = list(table.groupby("bag_id", sort=False))[:3]
    bags = [g[feats].to_numpy(np.float32) for _, g in groups]
    body = {"inputs": [bags[0].tolist(), {"instances": bags[1].tolist()}, bags[2].tolist()]}
    res = httpx.post(f"{server.url}/predict", json=body, timeout=60)
    assert res.status_code == 200, res.text
    got = np.array([p["probabilities"]["1"] for p in res.json()["predictions"]])
    for p, bag in zip(res.json()["predictions"], bags, strict=True):  # a weight per instance, summing to 1
        assert p["instances"] == [str(k + 1) for k in range(len(bag))]
        assert len(p["instance_weights"]) == len(bag) and sum(p["instance_weights"]) == pytest.approx(1.0, abs=1e-5)
    bundle = load(run_dir)
    from biodl.data.bags import pack_bags

    ref = bundle.predict_arrays(bundle.modality.transform(pack_bags(bags)))[:, 0]
    np.testing.assert_allclose(got, ref, atol=1e-4)
    bad = httpx.post(f"{server.url}/predict", json={"inputs": [[[1.0, 2.0]]]}, timeout=60)
    assert bad.status_code == 422 and "input 0: instance 0: expected 166 feature values, got 2" in bad.text
