"""End to end on molecules: the D-MPNN and the dense network learn ESOL (subset), bundles reload,
ensembles, skipped rows, atom attributions and ``biodl embed``."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("rdkit")

from biodl import Experiment
from biodl.bundle import load
from biodl.cli.main import main
from biodl.errors import BiodlError
from biodl.explain.molecule import explain_molecules

ESOL = Path(__file__).resolve().parents[1] / "data" / "esol_subset.csv"
QUIET = {"progress_bar": False, "seed": 0}
NO_EXTRAS = {"baselines": [], "report": False, "plots": False}


def _esol(model: dict[str, object], featurizer: list[str], epochs: int, **train: object) -> Experiment:
    return Experiment(
        data={
            "type": "molecule",
            "path": [str(ESOL)],
            "task": "regression",
            "target_columns": ["logp"],
            "split": "random",
            "split_sizes": [0.7, 0.15, 0.15],
            "molecule": {"featurizer": featurizer, "n_bits": 512},
        },
        model=model,
        train={"max_epochs": epochs, "batch_size": 32, "lr": 3e-3, **QUIET, **train},
        evaluate=NO_EXTRAS,
    )


@pytest.fixture(scope="module")
def dmpnn_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("mol") / "dmpnn"
    _esol({"name": "dmpnn", "hidden_size": 64, "depth": 2, "ffn_hidden_sizes": [64]}, ["graph"], 12).fit(out)
    return out


def test_dmpnn_learns_esol(dmpnn_run: Path) -> None:
    metrics = json.loads((dmpnn_run / "metrics.json").read_text())
    history = json.loads((dmpnn_run / "history.json").read_text())
    assert history["train_loss"][-1] < 0.7 * history["train_loss"][0]
    assert metrics["test"]["r2"] > 0.0 and metrics["val"]["r2"] > 0.0


def test_dense_network_learns_esol_and_ensembles(tmp_path: Path) -> None:
    res = _esol({"name": "ffn", "hidden_sizes": [64], "dropout": 0.1, "input_dropout": 0.0}, ["morgan_counts", "rdkit2d"], 15,
                ensemble_size=2).fit(tmp_path / "ffn")  # fmt: skip
    assert res.history["train_loss"][-1] < 0.7 * res.history["train_loss"][0]
    assert res.metrics["test"]["r2"] > 0.0
    assert res.metrics["training"]["best_epoch_by"] == "val_loss"  # regression follows the loss (train.monitor)
    assert (tmp_path / "ffn" / "member_1" / "logs").exists()
    bundle = load(tmp_path / "ffn")
    assert bundle.meta["model"]["name"] == "ensemble" and bundle.meta["model"]["params"]["size"] == 2
    X = bundle.modality.transform(bundle.modality.parse_inputs(["CCO", "c1ccccc1"]))
    assert bundle.predict_arrays(X).shape == (2, 1)
    expl = explain_molecules(bundle, ["c1ccccc1O"], out_dir=tmp_path / "atoms")
    assert expl[0].weights.shape == (7,) and expl[0].image is not None and expl[0].image.stat().st_size > 1000


def test_bundle_reload_predict_attributions_and_embed(dmpnn_run: Path, tmp_path: Path) -> None:
    bundle = load(dmpnn_run)
    frame = pd.read_csv(ESOL).head(5)
    X = bundle.modality.transform(bundle.modality.parse_inputs(frame.smiles.tolist()))
    assert np.isfinite(bundle.predict_arrays(X)).all()
    expl = explain_molecules(bundle, ["CC(=O)Nc1ccc(O)cc1"], target="logp", out_dir=tmp_path)
    assert expl[0].weights.shape == (11,) and np.abs(expl[0].weights).sum() > 0
    out = tmp_path / "emb.csv"
    assert main(["embed", "--model-path", str(dmpnn_run), "--data-path", str(ESOL), "--output", str(out)]) == 0
    emb = pd.read_csv(out)
    assert emb.shape == (240, 1 + 64) and list(emb.columns[:2]) == ["id", "emb_0"]


def test_cli_skip_invalid_writes_skipped_rows(tmp_path: Path) -> None:
    frame = pd.read_csv(ESOL).head(60)
    frame.loc[3, "smiles"] = "C1CC"  # unclosed ring
    frame.loc[10, "smiles"] = ""
    data = tmp_path / "bad.csv"
    frame.to_csv(data, index=False)
    common = ["train", "--data-type", "molecule", "--data-path", str(data), "--task", "regression",
              "--featurizer", "maccs", "--max-epochs", "2", "--set", "train.progress_bar=false",
              "--set", "evaluate.baselines=[]", "--set", "evaluate.report=false", "--set", "evaluate.plots=false"]  # fmt: skip
    assert main([*common, "--output-dir", str(tmp_path / "fail")]) == 2
    assert main([*common, "--output-dir", str(tmp_path / "ok"), "--skip-invalid", "--split", "scaffold"]) == 0
    skipped = pd.read_csv(tmp_path / "ok" / "skipped_rows.csv")
    assert skipped.row.tolist() == [4, 11] and set(skipped.columns) >= {"source", "row", "input", "reason"}
    assert json.loads((tmp_path / "ok" / "splits.json").read_text())["method"].startswith("scaffold")


def test_dmpnn_onnx_export_matches_torch_on_real_esol_molecules(dmpnn_run: Path, tmp_path: Path) -> None:
    """The D-MPNN exports to ONNX (scatter-add sums, no XOR/index_add): ONNX Runtime = PyTorch on ESOL molecules."""
    import onnxruntime as ort

    from biodl.export.graph import INPUT_NAME, InferenceNet, to_onnx
    from conftest import shared_path

    delaney = shared_path("molecules", "moleculenet", "delaney.csv")
    out = tmp_path / "dmpnn.onnx"
    assert main(["export", "--model-path", str(dmpnn_run), "--output", str(out), "--data-path", str(delaney),
                 "--parity-rows", "64"]) == 0  # fmt: skip
    manifest = json.loads((tmp_path / "dmpnn.onnx.json").read_text())
    assert manifest["parity"]["passed"] and manifest["parity"]["rows"] == 64
    bundle = load(dmpnn_run)
    smiles = pd.read_csv(delaney).smiles.iloc[[0, 1, 2, 50, 500, 1000]].tolist()  # 6 to 30 heavy atoms, rings, a sugar
    X = np.asarray(bundle.modality.transform(bundle.modality.parse_inputs(smiles)), dtype=np.float32)
    expected = bundle.predict_arrays(X)
    session = ort.InferenceSession(out.read_bytes(), providers=["CPUExecutionProvider"])
    together = session.run(None, {INPUT_NAME: X})[0]
    one_by_one = np.concatenate([session.run(None, {INPUT_NAME: X[i : i + 1]})[0] for i in range(len(X))])
    assert np.abs(together - expected).max() < 1e-4 and np.abs(one_by_one - expected).max() < 1e-4
    assert np.ptp(expected) > 0.1  # different molecules, different predictions
    with pytest.raises(BiodlError, match=r"opset 15.*scatter-add.*--opset 16"):
        to_onnx(InferenceNet.from_bundle(bundle), opset=15, model_name="dmpnn")
