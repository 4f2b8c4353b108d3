"""Reading sequence inputs (FASTA per class, tables, label tables, positives only) and every bad input."""

from __future__ import annotations

import gzip
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from biodl.config import DataConfig
from biodl.data.base import LoadedData
from biodl.data.sequence import SequenceModality, one_hot_decode
from biodl.data.sequence.alphabet import BLANK, decode_codes
from biodl.data.sequence.fasta import read_fasta, write_fasta
from biodl.data.sequence.shuffle import dinucleotide_counts
from biodl.errors import ConfigError, DataError
from conftest import shared_path


def load(paths: list[Path | str], *, require_targets: bool = True, classes: list[str] | None = None, **data: Any) -> LoadedData:
    seq = data.pop("sequence", {})
    cfg = DataConfig(type="sequence", path=[str(p) for p in paths], sequence=seq, **data)
    return SequenceModality(cfg).load([str(p) for p in paths], require_targets=require_targets, classes=classes)


@pytest.fixture(scope="module")
def oct4() -> tuple[list[str], list[str]]:
    rec = read_fasta(shared_path("dna", "janggu_oct4_mafk", "sample_test.fa"))
    return rec.ids[:40], [s.decode() for s in rec.sequences[:40]]


@pytest.fixture(scope="module")
def mafk() -> tuple[list[str], list[str]]:
    rec = read_fasta(shared_path("dna", "janggu_oct4_mafk", "sample2_test.fa"))
    return rec.ids[:40], [s.decode() for s in rec.sequences[:40]]


def fasta(tmp_path: Path, name: str, ids: list[str], seqs: list[str]) -> Path:
    return write_fasta(tmp_path / name, ids, seqs)


def test_fasta_per_class(tmp_path: Path, oct4: Any, mafk: Any) -> None:
    pos = fasta(tmp_path, "oct4.fa", *oct4)
    neg_gz = tmp_path / "mafk.fa.gz"
    with gzip.open(neg_gz, "wt") as fh:
        fh.write("".join(f">{i}\n{s}\n" for i, s in zip(*mafk, strict=True)))
    data = load([pos, neg_gz])
    assert data.X.shape == (80, 200) and data.X.dtype == np.uint8
    assert data.targets is not None and data.targets.classes == ["mafk", "oct4"] and data.targets.kind == "binary"
    assert data.targets.y[:40, 0].tolist() == [1.0] * 40 and data.summary["class counts"] == {"mafk": 40, "oct4": 40}
    assert decode_codes(data.X[:1])[0] == oct4[1][0].upper()
    assert list(data.ids[:2]) == oct4[0][:2]
    # explicit class names; a trained model's classes map test files named <class>_test
    named = load([f"Oct4={pos}", f"MafK={neg_gz}"])
    assert named.targets is not None and named.targets.classes == ["MafK", "Oct4"]
    test_file = fasta(tmp_path, "oct4_test.fa", *oct4)
    again = load([test_file], classes=["mafk", "oct4"])
    assert again.targets is not None and np.all(again.targets.y == 1)
    with pytest.raises(DataError, match="CLASS=PATH"):
        load([fasta(tmp_path, "other.fa", *oct4)], classes=["mafk", "oct4"])
    with pytest.raises(DataError, match="one FASTA file is one class"):
        load([pos])
    assert load([pos], require_targets=False).targets is None


def test_positives_only_fasta_gets_dinucleotide_shuffles(tmp_path: Path, oct4: Any) -> None:
    pos = fasta(tmp_path, "peaks.fa", *oct4)
    data = load([pos], sequence={"negatives": "dinucleotide-shuffle", "negatives_ratio": 2, "seed": 3})
    assert data.targets is not None and data.targets.names == ["bound"] and data.targets.classes == ["0", "1"]
    assert len(data) == 120 and data.targets.y[:, 0].tolist() == [1.0] * 40 + [0.0] * 80
    assert data.ids[40] == f"{oct4[0][0]}_shuf1" and data.ids[41] == f"{oct4[0][0]}_shuf2"
    for k in (40, 41):
        np.testing.assert_array_equal(dinucleotide_counts(data.X[k]), dinucleotide_counts(data.X[0]))
    again = load([pos], sequence={"negatives": "dinucleotide-shuffle", "negatives_ratio": 2, "seed": 3})
    np.testing.assert_array_equal(again.X, data.X)
    assert "negatives (dinucleotide shuffles, seed 3)" in data.summary
    # prediction never adds negatives
    assert len(load([pos], require_targets=False, sequence={"negatives": "dinucleotide-shuffle"})) == 40


