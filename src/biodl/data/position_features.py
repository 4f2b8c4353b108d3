"""Per-position numeric input tracks of sequence labelling (profiles, PSSMs, conservation, accessibility, ...).

A per-position model may read, besides the residues, numeric columns that give one value or one
group of ``K`` values per position (``data.position_feature_columns``):

* one channel: ``"0.1,0.5,-1.2,..."`` (commas or whitespace), or a list (JSON request records);
* ``K`` channels: ``"0.1,0.2,...;0.3,0.4,...;..."`` (one ``;``-separated group per position), a
  list of lists (JSON request records; e.g. a 20-column PSSM per residue).

Every track must be exactly as long as its sequence (never cropped or padded silently) and hold
finite numbers; each error names the file, row, column and what was expected. The raw input of
a per-position run with tracks is ``(N, 1 + K, L)`` float32: channel 0 holds the residue codes,
channels ``1..K`` the tracks, NaN after each sequence's end. :class:`TrackScaler` standardises
each channel on the training positions and writes 0 after each sequence's end, so padding stays
an all-zero column of the model input (``biodl.models.positions_base``).
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from biodl.data.columns import is_number
from biodl.errors import DataError

_SPLIT = re.compile(r"[,\s]+")
_MISSING = {"", "na", "nan", "none", "null"}


def _numbers(text: str, where: str) -> np.ndarray:
    """The numbers of ``text`` (separated by commas and/or whitespace) as float32; an error names a bad token."""
    text = text.strip().rstrip(",")
    if not text:
        return np.zeros(0, np.float32)
    sep = "," if "," in text else " "
    expected = text.count(",") + 1 if sep == "," else len(text.split())
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fast = np.fromstring(text, dtype=np.float32, sep=sep)  # C parser; raises or stops early at a bad token
        if fast.size == expected:
            return fast
    except ValueError:
        pass
    tokens = [t for t in _SPLIT.split(text) if t]
    try:
        return np.asarray(tokens, dtype=np.float32)
    except ValueError:
        bad = next(t for t in tokens if not is_number(t))
        raise DataError(f"{where}: {bad!r} is not a number (per-position features are numbers)") from None


def parse_track(value: Any, *, where: str) -> np.ndarray:
    """One cell of a per-position feature column as ``(L, K)`` float32.

    Parameters
    ----------
    value
        A string (``"v1,v2,..."`` or ``"a1,b1;a2,b2;..."``), a list (of lists) or an array.
    where
        ``"FILE: row R (ID): column COL"`` for error messages.
    """
    if value is None or (isinstance(value, float) and np.isnan(value)):
        raise DataError(f"{where}: empty; every sequence needs its per-position features")
    if isinstance(value, (list, tuple, np.ndarray)):
        try:
            arr = np.asarray([np.asarray(v, dtype=np.float32) for v in value], dtype=np.float32)
        except (TypeError, ValueError):
            raise DataError(f"{where}: expected numbers, one (or one equal-sized group) per position") from None
    else:
        text = str(value).strip()
        if text.lower() in _MISSING:
            raise DataError(f"{where}: empty; every sequence needs its per-position features")
        if ";" in text:
            groups = [g for g in text.split(";")]
            if groups and not groups[-1].strip():
                groups = groups[:-1]  # a trailing ';'
            fast = _comma_groups(groups)
            if fast is not None:
                return _checked(fast, where)
            rows = [_numbers(g, f"{where}: position {i + 1}") for i, g in enumerate(groups)]
            sizes = [len(r) for r in rows]
            if len(set(sizes)) > 1:
                first = next(i for i, k in enumerate(sizes) if k != sizes[0])
                raise DataError(
                    f"{where}: position {first + 1} has {sizes[first]} values, position 1 has {sizes[0]}; "
                    "every position needs the same number of values"
                )
            arr = np.stack(rows) if rows else np.zeros((0, 1), np.float32)
        else:
            arr = _numbers(text, where)
    return _checked(arr, where)


def _comma_groups(groups: list[str]) -> np.ndarray | None:
    """``(L, K)`` of comma-separated groups of K numbers each, parsed in one C call; ``None``: take the checked path."""
    if not groups:
        return None
    commas = groups[0].count(",")
    if any(g.count(",") != commas for g in groups):
        return None
    joined = ",".join(groups)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            flat = np.fromstring(joined, dtype=np.float32, sep=",")
    except ValueError:
        return None
    if flat.size != len(groups) * (commas + 1):
        return None
    return flat.reshape(len(groups), commas + 1)


def _checked(arr: np.ndarray, where: str) -> np.ndarray:
    if arr.ndim == 1:
        arr = arr[:, None]
    if arr.ndim != 2:
        raise DataError(f"{where}: expected one value or one group of values per position, got shape {arr.shape}")
    if not np.isfinite(arr).all():
        pos = int(np.argwhere(~np.isfinite(arr))[0, 0])
        raise DataError(f"{where}: position {pos + 1}: not a finite number (NaN or infinite values are not allowed)")
    return arr


def read_position_features(
    frame: pd.DataFrame,
    columns: Sequence[str],
    lengths: np.ndarray,
    *,
    where: Sequence[str],
    width: int,
    channels: Sequence[int] | None = None,
    source: str = "",
) -> tuple[np.ndarray, list[int]]:
    """Per-position tracks ``(N, K, width)`` float32 (NaN after each sequence's end) and the channels per column.

    Parameters
    ----------
    frame
        The table's rows (one per sequence), in the order of ``lengths``.
    columns
        The feature columns (``data.position_feature_columns``).
    lengths
        ``(N,)`` the sequence lengths; a track of another length is an error naming both lengths.
    where
        ``"FILE: row R (ID)"`` per row.
    width
        Padded length.
    channels
        A trained model's channels per column (a file whose column has another count is an error).
    """
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise DataError(
            f"{source or 'the data'}: no per-position feature column {missing[0]!r} "
            f"(data.position_feature_columns {list(columns)}; columns: {[str(c) for c in frame.columns][:20]})"
        )
    n = len(frame)
    blocks: list[np.ndarray] = []
    counts: list[int] = []
    for j, col in enumerate(columns):
        values = frame[col].to_numpy()
        tracks = [parse_track(values[i], where=f"{where[i]}: column {col!r}") for i in range(n)]
        k = int(tracks[0].shape[1]) if tracks else (channels[j] if channels else 1)
        expected = channels[j] if channels is not None else k
        for i, t in enumerate(tracks):
            if t.shape[0] != lengths[i]:
                raise DataError(
                    f"{where[i]}: column {col!r}: {t.shape[0]} positions, but the sequence has {int(lengths[i])}; "
                    "per-position features must be exactly as long as the sequence"
                )
            if t.shape[1] != expected:
                first = "the model was trained with" if channels is not None else "row 1 has"
                raise DataError(f"{where[i]}: column {col!r}: {t.shape[1]} value(s) per position, {first} {expected}")
        block = np.full((n, expected, width), np.nan, dtype=np.float32)
        for i, t in enumerate(tracks):
            block[i, :, : t.shape[0]] = t.T
        blocks.append(block)
        counts.append(expected)
    return (np.concatenate(blocks, axis=1) if blocks else np.zeros((n, 0, width), np.float32)), counts


def channel_names(columns: Sequence[str], counts: Sequence[int]) -> list[str]:
    """``COL`` for a one-channel column, ``COL[k]`` (1-based) for each channel of a wider one."""
    return [c if k == 1 else f"{c}[{i + 1}]" for c, k in zip(columns, counts, strict=True) for i in range(k)]


class TrackScaler:
    """Per-channel standardisation of per-position tracks, fitted on the real (non-padded) training positions.

    Attributes
    ----------
    mean, std
        ``(K,)`` float32 (``std`` of a constant channel is 1).
    """

    def __init__(self, mean: np.ndarray, std: np.ndarray) -> None:
        self.mean = np.asarray(mean, dtype=np.float32)
        self.std = np.asarray(std, dtype=np.float32)

    @classmethod
    def fit(cls, tracks: np.ndarray) -> TrackScaler:
        """Fit on ``(N, K, L)`` tracks (NaN = after a sequence's end)."""
        k = tracks.shape[1]
        mean = np.zeros(k, np.float64)
        std = np.ones(k, np.float64)
        for c in range(k):
            v = tracks[:, c][np.isfinite(tracks[:, c])].astype(np.float64)
            if len(v):
                mean[c] = v.mean()
                s = v.std()
                std[c] = s if s > 1e-8 else 1.0
        return cls(mean.astype(np.float32), std.astype(np.float32))

    def transform(self, tracks: np.ndarray) -> np.ndarray:
        """``(N, K, L)`` standardised float32, 0 after each sequence's end."""
        out = (tracks - self.mean[None, :, None]) / self.std[None, :, None]
        return np.nan_to_num(out, nan=0.0).astype(np.float32, copy=False)


class PositionTracks:
    """The per-position feature tracks of one sequence data type: which columns, their channels, the fitted scaler.

    Parameters
    ----------
    columns
        ``data.position_feature_columns`` (empty: no tracks; every method is then a no-op).
    """

    def __init__(self, columns: Sequence[str]) -> None:
        self.columns = list(columns)
        self.channels: list[int] | None = None
        self.scaler: TrackScaler | None = None

    def __bool__(self) -> bool:
        return bool(self.columns)

    def join(
        self,
        codes: np.ndarray,
        frame: pd.DataFrame,
        lengths: np.ndarray,
        *,
        where: Sequence[str],
        source: str,
        summary: dict[str, Any] | None = None,
    ) -> np.ndarray:
        """Raw inputs ``(N, 1 + K, L)`` float32 from padded codes ``(N, L)`` and the rows' track columns."""
        tracks, counts = read_position_features(
            frame, self.columns, lengths, where=where, width=codes.shape[1], channels=self.channels, source=source
        )
        self.channels = counts
        if summary is not None:
            summary["per-position features"] = f"{sum(counts)} channel(s) from {self.columns}"
        return np.concatenate([codes[:, None].astype(np.float32), tracks], axis=1)

    def fit(self, X_train: np.ndarray) -> None:
        """Fit the per-channel standardisation on raw training inputs ``(N, 1 + K, L)``."""
        self.scaler = TrackScaler.fit(X_train[:, 1:])

    def split(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """Codes ``(N, L)`` uint8 and standardised tracks ``(N, K, L)`` (``None`` without tracks) of raw inputs."""
        if not self.columns:
            if X.ndim != 2:
                raise DataError(f"expected residue codes (N, L), got an array of shape {X.shape}")
            return X, None
        if X.ndim != 3 or X.shape[1] != 1 + sum(self.channels or []):
            raise DataError(
                f"this model reads {sum(self.channels or [])} per-position feature channel(s) ({self.columns}) "
                "with each sequence; give them as columns of the table (or fields of each request record)"
            )
        codes = X[:, 0].astype(np.uint8)
        scaler = self.scaler or TrackScaler(np.zeros(X.shape[1] - 1), np.ones(X.shape[1] - 1))
        return codes, scaler.transform(X[:, 1:])

    def state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        """Bundle metadata and arrays (empty without tracks)."""
        if not self.columns:
            return {}, {}
        meta = {"position_features": {"columns": self.columns, "channels": self.channels}}
        arrays = {}
        if self.scaler is not None:
            arrays = {"position_feature_mean": self.scaler.mean, "position_feature_std": self.scaler.std}
        return meta, arrays

    def load_state(self, meta: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
        """Restore the columns, channels and scaler of a bundle."""
        info = meta.get("position_features")
        if not info:
            return
        self.columns = list(info["columns"])
        self.channels = [int(k) for k in info["channels"]]
        if "position_feature_mean" in arrays:
            self.scaler = TrackScaler(arrays["position_feature_mean"], arrays["position_feature_std"])
