"""``biodl predict`` / ``biodl embed`` on a biodl store (``biodl data convert``), streamed chunk by chunk.

A real DeepBind model and 300 ENCODE REST peaks: the store's predictions equal those of the TSV it
was converted from, in the TSV's row order, whether the store holds its rows shuffled or not.
"""

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


def _store(peaks: Path, out: Path, *extra: str) -> Path:
    """The peaks converted to a store of 32-row chunks (inputs and ids only)."""
    args = ["data", "convert", "--data-path", str(peaks), "--data-type", "sequence", "--sequence-column", "seq"]
    args += ["--id-column", "EventID"]
    res = run_biodl(*args, "--no-targets", "--chunk-rows", "32", "--output", str(out), *extra)
    assert res.returncode == 0, res.stderr
    return out


def _read(path: Path) -> pd.DataFrame:
    if path.suffix == ".h5":
        from biodl.inference import read_h5_table

        return read_h5_table(path)
    return pd.read_parquet(path) if path.suffix == ".parquet" else pd.read_csv(path, sep=None, engine="python")


def _predict(run: Path, data: Path, output: Path, *extra: str) -> pd.DataFrame:
    args = ["predict", "--model-path", str(run), "--data-path", str(data), "--output", str(output), "--engine", "torch"]
    res = run_biodl(*args, *extra)
    assert res.returncode == 0, res.stderr
    return _read(output)


@pytest.fixture(scope="module")
def whole(run: Path, peaks: Path, tmp_path_factory: pytest.TempPathFactory) -> pd.DataFrame:
    """Predictions on the TSV, read whole (the reference)."""
    out = tmp_path_factory.mktemp("whole") / "whole.csv"
    return _predict(run, peaks, out, "--sequence-column", "seq", "--id-column", "EventID")


@pytest.mark.parametrize(
    ("store", "extra", "output"),
    [("shuffled.h5", (), "pred.parquet"), ("ordered.h5", ("--input-order",), "pred.h5"), ("shuffled.zarr", (), "pred.csv")],
)
def test_store_predictions_equal_the_table_in_input_order(
    run: Path, peaks: Path, whole: pd.DataFrame, tmp_path: Path, store: str, extra: tuple[str, ...], output: str
) -> None:
    if store.endswith(".zarr"):
        pytest.importorskip("zarr")
    path = _store(peaks, tmp_path / store, *extra)
    streamed = _predict(run, path, tmp_path / output, "--chunk-rows", "70")  # 70 rounds up to 96: 4 blocks, the last partial
    assert list(streamed.columns) == ["id", "prob_1", "predicted"]
    assert streamed["id"].astype(str).tolist() == whole["id"].astype(str).tolist()  # the TSV's order
    assert np.abs(streamed["prob_1"].to_numpy() - whole["prob_1"].to_numpy()).max() < 1e-6
    assert streamed["predicted"].astype(str).tolist() == whole["predicted"].astype(str).tolist()
    assert not list(tmp_path.glob("*.partial")) and not list(tmp_path.glob(".biodl-spill-*"))


def test_store_embeddings_equal_the_table(run: Path, peaks: Path, tmp_path: Path) -> None:
    store = _store(peaks, tmp_path / "s.h5")
    args = ["embed", "--model-path", str(run)]
    res = run_biodl(*args, "--data-path", str(peaks), "--id-column", "EventID", "--output", str(tmp_path / "whole.csv"))
    assert res.returncode == 0, res.stderr
    res = run_biodl(*args, "--data-path", str(store), "--output", str(tmp_path / "store.parquet"))
    assert res.returncode == 0, res.stderr
    whole, streamed = pd.read_csv(tmp_path / "whole.csv"), pd.read_parquet(tmp_path / "store.parquet")
    assert streamed["id"].astype(str).tolist() == whole["id"].astype(str).tolist() and whole.shape == streamed.shape
    assert np.abs(whole.drop(columns="id").to_numpy() - streamed.drop(columns="id").to_numpy()).max() < 1e-5


def test_a_store_that_cannot_be_streamed_is_a_clear_error(run: Path, peaks: Path, tmp_path: Path) -> None:
    from biodl import load
    from biodl.predict_stream import should_stream

    store = _store(peaks, tmp_path / "s.h5")
    with pytest.raises(DataError, match=r"s\.h5: a biodl store is predicted in chunks.*not streamed"):
        should_stream(load(run), [str(store)], tmp_path / "out.h5ad", None)


def test_column_spill_hands_rows_back_in_any_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from biodl.data import store_blocks
    from biodl.data.store_blocks import ColumnSpill

    monkeypatch.setattr(store_blocks, "GATHER_ROWS", 2)  # several short-lived maps per column

    frame = pd.DataFrame({"id": ["a", "", "ünï", "dd", "e"], "p": np.arange(5, dtype=np.float32), "k": [1, 2, 3, 4, 5]})
    spill = ColumnSpill(tmp_path)
    spill.append(frame.iloc[:2])
    spill.append(frame.iloc[2:])
    order = np.array([4, 1, 2, 0, 3])
    back = spill.take(order)
    pd.testing.assert_frame_equal(back, frame.iloc[order].reset_index(drop=True))
    assert spill.take(np.array([], dtype=np.int64)).shape == (0, 3)


def test_a_failure_midway_leaves_no_output_and_no_spill(run: Path, peaks: Path, tmp_path: Path) -> None:
    from biodl import load
    from biodl.engine import TorchEngine
    from biodl.predict_stream import stream_predict

    store = _store(peaks, tmp_path / "s.h5")  # shuffled: the results go to a spill folder first
    bundle = load(run)
    engine = TorchEngine.from_bundle(bundle)
    calls = []

    def flaky(X: np.ndarray) -> np.ndarray:
        calls.append(len(X))
        if len(calls) == 3:
            raise DataError("engine failed on the third chunk")
        return engine.predict(X)

    out = tmp_path / "out" / "pred.parquet"
    with pytest.raises(DataError, match="third chunk"):
        stream_predict(bundle, [str(store)], out, flaky, chunk_rows=64)
    assert calls == [64, 64, 64]
    assert not out.exists() and not list(out.parent.iterdir())  # no partial file, no spill folder
