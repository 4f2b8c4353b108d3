"""No leakage: a peak and the sequences derived from it (dinucleotide shuffles, flank and
GC-matched negatives) always share a split, for every split method and cross-validation.

Checked on the real GABPA ChIP-seq table of DeepBind (``GABPA_GM12878_GABP_HudsonAlpha_AC``,
6,066 bound peaks, two dinucleotide shuffles each).
"""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from biodl.config import DataConfig
from biodl.data.base import LoadedData
from biodl.data.folds import kfold_splits
from biodl.data.sequence import SequenceModality
from biodl.data.splits import Split, make_split
from conftest import shared_path

SIZES = (0.6, 0.1, 0.3)


def gabpa_table() -> Path:
    return shared_path("dna", "deepbind_encode_train", "GABPA_GM12878_GABP_HudsonAlpha_AC.seq.gz")


@pytest.fixture(scope="module")
def gabpa(tmp_path_factory: pytest.TempPathFactory) -> tuple[LoadedData, LoadedData]:
    """The table with two shuffles per peak; and a copy with a (pseudo) chromosome column for chromosome splits."""
    frame = pd.read_csv(gabpa_table(), sep="\t", dtype=str, keep_default_na=False)
    frame["chrom"] = [f"chr{1 + i % 6}" for i in range(len(frame))]
    with_chrom = tmp_path_factory.mktemp("gabpa") / "gabpa_chrom.seq.gz"
    with gzip.open(with_chrom, "wt") as fh:
        frame.to_csv(fh, sep="\t", index=False)
    out = []
    for path, split in ((gabpa_table(), "auto"), (with_chrom, "chromosome")):
        cfg = DataConfig(
            type="sequence", path=[str(path)], target_columns=["Bound"], split=split,
            sequence={"column": "seq", "negatives": "dinucleotide-shuffle"},
        )  # fmt: skip
        out.append(SequenceModality(cfg).load([str(path)]))
    return out[0], out[1]


def crossings(data: LoadedData, split: Split) -> int:
    """Derived rows whose split differs from their source row's."""
    assert data.sources is not None
    part = np.full(len(data), -1)
    for code, idx in enumerate((split.train, split.val, split.test)):
        part[idx] = code
    assert (part >= 0).all(), "every row is in a split"
    row_of_id = {rid: i for i, rid in enumerate(data.ids)}
    source_part = part[[row_of_id[s] for s in data.sources]]
    return int(np.count_nonzero(part != source_part))


def labels_of(data: LoadedData) -> np.ndarray:
    assert data.targets is not None
    return np.nan_to_num(data.targets.y[:, 0], nan=-1).astype(np.int64)


def test_shuffles_carry_their_source(gabpa: tuple[LoadedData, LoadedData]) -> None:
    data, _ = gabpa
    assert data.sources is not None and len(data) == 3 * 6066
    shuf = np.char.find(data.ids.astype(str), "_shuf") >= 0
    assert int(shuf.sum()) == 2 * 6066
    # a shuffle's source is the peak it was made from; a peak is its own source
    assert all(rid.startswith(f"{src}_shuf") for rid, src in zip(data.ids[shuf], data.sources[shuf], strict=True))
    assert (data.sources[~shuf] == data.ids[~shuf]).all()
    # without the sources (what biodl did before) most shuffles land in another split than their peak
    leaky = make_split(len(data), SIZES, "stratified", 0, labels=labels_of(data))
    assert crossings(data, leaky) > 5000


@pytest.mark.parametrize("method", ["auto", "random", "stratified", "ordered"])
def test_every_split_method_keeps_shuffles_with_their_peak(gabpa: tuple[LoadedData, LoadedData], method: str) -> None:
    data, _ = gabpa
    split = make_split(len(data), SIZES, method, 0, labels=labels_of(data), sources=data.sources)
    assert crossings(data, split) == 0
    assert "grouped by source (12132 derived rows" in split.method
    # the shares still follow the requested sizes, and the classes stay balanced in each part
    for idx, share in zip((split.train, split.val, split.test), SIZES, strict=True):
        assert len(idx) == pytest.approx(share * len(data), abs=3)
        assert labels_of(data)[idx].mean() == pytest.approx(1 / 3, abs=0.01)


def test_chromosome_split_keeps_shuffles_with_their_peak(gabpa: tuple[LoadedData, LoadedData]) -> None:
    _, data = gabpa
    assert data.groups is not None
    for val_chroms in ([], ["chr2"]):  # validation drawn from the training chromosomes, or held out too
        split = make_split(
            len(data), SIZES, "chromosome", 0, labels=labels_of(data), groups=data.groups,
            test_chroms=["chr1"], val_chroms=val_chroms, sources=data.sources,
        )  # fmt: skip
        assert crossings(data, split) == 0
        assert set(data.groups[split.test]) == {"chr1"}


def test_cross_validation_keeps_shuffles_with_their_peak(gabpa: tuple[LoadedData, LoadedData]) -> None:
    data, _ = gabpa
    folds = kfold_splits(len(data), 5, SIZES, 0, labels=labels_of(data), sources=data.sources)
    tested = np.concatenate([f.test for f in folds])
    assert sorted(tested.tolist()) == list(range(len(data)))  # each row is tested once
    assert all(crossings(data, f) == 0 for f in folds)


def test_derived_negative_follows_its_source_chromosome() -> None:
    """A derived row lying on another chromosome than its source still goes with its source."""
    ids = np.array(["p1", "p2", "p3", "p4", "n1", "n2"], dtype=object)
    sources = np.array(["p1", "p2", "p3", "p4", "p1", "p4"], dtype=object)
    chroms = np.array(["chr1", "chr2", "chr2", "chr3", "chr3", "chr1"], dtype=object)
    split = make_split(6, SIZES, "chromosome", 0, groups=chroms, test_chroms=["chr1"], val_chroms=["chr3"], sources=sources)
    assert sorted(ids[split.test]) == ["n1", "p1"] and sorted(ids[split.val]) == ["n2", "p4"]
