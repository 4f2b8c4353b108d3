"""`biodl train --negatives dinucleotide-shuffle`: splits.json keeps every shuffle with its peak
(real GABPA peaks; before, about half of the shuffles landed in another split than their peak)."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pandas as pd
import pytest

from conftest import run_biodl, shared_path


@pytest.mark.parametrize("extra", [[], ["--cv", "3"]])
def test_train_keeps_shuffles_with_their_peak(tmp_path: Path, extra: list[str]) -> None:
    table = shared_path("dna", "deepbind_encode_train", "GABPA_GM12878_GABP_HudsonAlpha_AC.seq.gz")
    small = tmp_path / "gabpa_300.seq.gz"
    with gzip.open(small, "wt") as fh:
        pd.read_csv(table, sep="\t", dtype=str, keep_default_na=False).iloc[:300].to_csv(fh, sep="\t", index=False)
    res = run_biodl(
        "train", "--data-type", "sequence", "--data-path", str(small),
         "--sequence-column", "seq", "--target-columns", "Bound", "--negatives", "dinucleotide-shuffle",
         "--max-epochs", "1", "--output-dir", str(tmp_path / "run"), "--set", "model.filters=8",
         "--set", "evaluate.report=false", "--set", "evaluate.plots=false", "--set", "evaluate.baselines=[]",
         "--set", "train.progress_bar=false", *extra,
    )  # fmt: skip
    assert res.returncode == 0, res.stderr[-2000:]
    doc = json.loads((tmp_path / "run" / "splits.json").read_text())
    splits = doc.get("folds", [doc])
    for split in splits:
        part = {i: p for p in ("train", "val", "test") for i in split[f"{p}_ids"]}
        assert len(part) == 900
        shuffles = [i for i in part if "_shuf" in i]
        assert len(shuffles) == 600
        assert all(part[s] == part[s.split("_shuf")[0]] for s in shuffles)
        assert "grouped by source (600 derived rows" in split["method"]
