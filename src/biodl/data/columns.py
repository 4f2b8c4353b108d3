"""Which columns of a table are features: the default rule, and messages for columns not found.

The default feature columns of a table (no ``data.feature_columns``) are its numeric columns,
except:

* the target, id and group columns;
* columns the data set's schema declares as labels (ARFF: the labels of the Mulan XML file beside
  it, e.g. ``yeast.xml`` for ``yeast-train.arff``, else a nominal last attribute, Weka's class);
* columns named like a role rather than a measurement (:data:`ROLE_NAMES`: ``label``, ``class``,
  ``split``, ``fold``, ``validation``, ``mask``, ``id``...);
* label-like columns that share a target's name pattern (digits replaced: target ``Class1`` →
  ``Class2``, ``Class3``... when they hold a few integer values): the other labels of a
  multi-label table.

A column that is numeric except for some cells (``abc`` in one row) is an error naming the file,
line and value: it is never dropped from the features silently. The chosen columns (count and
first names) and every excluded column are printed, and recorded in the data summary.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from biodl.data.readers import RawTable
from biodl.errors import DataError

#: Column names (lower case) that name a role, not a measurement: never default features.
ROLE_NAMES = frozenset(
    {
        "label", "labels", "class", "classes", "target", "targets", "y", "outcome", "response",
        "split", "fold", "foldid", "folds", "set", "subset", "partition", "validation", "is_validation",
        "val", "is_val", "is_test", "test", "train", "is_train", "mask", "resolved",
        "id", "ids", "index", "unnamed: 0", "obs_names",
    }
)  # fmt: skip
#: Label-like: at most this many distinct integer values.
MAX_LABEL_VALUES = 10
#: Names shown when a column list is printed.
SHOWN = 8
#: A column counts as numeric with bad cells when at least this fraction of its filled cells are numbers.
NUMERIC_FRACTION = 0.5


@dataclass
class FeatureChoice:
    """The default feature columns of a table and why the others were left out.

    Attributes
    ----------
    features
        The chosen columns, in file order.
    excluded
        Column → reason, for numeric columns left out (targets, ids, label-like...).
    non_numeric
        Text columns (not features).
    """

    features: list[str]
    excluded: dict[str, str] = field(default_factory=dict)
    non_numeric: list[str] = field(default_factory=list)

    def describe(self) -> str:
        """One line for the console."""
        text = f"features: {len(self.features)} numeric column(s) ({shorten(self.features)})"
        others = {k: v for k, v in self.excluded.items() if not v.startswith("target")}
        if others:
            by_reason: dict[str, list[str]] = {}
            for col, why in others.items():
                by_reason.setdefault(why, []).append(col)
            parts = [f"{shorten(cols)} ({why})" for why, cols in by_reason.items()]
            text += "; not used: " + "; ".join(parts)
        if self.non_numeric:
            text += f"; text columns: {shorten(self.non_numeric)}"
        return text + ". Choose them with --feature-columns"

    def summary(self) -> dict[str, object]:
        """Facts for the data summary (``summary["feature_columns"]``)."""
        return {
            "count": len(self.features),
            "first": self.features[:SHOWN],
            "excluded": dict(self.excluded),
            "text_columns": list(self.non_numeric),
        }


def shorten(names: list[str], n: int = SHOWN) -> str:
    """``a, b, c, ... z`` for long lists."""
    if len(names) <= n:
        return ", ".join(names)
    return ", ".join(names[: n - 1]) + f", ... {names[-1]} ({len(names)})"


def _target_patterns(targets: list[str]) -> list[tuple[str, re.Pattern[str]]]:
    out = []
    for t in targets:
        if re.search(r"\d", t):
            pattern = re.sub(r"\\?\d+", r"\\d+", re.escape(t))
            out.append((t, re.compile(pattern)))
    return out


def _label_like_values(col: pd.Series) -> bool:
    vals = pd.to_numeric(col, errors="coerce").dropna().to_numpy()
    if vals.size == 0:
        return False
    return bool(np.all(vals == np.round(vals))) and len(np.unique(vals)) <= MAX_LABEL_VALUES


def first_bad_cell(col: pd.Series) -> tuple[int, int] | None:
    """``(0-based row, number of bad cells)`` of a mostly numeric column holding non-numbers, else ``None``."""
    if pd.api.types.is_numeric_dtype(col) or pd.api.types.is_bool_dtype(col):
        return None
    text = col.astype(str).str.strip()
    filled = col.notna().to_numpy() & (text != "").to_numpy()
    if not filled.any():
        return None
    numbers = pd.to_numeric(col.where(filled), errors="coerce").notna().to_numpy()
    bad = filled & ~numbers
    if not bad.any() or numbers.sum() < NUMERIC_FRACTION * filled.sum():
        return None
    return int(np.flatnonzero(bad)[0]), int(bad.sum())


def bad_cell_error(raw: RawTable, column: str, row: int, count: int) -> DataError:
    """The one-line error for a non-numeric cell of a numeric feature column."""
    value = raw.frame[column].iloc[row]
    return DataError(
        f"{raw.where(row)}: column {column!r} is numeric but holds {value!r} ({count} non-numeric cell(s) in the column); "
        "correct the value(s), leave out the column with --feature-columns, or skip such rows with --set data.bad_values=skip"
    )


def default_features(raw: RawTable, *, targets: list[str], reserved: list[str | None], keep_bad: bool = False) -> FeatureChoice:
    """The default feature columns of ``raw.frame`` (see the module docs).

    Raises :class:`DataError` for a numeric column with non-numeric cells (``keep_bad``: such a
    column is a feature; the caller skips the bad rows), or when no column is left.
    """
    frame = raw.frame
    patterns = _target_patterns(targets)
    schema_labels = set(raw.label_columns)
    choice = FeatureChoice([])
    for c in frame.columns:
        name = str(c)
        col = frame[c]
        if name in targets:
            choice.excluded[name] = "target"
            continue
        if name in reserved:
            choice.excluded[name] = "id/group column"
            continue
        if not pd.api.types.is_numeric_dtype(col):
            bad = first_bad_cell(col)
            if bad is not None and keep_bad:
                choice.features.append(name)
                continue
            if bad is not None:
                raise bad_cell_error(raw, name, *bad)
            choice.non_numeric.append(name)
            continue
        if name in schema_labels:
            choice.excluded[name] = "a label in the data set's schema"
        elif name.strip().lower() in ROLE_NAMES:
            choice.excluded[name] = "named like a label/role column"
        elif any(p.fullmatch(name) for _, p in patterns) and _label_like_values(col):
            t = next(t for t, p in patterns if p.fullmatch(name))
            choice.excluded[name] = f"label-like: same name pattern as the target {t!r}"
        else:
            choice.features.append(name)
    if not choice.features:
        raise DataError(
            f"{raw.path}: no numeric feature columns besides the targets and label-like columns; " + choice.describe()
        )
    return choice


def announce(choice: FeatureChoice) -> None:
    """Print the chosen feature columns."""
    print(f"note: {choice.describe()}")


def closest(name: str, columns: list[str], n: int = 5) -> list[str]:
    """The columns whose names are closest to ``name`` (case-insensitive), best first."""
    lower = {c.lower(): c for c in columns}
    hits = difflib.get_close_matches(name.lower(), list(lower), n=n, cutoff=0.4)
    if not hits:  # substrings: 'class' -> 'Class1'
        hits = [c for c in lower if name.lower() in c or c in name.lower()][:n]
    return [lower[h] for h in hits]


def not_found(source: str, role: str, name: str, columns: list[str]) -> DataError:
    """``{source}: {role} column 'x' not found; did you mean 'y'? closest columns: ...``."""
    near = closest(name, [str(c) for c in columns])
    hint = f"; did you mean {near[0]!r}?" if near else ""
    listed = f" Closest columns: {', '.join(near)}" if near else ""
    return DataError(f"{source}: {role} column {name!r} not found{hint}{listed} ({len(columns)} columns in all)")


def is_number(text: str) -> bool:
    """Whether ``text`` parses as a float."""
    try:
        float(text)
    except ValueError:
        return False
    return True
