"""Windows from BED/narrowPeak + a genome FASTA, against a small genome of real sequence."""

from __future__ import annotations

import gzip
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from biodl.config import DataConfig
from biodl.data.base import LoadedData
from biodl.data.sequence import SequenceModality
from biodl.data.sequence.alphabet import decode_codes
from biodl.data.sequence.fasta import read_fasta, write_fasta
from biodl.data.sequence.intervals import gc_fraction
from biodl.data.splits import make_split
from biodl.errors import DataError
from conftest import shared_path

WIDTH = 100


@pytest.fixture(scope="module")
def genome(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    """chrA and chrB (2,000 bp each) made of real Oct4 peak sequence."""
    rec = read_fasta(shared_path("dna", "janggu_oct4_mafk", "sample_test.fa"))
    seqs = [s.decode() for s in rec.sequences]
    contigs = {"chrA": "".join(seqs[:10]), "chrB": "".join(seqs[10:20])}
    path = tmp_path_factory.mktemp("genome") / "genome.fa"
    write_fasta(path, list(contigs), list(contigs.values()), width=60)
    return path, contigs


def bed(path: Path, rows: list[tuple[Any, ...]]) -> Path:
    path.write_text("track name=test\n" + "".join("\t".join(map(str, r)) + "\n" for r in rows))
    return path


def load(paths: list[Path], genome: Path, *, require_targets: bool = True, split: str = "auto", **seq: Any) -> LoadedData:
    cfg = DataConfig(
        type="sequence",
        path=[str(p) for p in paths],
        split=split,
        sequence={"genome": str(genome), "intervals_width": WIDTH, **seq},
    )
    return SequenceModality(cfg).load([str(p) for p in paths], require_targets=require_targets)


def test_windows_labels_and_coordinates(tmp_path: Path, genome: tuple[Path, dict[str, str]]) -> None:
    fa, contigs = genome
    # narrowPeak: summit offset in column 10; windows are centred on start + summit
    a = bed(
        tmp_path / "taskA.narrowPeak",
        [("chrA", 300, 500, ".", 0, ".", 1, 1, 1, 50), ("chrB", 1000, 1100, ".", 0, ".", 1, 1, 1, -1)],
    )
    b = bed(tmp_path / "taskB.bed", [("chrA", 330, 420), ("chrB", 1500, 1600)])
    data = load([a, b], fa)
    assert data.targets is not None and data.targets.names == ["taskA", "taskB"] and data.targets.kind == "binary"
    expected = {  # id → (sequence, labels)
        "chrA:300-400": (contigs["chrA"][300:400], [1.0, 1.0]),  # summit 350; taskB covers 70 % of the bin, and the centre
        "chrB:1000-1100": (contigs["chrB"][1000:1100], [1.0, 0.0]),  # no summit: centre 1050
        "chrA:325-425": (contigs["chrA"][325:425], [1.0, 1.0]),
        "chrB:1500-1600": (contigs["chrB"][1500:1600], [0.0, 1.0]),
    }
    assert sorted(data.ids) == sorted(expected)
    seqs = decode_codes(data.X)
    for i, rid in enumerate(data.ids):
        seq, labels = expected[rid]
        assert seqs[i] == seq.upper(), rid
        assert data.targets.y[i].tolist() == labels, rid
    assert data.summary["positive windows (taskA)"] == 3 and data.summary["window width"] == WIDTH
    # prediction: windows only
    pred = load([a, b], fa, require_targets=False)
    assert pred.targets is None and len(pred) == 4
    # a plain-gzip genome cannot be indexed by pyfaidx and is read into memory
    gz = tmp_path / "genome.fa.gz"
    with gzip.open(gz, "wb") as fh:
        fh.write(fa.read_bytes())
    again = load([a, b], gz)
    np.testing.assert_array_equal(again.X, data.X)
    assert "read into memory" in again.summary["genome access"]


def test_windows_past_contig_ends(tmp_path: Path, genome: tuple[Path, dict[str, str]]) -> None:
    fa, contigs = genome
    peaks = bed(tmp_path / "p.bed", [("chrA", 1000, 1100), ("chrA", 1960, 2000), ("chrB", 0, 20)])
    with pytest.raises(
        DataError, match=r"p.bed line 3: the 100-bp window chrA:1930-2030 runs past the end of chrA \(length 2000\); 2"
    ):
        load([peaks], fa, negatives="flank")
    dropped = load([peaks], fa, out_of_bounds="drop")
    assert list(dropped.ids) == ["chrA:1000-1100"] and dropped.summary["dropped (window past contig end)"] == 2
    padded = load([peaks], fa, out_of_bounds="pad")
    seqs = dict(zip(padded.ids, decode_codes(padded.X), strict=True))
    assert seqs["chrA:1930-2030"] == contigs["chrA"][1930:].upper() + "N" * 30
    assert seqs["chrB:-40-60"] == "N" * 40 + contigs["chrB"][:60].upper()


def test_unknown_contigs(tmp_path: Path, genome: tuple[Path, dict[str, str]]) -> None:
    fa, _ = genome
    peaks = bed(tmp_path / "p.bed", [("chrA", 1000, 1100), ("chr7", 10, 110), ("1", 5, 50)])
    with pytest.raises(DataError, match=r"p.bed line 3: contig 'chr7' is not in the genome genome.fa \(2 interval.*chrA, chrB"):
        load([peaks], fa)
    data = load([peaks], fa, unknown_contigs="drop")
    assert len(data) == 1 and data.summary["dropped (unknown contig)"] == 2
    with pytest.raises(DataError, match="need a genome FASTA"):
        SequenceModality(DataConfig(type="sequence")).load([str(peaks)])
    bad = tmp_path / "bad.bed"
    bad.write_text("chrA\t100\n")
    with pytest.raises(DataError, match=r"bad\.bed line 1: a BED line needs chrom, start, end"):
        load([bad], fa)


def test_negatives_flank_and_gc_matched(tmp_path: Path, genome: tuple[Path, dict[str, str]]) -> None:
    fa, contigs = genome
    peaks = bed(tmp_path / "p.bed", [("chrA", 500, 600), ("chrA", 1100, 1200), ("chrB", 800, 900)])
    flank = load([peaks], fa, negatives="flank")
    assert flank.targets is not None and flank.targets.y[:, 0].tolist() == [1, 1, 1, 0, 0, 0]
    assert list(flank.ids[3:]) == ["chrA:700-800", "chrA:1300-1400", "chrB:1000-1100"]  # + 2 × width
    for rid, seq in zip(flank.ids, decode_codes(flank.X), strict=True):
        chrom, span = rid.split(":")
        s, e = map(int, span.split("-"))
        assert seq == contigs[chrom][s:e].upper()
    gcm = load([peaks], fa, negatives="gc-matched", negatives_ratio=2, seed=1)
    assert gcm.targets is not None and int((gcm.targets.y[:, 0] == 0).sum()) == 6
    starts = np.array([int(i.split(":")[1].split("-")[0]) for i in gcm.ids])
    chroms = np.array([i.split(":")[0] for i in gcm.ids])
    neg = gcm.targets.y[:, 0] == 0
    for c, s in zip(chroms[neg], starts[neg], strict=True):  # no overlap with a peak
        peaks_c = [(500, 600), (1100, 1200)] if c == "chrA" else [(800, 900)]
        assert all(s + WIDTH <= ps or s >= pe for ps, pe in peaks_c)
    ascii_ = np.frombuffer("".join(decode_codes(gcm.X)).encode(), np.uint8).reshape(len(gcm), WIDTH)
    gc, _ = gc_fraction(ascii_)
    assert abs(gc[neg].mean() - gc[~neg].mean()) < 0.1


def test_chromosome_split_and_shuffled_negatives(tmp_path: Path, genome: tuple[Path, dict[str, str]]) -> None:
    fa, _ = genome
    rows = [("chrA", s, s + 50) for s in range(100, 1900, 150)] + [("chrB", s, s + 50) for s in range(100, 1900, 300)]
    peaks = bed(tmp_path / "p.bed", rows)
    data = load([peaks], fa, split="chromosome", negatives="dinucleotide-shuffle")
    assert data.groups is not None and len(data) == 3 * len(rows)  # two shuffles per window by default
    assert len(set(data.ids)) == len(data)  # shuffles of one window get distinct ids
    split = make_split(len(data), (0.6, 0.1, 0.3), "chromosome", 0, groups=data.groups, test_chroms=["chrB"])
    assert set(data.groups[split.test]) == {"chrB"} and "chrB" not in set(data.groups[split.train])
    assert len(split.val) > 0 and split.method.startswith("chromosome")
    with pytest.raises(DataError, match="needs test chromosomes"):
        make_split(len(data), (0.6, 0.1, 0.3), "chromosome", 0, groups=data.groups)
    with pytest.raises(DataError, match=r"test chromosome\(s\) \['chr9'\] have no rows"):
        make_split(len(data), (0.6, 0.1, 0.3), "chromosome", 0, groups=data.groups, test_chroms=["chr9"])
    with pytest.raises(DataError, match="no training rows"):
        make_split(len(data), (0.6, 0.1, 0.3), "chromosome", 0, groups=data.groups, test_chroms=["chrB"], val_chroms=["chrA"])
    with pytest.raises(DataError, match="needs the chromosome of each row"):
        make_split(10, (0.6, 0.1, 0.3), "chromosome", 0, test_chroms=["chrB"])


def test_shift_reads_flanks_of_real_sequence(tmp_path: Path, genome: tuple[Path, dict[str, str]]) -> None:
    """data.sequence.shift > 0: windows carry `shift` bp of genome on each side; the model sees the core."""
    import torch

    from biodl.data.sequence.augment import FlankCropDataset, SequenceAugment
    from biodl.models import build_model

    fa, contigs = genome
    peaks = bed(tmp_path / "p.bed", [("chrA", 300, 400), ("chrB", 1000, 1100), ("chrA", 1990, 2000)])
    opts = {"genome": str(fa), "intervals_width": WIDTH, "shift": 7, "out_of_bounds": "pad"}
    cfg = DataConfig(type="sequence", path=[str(peaks)], sequence=opts)
    mod = SequenceModality(cfg)
    data = mod.load([str(peaks)])
    assert data.X.shape[1] == WIDTH + 14 and data.summary["sequence length"] == WIDTH
    assert data.summary["windows whose flank runs past a contig end (N-padded flank)"] == 1
    seqs = dict(zip(data.ids, decode_codes(data.X), strict=True))
    assert seqs["chrA:300-400"] == contigs["chrA"][293:407].upper()  # ids keep the core coordinates
    X = mod.transform(data.X)
    assert mod.input_shape(tuple(X.shape[1:])) == (4, WIDTH)
    # training rows: random slices of the wide window, every offset within the flanks
    aug = mod.train_augment()
    assert isinstance(aug, SequenceAugment)
    samples = aug.training_samples(X, np.zeros((len(X), 1), np.float32))
    assert samples is not None and isinstance(samples[0], FlankCropDataset)
    ds = samples[0]
    torch.manual_seed(0)
    offsets = set()
    for _ in range(40):
        crops, _ = ds.__getitems__([0, 1])
        assert crops.shape == (2, 4, WIDTH)
        for row, crop in zip((0, 1), crops, strict=True):
            matches = [o for o in range(15) if np.array_equal(X[row, :, o : o + WIDTH], crop.numpy())]
            assert matches, "a training crop is not a slice of its window"
            offsets.add(matches[0])
    assert min(offsets) < 3 and max(offsets) > 11  # shifts span the flanks
    # evaluation: the model centre-crops the wide windows
    model = build_model("deepbind", (4, WIDTH), 1, {"filters": 4, "filter_width": 8})
    mod.configure_model(model)
    model.eval()
    with torch.no_grad():
        wide = model(torch.from_numpy(X))
        core = model(torch.from_numpy(np.ascontiguousarray(X[:, :, 7 : 7 + WIDTH])))
    torch.testing.assert_close(wide, core)
    # a cross-validation fold keeps what reading established (flank, length, tasks)
    fold = mod.for_fold()
    assert fold.flank == 7 and fold.input_shape(tuple(X.shape[1:])) == (4, WIDTH) and fold.tasks == mod.tasks
    # a trained model's data type keeps its flank, whatever the prediction config says
    meta, arrays = mod.state()
    other = SequenceModality(
        DataConfig(
            type="sequence", path=[str(peaks)], sequence={"genome": str(fa), "intervals_width": WIDTH, "out_of_bounds": "pad"}
        )
    )
    other.load_state(meta, arrays)
    assert other.load([str(peaks)], require_targets=False).X.shape[1] == WIDTH + 14
