"""Chemception end to end: tiny trainings on real ESOL and Tox21 subsets, then the CLI round trip
train → predict (SMILES in) → evaluate → export (ONNX parity) → serve → explain."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest

pytest.importorskip("rdkit")

from server_process import Server, serve

from biodl.bundle import load
from biodl.cli.main import main
from conftest import shared_path

ESOL = Path(__file__).resolve().parents[1] / "data" / "esol_subset.csv"
TINY = ["--set", "model.filters=8", "--set", "model.stem_stride=4", "--set", "train.progress_bar=false", "--threads", "1"]
TOX21_TASKS = ["NR-AhR", "SR-ARE", "SR-MMP"]
#: a linear alkane of 60 carbons, ≈ 75 Å long: wider than the 80 × 0.5 Å grid
LONG_CHAIN = "C" * 60


@pytest.fixture(scope="module")
def esol_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("chemception") / "esol"
    args = ["train", "--data-type", "molecule", "--model", "chemception", "--data-path", str(ESOL),
            "--target-columns", "logp", "--task", "regression", "--output-dir", str(out), "--max-epochs", "6",
            "--batch-size", "16", "--lr", "0.003", "--set", "evaluate.baselines=[]",
            "--set", "train.lr_schedule=plateau", *TINY]  # fmt: skip
    # plateau: a cosine over 6 epochs (the default schedule) spends half of them at a tenth of the rate
    assert main(args) == 0
    return out


def test_esol_subset_learns_and_stores_the_grid(esol_run: Path) -> None:
    history = json.loads((esol_run / "history.json").read_text())
    assert history["train_loss"][-1] < 0.8 * history["train_loss"][0]
    bundle = load(esol_run)
    assert bundle.meta["data"]["molecule"]["featurizer"] == ["chemception"]
    assert bundle.modality.grid.size == 80 and bundle.modality.grid.resolution == 0.5
    assert (esol_run / "figures").exists()


def test_predict_evaluate_from_smiles(esol_run: Path, tmp_path: Path) -> None:
    frame = pd.read_csv(ESOL).head(20)
    smiles_only = tmp_path / "smiles.csv"
    frame[["smiles"]].to_csv(smiles_only, index=False)
    pred = tmp_path / "pred.csv"
    assert main(["predict", "--model-path", str(esol_run), "--data-path", str(smiles_only), "--output", str(pred)]) == 0
    got = pd.read_csv(pred)
    assert len(got) == 20
    bundle = load(esol_run)
    X = bundle.modality.transform(bundle.modality.parse_inputs(frame.smiles.tolist()))
    value_col = next(c for c in got.columns if "logp" in c)
    np.testing.assert_allclose(got[value_col].to_numpy(), bundle.predict_arrays(X)[:, 0], atol=1e-4)
    ev = tmp_path / "eval.json"
    assert main(["evaluate", "--model-path", str(esol_run), "--data-path", str(ESOL), "--output", str(ev)]) == 0
    assert np.isfinite(json.loads(ev.read_text())["metrics"]["rmse"])


def test_onnx_export_matches_torch(esol_run: Path, tmp_path: Path) -> None:
    import onnxruntime as ort

    from biodl.export.graph import INPUT_NAME

    out = tmp_path / "chemception.onnx"
    assert main(["export", "--model-path", str(esol_run), "--output", str(out), "--data-path", str(ESOL),
                 "--parity-rows", "16"]) == 0  # fmt: skip
    assert json.loads((tmp_path / "chemception.onnx.json").read_text())["parity"]["passed"]
    bundle = load(esol_run)
    X = np.asarray(bundle.modality.transform(bundle.modality.parse_inputs(["CCO", "c1ccccc1O", "CC(=O)Oc1ccccc1C(=O)O"])))
    session = ort.InferenceSession(out.read_bytes(), providers=["CPUExecutionProvider"])
    onnx_out = session.run(None, {INPUT_NAME: X.astype(np.float32)})[0]
    assert np.abs(onnx_out - bundle.predict_arrays(X)).max() < 1e-3


@pytest.fixture(scope="module")
def server(esol_run: Path) -> Iterator[Server]:
    with serve(esol_run) as srv:
        yield srv


def test_serve_takes_smiles(server: Server, esol_run: Path) -> None:
    smiles = ["CCO", "c1ccccc1O"]
    res = httpx.post(f"{server.url}/predict", json={"inputs": [smiles[0], {"smiles": smiles[1]}]}, timeout=60)
    assert res.status_code == 200, res.text
    preds = res.json()["predictions"]
    bundle = load(esol_run)
    expected = bundle.predict_arrays(bundle.modality.transform(bundle.modality.parse_inputs(smiles)))[:, 0]
    got = [p["values"]["logp"] for p in preds]
    np.testing.assert_allclose(got, expected, atol=1e-3)
    bad = httpx.post(f"{server.url}/predict", json={"inputs": ["not a smiles(("]}, timeout=60)
    assert bad.status_code == 422
    # a molecule wider than the 40 Å grid is drawn scaled down, as in training, and the answer says so
    res = httpx.post(f"{server.url}/predict", json={"inputs": ["CCO", LONG_CHAIN]}, timeout=60)
    assert res.status_code == 200, res.text
    small, big = res.json()["predictions"]
    assert small["notes"] is None
    assert len(big["notes"]) == 1 and big["notes"][0].startswith("wider than the 40 Å image grid: drawn at scale 0.")


def test_predict_says_which_molecules_were_drawn_scaled_down(
    esol_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "new.csv"
    pd.DataFrame({"smiles": ["CCO", LONG_CHAIN, "c1ccccc1O"]}).to_csv(data, index=False)
    capsys.readouterr()
    assert main(["predict", "--model-path", str(esol_run), "--data-path", str(data), "--output", str(tmp_path / "p.csv")]) == 0
    err = capsys.readouterr().err
    assert f"note: 1 molecule(s) wider than the 40 Å image grid drawn scaled down ({data} row 2;" in err
    assert len(pd.read_csv(tmp_path / "p.csv")) == 3  # predicted, not dropped


def test_explain_cli_maps_gradcam_to_atoms(esol_run: Path, tmp_path: Path) -> None:
    data = tmp_path / "two.csv"
    data.write_text("smiles\nCC(=O)Oc1ccccc1C(=O)O\nc1ccccc1O\n")
    out = tmp_path / "explain"
    assert main(["explain", "--model-path", str(esol_run), "--data-path", str(data), "--output-dir", str(out)]) == 0
    table = pd.read_csv(out / "atom_attributions.csv")
    assert table.groupby("id").size().tolist() == [13, 7]  # one row per heavy atom
    assert np.isfinite(table.score).all() and table.score.abs().sum() > 0
    assert len(list((out / "figures").glob("*.png"))) == 2


def test_tox21_subset_multitask(tmp_path: Path) -> None:
    tox21 = shared_path("molecules", "moleculenet", "tox21.csv")
    sub = tmp_path / "tox21_300.csv"
    pd.read_csv(tox21).head(300)[["smiles", *TOX21_TASKS]].to_csv(sub, index=False)
    out = tmp_path / "tox21"
    args = ["train", "--data-type", "molecule", "--model", "chemception", "--data-path", str(sub), "--smiles-column",
            "smiles", "--target-columns", *TOX21_TASKS, "--task", "classification", "--skip-invalid", "--output-dir",
            str(out), "--max-epochs", "2", "--set", "evaluate.baselines=[]", "--set", "evaluate.report=false", *TINY]  # fmt: skip
    assert main(args) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert 0.0 <= metrics["test"]["auroc"] <= 1.0
    assert load(out).predict_arrays(load(out).modality.transform(np.array(["CCO"], dtype=object))).shape == (1, 3)