def test_deepbind_table_positives_only() -> None:
    path = shared_path("dna", "deepbind_encode_train", "MYC_H1-hESC_c-Myc_Stanford_AC.seq.gz")
    data = load(
        [path], target_columns=["Bound"], id_column="EventID", sequence={"column": "seq", "negatives": "dinucleotide-shuffle"}
    )
    # default: two shuffles per peak (data.sequence.negatives_ratio = null → 2 for dinucleotide shuffles)
    assert data.X.shape == (3 * 4051, 101)
    assert data.targets is not None and data.targets.y.sum() == 4051
    assert data.ids[0] == "seq_00001_peak" and list(data.ids[4051:4053]) == ["seq_00001_peak_shuf1", "seq_00001_peak_shuf2"]
    one = load(
        [path], target_columns=["Bound"], id_column="EventID",
        sequence={"column": "seq", "negatives": "dinucleotide-shuffle", "negatives_ratio": 1},
    )  # fmt: skip
    assert one.X.shape == (8102, 101) and one.ids[4051] == "seq_00001_peak_shuf"


def test_table_with_negatives_is_left_alone(tmp_path: Path) -> None:
    path = shared_path("dna", "deepbind_encode_train", "MYC_H1-hESC_c-Myc_Stanford_AC.seq.gz")
    frame = pd.read_csv(path, sep="\t").head(30)
    frame.loc[:9, "Bound"] = 0
    out = tmp_path / "mixed.txt"  # any extension
    frame.to_csv(out, sep="\t", index=False)
    data = load([out], target_columns=["Bound"], sequence={"negatives": "dinucleotide-shuffle"})
    assert len(data) == 30 and data.summary["negatives"].startswith("none generated")


def test_dream5_headerless_table() -> None:
    path = shared_path("dna", "dream5_chipseq", "TF_23_CHIP_51_full_genomic.seq")
    data = load([path])
    assert data.X.shape[0] == 1000 and data.targets is not None and data.targets.names == ["label"]
    assert data.summary["class counts"] == {"0": 500, "1": 500}
    assert data.summary["task (inferred)"] == "classification"


def test_label_table_joined_on_ids(tmp_path: Path, oct4: Any) -> None:
    pos = fasta(tmp_path, "seqs.fa", *oct4)
    labels = pd.DataFrame({"name": oct4[0][::-1], "bound": [1, 0] * 20, "signal": np.linspace(0, 1, 40)})
    labels.loc[40] = ["extra", 1, 0.5]
    table = tmp_path / "labels.tsv"
    labels.to_csv(table, sep="\t", index=False)
    data = load([pos], target_columns=["bound"], sequence={"label_table": str(table)})
    assert data.targets is not None and data.targets.y[:, 0].tolist() == [0.0, 1.0] * 20
    assert data.summary["label rows without a sequence (ignored)"] == 1
    reg = load([pos], target_columns=["signal"], task="regression", sequence={"label_table": str(table)})
    assert reg.targets is not None and reg.targets.kind == "regression"
    short = tmp_path / "short.tsv"
    labels.iloc[5:].to_csv(short, sep="\t", index=False)
    with pytest.raises(DataError, match=r"5 record.*no row in the label table"):
        load([pos], target_columns=["bound"], sequence={"label_table": str(short)})


# ----------------------------------------------------------------- bad input
def test_empty_records(tmp_path: Path, oct4: Any, mafk: Any) -> None:
    ids, seqs = list(oct4[0]), list(oct4[1])
    seqs[3] = ""
    pos = fasta(tmp_path, "pos.fa", ids, seqs)
    neg = fasta(tmp_path, "neg.fa", *mafk)
    with pytest.raises(DataError, match=rf"pos.fa: record '{ids[3]}': empty sequence \(1 empty record"):
        load([pos, neg])
    data = load([pos, neg], sequence={"empty": "drop"})
    assert len(data) == 79 and data.summary["empty records dropped"] == 1
    (tmp_path / "blank.fa").write_text("\n\n")
    with pytest.raises(DataError, match="empty"):
        load([tmp_path / "blank.fa", neg])


