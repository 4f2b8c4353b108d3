"""Per-position feature tracks: cell parsing, standardisation and padding (hand-made values)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from biodl.data.position_features import PositionTracks, TrackScaler, channel_names, parse_track, read_position_features
from biodl.errors import DataError


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("0.5,1,-2", [[0.5], [1.0], [-2.0]]),
        ("0.5 1\t-2", [[0.5], [1.0], [-2.0]]),
        ("1,2;3,4;5,6;", [[1, 2], [3, 4], [5, 6]]),
        ([0.5, 1.0, -2.0], [[0.5], [1.0], [-2.0]]),
        (np.array([np.array([1.0, 2.0]), np.array([3.0, 4.0])], dtype=object), [[1, 2], [3, 4]]),
    ],
)
def test_parse_track_forms(value: object, expected: list[list[float]]) -> None:
    np.testing.assert_array_equal(parse_track(value, where="f"), np.asarray(expected, dtype=np.float32))


@pytest.mark.parametrize(
    ("value", "message"),
    [(None, "empty"), ("", "empty"), ("1,a,3", "'a' is not a number"), ("1,nan", "position 2: not a finite"),
     ("1,2;3", "position 2 has 1 values, position 1 has 2"), ([[1, 2], [3]], "expected numbers")],
)  # fmt: skip
def test_parse_track_errors(value: object, message: str) -> None:
    with pytest.raises(DataError, match=message):
        parse_track(value, where="t.tsv: row 3 (x)")


def test_read_checks_lengths_and_channels() -> None:
    frame = pd.DataFrame({"a": ["1,2,3", "4,5"], "b": ["1,1;2,2;3,3", "0,0;1,1"]})
    tracks, counts = read_position_features(frame, ["a", "b"], np.array([3, 2]), where=["r1", "r2"], width=4)
    assert counts == [1, 2] and tracks.shape == (2, 3, 4)
    assert np.isnan(tracks[1, :, 2:]).all() and not np.isnan(tracks[0, :, :3]).any()
    assert channel_names(["a", "b"], counts) == ["a", "b[1]", "b[2]"]
    with pytest.raises(DataError, match="r2: column 'a': 2 positions, but the sequence has 3"):
        read_position_features(frame, ["a"], np.array([3, 3]), where=["r1", "r2"], width=4)
    with pytest.raises(DataError, match="r1: column 'b': 2 value\\(s\\) per position, the model was trained with 3"):
        read_position_features(frame, ["b"], np.array([3, 2]), where=["r1", "r2"], width=4, channels=[3])


def test_scaler_ignores_padding_and_writes_zero_there() -> None:
    tracks = np.array([[[1.0, 3.0, np.nan]], [[5.0, np.nan, np.nan]]], dtype=np.float32)  # (N=2, K=1, L=3)
    scaler = TrackScaler.fit(tracks)
    assert scaler.mean[0] == pytest.approx(3.0) and scaler.std[0] == pytest.approx(np.std([1.0, 3.0, 5.0]))
    out = scaler.transform(tracks)
    assert out[0, 0, 2] == 0 and out[1, 0, 1:].tolist() == [0.0, 0.0]
    assert TrackScaler.fit(np.full((1, 1, 2), 7.0, np.float32)).std[0] == 1.0  # a constant channel


def test_tracks_state_round_trip() -> None:
    t = PositionTracks(["p"])
    codes = np.array([[1, 2, 255]], dtype=np.uint8)
    X = t.join(codes, pd.DataFrame({"p": ["0.5,1.5"]}), np.array([2]), where=["r"], source="s")
    assert X.shape == (1, 2, 3) and X[0, 0].tolist() == [1, 2, 255]
    t.fit(X)
    meta, arrays = t.state()
    back = PositionTracks([])
    back.load_state(meta, arrays)
    assert back.columns == ["p"] and back.channels == [1]
    np.testing.assert_array_equal(back.split(X)[1], t.split(X)[1])
    with pytest.raises(DataError, match="per-position feature channel"):
        back.split(codes)
