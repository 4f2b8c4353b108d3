"""Sequence experiments end to end on small real data: DeepBind ENCODE peaks, Oct4/MafK, intervals."""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

import biodl
from biodl import Experiment
from biodl.cli.main import main
from biodl.data.sequence.fasta import read_fasta, write_fasta
from biodl.inference import evaluate, load_data, predict_frame
from conftest import FAST, shared_path

QUICK = {"max_epochs": 3, "progress_bar": False, "seed": 0, "batch_size": 64}


@pytest.fixture(autouse=True, scope="module")
def one_thread() -> Iterator[None]:
    """Small runs are fastest on one thread (and do not oversubscribe a shared machine)."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="module")
def rest_peaks(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """400 REST (NRSF) ChIP-seq peaks from DeepBind's ENCODE file, positives only."""
    src = shared_path("dna", "deepbind_encode_train", "REST_GM12878_NRSF_HudsonAlpha_AC.seq.gz")
    frame = pd.read_csv(src, sep="\t").head(400)
    out = tmp_path_factory.mktemp("data") / "REST_small.seq.gz"
    with gzip.open(out, "wt") as fh:
        frame.to_csv(fh, sep="\t", index=False)
    return out


@pytest.fixture(scope="module")
def rest_run(tmp_path_factory: pytest.TempPathFactory, rest_peaks: Path) -> Path:
    out = tmp_path_factory.mktemp("runs") / "rest"
    Experiment(
        data={
            "type": "sequence",
            "path": [str(rest_peaks)],
            "target_columns": ["Bound"],
            "id_column": "EventID",
            "sequence": {"column": "seq", "negatives": "dinucleotide-shuffle", "kmer_k": 3},
        },
        train=QUICK,
        evaluate={"baselines": ["linear"]},
    ).fit(out)
    return out


def test_run_contract_and_kmer_baseline(rest_run: Path) -> None:
    for name in ("metrics.json", "splits.json", "report.html", "config.yaml"):
        assert (rest_run / name).is_file()
    assert (rest_run / "figures" / "roc_pr.png").is_file()
    metrics = json.loads((rest_run / "metrics.json").read_text())
    for part in ("train", "val", "test"):
        assert {"auroc", "auprc", "accuracy"} <= set(metrics[part])
    assert metrics["baseline"]["name"] == "linear" and metrics["baseline"]["test"]["auroc"] > 0.5
    splits = json.loads((rest_run / "splits.json").read_text())
    assert sum(splits["sizes"].values()) == 1200  # 400 peaks + 2 shuffles each (the default)
    bundle_meta = json.loads((rest_run / "model" / "bundle.json").read_text())
    assert bundle_meta["model"]["name"] == "deepbind" and bundle_meta["model"]["in_shape"] == [4, 101]
    assert bundle_meta["preprocessing"]["data"]["length"] == 101 and bundle_meta["classes"] == ["0", "1"]
    assert "sequences" in (rest_run / "report.html").read_text()


def test_bundle_predicts_like_the_run(rest_run: Path, rest_peaks: Path) -> None:
    bundle = biodl.load(rest_run)
    data = load_data(bundle, [str(rest_peaks)], require_targets=True)
    assert len(data) == 1200 and data.ids[400] == "seq_00001_peak_shuf1"
    frame, out = predict_frame(bundle, data)
    assert list(frame.columns) == ["id", "prob_1", "predicted"]
    metrics = json.loads((rest_run / "metrics.json").read_text())
    test = np.asarray(json.loads((rest_run / "splits.json").read_text())["test"])
    assert data.targets is not None
    from biodl.metrics import compute_metrics

    again = compute_metrics("binary", data.targets.y[test], out[test])
    assert again["auroc"] == pytest.approx(metrics["test"]["auroc"], abs=1e-6)
    # strand averaging is part of the saved model: a reverse-complemented file scores the same
    X = bundle.modality.transform(data.X)
    np.testing.assert_allclose(bundle.predict_arrays(X[:, ::-1, ::-1].copy()), bundle.predict_arrays(X), atol=1e-5)
    # prediction on positives only: no labels needed, no negatives added
    pred = load_data(bundle, [str(rest_peaks)], require_targets=False)
    assert len(pred) in (400, 1200)  # the Bound column is present in the file
    assert evaluate(bundle, data)["auroc"] > 0.5


