"""Splits given in the data: the validation flag (``--val-column``) and the cv fold (``data.cv_column``) of each row."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from biodl.errors import DataError


def fold_column(frame: pd.DataFrame, column: str, source: str) -> np.ndarray | None:
    """The predefined test fold of each row (``data.cv_column``) as strings, or ``None`` when the
    table has no such column (files to predict on need not carry it).

    Raises :class:`DataError` naming the first row without a fold.
    """
    if column not in frame.columns:
        return None
    values = frame[column]
    missing = np.flatnonzero(values.isna().to_numpy())
    if missing.size:
        raise DataError(
            f"{source}: cv column {column!r} is empty in row {missing[0] + 1} ({missing.size} row(s)); every row needs a fold"
        )
    as_text = values.astype(str).str.strip()
    numeric = pd.to_numeric(as_text, errors="coerce")
    if numeric.notna().all() and (numeric == numeric.round()).all():
        as_text = numeric.astype(np.int64).astype(str)  # 1, 1.0 and " 1" are one fold
    return as_text.to_numpy()


_TRUE = {"1", "true", "t", "yes", "y"}
_FALSE = {"0", "false", "f", "no", "n"}


def validation_parts(frame: object, column: str, *, source: str) -> np.ndarray:
    """``(N,)`` ``"val"`` for rows whose ``column`` is true (true/1/yes), ``"train"`` for false (false/0/no).

    ``frame`` is a pandas DataFrame; any other value (blank included) is a :class:`DataError`
    naming the file, row and column. The parts feed ``split: auto``/``predefined`` (``--val-column``); a file
    whose rows are all one part is fine here (``biodl evaluate`` on validation or test chains), training refuses it.
    """

    assert isinstance(frame, pd.DataFrame)
    if column not in frame.columns:
        raise DataError(
            f"{source}: validation column {column!r} (--val-column) not found; columns are {list(frame.columns)[:20]}"
        )
    text = frame[column].astype(str).str.strip().str.lower().to_numpy()
    is_val = np.isin(text, list(_TRUE))
    ok = is_val | np.isin(text, list(_FALSE))
    if not ok.all():
        i = int(np.flatnonzero(~ok)[0])
        raise DataError(
            f"{source}: row {i + 1}: field {column!r}: {frame[column].iloc[i]!r} is not true/false (1/0, yes/no); "
            f"{int((~ok).sum())} such row(s)"
        )
    return np.where(is_val, "val", "train").astype(object)


def hold_out_test(parts: np.ndarray, sizes: Sequence[float], seed: int) -> np.ndarray:
    """Move a random ``sizes[2] / (sizes[0] + sizes[2])`` share of the ``"train"`` rows to ``"test"``.

    Used with ``--val-column`` when ``split_sizes`` is set explicitly: validation is the flagged
    rows, the others are cut into train and test in the train:test proportion.
    """
    out = np.asarray(parts, dtype=object).copy()
    share = sizes[2] / (sizes[0] + sizes[2]) if sizes[0] + sizes[2] > 0 else 0.0
    train = np.flatnonzero(out == "train")
    n_test = round(share * len(train))
    if n_test:
        pick = np.random.default_rng(seed).choice(train, size=n_test, replace=False)
        out[pick] = "test"
    return out
