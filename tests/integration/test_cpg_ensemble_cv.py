"""Ensembles, cross-validation and ``explain`` with the multi-input DeepCpG model, on a small real subset of the
serum cells (chr18; the second half relabelled chr19 where two chromosomes are needed)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from conftest import run_biodl, shared_path

CELLS = ("BS27_4_SER", "BS28_2_SER")
#: a tiny network and one epoch: plumbing, not accuracy
TINY = ["--max-epochs", "1", "--threads", "1", "--cpg-k", "3", "--set", "train.progress_bar=false",
        "--set", "model.gru_hidden=4", "--set", "model.cpg_embed=4", "--set", "model.joint_hidden=[8]",
        "--set", "evaluate.plots=false", "--set", "evaluate.report=false", "--set", "data.cpg.block_size=20000"]  # fmt: skip


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    """The first 500 calls of each cell (chr18:3.0–3.5 Mb); from row 250 on, named chromosome 19."""
    root = tmp_path_factory.mktemp("cpg")
    out = []
    for name in CELLS:
        path = shared_path("methylation", "deepcpg_smallwood2014", f"{name}_chr18.tsv.gz")
        frame = pd.read_csv(path, sep="\t", header=None, names=["chrom", "pos", "state"], nrows=500)
        frame["chrom"] = ["chr18"] * 250 + ["chr19"] * (len(frame) - 250)
        dest = root / f"{name}_chr18.tsv.gz"
        frame.to_csv(dest, sep="\t", header=False, index=False, compression="gzip")
        out.append(str(dest))
    return out


@pytest.fixture(scope="module")
def ensemble_run(files: list[str], tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("ens") / "RUN"
    res = run_biodl("train", "--data-type", "cpg", "--data-path", *files, "--model", "deepcpg", "--task", "classification",
                    "--output-dir", str(out), "--ensemble-size", "2", *TINY)  # fmt: skip
    assert res.returncode == 0, res.stderr
    return out


def test_ensemble_trains_saves_predicts_and_evaluates(ensemble_run: Path, files: list[str], tmp_path: Path) -> None:
    bundle = json.loads((ensemble_run / "model" / "bundle.json").read_text())
    model = bundle["model"]
    assert model["name"] == "ensemble" and model["params"]["size"] == 2 and model["params"]["member"] == "deepcpg"
    # every member gets the named inputs of the data (the CpG module's shape: cells x 2k x 3)
    assert model["params"]["member_params"]["inputs"]["cpg"] == {"type": "cpg-neighbours", "shape": [2, 6, 3]}
    assert (ensemble_run / "member_0").is_dir() and (ensemble_run / "member_1").is_dir()
    pred = tmp_path / "pred.csv"
    res = run_biodl(
        "predict", "--model-path", str(ensemble_run), "--data-path", *files, "--output", str(pred), "--engine", "torch"
    )
    assert res.returncode == 0, res.stderr
    frame = pd.read_csv(pred)
    assert list(frame.columns) == ["id", *CELLS] and frame[list(CELLS)].stack().between(0, 1).all()
    ev = tmp_path / "eval.json"
    res = run_biodl("evaluate", "--model-path", str(ensemble_run), "--data-path", *files, "--output", str(ev))
    assert res.returncode == 0, res.stderr
    m = json.loads(ev.read_text())["metrics"]
    assert m["auroc"] == pytest.approx(np.mean([m["per_task"][c]["auroc"] for c in CELLS]))


def test_explain_gives_per_input_attributions(ensemble_run: Path, files: list[str], tmp_path: Path) -> None:
    out = tmp_path / "explain"
    res = run_biodl("explain", "--model-path", str(ensemble_run), "--data-path", *files, "--output-dir", str(out),
                    "--max-sequences", "40", "--plots", "1", "--format", "png", "--target", "BS28_2_SER")  # fmt: skip
    assert res.returncode == 0, res.stderr
    npz = np.load(out / "explain.npz")
    assert npz["attributions_cpg"].shape == (40, 1, 2, 6, 3) and list(npz["targets"]) == ["BS28_2_SER"]
    assert np.abs(npz["attributions_cpg"]).sum() > 0
    table = pd.read_csv(out / "cpg_neighbours.csv")
    assert set(table.neighbour) == {"L3", "L2", "L1", "R1", "R2", "R3"} and set(table.cell) == set(CELLS)
    assert set(table.feature) == {"state", "distance", "observed"} and len(table) == 2 * 6 * 3
    shares = pd.read_csv(out / "input_shares.csv")
    assert len(shares) == 40 and np.allclose(shares.share_cpg, 1.0)
    assert (out / "figures" / "mean_BS28_2_SER.png").stat().st_size > 0
    assert len(list((out / "figures").glob("0000_*.png"))) == 1
    # a method that needs one sequence per example: one line, no output
    bad = run_biodl("explain", "--model-path", str(ensemble_run), "--data-path", *files, "--output-dir", str(tmp_path / "x"),
                    "--method", "ism")  # fmt: skip
    err = bad.stderr.strip()
    assert bad.returncode == 2 and err.count("\n") == 0 and "--method ism: multi-input models take ixg, saliency, ig" in err


def _blocks(ids: list[str]) -> set[tuple[str, int]]:
    return {(i.split(":")[0], int(i.split(":")[1]) // 20000) for i in ids}


def test_cv_folds_keep_genomic_blocks_whole(files: list[str], tmp_path: Path) -> None:
    out = tmp_path / "cv"
    res = run_biodl("train", "--data-type", "cpg", "--data-path", *files, "--model", "deepcpg", "--task", "classification",
                    "--output-dir", str(out), "--cv", "3", *TINY)  # fmt: skip
    assert res.returncode == 0, res.stderr
    splits = json.loads((out / "splits.json").read_text())
    assert splits["method"] == "3-fold" and len(splits["folds"]) == 3
    tested: list[str] = []
    for fold in splits["folds"]:
        parts = [_blocks(fold[f"{p}_ids"]) for p in ("train", "val", "test")]
        assert all(parts) and not (parts[0] & parts[1] or parts[0] & parts[2] or parts[1] & parts[2])
        tested += fold["test_ids"]
    assert len(tested) == len(set(tested))  # every site is tested once
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["cv"]["folds"] == 3 and (out / "model").is_dir()
    fold_auroc = [f["test"]["auroc"] for f in metrics["cv"]["per_fold"]]
    assert metrics["test"]["auroc"] == pytest.approx(np.mean(fold_auroc))
    for c in CELLS:  # per-cell fold means too
        per = [f["test"]["per_task"][c]["auroc"] for f in metrics["cv"]["per_fold"]]
        assert metrics["test"]["per_task"][c]["auroc"] == pytest.approx(np.mean(per))


def test_cv_column_chromosome_holds_out_each_chromosome(files: list[str], tmp_path: Path) -> None:
    out = tmp_path / "cvc"
    res = run_biodl("train", "--data-type", "cpg", "--data-path", *files, "--model", "deepcpg", "--task", "classification",
                    "--output-dir", str(out), "--cv-column", "chromosome", *TINY)  # fmt: skip
    assert res.returncode == 0, res.stderr
    folds = json.loads((out / "splits.json").read_text())["folds"]
    assert [{i.split(":")[0] for i in f["test_ids"]} for f in folds] == [{"18"}, {"19"}]
    for f in folds:  # validation blocks are carved whole from the other chromosome
        assert not _blocks(f["train_ids"]) & _blocks(f["val_ids"])
    bad = run_biodl("train", "--data-type", "cpg", "--data-path", *files, "--model", "deepcpg", "--task", "classification",
                    "--output-dir", str(tmp_path / "bad"), "--cv-column", "fold", *TINY)  # fmt: skip
    assert bad.returncode == 2 and "--cv-column 'fold': CpG tables have the columns chromosome, position, state" in bad.stderr
