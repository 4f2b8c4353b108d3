"""Training from an HDF5 or Zarr store (streamed) matches in-memory training."""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from biodl import Experiment
from biodl.config import DataConfig
from biodl.data.sequence import SequenceModality
from biodl.data.store import open_store
from conftest import run_biodl, shared_path

BIODL = str(Path(sys.executable).parent / "biodl")
SRC = str(Path(__file__).resolve().parents[2] / "src")


def convert(*args: str) -> subprocess.CompletedProcess[str]:
    """``biodl data convert`` of this checkout."""
    res = run_biodl(
        "data",
        "convert",
        *args,
    )
    assert res.returncode == 0, res.stderr[-2000:]
    return res


@pytest.mark.parametrize("suffix", [".h5", ".zarr"])
def test_convert_then_stream_train_matches_in_memory(small_csv: Path, tmp_path: Path, suffix: str) -> None:
    if suffix == ".zarr":
        pytest.importorskip("zarr", reason="Zarr stores need the optional zarr package (pip install 'biodl[zarr]')")
    genes = [c for c in pd.read_csv(small_csv, nrows=1).columns if c.startswith("g_")]
    store = tmp_path / f"small{suffix}"
    res = run_biodl(
        "data", "convert", "--data-path", str(small_csv), "--task", "classification",
         "--target-columns", "is_mono", "--feature-columns", *genes, "--output", str(store), "--chunk-rows", "32",
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    common = {
        "model": {"hidden_sizes": [32]},
        "train": {"max_epochs": 25, "batch_size": 32, "progress_bar": False, "early_stopping": False},
        "evaluate": {"baselines": ["linear"], "report": False},
    }
    mem = Experiment(
        data={"path": [str(small_csv)], "task": "classification", "target_columns": ["is_mono"], "feature_columns": genes},
        **common,
    ).fit(tmp_path / "mem")
    streamed = Experiment(data={"path": [str(store)]}, **common).fit(tmp_path / "stream")
    # the same split, the same baseline, and the network within noise of the in-memory run
    assert (
        json.loads((tmp_path / "mem" / "splits.json").read_text())["test_ids"]
        == json.loads((tmp_path / "stream" / "splits.json").read_text())["test_ids"]
    )
    assert streamed.metrics["baseline"]["test"]["auroc"] == pytest.approx(mem.metrics["baseline"]["test"]["auroc"])
    assert streamed.metrics["test"]["auroc"] == pytest.approx(mem.metrics["test"]["auroc"], abs=0.03)
    assert streamed.metrics["test"]["auroc"] > 0.85
    # the bundle of a streamed run predicts raw files like any other
    assert streamed.bundle is not None and streamed.bundle.data_config.feature_columns == genes


QUIET = {"progress_bar": False, "early_stopping": False, "seed": 0}
NO_EXTRAS = {"baselines": [], "report": False, "plots": False}


def test_sorted_sequence_store_learns_like_in_memory(tmp_path: Path) -> None:
    """GABPA peaks + their dinucleotide shuffles: the input holds all peaks first, all shuffles
    after; the store's shuffled rows and the shuffle buffer give mixed batches (before: AUROC 0.50)."""
    table = shared_path("dna", "deepbind_encode_train", "GABPA_GM12878_GABP_HudsonAlpha_AC.seq.gz")
    frame = pd.read_csv(table, sep="\t", dtype=str, keep_default_na=False).iloc[:1000]
    small = tmp_path / "gabpa_1000.seq.gz"
    with gzip.open(small, "wt") as fh:
        frame.to_csv(fh, sep="\t", index=False)
    data = {"type": "sequence", "target_columns": ["Bound"], "sequence": {"column": "seq", "negatives": "dinucleotide-shuffle"}}
    store = tmp_path / "gabpa.h5"
    convert("--data-type", "sequence", "--data-path", str(small), "--target-columns", "Bound", "--sequence-column", "seq",
            "--negatives", "dinucleotide-shuffle", "--pack-bits", "--chunk-rows", "128", "--output", str(store))  # fmt: skip
    common = {
        "model": {"name": "deepbind", "filters": 16, "hidden_sizes": []},
        "train": {**QUIET, "max_epochs": 6, "batch_size": 64, "lr": 0.003},
        "evaluate": NO_EXTRAS,
    }
    mem = Experiment(data={**data, "path": [str(small)]}, **common).fit(tmp_path / "mem")
    streamed = Experiment(data={"type": "sequence", "path": [str(store)]}, **common).fit(tmp_path / "stream")
    mem_splits = json.loads((tmp_path / "mem" / "splits.json").read_text())
    stream_splits = json.loads((tmp_path / "stream" / "splits.json").read_text())
    assert mem_splits["test_ids"] == stream_splits["test_ids"]  # the same split, by id and source
    assert mem.metrics["test"]["auroc"] > 0.75
    assert streamed.metrics["test"]["auroc"] == pytest.approx(mem.metrics["test"]["auroc"], abs=0.03)


def test_image_store_learns_like_in_memory(tmp_path: Path) -> None:
    """BreastMNIST (546 + 78 images): a tiny CNN's test ROC-AUC varies by ±0.03 from seed to seed
    (either path), so the mean over two seeds of each path is compared."""
    npz = shared_path("images", "breastmnist", "breastmnist_train_val.npz")
    store = tmp_path / "breast.h5"
    convert("--data-type", "image", "--data-path", str(npz), "--chunk-rows", "64", "--output", str(store))
    split = {"split": "stratified", "split_sizes": [0.5, 0.1, 0.4]}  # a larger test part than the file's own split
    scores: dict[str, list[float]] = {"mem": [], "stream": []}
    for seed in (0, 1):
        common = {
            "model": {"name": "cnn", "channels": [8, 16], "convs_per_block": 1, "dense_units": 32},
            "train": {**QUIET, "seed": seed, "max_epochs": 10, "batch_size": 32, "lr": 0.003, "threads": 1},
            "evaluate": NO_EXTRAS,
        }
        for kind, path in (("mem", npz), ("stream", store)):
            run = Experiment(data={"type": "image", "path": [str(path)], **split}, **common).fit(tmp_path / f"{kind}{seed}")
            scores[kind].append(run.metrics["test"]["auroc"])
        assert (
            json.loads((tmp_path / f"mem{seed}" / "splits.json").read_text())["test_ids"]
            == json.loads((tmp_path / f"stream{seed}" / "splits.json").read_text())["test_ids"]
        )
    assert np.mean(scores["mem"]) > 0.7
    assert np.mean(scores["stream"]) == pytest.approx(np.mean(scores["mem"]), abs=0.03), scores


def test_store_keeps_the_files_own_split(tmp_path: Path) -> None:
    npz = shared_path("images", "breastmnist", "breastmnist_train_val.npz")
    store = tmp_path / "breast.h5"
    convert("--data-type", "image", "--data-path", str(npz), "--output", str(store))
    loaded, _ = open_store(store)
    assert loaded.parts is not None
    assert int((loaded.parts == "val").sum()) == 78 and int((loaded.parts == "train").sum()) == 546


def test_fasta_per_class_store_has_targets_and_packed_codes_roundtrip(tmp_path: Path) -> None:
    """One FASTA per class (Oct4 vs MafK peaks): the store keeps the classes; --pack-bits packs the codes."""
    oct4 = shared_path("dna", "janggu_oct4_mafk", "sample_test.fa")
    mafk = shared_path("dna", "janggu_oct4_mafk", "sample2_test.fa")
    cfg = DataConfig(type="sequence", path=[str(oct4), str(mafk)])
    ref = SequenceModality(cfg).load(cfg.path)
    assert ref.targets is not None
    for pack in (False, True):
        store = tmp_path / f"classes_{pack}.h5"
        res = convert("--data-type", "sequence", "--data-path", str(oct4), str(mafk), "--output", str(store),
                      *(["--pack-bits"] if pack else []))  # fmt: skip
        assert "targets class" in res.stdout
        loaded, meta = open_store(store)
        assert loaded.targets is not None and loaded.targets.classes == ref.targets.classes == ["sample2_test", "sample_test"]
        np.testing.assert_array_equal(loaded.targets.y, ref.targets.y)
        assert list(loaded.ids) == list(ref.ids)
        np.testing.assert_array_equal(loaded.X[np.arange(len(ref))], ref.X)
        assert (meta["code_packing"] is not None) == pack
    assert (tmp_path / "classes_True.h5").stat().st_size < (tmp_path / "classes_False.h5").stat().st_size
    # an unlabelled store for prediction is asked for explicitly
    convert("--data-type", "sequence", "--data-path", str(oct4), str(mafk), "--no-targets", "--output", str(tmp_path / "u.h5"))
    assert open_store(tmp_path / "u.h5")[0].targets is None


def test_convert_keeps_the_val_column_split(small_csv: Path, tmp_path: Path) -> None:
    """`biodl data convert --val-column` stores the split `biodl train --val-column` makes (the flagged rows validate)."""
    import h5py

    from biodl.cli.main import main

    frame = pd.read_csv(small_csv)
    frame["validation"] = np.arange(len(frame)) % 5 == 0
    path = tmp_path / "flagged.csv"
    frame.to_csv(path, index=False)
    genes = [c for c in frame.columns if c.startswith("g_")]
    store = tmp_path / "flagged.h5"
    assert main(["data", "convert", "--data-path", str(path), "--task", "classification", "--target-columns", "is_mono",
                 "--feature-columns", *genes, "--val-column", "validation", "--output", str(store)]) == 0  # fmt: skip
    with h5py.File(store) as fh:
        val = np.sort(fh["split/val"][:])
        train = np.sort(fh["split/train"][:])
    np.testing.assert_array_equal(val, np.flatnonzero(frame.validation))
    np.testing.assert_array_equal(train, np.flatnonzero(~frame.validation))
