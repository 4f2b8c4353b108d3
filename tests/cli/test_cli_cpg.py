"""CpG methylation through the CLI: the evaluation contract (train / evaluate with several cell files), predict,
export, serve with multi-input records and one-line errors, on a small real subset of the DeepCpG test data."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from biodl.cli.main import main
from conftest import shared_path

CELLS = ("BS27_4_SER", "BS28_2_SER")
#: a tiny network and one epoch: these tests check the plumbing, not the accuracy
TINY = ["--max-epochs", "1", "--threads", "1", "--cpg-k", "5", "--set", "train.progress_bar=false",
        "--set", "model.gru_hidden=4", "--set", "model.cpg_embed=4", "--set", "model.joint_hidden=[16]",
        "--set", "evaluate.plots=false", "--set", "evaluate.report=false"]  # fmt: skip


def _cell(name: str) -> pd.DataFrame:
    path = shared_path("methylation", "deepcpg_smallwood2014", f"{name}_chr18.tsv.gz")
    return pd.read_csv(path, sep="\t", header=None, names=["chrom", "pos", "value"])


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[Path]]:
    """The first 800 calls of each cell (training) and the next 400 (evaluation, as another 'chromosome')."""
    root = tmp_path_factory.mktemp("cpg")
    out: dict[str, list[Path]] = {"train": [], "test": []}
    for name in CELLS:
        frame = _cell(name)
        for part, rows, chrom in (("train", frame.iloc[:800], "chr18"), ("test", frame.iloc[800:1200], "chr19")):
            path = root / f"{name}_{chrom}.tsv.gz"
            rows.to_csv(path, sep="\t", header=False, index=False, compression="gzip")
            out[part].append(path)
    return out


@pytest.fixture(scope="module")
def run_dir(files: dict[str, list[Path]], tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("run") / "RUN"
    code = main([
        "train", "--data-type", "cpg", "--data-path", *map(str, files["train"]), "--model", "deepcpg",
        "--task", "classification", "--output-dir", str(out), *TINY,
    ])  # fmt: skip
    assert code == 0
    return out


def test_train_contract(run_dir: Path, files: dict[str, list[Path]]) -> None:
    metrics = json.loads((run_dir / "metrics.json").read_text())
    splits = json.loads((run_dir / "splits.json").read_text())
    assert set(metrics["test"]["per_task"]) == set(CELLS)
    # the neighbour-mean baseline is the run's classical baseline, scored on the same rows
    assert metrics["baseline"]["name"] == "neighbour_mean" and set(metrics["baseline"]["test"]["per_task"]) == set(CELLS)
    assert metrics["baseline"]["test"]["auroc"] > 0.6  # neighbouring CpGs carry the state
    # contiguous blocks: every 100 kb block lies in one split (no leakage between neighbouring CpGs)
    block: dict[tuple[str, int], str] = {}
    assert splits["method"] == "group" and all(splits["sizes"][p] > 0 for p in ("train", "val", "test"))
    for part in ("train", "val", "test"):
        for i in splits[f"{part}_ids"]:
            chrom, pos = i.split(":")
            assert block.setdefault((chrom, int(pos) // 100_000), part) == part
    assert "split: group" in (run_dir / "config.yaml").read_text()


def test_evaluate_contract(run_dir: Path, files: dict[str, list[Path]], tmp_path: Path) -> None:
    out = tmp_path / "eval.json"
    paths = list(map(str, files["test"]))
    assert main(["evaluate", "--model-path", str(run_dir), "--data-path", *paths, "--output", str(out)]) == 0
    m = json.loads(out.read_text())["metrics"]
    per_cell = [m["per_task"][c]["auroc"] for c in CELLS]  # names: the file stems without _chr19
    assert m["auroc"] == pytest.approx(np.mean(per_cell))
    # missing calls are masked: each cell is scored on its own 400 calls
    assert [m["per_task"][c]["n"] if "n" in m["per_task"][c] else 400 for c in CELLS] == [400, 400]
    named = tmp_path / "named.json"
    args = ["evaluate", "--model-path", str(run_dir), "--data-path", *paths, "--cell-names", "a", "b", "--output", str(named)]
    assert main(args) == 0
    assert set(json.loads(named.read_text())["metrics"]["per_task"]) == {"a", "b"}


def test_predict_one_column_per_cell(run_dir: Path, files: dict[str, list[Path]], tmp_path: Path) -> None:
    out = tmp_path / "pred.csv"
    paths = list(map(str, files["test"]))
    assert main(["predict", "--model-path", str(run_dir), "--data-path", *paths, "--output", str(out), "--engine", "torch"]) == 0
    frame = pd.read_csv(out)
    assert list(frame.columns) == ["id", *CELLS]
    sites = set()
    for p in files["test"]:
        t = pd.read_csv(p, sep="\t", header=None)
        sites |= {f"{c}:{q}" for c, q in zip(t[0], t[1], strict=True)}
    assert set(frame.id) == sites and frame[list(CELLS)].stack().between(0, 1).all()


def test_export_onnx_parity(run_dir: Path, files: dict[str, list[Path]], tmp_path: Path) -> None:
    out = tmp_path / "model.onnx"
    args = [
        "export",
        "--model-path",
        str(run_dir),
        "--format",
        "onnx",
        "--output",
        str(out),
        "--data-path",
        *map(str, files["test"]),
    ]
    assert main(args) == 0
    manifest = json.loads(Path(f"{out}.json").read_text())
    assert manifest["parity"]["passed"]
    assert set(manifest["preprocessing"]["state"]["meta"]["inputs"]) == {"cpg"}


def test_serve_takes_records_with_every_input(run_dir: Path) -> None:
    from fastapi.testclient import TestClient

    from biodl import load
    from biodl.engine import select_engine
    from biodl.serve.app import create_app

    bundle = load(run_dir)
    app = create_app(bundle, select_engine(bundle, "torch"), max_batch=8)
    k = 5
    state = [[1] * (2 * k), [0] * (2 * k)]
    distance = [[50.0 * (abs(i - k) + 1) for i in range(2 * k)]] * 2
    sparse = [[None] * (2 * k - 1) + [1], [0] + [None] * (2 * k - 1)]
    with TestClient(app) as client:
        res = client.post("/predict", json={"inputs": [{"cpg": {"state": state, "distance": distance}},
                                                       {"cpg": {"state": sparse, "distance": sparse}}]})  # fmt: skip
        assert res.status_code == 200, res.text
        preds = res.json()["predictions"]
        assert len(preds) == 2 and set(preds[0]["probabilities"]) == set(CELLS)
        missing = client.post("/predict", json={"inputs": [{"dna": "ACGT"}]})
        assert missing.status_code == 422 and "input 'cpg' missing" in missing.json()["detail"]
        wrong = client.post("/predict", json={"inputs": [{"cpg": {"state": state[:1], "distance": distance[:1]}}]})
        assert wrong.status_code == 422 and "shape [1, 10], expected [2, 10]" in wrong.json()["detail"]


def _write(path: Path, text: str) -> Path:
    with gzip.open(path, "wt") as fh:
        fh.write(text)
    return path


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("18\t100\t1\n18\t200\t0\n18\t100\t0\n", "row 3: field 'position': duplicate position 18:100"),
        ("18\t100\t1\n18\t200\t0.4\n", "row 2: field 'state': '0.4'"),
        ("18\t100\t1\t7\n", "row 1: 4 columns (expected 3"),
    ],
)
def test_bad_tables_are_one_line(
    files: dict[str, list[Path]], tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str, message: str
) -> None:
    bad = _write(tmp_path / "bad_chr18.tsv.gz", text)
    code = main(["train", "--data-type", "cpg", "--data-path", str(files["train"][0]), str(bad), "--model", "deepcpg",
                 "--task", "classification", "--output-dir", str(tmp_path / "r"), *TINY])  # fmt: skip
    err = capsys.readouterr().err.strip()
    assert code == 2 and err.count("\n") == 0 and "bad_chr18.tsv.gz" in err and message in err, err
    assert not (tmp_path / "r" / "model").exists()


def test_evaluate_needs_one_file_per_cell(
    run_dir: Path, files: dict[str, list[Path]], capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["evaluate", "--model-path", str(run_dir), "--data-path", str(files["test"][0])])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "the model predicts 2 cells (BS27_4_SER, BS28_2_SER); 1 cell file(s) given" in err, err
