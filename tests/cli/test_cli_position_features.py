"""Per-position feature tracks (profiles) as extra input channels, through the CLI, on real NetSurfP-2.0 chains.

The tracks are planted: a noisy helix indicator (one channel) and a two-channel group (a noisy strand
indicator and the Kyte-Doolittle hydropathy of the residue). A network that really reads the tracks
labels the validation chains far better than the same network on the residues alone.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from biodl.cli.main import main
from conftest import PROTEIN_SS, TINY_POSITIONS, shared_path

KD = dict(zip("ARNDCQEGHILKMFPSTWYV", [1.8, -4.5, -3.5, -3.5, 2.5, -3.5, -3.5, -0.4, -3.2, 4.5, 3.8, -3.9, 1.9, 2.8, -1.6,
                                       -0.8, -0.7, -0.9, -1.3, 4.2], strict=True))  # fmt: skip
TRACKS = ["--position-feature-columns", "helix", "pssm2"]
FLAGS = ["--data-type", "sequence", "--alphabet", "protein", "--sequence-column", "seq", "--target-columns", "sst3",
         "--per-position", "--mask-column", "resolved", "--val-column", "validation", "--task", "classification",
         *TINY_POSITIONS[2:], "--max-epochs", "3", "--set", "evaluate.baselines=[]"]  # fmt: skip


def _tracks(frame: pd.DataFrame, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    helix, pssm2 = [], []
    for seq, ss in zip(frame.seq, frame.sst3, strict=True):
        h = (np.array(list(ss)) == "H") + rng.normal(0, 0.3, len(ss))
        e = (np.array(list(ss)) == "E") + rng.normal(0, 0.3, len(ss))
        helix.append(",".join(f"{v:.2f}" for v in h))
        pssm2.append(";".join(f"{a:.2f},{KD.get(r, 0.0)}" for a, r in zip(e, seq, strict=True)))
    return frame.assign(helix=helix, pssm2=pssm2)


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = pd.read_csv(shared_path(*PROTEIN_SS), sep="\t", dtype={"resolved": str})
    d = d[d.seq.str.len() <= 300]
    root = tmp_path_factory.mktemp("tracks")
    train = _tracks(pd.concat([d[~d.validation].iloc[:100], d[d.validation].iloc[:30]]), 0)
    test = _tracks(d[~d.validation].iloc[100:110], 1)
    paths = {"train": root / "train.tsv", "test": root / "test.csv"}
    train.to_csv(paths["train"], sep="\t", index=False)
    test.drop(columns=["resolved", "validation"]).to_csv(paths["test"], index=False)
    return paths


@pytest.fixture(scope="module")
def runs(files: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("runs")
    out = {"tracks": root / "tracks", "plain": root / "plain"}
    assert main(["train", "--data-path", str(files["train"]), *FLAGS, *TRACKS, "--output-dir", str(out["tracks"])]) == 0
    assert main(["train", "--data-path", str(files["train"]), *FLAGS, "--output-dir", str(out["plain"])]) == 0
    return out


def test_tracks_reach_the_network(runs: dict[str, Path]) -> None:
    with_tracks = json.loads((runs["tracks"] / "metrics.json").read_text())["val"]["accuracy"]
    plain = json.loads((runs["plain"] / "metrics.json").read_text())["val"]["accuracy"]
    assert with_tracks > 0.7 and with_tracks > plain + 0.15  # residues alone, 3 tiny epochs: ~0.45


def test_standardised_on_training_chains_only(runs: dict[str, Path], files: dict[str, Path]) -> None:
    from biodl import load

    bundle = load(runs["tracks"])
    tracks = bundle.modality.tracks  # type: ignore[attr-defined]
    assert tracks.columns == ["helix", "pssm2"] and tracks.channels == [1, 2]
    train = pd.read_csv(files["train"], sep="\t")
    train = train[~train.validation]
    helix = np.concatenate([np.array(h.split(","), dtype=float) for h in train.helix])
    kd = np.concatenate([[float(g.split(",")[1]) for g in p.split(";")] for p in train.pssm2])
    assert tracks.scaler.mean[0] == pytest.approx(helix.mean(), abs=1e-4)
    assert tracks.scaler.std[2] == pytest.approx(kd.std(), abs=1e-4)
    assert bundle.meta["model"]["in_shape"][0] == 20 + 3  # one-hot residues, then the three track channels


def test_predict_serve_export_with_tracks(runs: dict[str, Path], files: dict[str, Path], tmp_path: Path) -> None:
    from fastapi.testclient import TestClient

    from biodl import load
    from biodl.engine import select_engine
    from biodl.serve.app import create_app

    out = tmp_path / "pred.parquet"
    assert main(["predict", "--model-path", str(runs["tracks"]), "--data-path", str(files["test"]), "--output", str(out)]) == 0
    pred = pd.read_parquet(out)
    test = pd.read_csv(files["test"])
    assert [len(s) for s in pred.predicted] == test.seq.str.len().tolist()
    helix_true = np.concatenate([np.array(list(s)) == "H" for s in test.sst3])
    helix_pred = np.concatenate([np.array(list(s)) == "H" for s in pred.predicted])
    assert (helix_true == helix_pred).mean() > 0.8  # the helix track drives the helix calls

    bundle = load(runs["tracks"])
    app = create_app(bundle, select_engine(bundle, "torch"), max_batch=8)
    records = test[["seq", "helix", "pssm2"]].head(2).to_dict(orient="records")
    with TestClient(app) as client:
        res = client.post("/predict", json={"inputs": records})
        assert res.status_code == 200, res.text
        assert [p["label"] for p in res.json()["predictions"]] == pred.predicted.head(2).tolist()
        as_lists = dict(
            records[0],
            helix=[float(v) for v in records[0]["helix"].split(",")],
            pssm2=[[float(v) for v in g.split(",")] for g in records[0]["pssm2"].split(";")],
        )
        res = client.post("/predict", json={"inputs": [as_lists]})
        assert res.status_code == 200 and res.json()["predictions"][0]["label"] == pred.predicted.iloc[0]
        bare = client.post("/predict", json={"inputs": [test.seq.iloc[0]]})
        assert bare.status_code == 422 and "per-position features ['helix', 'pssm2']" in bare.json()["detail"]
        short = dict(records[0], helix=records[0]["helix"].rsplit(",", 1)[0])
        bad = client.post("/predict", json={"inputs": [short]})
        assert (
            bad.status_code == 422
            and "column 'helix'" in bad.json()["detail"]
            and "positions, but the sequence has" in bad.json()["detail"]
        )

    onnx = tmp_path / "m.onnx"
    assert main(["export", "--model-path", str(runs["tracks"]), "--format", "onnx", "--output", str(onnx),
                 "--data-path", str(files["test"])]) == 0  # fmt: skip
    manifest = json.loads(Path(f"{onnx}.json").read_text())
    assert manifest["parity"]["passed"] and manifest["input"]["shape"][1] == 23


def test_evaluate_and_streamed_predict_read_the_tracks(runs: dict[str, Path], files: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "eval.json"
    assert main(["evaluate", "--model-path", str(runs["tracks"]), "--data-path", str(files["test"]), "--output", str(out)]) == 0
    metrics = json.loads(out.read_text())["metrics"]
    test = pd.read_csv(files["test"])
    assert metrics["n"] == int(test.seq.str.len().sum())  # no mask column: every residue counts
    whole, streamed = tmp_path / "whole.parquet", tmp_path / "streamed.parquet"
    args = ["predict", "--model-path", str(runs["tracks"]), "--data-path", str(files["test"]), "--engine", "torch"]
    assert main([*args, "--output", str(whole)]) == 0
    assert main([*args, "--output", str(streamed), "--chunk-rows", "3"]) == 0
    a, b = pd.read_parquet(whole), pd.read_parquet(streamed)
    assert a.predicted.tolist() == b.predicted.tolist()
    truth = "".join(test.sst3)
    assert np.mean([p == t for p, t in zip("".join(a.predicted), truth, strict=True)]) == pytest.approx(metrics["accuracy"])


def test_explain_position_draws_residues(runs: dict[str, Path], files: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "explain"
    assert main(["explain", "--model-path", str(runs["tracks"]), "--data-path", str(files["test"]), "--position", "10",
                 "--method", "saliency", "--max-sequences", "2", "--plots", "1", "--format", "png",
                 "--output-dir", str(out)]) == 0  # fmt: skip
    doc = np.load(out / "explain.npz")
    assert doc["attributions"].shape[-2] == 23 and doc["sequences"].shape[1] == 20
    assert list((out / "figures").glob("*.png"))


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda f: f.assign(helix=f.helix.where(f.index != f.index[3], "0.1,0.2")), "bad.tsv row 4: column 'helix'"),
        (lambda f: f.assign(helix=f.helix.where(f.index != f.index[3], "0.1,0.2")), "2 positions, but the sequence has"),
        (lambda f: f.assign(pssm2=f.pssm2.str.replace(";", ",x;", n=1, regex=False)), "'x' is not a number"),
        (
            lambda f: f.assign(pssm2=f.pssm2.str.replace(";", ",1.5;", n=1, regex=False)),
            "position 2 has 2 values, position 1 has 3",
        ),
        (lambda f: f.drop(columns=["pssm2"]), "no per-position feature column 'pssm2'"),
    ],
)
def test_bad_tracks_are_one_line_errors(files: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                        edit, message) -> None:  # type: ignore[no-untyped-def]  # fmt: skip
    frame = edit(pd.read_csv(files["train"], sep="\t", dtype={"resolved": str}))
    path = tmp_path / "bad.tsv"
    frame.to_csv(path, sep="\t", index=False)
    code = main(["train", "--data-path", str(path), *FLAGS, *TRACKS, "--output-dir", str(tmp_path / "run")])
    err = capsys.readouterr().err
    assert code != 0 and message in err and "Traceback" not in err
    assert not (tmp_path / "run" / "model").exists()


def test_tracks_need_per_position_labels(files: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["train", "--data-type", "sequence", "--alphabet", "protein", "--data-path", str(files["train"]),
                 "--sequence-column", "seq", "--target-columns", "validation", *TRACKS,
                 "--output-dir", str(tmp_path / "run")])  # fmt: skip
    assert code != 0 and "need per-position labels" in capsys.readouterr().err


def test_per_position_data_are_not_converted_to_stores(files: dict[str, Path], tmp_path: Path,
                                                       capsys: pytest.CaptureFixture[str]) -> None:  # fmt: skip
    code = main(["data", "convert", "--data-path", str(files["train"]), *FLAGS[:15], *TRACKS,
                 "--output", str(tmp_path / "s.h5")])  # fmt: skip
    assert code != 0 and "not written to biodl stores" in capsys.readouterr().err
    assert not (tmp_path / "s.h5").exists()
