"""Per-position labelling through the CLI: the evaluation contract (train / evaluate), predict, export, serve,
explain and one-line errors, on a small real subset of the NetSurfP-2.0 chains."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from biodl.cli.main import main
from conftest import PROTEIN_SS, TINY_POSITIONS, shared_path


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """120 training + 30 validation chains (TSV, with the mask and validation columns) and 20 test chains (CSV, neither)."""
    d = pd.read_csv(shared_path(*PROTEIN_SS), sep="\t", dtype={"resolved": str})
    d = d[d.seq.str.len() <= 400]
    root = tmp_path_factory.mktemp("ss")
    train = pd.concat([d[~d.validation].iloc[:120], d[d.validation].iloc[:30]])
    test = d[~d.validation].iloc[120:140]
    paths = {"train": root / "train.tsv", "test": root / "test.csv"}
    train.to_csv(paths["train"], sep="\t", index=False)
    test.drop(columns=["resolved", "validation"]).to_csv(paths["test"], index=False)
    return paths


@pytest.fixture(scope="module")
def run_dir(files: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("run") / "RUN"
    code = main([
        "train", "--data-type", "sequence", "--alphabet", "protein", "--data-path", str(files["train"]),
        "--sequence-column", "seq", "--target-columns", "sst3", "--per-position", "--mask-column", "resolved",
        "--val-column", "validation", "--task", "classification", "--output-dir", str(out), *TINY_POSITIONS,
    ])  # fmt: skip
    assert code == 0
    return out


def test_train_contract(run_dir: Path, files: dict[str, Path]) -> None:
    metrics = json.loads((run_dir / "metrics.json").read_text())
    splits = json.loads((run_dir / "splits.json").read_text())
    assert splits["sizes"] == {"train": 120, "val": 30, "test": 0}  # the validation column decides, nothing else
    frame = pd.read_csv(files["train"], sep="\t", dtype={"resolved": str})
    val = frame[frame.validation]
    resolved = sum(r.count("1") for r in val.resolved)
    assert metrics["val"]["n"] == resolved and metrics["val"]["n_sequences"] == 30
    assert set(metrics["val"]["per_class"]) == {"C", "E", "H"}
    assert 0 <= metrics["val"]["sov"] <= 100 and 0 <= metrics["val"]["accuracy"] <= 1
    assert metrics["baseline"]["name"] == "window_logistic" and metrics["baseline"]["val"]["n"] == resolved
    assert metrics["baseline"]["val"]["accuracy"] > 0.45  # a ±7 window already beats the majority class (~0.4)
    cfg = (run_dir / "config.yaml").read_text()
    assert "per_position: true" in cfg and "name: dilated-cnn" in cfg


def test_evaluate_without_mask_column_counts_every_residue(run_dir: Path, files: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "eval.json"
    assert main(["evaluate", "--model-path", str(run_dir), "--data-path", str(files["test"]), "--output", str(out)]) == 0
    doc = json.loads(out.read_text())
    test = pd.read_csv(files["test"])
    assert doc["metrics"]["n"] == int(test.seq.str.len().sum())
    # metrics.accuracy is Q3 over the residues: recompute it from the predictions
    pred = tmp_path / "pred.parquet"
    assert main(["predict", "--model-path", str(run_dir), "--data-path", str(files["test"]), "--output", str(pred)]) == 0
    frame = pd.read_parquet(pred)
    assert list(frame.columns) == ["id", "length", "predicted", "prob_C", "prob_E", "prob_H"]
    assert (frame.length.to_numpy() == test.seq.str.len().to_numpy()).all()
    assert all(len(p) == n for p, n in zip(frame.predicted, frame.length, strict=True))
    probs = np.stack([np.concatenate(frame[f"prob_{c}"].to_list()) for c in "CEH"], axis=1)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=2e-3)
    q3 = np.mean(np.array(list("".join(frame.predicted))) == np.array(list("".join(test.sst3))))
    assert doc["metrics"]["accuracy"] == pytest.approx(q3, abs=1e-9)


def test_predict_per_residue_table(run_dir: Path, files: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "long.csv"
    args = ["predict", "--model-path", str(run_dir), "--data-path", str(files["test"]), "--output", str(out)]
    assert main([*args, "--per-residue", "--engine", "torch"]) == 0
    long = pd.read_csv(out)
    test = pd.read_csv(files["test"])
    assert len(long) == int(test.seq.str.len().sum())
    first = long[long.id == long.id.iloc[0]]
    assert "".join(first.residue) == test.seq.iloc[0] and first.position.tolist() == list(range(1, len(first) + 1))


def test_per_residue_table_streamed_in_chunks(run_dir: Path, files: dict[str, Path], tmp_path: Path) -> None:
    args = ["predict", "--model-path", str(run_dir), "--data-path", str(files["test"]), "--engine", "torch", "--per-residue"]
    assert main([*args, "--output", str(tmp_path / "whole.csv")]) == 0
    assert main([*args, "--output", str(tmp_path / "streamed.parquet"), "--chunk-rows", "7"]) == 0  # 20 chains: 3 chunks
    whole, streamed = pd.read_csv(tmp_path / "whole.csv"), pd.read_parquet(tmp_path / "streamed.parquet")
    assert len(streamed) == len(whole) == int(pd.read_csv(files["test"]).seq.str.len().sum())
    assert streamed.id.astype(str).tolist() == whole.id.astype(str).tolist()
    assert streamed.predicted.tolist() == whole.predicted.tolist() and streamed.residue.tolist() == whole.residue.tolist()
    np.testing.assert_allclose(streamed.prob_H.to_numpy(), whole.prob_H.to_numpy(), atol=1e-5)


@pytest.mark.parametrize("chunks", [[], ["--chunk-rows", "5"]])
def test_per_residue_on_a_per_row_model_is_one_line(
    pbmc_run: Path, small_csv: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], chunks: list[str]
) -> None:
    out = tmp_path / "p.csv"
    code = main(["predict", "--model-path", str(pbmc_run), "--data-path", str(small_csv), "--output", str(out),
                 "--per-residue", *chunks])  # fmt: skip
    assert code != 0 and not out.exists()
    assert "--per-residue is for per-position models" in capsys.readouterr().err


@pytest.mark.parametrize("fmt", ["onnx", "torchscript"])
def test_export_parity_at_other_lengths(run_dir: Path, files: dict[str, Path], tmp_path: Path, fmt: str) -> None:
    out = tmp_path / f"model.{fmt}"
    code = main(
        ["export", "--model-path", str(run_dir), "--format", fmt, "--output", str(out), "--data-path", str(files["test"])]
    )
    assert code == 0
    manifest = json.loads(Path(f"{out}.json").read_text())
    assert manifest["parity"]["passed"] and manifest["output"]["shape"] == ["batch", 3, "length"]
    assert manifest["input"]["shape"][-1] == "length"


def test_serve_returns_label_strings(run_dir: Path) -> None:
    from fastapi.testclient import TestClient

    from biodl import load
    from biodl.engine import select_engine
    from biodl.serve.app import create_app

    bundle = load(run_dir)
    app = create_app(bundle, select_engine(bundle, "torch"), max_batch=8)
    seqs = ["MKTAYIAKQRQISFVKSHFSRQ", "GSHMLEDPVDAFQ"]
    with TestClient(app) as client:
        res = client.post("/predict", json={"inputs": seqs})
        assert res.status_code == 200, res.text
        preds = res.json()["predictions"]
        assert [len(p["label"]) for p in preds] == [len(s) for s in seqs] == [p["length"] for p in preds]
        assert set("".join(p["label"] for p in preds)) <= set("CEH")
        probs = preds[1]["position_probabilities"]
        assert len(probs["H"]) == len(seqs[1])
        assert abs(probs["C"][0] + probs["E"][0] + probs["H"][0] - 1) < 1e-3
        # the same sequence alone gives the same labels: padding in a batch changes nothing
        alone = client.post("/predict", json={"inputs": [seqs[1]]}).json()["predictions"][0]
        assert alone["label"] == preds[1]["label"]
        bad = client.post("/predict", json={"inputs": ["MKT1A"]})
        assert bad.status_code == 422 and "not in the protein alphabet" in bad.json()["detail"]


def test_explain_position(run_dir: Path, files: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "explain"
    args = ["explain", "--model-path", str(run_dir), "--data-path", str(files["test"]), "--position", "25",
            "--method", "saliency", "--target", "H", "--max-sequences", "3", "--plots", "1", "--format", "png",
            "--output-dir", str(out)]  # fmt: skip
    assert main(args) == 0
    doc = np.load(out / "explain.npz")
    attr = doc["residue_attributions"]
    assert attr.shape[:2] == (3, 1)
    # a residue far outside the network's receptive field does not drive position 25
    far = [i for i in range(3) if doc["lengths"][i] > 200]
    assert all(np.abs(attr[i, 0, 150:]).max() == 0 for i in far)
    assert np.abs(attr[:, 0, 20:30]).sum() > 0


def test_evaluate_validation_chains_with_their_columns(run_dir: Path, files: dict[str, Path], tmp_path: Path) -> None:
    """A file holding only validation chains, --val-column and mask columns kept (all true), evaluates to metrics.val."""
    frame = pd.read_csv(files["train"], sep="\t", dtype={"resolved": str})
    val = tmp_path / "val.tsv"
    frame[frame.validation].to_csv(val, sep="\t", index=False)
    out = tmp_path / "eval.json"
    assert main(["evaluate", "--model-path", str(run_dir), "--data-path", str(val), "--output", str(out)]) == 0
    got = json.loads(out.read_text())["metrics"]
    want = json.loads((run_dir / "metrics.json").read_text())["val"]
    assert got["n"] == want["n"] and got["accuracy"] == pytest.approx(want["accuracy"], abs=1e-6)


@pytest.mark.parametrize("flag", ["True", "False"])
def test_training_needs_both_sides_of_the_val_column(
    files: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str], flag: str
) -> None:
    frame = pd.read_csv(files["train"], sep="\t", dtype={"resolved": str}).assign(validation=flag)
    one = tmp_path / "one.tsv"
    frame.to_csv(one, sep="\t", index=False)
    code = main([
        "train", "--data-type", "sequence", "--alphabet", "protein", "--data-path", str(one), "--sequence-column", "seq",
        "--target-columns", "sst3", "--per-position", "--mask-column", "resolved", "--val-column", "validation",
        "--task", "classification", "--output-dir", str(tmp_path / "r"), *TINY_POSITIONS,
    ])  # fmt: skip
    err = capsys.readouterr().err.strip()
    side = "training" if flag == "True" else "validation"
    assert code == 2 and "one.tsv" in err and f"the {side} split" in err and "would be empty" in err, err


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda f: f.assign(sst3=f.sst3.where(f.index != 3, f.sst3.str[:-1])), "row 4: field 'sst3':"),
        (lambda f: f.assign(sst3=f.sst3.where(f.index != 5, "Q" + f.sst3.str[1:])), "label 'Q' at position 1"),
        (lambda f: f.assign(resolved=f.resolved.where(f.index != 2, "1")), "row 3: field 'resolved': mask of 1 positions"),
    ],
)
def test_bad_input_is_one_line(files: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str], edit, message) -> None:  # type: ignore[no-untyped-def]
    """Wrong label-string and mask lengths, labels outside the declared classes: one line naming file, row, field."""
    frame = edit(pd.read_csv(files["train"], sep="\t", dtype={"resolved": str}))
    bad = tmp_path / "bad.tsv"
    frame.to_csv(bad, sep="\t", index=False)
    code = main([
        "train", "--data-type", "sequence", "--alphabet", "protein", "--data-path", str(bad), "--sequence-column", "seq",
        "--target-columns", "sst3", "--per-position", "--mask-column", "resolved", "--val-column", "validation",
        "--task", "classification", "--classes", "C", "E", "H", "--output-dir", str(tmp_path / "r"), *TINY_POSITIONS,
    ])  # fmt: skip
    err = capsys.readouterr().err.strip()
    assert code == 2 and err.count("\n") == 0 and "bad.tsv" in err and message in err, err
    assert not (tmp_path / "r" / "model").exists()