def test_cli_train_predict_evaluate_oct4_mafk(tmp_path: Path) -> None:
    """FASTA per class through the console entry point, with a chromosome hold-out."""
    src = shared_path("dna", "janggu_oct4_mafk")
    for name in ("sample", "sample2"):
        rec = read_fasta(src / f"{name}.fa")
        write_fasta(tmp_path / f"{name}.fa", rec.ids[:300], [s.decode() for s in rec.sequences[:300]])
    out = tmp_path / "run"
    rc = main(
        [
            "train", "--data-type", "sequence", "--data-path", str(tmp_path / "sample.fa"), str(tmp_path / "sample2.fa"),
            "--split", "chromosome", "--test-chroms", "chr1", "chr2", "--output-dir", str(out), "--max-epochs", "2",
            "--kmer-k", "3", *[a for s in FAST for a in ("--set", s)],
        ]
    )  # fmt: skip
    assert rc == 0
    splits = json.loads((out / "splits.json").read_text())
    test_chroms = {i.split(":")[0] for i in splits["test_ids"]}
    assert test_chroms == {"chr1", "chr2"} and splits["method"].startswith("chromosome")
    assert not {i.split(":")[0] for i in splits["train_ids"]} & test_chroms
    # the held-out *_test.fa files: classes come from the file names (sample_test → sample)
    pred = tmp_path / "pred.csv"
    assert main(["predict", "--model-path", str(out), "--data-path", str(src / "sample_test.fa"), "--output", str(pred)]) == 0
    frame = pd.read_csv(pred)
    assert len(frame) == 100 and set(frame["predicted"]) <= {"sample", "sample2"}
    metrics_file = tmp_path / "eval.json"
    rc = main(
        ["evaluate", "--model-path", str(out), "--data-path", str(src / "sample_test.fa"), str(src / "sample2_test.fa"),
         "--output", str(metrics_file)]
    )  # fmt: skip
    assert rc == 0
    metrics = json.loads(metrics_file.read_text())["metrics"]
    assert 0.0 <= metrics["accuracy"] <= 1.0 and "auroc" in metrics


def test_cli_errors_are_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src = shared_path("dna", "janggu_oct4_mafk")
    bad = tmp_path / "bad.fa"
    bad.write_text(">r1\nACGTACGT\n>r2\nACGTXCGT\n")
    rc = main(["train", "--data-type", "sequence", "--data-path", str(bad), str(src / "sample_test.fa"), "--output-dir",
               str(tmp_path / "o")])  # fmt: skip
    assert rc == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: bad.fa: record 'r2': position 5: character 'X'") and "\n" not in err
    rc = main(["train", "--data-type", "sequence", "--data-path", str(src / "sample_test.fa"), str(src / "sample2_test.fa"),
               "--split", "chromosome", "--output-dir", str(tmp_path / "o2")])  # fmt: skip
    assert rc == 2 and "needs test chromosomes" in capsys.readouterr().err


def test_intervals_multitask_deepsea(tmp_path: Path) -> None:
    """Two narrowPeak-like tasks on a small genome of real sequence, flank negatives, small DeepSEA."""
    rec = read_fasta(shared_path("dna", "janggu_oct4_mafk", "sample.fa"))
    seqs = [s.decode() for s in rec.sequences[:400]]
    genome = write_fasta(tmp_path / "genome.fa", ["chrA", "chrB"], ["".join(seqs[:200]), "".join(seqs[200:])])
    rng = np.random.default_rng(0)
    for task in ("t1", "t2"):
        rows = []
        for chrom in ("chrA", "chrB"):
            for s in np.sort(rng.choice(np.arange(500, 39_000, 400), size=40, replace=False)):
                rows.append(f"{chrom}\t{s}\t{s + 150}\n")
        (tmp_path / f"{task}.bed").write_text("".join(rows))
    out = tmp_path / "run"
    result = Experiment(
        data={
            "type": "sequence",
            "path": [str(tmp_path / "t1.bed"), str(tmp_path / "t2.bed")],
            "split": "chromosome",
            "test_chroms": ["chrB"],
            "sequence": {"genome": str(genome), "intervals_width": 200, "negatives": "flank", "kmer_k": 2, "shift": 10},
        },
        model={"name": "deepsea", "filters": [8, 8, 8], "pool_sizes": [4, 4, 1], "dense_size": 8},
        train={**QUICK, "max_epochs": 2},
        evaluate={"baselines": ["linear"]},
    ).fit(out)
    assert result.bundle is not None and result.bundle.target_names == ["t1", "t2"]
    assert {"auroc_t1", "auroc_t2"} <= set(result.metrics["test"]) or "per_task" in result.metrics["test"]
    bundle = biodl.load(out)
    data = load_data(bundle, [str(tmp_path / "t1.bed"), str(tmp_path / "t2.bed")], require_targets=False)
    frame, _ = predict_frame(bundle, data)
    assert list(frame.columns) == ["id", "t1", "t2"] and frame["id"].iloc[0].startswith("chrA:")
