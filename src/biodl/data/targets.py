"""Turn target columns into training arrays for each task.

Internally there are three kinds of output:

* ``binary`` — ``y`` of shape ``(N, T)``, values 0/1, ``NaN`` = missing (masked in the loss);
  used for binary classification, multi-task binary classification and multi-label data.
* ``multiclass`` — ``y`` of shape ``(N,)`` int64 class indices, ``-1`` = missing.
* ``regression`` — ``y`` of shape ``(N, T)`` float, ``NaN`` = missing.
* ``segmentation`` — ``y`` of shape ``(N, H, W)`` integer masks, ``-1`` = unlabelled pixel;
  class indices, or for binary masks 0 = background and ``>= 1`` foreground (instance ids of
  instance masks). Two classes give one output channel (sigmoid), more give one per class.
* ``positions`` — ``y`` of shape ``(N, L)`` int64 class indices per sequence position, ``-1`` =
  not counted (padding, masked positions); one output channel per class (:mod:`biodl.data.positions`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import pandas as pd

from biodl.data.columns import NUMERIC_FRACTION, not_found
from biodl.errors import DataError

_MISSING_STRINGS = {"", "na", "nan", "none", "null"}


@dataclass
class Targets:
    """Encoded targets.

    Attributes
    ----------
    y
        ``(N, T)`` float32 (binary/regression) or ``(N,)`` int64 (multiclass).
    kind
        ``"binary"``, ``"multiclass"`` or ``"regression"``.
    names
        Target column names (``T``).
    classes
        Class labels as strings for single-column classification (``["neg", "pos"]`` order
        for binary), else ``None``.
    """

    y: np.ndarray
    kind: str
    names: list[str]
    classes: list[str] | None

    @property
    def num_outputs(self) -> int:
        """Number of network outputs."""
        if self.kind == "multiclass":
            return len(self.classes or [])
        if self.kind == "segmentation":
            n = len(self.classes or [])
            return 1 if n <= 2 else n
        if self.kind == "positions":
            return len(self.classes or [])
        return int(self.y.shape[1])


def _label_strings(col: pd.Series) -> np.ndarray:
    """Labels as strings with missing values as ``None`` (``1.0`` and ``1`` are the same label)."""
    out = np.empty(len(col), dtype=object)
    for i, v in enumerate(col.tolist()):
        if v is None or (isinstance(v, float) and np.isnan(v)):
            out[i] = None
        elif isinstance(v, float) and v.is_integer():
            out[i] = str(int(v))
        else:
            s = str(v).strip()
            out[i] = None if s.lower() in _MISSING_STRINGS else s
    return out


def _sort_labels(labels: set[str]) -> list[str]:
    try:
        return sorted(labels, key=float)
    except ValueError:
        return sorted(labels)


def _numeric(col: pd.Series, name: str, source: str) -> np.ndarray:
    vals = pd.to_numeric(col, errors="coerce").to_numpy(dtype=np.float64)
    raw_missing = col.isna().to_numpy() | col.astype(str).str.strip().str.lower().isin(_MISSING_STRINGS).to_numpy()
    bad = np.flatnonzero(np.isnan(vals) & ~raw_missing)
    if bad.size:
        i = int(bad[0])
        raise DataError(
            f"{source}: target column {name!r} must be numeric; row {i + 1} has {col.iloc[i]!r} ({bad.size} non-numeric value(s))"
        )
    return vals


#: A classification target with more classes than this fraction of its labelled rows is refused.
MAX_CLASS_FRACTION = 0.5
#: Classes with fewer rows than this (or than :data:`RARE_FRACTION` of the rows) are warned about.
RARE_ROWS = 5
RARE_FRACTION = 0.01


def _check_class_labels(labels: np.ndarray, present: set[str], name: str, source: str) -> None:
    """Refuse continuous values as class labels: non-integer numbers, or about one class per row."""
    numbers: dict[str, float] = {}
    for v in present:
        try:
            numbers[v] = float(v)
        except ValueError:
            break
    else:
        fractional = [v for v, x in numbers.items() if np.isfinite(x) and not float(x).is_integer()]
        if fractional:
            i = next(i for i, v in enumerate(labels) if v in fractional)
            raise DataError(
                f"{source}: classification target {name!r} holds non-integer numbers (row {i + 1}: {labels[i]}; "
                f"{len(present)} distinct values): a continuous value is not a class; use --task regression"
            )
    n_labelled = int(sum(v is not None for v in labels))
    if len(present) > 2 and len(present) > MAX_CLASS_FRACTION * n_labelled:
        raise DataError(
            f"{source}: classification target {name!r} has {len(present)} classes for {n_labelled} labelled rows "
            "(most classes have one row): is it a continuous value? use --task regression"
        )


def describe_labels(targets: Targets) -> list[str]:
    """Console warnings about the labels: missing labels (masked in the loss) and rare classes."""
    notes: list[str] = []
    y = targets.y
    if targets.kind in ("multiclass", "binary", "regression"):
        missing = (y < 0) if targets.kind == "multiclass" else np.isnan(y)
        n_missing = int(missing.sum())
        if n_missing:
            if missing.ndim == 1 or missing.shape[1] == 1:
                notes.append(
                    f"{n_missing} of {len(y)} row(s) have no label (blank/NaN in {targets.names[0]!r}); "
                    "they are not used for training or scoring"
                )
            else:
                per = {n: int(c) for n, c in zip(targets.names, missing.sum(axis=0)) if c}
                shown = ", ".join(f"{k} {v}" for k, v in list(per.items())[:6]) + (", ..." if len(per) > 6 else "")
                notes.append(f"{n_missing} missing label value(s) (masked in the loss) in {len(per)} target(s): {shown}")
    if targets.classes and targets.kind in ("multiclass", "binary") and (targets.kind == "multiclass" or y.shape[1] == 1):
        codes = y if targets.kind == "multiclass" else np.where(np.isnan(y[:, 0]), -1, y[:, 0]).astype(np.int64)
        counts = np.bincount(codes[codes >= 0], minlength=len(targets.classes))
        total = int(counts.sum())
        rare = [(c, int(k)) for c, k in zip(targets.classes, counts) if k < RARE_ROWS or k < RARE_FRACTION * total]
        if rare:
            shown = ", ".join(f"{c!r} {k}" for c, k in rare[:8]) + (", ..." if len(rare) > 8 else "")
            notes.append(
                f"class(es) with very few rows ({shown} of {total}): too few to learn or to score reliably; "
                "merge or drop them, or collect more"
            )
    return notes


def encode_targets(
    frame: pd.DataFrame,
    columns: list[str],
    task: str,
    *,
    source: str,
    classes: list[str] | None = None,
) -> Targets:
    """Encode ``frame[columns]`` for ``task`` (``classification``, ``regression``, ``multilabel``).

    ``classes`` fixes the class order (a bundle's), so new files map to the trained outputs.
    """
    for c in columns:
        if c not in frame.columns:
            raise not_found(source, "target", c, list(frame.columns))
    n = len(frame)
    if task == "regression":
        y = np.stack([_numeric(frame[c], c, source) for c in columns], axis=1).astype(np.float32)
        return Targets(y, "regression", list(columns), None)
    if task == "classification" and len(columns) == 1:
        labels = _label_strings(frame[columns[0]])
        present = {v for v in labels if v is not None}
        if classes is None:
            if len(present) < 2:
                raise DataError(
                    f"{source}: classification target {columns[0]!r} needs at least 2 classes, found {sorted(present)}"
                )
            _check_class_labels(labels, present, columns[0], source)
            classes = _sort_labels(present)
        unknown = present - set(classes)
        if unknown:
            raise DataError(f"{source}: column {columns[0]!r} has labels {sorted(unknown)} unknown to the model ({classes})")
        index = {c: i for i, c in enumerate(classes)}
        codes = np.array([-1 if v is None else index[v] for v in labels], dtype=np.int64)
        if len(classes) == 2:
            y = np.where(codes < 0, np.nan, codes).astype(np.float32).reshape(n, 1)
            return Targets(y, "binary", list(columns), list(classes))
        return Targets(codes, "multiclass", list(columns), list(classes))
    if task == "multilabel" and len(columns) == 1 and not pd.api.types.is_numeric_dtype(frame[columns[0]]):
        return label_lists(frame[columns[0]], source=source)
    # multilabel, or several binary classification columns (multi-task)
    mats = []
    for c in columns:
        vals = _numeric(frame[c], c, source)
        ok = np.isnan(vals) | (vals == 0) | (vals == 1)
        if not ok.all():
            i = int(np.flatnonzero(~ok)[0])
            raise DataError(f"{source}: label column {c!r} must hold 0/1 (blank = missing); row {i + 1} has {frame[c].iloc[i]!r}")
        mats.append(vals)
    y = np.stack(mats, axis=1).astype(np.float32)
    return Targets(y, "binary", list(columns), None)


def labelled_rows(y: np.ndarray, kind: str) -> np.ndarray:
    """Boolean ``(N,)``: rows with at least one label."""
    if kind == "multiclass":
        return np.asarray(y >= 0)
    if kind in ("segmentation", "positions"):
        return np.asarray((y >= 0).reshape(len(y), -1).any(axis=1))
    return np.asarray(~np.isnan(y).all(axis=1))


_LIST_SEPARATORS = re.compile(r"[;|,]")


def label_lists(col: pd.Series, *, source: str) -> Targets:
    """One column of label lists (``"a;b"``, ``"a|b"`` or ``"a,b"``) → one 0/1 target per label (sorted names).

    An empty cell means "no label"; a missing cell (NaN) leaves the whole row unlabelled.
    """
    rows: list[list[str] | None] = []
    for v in col.tolist():
        if v is None or (isinstance(v, float) and np.isnan(v)):
            rows.append(None)
        else:
            rows.append([t.strip() for t in _LIST_SEPARATORS.split(str(v)) if t.strip()])
    names = sorted({t for r in rows if r for t in r})
    if not names:
        raise DataError(f"{source}: label-list column {col.name!r} holds no labels")
    index = {n: j for j, n in enumerate(names)}
    y = np.zeros((len(rows), len(names)), dtype=np.float32)
    for i, r in enumerate(rows):
        if r is None:
            y[i] = np.nan
        else:
            y[i, [index[t] for t in r]] = 1.0
    return Targets(y, "binary", names, None)


#: Column names (lower case, letters and digits only) that identify a row or molecule: never default targets.
IDENTIFIER_NAMES = frozenset(
    {
        "id", "ids", "index", "num", "no", "number", "name", "names", "molid", "moleculeid", "compoundid",
        "compound", "cmpdchemblid", "chemblid", "inchi", "inchikey", "iupac", "cas", "unnamed0",
    }
)  # fmt: skip
#: A text column with at most this many distinct values can be a single class column.
MAX_TEXT_CLASSES = 20


def default_targets(
    frame: pd.DataFrame, candidates: list[str], task: str | None, *, source: str
) -> tuple[list[str], dict[str, str]]:
    """The target columns of a table whose targets were not named, and why the other ``candidates`` are left out.

    Every candidate is kept when there is one, or when ``task`` is unknown. Otherwise identifiers (by name,
    :data:`IDENTIFIER_NAMES`, or for classification running row numbers) and free text are left out. For
    classification and multi-label data the 0/1 columns are the targets (chemprop's rule, "every other column",
    minus what cannot be a label), or else the one class column (multi-label: label-list column) there is. A
    mostly numeric column with a few bad cells is kept, so the encoder names the bad row instead of the column
    vanishing.

    Returns
    -------
    tuple[list[str], dict[str, str]]
        The targets in file order, and left-out column → reason.
    """
    if len(candidates) <= 1 or task is None:
        return list(candidates), {}
    left: dict[str, str] = {}
    binary: list[str] = []
    classes: list[str] = []
    numbers: list[str] = []
    for c in candidates:
        col = frame[c]
        text = col.astype(str).str.strip()
        filled = col.notna().to_numpy() & ~text.str.lower().isin(_MISSING_STRINGS).to_numpy()
        values = pd.to_numeric(col.where(filled), errors="coerce")
        numeric = values.notna().to_numpy()
        if re.sub(r"[^a-z0-9]", "", c.lower()) in IDENTIFIER_NAMES:
            left[c] = "an identifier"
        elif numeric.sum() < NUMERIC_FRACTION * filled.sum():  # text, by the feature columns' rule
            distinct = text[filled].nunique()
            few = 2 <= distinct <= min(MAX_TEXT_CLASSES, 0.5 * filled.sum())
            if (task == "classification" and few) or task == "multilabel":  # class labels / label lists ("a;b")
                classes.append(c)
            else:
                left[c] = "text"
        elif task != "regression" and _row_numbers(values.to_numpy(dtype=np.float64)):
            left[c] = "row numbers"
        elif task == "regression" or (filled & ~numeric).any():
            numbers.append(c)
        elif values[filled].isin([0, 1]).all():
            binary.append(c)
        elif task == "classification" and _label_like(values[filled]):
            classes.append(c)
        else:
            left[c] = "not 0/1 labels"
    if task == "regression":
        kept = numbers
    elif binary or numbers:
        kept = binary + numbers
        left.update({c: "a class column beside 0/1 label columns" for c in classes})
    elif len(classes) == 1:
        kept = classes
    else:
        kept = []
    if not kept:
        reasons = "; ".join(f"{c}: {why}" for c, why in left.items())
        choice = f" (class columns: {', '.join(classes)})" if classes else ""
        raise DataError(
            f"{source}: no column can be the {task} target{choice}; name it with --target-columns ({reasons or 'no columns'})"
        )
    order = {c: i for i, c in enumerate(candidates)}
    return sorted(kept, key=order.__getitem__), left


def _row_numbers(values: np.ndarray) -> bool:
    """True for a column of consecutive integers in file order (``1, 2, 3, …``, gaps of skipped rows allowed)."""
    v = values[~np.isnan(values)]
    if v.size < 3 or not np.all(v == np.round(v)):
        return False
    steps = np.diff(v)
    return bool(np.all(steps >= 1) and np.median(steps) == 1)


def _label_like(values: pd.Series) -> bool:
    """Integer values, a few distinct ones, each on several rows on average: a class column (``0, 1, 2``)."""
    v = values.to_numpy(dtype=np.float64)
    return bool(np.all(v == np.round(v))) and 2 <= len(np.unique(v)) <= min(MAX_TEXT_CLASSES, 0.5 * v.size)
