"""``biodl predict`` / ``biodl evaluate`` ``--device`` and ``--precision``: autocast predictions agree with float32,
a device this machine lacks is a one-line error."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
import torch
from tests.conftest import PBMC, run_biodl

from biodl.bundle import load
from biodl.errors import BundleError


def test_bf16_autocast_predictions_match_float32(pbmc_run: Path, tmp_path: Path) -> None:
    outs = {}
    for precision in ("32-true", "bf16-mixed"):
        out = tmp_path / f"{precision}.csv"
        r = run_biodl("predict", "--model-path", str(pbmc_run), "--data-path", str(PBMC), "--output", str(out),
                      "--precision", precision)  # fmt: skip
        assert r.returncode == 0, r.stderr
        outs[precision] = pd.read_csv(out)
    probs = [c for c in outs["32-true"].columns if c.startswith("prob_")]
    full, half = outs["32-true"][probs].to_numpy(), outs["bf16-mixed"][probs].to_numpy()
    assert abs(full - half).max() < 0.05  # bfloat16 keeps ~3 significant digits
    assert (full != half).any()  # autocast really ran (bf16 rounding moves some probabilities)
    assert (full.argmax(1) == half.argmax(1)).mean() > 0.97


def test_evaluate_under_autocast(pbmc_run: Path, tmp_path: Path) -> None:
    out = tmp_path / "e.json"
    r = run_biodl("evaluate", "--model-path", str(pbmc_run), "--data-path", str(PBMC), "--output", str(out),
                  "--device", "auto", "--precision", "bf16-mixed")  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert json.loads(out.read_text())["metrics"]["accuracy"] > 0.5


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the error on a machine without CUDA")
def test_missing_device_is_one_line(pbmc_run: Path, tmp_path: Path) -> None:
    r = run_biodl("predict", "--model-path", str(pbmc_run), "--data-path", str(PBMC), "--output",
                  str(tmp_path / "p.csv"), "--device", "cuda")  # fmt: skip
    assert r.returncode == 2 and r.stderr.strip().count("\n") == 0 and "no CUDA device" in r.stderr, r.stderr
    assert not (tmp_path / "p.csv").exists()
    with pytest.raises(BundleError, match="expected one of"):
        load(pbmc_run).to_device("cpu", "8-bit")