def test_bad_characters_named_or_masked(tmp_path: Path, oct4: Any, mafk: Any) -> None:
    ids, seqs = list(oct4[0]), list(oct4[1])
    seqs[7] = seqs[7][:120] + "X" + seqs[7][121:]
    seqs[9] = seqs[9][:5] + "*" + seqs[9][6:]
    pos = fasta(tmp_path, "pos.fa", ids, seqs)
    neg = fasta(tmp_path, "neg.fa", *mafk)
    with pytest.raises(DataError, match=rf"record '{ids[7]}': position 121: character 'X' is not in the dna alphabet.*2 such"):
        load([pos, neg])
    data = load([pos, neg], sequence={"unknown": "mask"})
    assert data.summary["masked characters (not in the alphabet)"] == 2
    assert data.X[7, 120] == BLANK
    # N is fine by default (all-zero), an error on request
    seqs[7] = seqs[7][:120] + "N" + seqs[7][121:]
    seqs[9] = oct4[1][9]
    pos = fasta(tmp_path, "pos.fa", ids, seqs)
    data = load([pos, neg])
    assert any(k.startswith("unknown bases") for k in data.summary)
    with pytest.raises(DataError, match=rf"record '{ids[7]}': position 121: unknown base 'N'"):
        load([pos, neg], sequence={"unknown": "error"})


def test_unequal_lengths(tmp_path: Path, oct4: Any, mafk: Any) -> None:
    ids, seqs = list(oct4[0]), list(oct4[1])
    seqs[2] = seqs[2][:150]
    seqs[4] = seqs[4] + "ACGTACGTAC"
    pos = fasta(tmp_path, "pos.fa", ids, seqs)
    neg = fasta(tmp_path, "neg.fa", *mafk)
    with pytest.raises(
        DataError, match=rf"record '{ids[2]}': length 150, but 200 is required.*2 record\(s\) differ.*--length-mode"
    ):
        load([pos, neg])
    padded = load([pos, neg], sequence={"length_mode": "pad"})
    assert padded.X.shape[1] == 210 and padded.summary["sequences padded with N"] == 79
    assert decode_codes(padded.X[2:3])[0] == "N" * 30 + seqs[2].upper() + "N" * 30
    cropped = load([pos, neg], sequence={"length_mode": "crop"})
    assert cropped.X.shape[1] == 150 and cropped.summary["sequences cropped"] == 79
    fit = load([pos, neg], sequence={"length_mode": "fit", "length": 200})
    assert fit.X.shape[1] == 200 and fit.summary["sequences padded with N"] == 1 and fit.summary["sequences cropped"] == 1
    assert decode_codes(fit.X[4:5])[0] == (seqs[4][5:205]).upper()
    with pytest.raises(DataError, match="needs a length"):
        load([pos, neg], sequence={"length_mode": "fit"})
    with pytest.raises(DataError, match=rf"record '{ids[4]}': length 210, but 200 is required \(data.sequence.length\)"):
        load([pos, neg], sequence={"length_mode": "pad", "length": 200})


def test_duplicate_ids(tmp_path: Path, oct4: Any, mafk: Any) -> None:
    pos = fasta(tmp_path, "pos.fa", *oct4)
    dup_ids = list(mafk[0])
    dup_ids[5] = oct4[0][0]
    neg = fasta(tmp_path, "neg.fa", dup_ids, mafk[1])
    with pytest.raises(DataError, match=rf"neg.fa: record '{oct4[0][0]}': duplicate id .*first seen at pos.fa"):
        load([pos, neg])
    data = load([pos, neg], sequence={"duplicate_ids": "rename"})
    assert data.ids[45] == f"{oct4[0][0]}#2" and data.summary["duplicate ids renamed (id#2, id#3...)"] == 1


def test_other_bad_inputs(tmp_path: Path, oct4: Any) -> None:
    pos = fasta(tmp_path, "pos.fa", *oct4)
    table = tmp_path / "t.csv"
    pd.DataFrame({"seq": oct4[1], "y": [0, 1] * 20}).to_csv(table, index=False)
    with pytest.raises(DataError, match="mix formats"):
        load([pos, table])
    with pytest.raises(DataError, match="sequence column 'sequence' not found"):
        load([table], target_columns=["y"], sequence={"column": "sequence"})
    with pytest.raises(DataError, match="file not found"):
        load([tmp_path / "missing.fa"])
    (tmp_path / "bad.fa").write_text("ACGT\n>x\nACGT\n")
    with pytest.raises(DataError, match="not FASTA"):
        load([tmp_path / "bad.fa"], sequence={"format": "fasta"})
    with pytest.raises(ConfigError, match="no reverse complement"):
        SequenceModality(DataConfig(type="sequence", sequence={"alphabet": "protein", "rc_augment": True}))
    ok = load([table], target_columns=["y"])
    assert ok.targets is not None and len(ok) == 40
    assert one_hot_decode(SequenceModality(DataConfig(type="sequence")).transform(ok.X[:1]))[0] == oct4[1][0].upper()
