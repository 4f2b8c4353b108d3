"""Streamed ``biodl predict`` / ``biodl embed`` (``--chunk-rows``) on a real DeepBind model and ENCODE sequences."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from biodl.errors import DataError
from conftest import REST_ROWS, run_biodl

ROWS = REST_ROWS


@pytest.fixture(scope="module")
def peaks(rest_peaks: Path) -> Path:
    return rest_peaks


@pytest.fixture(scope="module")
def run(rest_deepbind_run: Path) -> Path:
    return rest_deepbind_run


def _predict(run: Path, data: Path, output: Path, *extra: str) -> pd.DataFrame:
    res = run_biodl(
        "predict", "--model-path", str(run), "--data-path", str(data), "--output", str(output), "--engine", "torch", *extra
    )
    assert res.returncode == 0, res.stderr
    return pd.read_parquet(output) if output.suffix == ".parquet" else pd.read_csv(output, sep=None, engine="python")


def test_streamed_predictions_equal_in_memory_in_row_order(run: Path, peaks: Path, tmp_path: Path) -> None:
    ids = ("--id-column", "EventID")
    whole = _predict(run, peaks, tmp_path / "whole.csv", *ids)
    streamed = _predict(run, peaks, tmp_path / "streamed.parquet", "--chunk-rows", "64", *ids)
    tsv = _predict(run, peaks, tmp_path / "streamed.tsv", "--chunk-rows", "64", "--engine", "auto", *ids)
    assert len(whole) == len(streamed) == len(tsv) == ROWS
    expected_ids = pd.read_csv(peaks, sep="\t")["EventID"].astype(str).tolist()
    for frame in (whole, streamed, tsv):
        assert frame["id"].astype(str).tolist() == expected_ids  # input order over 5 chunks
        assert list(frame.columns) == ["id", "prob_1", "predicted"]
    assert np.abs(whole["prob_1"].to_numpy() - streamed["prob_1"].to_numpy()).max() < 1e-6
    assert np.abs(whole["prob_1"].to_numpy() - tsv["prob_1"].to_numpy()).max() < 1e-4  # ONNX Runtime, parity-checked
    assert (whole["predicted"].astype(str) == streamed["predicted"].astype(str)).all()
    assert not list(tmp_path.glob("*.partial"))


def test_hdf5_output_is_written_chunk_by_chunk_in_row_order(run: Path, peaks: Path, tmp_path: Path) -> None:
    from biodl.inference import read_h5_table

    ids = ("--id-column", "EventID")
    whole = _predict(run, peaks, tmp_path / "whole.csv", *ids)
    for name, extra in (("streamed.h5", ("--chunk-rows", "64")), ("whole.hdf5", ())):
        res = run_biodl("predict", "--model-path", str(run), "--data-path", str(peaks), "--output", str(tmp_path / name),
                        "--engine", "torch", *ids, *extra)  # fmt: skip
        assert res.returncode == 0, res.stderr
        frame = read_h5_table(tmp_path / name)
        assert list(frame.columns) == ["id", "prob_1", "predicted"]
        assert frame["id"].tolist() == whole["id"].astype(str).tolist()  # input order over 5 chunks
        assert np.abs(frame["prob_1"].to_numpy() - whole["prob_1"].to_numpy()).max() < 1e-6
        assert frame["predicted"].tolist() == whole["predicted"].astype(str).tolist()
    assert not list(tmp_path.glob("*.partial"))


def test_generated_ids_continue_across_chunks(run: Path, peaks: Path, tmp_path: Path) -> None:
    bare = tmp_path / "seqs.csv"
    pd.read_csv(peaks, sep="\t")[["seq"]].to_csv(bare, index=False)  # no id column: rows are numbered
    whole = _predict(run, bare, tmp_path / "whole.csv")
    streamed = _predict(run, bare, tmp_path / "streamed.csv", "--chunk-rows", "70")
    assert whole["id"].tolist() == streamed["id"].tolist() == list(range(ROWS))
    assert np.abs(whole["prob_1"].to_numpy() - streamed["prob_1"].to_numpy()).max() < 1e-6


def test_streamed_embeddings_equal_in_memory(run: Path, peaks: Path, tmp_path: Path) -> None:
    args = ["embed", "--model-path", str(run), "--data-path", str(peaks)]
    assert run_biodl(*args, "--output", str(tmp_path / "whole.csv")).returncode == 0
    assert run_biodl(*args, "--output", str(tmp_path / "streamed.csv"), "--chunk-rows", "100").returncode == 0
    whole, streamed = pd.read_csv(tmp_path / "whole.csv"), pd.read_csv(tmp_path / "streamed.csv")
    assert whole["id"].tolist() == streamed["id"].tolist() and whole.shape == streamed.shape
    assert np.abs(whole.drop(columns="id").to_numpy() - streamed.drop(columns="id").to_numpy()).max() < 1e-5


def test_a_failure_midway_leaves_no_output_under_the_final_name(run: Path, peaks: Path, tmp_path: Path) -> None:
    frame = pd.read_csv(peaks, sep="\t")
    frame.loc[200, "seq"] = frame.loc[200, "seq"][:50] + "Z" + frame.loc[200, "seq"][51:]  # in the 4th chunk
    bad = tmp_path / "bad.tsv"
    frame.to_csv(bad, sep="\t", index=False)
    for name in ("pred.parquet", "pred.csv", "pred.h5"):
        out = tmp_path / name
        res = run_biodl("predict", "--model-path", str(run), "--data-path", str(bad), "--output", str(out), "--chunk-rows", "64")
        assert res.returncode != 0
        assert "bad.tsv row 201" in res.stderr and "'Z'" in res.stderr and "Traceback" not in res.stderr
        assert not out.exists() and not (tmp_path / f"{name}.partial").exists()


def test_unstreamable_output_is_a_clear_error(run: Path, peaks: Path, tmp_path: Path) -> None:
    from biodl import load
    from biodl.predict_stream import should_stream

    bundle = load(run)
    with pytest.raises(DataError, match="not streamed"):
        should_stream(bundle, [str(peaks)], tmp_path / "out.h5ad", 64)
    assert not should_stream(bundle, [str(peaks)], tmp_path / "out.csv", None)  # small input: read whole


def test_a_killed_prediction_leaves_no_complete_looking_output(run: Path, peaks: Path, tmp_path: Path) -> None:
    """SIGKILL (no clean-up runs) midway: nothing under the final name; the partial file says so and is unreadable."""
    import os
    import signal
    import subprocess
    import sys
    import time

    big = tmp_path / "big.tsv"
    pd.concat([pd.read_csv(peaks, sep="\t")] * 20, ignore_index=True).to_csv(big, sep="\t", index=False)
    out = tmp_path / "pred.parquet"
    partial = tmp_path / "pred.parquet.partial"
    biodl = str(Path(sys.executable).parent / "biodl")
    cmd = [biodl, "predict", "--model-path", str(run), "--data-path", str(big), "--output", str(out)]
    proc = subprocess.Popen([*cmd, "--engine", "torch", "--chunk-rows", "64"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 120
        while not (partial.exists() and partial.stat().st_size > 0) and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.01)
        assert proc.poll() is None, "the prediction finished before it could be killed"
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL
    assert not out.exists() and partial.exists()
    with pytest.raises(Exception):  # noqa: B017 - pyarrow names an unfinished file in several ways
        pd.read_parquet(partial)  # no footer: not even readable as a (shorter) table
    frame = _predict(run, peaks, out, "--chunk-rows", "128")  # a rerun replaces the leftover
    assert len(frame) == ROWS and not partial.exists()


def test_progress_lines_name_rows_per_second(capsys: pytest.CaptureFixture[str]) -> None:
    from biodl.predict_stream import Progress

    progress = Progress("predict", every_s=0.0)  # stderr is captured, not a terminal: plain lines
    progress.update(1000)
    progress.update(500)
    assert progress.close() > 0
    lines = capsys.readouterr().err.strip().splitlines()
    assert lines[-1].startswith("predict: 1,500 rows, ") and lines[-1].endswith(" rows/s")
