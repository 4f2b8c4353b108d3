"""CpG tables, neighbour features, BED overlaps, DNA windows and the multi-input loader (alignment by id)."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from biodl.config import DataConfig, InputSpec
from biodl.data import DATA_TYPES
from biodl.data.cpg import cell_names, neighbour_rows, read_cpg_table
from biodl.data.multi_input import Layout, Sites, align_ids
from biodl.errors import DataError


def _table(path: Path, rows: list[tuple[str, int, float]], gz: bool = True) -> Path:
    text = "".join(f"{c}\t{p}\t{v}\n" for c, p, v in rows)
    if gz:
        with gzip.open(path, "wt") as fh:
            fh.write(text)
    else:
        path.write_text(text)
    return path


def test_neighbour_features_match_a_hand_computation() -> None:
    # one cell observed at 10 (1), 20 (0), 40 (1), 70 (0); sites at 20 and 45, k = 2
    cell = (np.array(["1"] * 4), np.array([10, 20, 40, 70]), np.array([1.0, 0.0, 1.0, 0.0], dtype=np.float32))
    sites = Sites(np.array(["1", "1"]), np.array([20, 45]), [cell])
    X = neighbour_rows(sites, k=2, max_distance=100)
    assert X.shape == (2, 1, 4, 2)
    # site 20: left neighbours (far → near) = [none, 10]; right (near → far) = [40, 70]; itself excluded
    np.testing.assert_array_equal(X[0, 0, :, 0], [np.nan, 1.0, 1.0, 0.0])
    np.testing.assert_array_equal(X[0, 0, :, 1], [np.nan, 10.0, 20.0, 50.0])
    # site 45 (not observed): left = [20, 40], right = [70, none]
    np.testing.assert_array_equal(X[1, 0, :, 0], [0.0, 1.0, 0.0, np.nan])
    np.testing.assert_array_equal(X[1, 0, :, 1], [25.0, 5.0, 25.0, np.nan])


def test_neighbour_distance_is_capped_and_chromosomes_are_separate() -> None:
    cell = (np.array(["1", "2"]), np.array([10, 5000]), np.array([1.0, 0.0], dtype=np.float32))
    sites = Sites(np.array(["1", "2"]), np.array([1000, 10]), [cell])
    X = neighbour_rows(sites, k=1, max_distance=100)
    np.testing.assert_array_equal(X[0, 0, :, 1], [100.0, np.nan])  # only chromosome 1's CpG is a neighbour
    np.testing.assert_array_equal(X[1, 0, :, 0], [np.nan, 0.0])


def test_table_errors_name_file_row_and_field(tmp_path: Path) -> None:
    dup = _table(tmp_path / "dup.tsv.gz", [("18", 5, 1), ("18", 9, 0), ("18", 5, 0)])
    with pytest.raises(DataError, match=r"dup.tsv.gz: row 3: field 'position': duplicate position 18:5"):
        read_cpg_table(str(dup))
    bad = _table(tmp_path / "rate.tsv", [("18", 5, 1), ("18", 9, 0.5)], gz=False)
    with pytest.raises(DataError, match=r"rate.tsv: row 2: field 'state': '0.5' \(expected a binary state"):
        read_cpg_table(str(bad))
    cols = tmp_path / "cols.tsv"
    cols.write_text("18\t5\t1\n18\t9\n")
    with pytest.raises(DataError, match=r"cols.tsv: row 2: 2 columns \(expected 3"):
        read_cpg_table(str(cols))
    pos = tmp_path / "pos.tsv"
    pos.write_text("18\t5\t1\n18\tx9\t1\n")
    with pytest.raises(DataError, match=r"pos.tsv: row 2: field 'position'"):
        read_cpg_table(str(pos))


def test_unsorted_rows_are_sorted_and_said(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    a = _table(tmp_path / "A_chr1.tsv.gz", [("chr1", 30, 1), ("chr1", 10, 0), ("chr1", 20, 1)])
    (c, p, s), facts = read_cpg_table(str(a))
    assert facts["sorted"] and p.tolist() == [10, 20, 30] and s.tolist() == [0, 1, 1] and set(c) == {"1"}
    b = _table(tmp_path / "B_chr1.tsv.gz", [("1", 10, 1), ("1", 25, 0)])
    data = DATA_TYPES["cpg"](DataConfig(type="cpg", path=[str(a), str(b)], cpg={"k": 1})).load([str(a), str(b)])
    assert "A_chr1.tsv.gz: rows were not sorted by position; sorted" in capsys.readouterr().out
    assert data.summary["sorted_files"] == [str(a)]
    # union of the sites; a cell without a call at a site is missing (NaN), never 0
    assert list(data.ids) == ["1:10", "1:20", "1:25", "1:30"]
    assert data.targets is not None and data.targets.names == ["A", "B"]
    np.testing.assert_array_equal(data.targets.y, [[0, 1], [1, np.nan], [np.nan, 0], [1, np.nan]])


def test_masked_cells_never_change_the_loss() -> None:
    from biodl.metrics import compute_metrics
    from biodl.training.losses import masked_loss

    logits = torch.tensor([[0.3, -1.0], [2.0, 0.5]])
    y = torch.tensor([[1.0, float("nan")], [0.0, 1.0]])
    base = masked_loss("binary", logits, y)
    changed = logits.clone()
    changed[0, 1] = 50.0  # the prediction for the missing call
    assert torch.equal(base, masked_loss("binary", changed, y))
    Y = np.array([[1, np.nan], [0, 1], [1, 0], [0, np.nan]])
    P = np.array([[0.9, 0.2], [0.1, 0.8], [0.7, 0.3], [0.4, 0.6]])
    Q = P.copy()
    Q[[0, 3], 1] = [0.99, 0.01]  # predictions where the cell has no call
    assert compute_metrics("binary", Y, P, target_names=["a", "b"]) == compute_metrics("binary", Y, Q, target_names=["a", "b"])


def test_cell_names_default_to_stems_without_chromosome() -> None:
    assert cell_names(["x/BS27_4_SER_chr18.tsv.gz", "BS28_2_SER_chr19.tsv"], None) == ["BS27_4_SER", "BS28_2_SER"]
    assert cell_names(["a.tsv", "b.tsv"], ["one", "two"]) == ["one", "two"]
    with pytest.raises(DataError, match="1 name"):
        cell_names(["a.tsv", "b.tsv"], ["one"])


def test_bed_overlaps_and_dna_window(tmp_path: Path) -> None:
    genome = tmp_path / "g.fa"
    genome.write_text(">chr1\n" + "ACGT" * 10 + "\n")
    bed = tmp_path / "cgi.bed.gz"
    with gzip.open(bed, "wt") as fh:
        fh.write("chr1\t9\t12\nchr1\t11\t15\n")  # merged: bases 10..15 (1-based)
    a = _table(tmp_path / "A.tsv", [("1", 2, 1), ("1", 10, 0), ("1", 15, 1), ("1", 16, 0)], gz=False)
    cfg = DataConfig(
        type="cpg", path=[str(a)], cpg={"k": 1, "window": 5, "annotations": [str(bed)]}, sequence={"genome": str(genome)}
    )
    m = DATA_TYPES["cpg"](cfg)
    data = m.load([str(a)])
    names = [p.name for p in m.parts]
    assert names == ["cpg", "dna", "annotation"]
    raw = m.raw_layout.unpack(data.X)
    np.testing.assert_array_equal(raw[2][:, 0], [0, 1, 1, 0])
    # window of 5 around position 2 (C): N A C G T → codes 4 0 1 2 3
    np.testing.assert_array_equal(raw[1][0], [4, 0, 1, 2, 3])
    m.fit(data.X)
    rows = m.transform(data.X)
    model_rows = m.layout.unpack(rows)
    assert model_rows[1].shape == (4, 4, 5) and model_rows[1][0, :, 0].sum() == 0  # N: all-zero column


def _ids_table(path: Path, ids: list[str], values: list[float], target: bool) -> Path:
    frame = pd.DataFrame({"id": ids, "f1": values, "f2": [v * 2 for v in values]})
    if target:
        frame["y"] = [i % 2 for i in range(len(ids))]
    frame.to_csv(path, index=False)
    return path


def test_multi_input_loader_aligns_by_id(tmp_path: Path) -> None:
    ids = [f"s{i}" for i in range(8)]
    a = _ids_table(tmp_path / "a.csv", ids, [float(i) for i in range(8)], target=True)
    order = [3, 1, 7, 0, 5, 2, 6, 4]  # the second file lists the same examples in another order
    b = _ids_table(tmp_path / "b.csv", [ids[i] for i in order], [100.0 + i for i in order], target=False)
    inputs = {"first": InputSpec(type="tabular", path=[str(a)]), "second": InputSpec(type="tabular", path=[str(b)])}
    cfg = DataConfig(type="multi", inputs=inputs, id_column="id", target_columns=["y"], task="classification")
    m = DATA_TYPES["multi"](cfg)
    data = m.load([str(a)])
    first, second = m.raw_layout.unpack(data.X)
    np.testing.assert_array_equal(second[:, 0] - 100.0, first[:, 0])  # row i of both inputs is example i
    # an example present in one input but not the other: counts and the first ids
    _ids_table(tmp_path / "b.csv", [*ids[:6], "x1"], [1.0] * 7, target=False)
    with pytest.raises(
        DataError,
        match=r"input 'second': 2 example id\(s\) of the first input missing here \(first: s6, s7\), "
        r"1 id\(s\) only here \(first: x1\)",
    ):
        DATA_TYPES["multi"](cfg).load([str(a)])


def test_align_ids_and_layout_round_trip() -> None:
    order = align_ids(np.array(["b", "a", "c"]), np.array(["a", "b", "c"]), "x", "f")
    assert order.tolist() == [1, 0, 2]
    with pytest.raises(DataError, match="duplicate example id 'a'"):
        align_ids(np.array(["a", "b"]), np.array(["a", "a", "b"]), "x", "f")
    lay = Layout(["p", "q"], [(2, 3), (4,)])
    parts = [np.arange(12.0).reshape(2, 2, 3), np.arange(8.0).reshape(2, 4)]
    back = lay.unpack(lay.pack(parts))
    assert all(np.array_equal(x, y) for x, y in zip(back, parts, strict=True))
