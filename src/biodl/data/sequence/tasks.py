"""The learning task of sequence targets when ``--task`` is not given (classification, multilabel or an error)."""

from __future__ import annotations

import pandas as pd

from biodl.errors import DataError


def infer_task(frame: pd.DataFrame, cols: list[str], task: str | None) -> str:
    """``task`` if given; else classification (one column of labels or 0/1) or multilabel (several 0/1 columns)."""
    if task is not None:
        return task
    if len(cols) == 1:
        vals = pd.to_numeric(frame[cols[0]], errors="coerce")
        present = frame[cols[0]].astype(str).str.strip() != ""
        if vals[present].isna().any() or vals[present].nunique() <= 2:
            return "classification"
        raise DataError(
            f"target {cols[0]!r} has {vals[present].nunique()} distinct numeric values: give --task regression "
            "(or classification)"
        )
    vals = frame[cols].apply(pd.to_numeric, errors="coerce")
    if ((vals == 0) | (vals == 1) | vals.isna()).all().all():
        return "multilabel"
    raise DataError(f"targets {cols} are not all 0/1: give --task regression or multilabel")
