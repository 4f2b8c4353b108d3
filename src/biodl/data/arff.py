"""ARFF files (Weka/Mulan) and Mulan XML label files.

Dense and sparse (``{index value, ...}``) data sections are read; ``numeric``/``real``/``integer``
attributes become floats, nominal attributes ``{a,b}`` strings (``{0,1}`` label attributes
become 0/1 floats), ``?`` is missing. Mulan multi-label data sets name their label attributes
in an XML file (``<label name="..."/>``) or put them last (yeast: the last 14 attributes).

Example
-------
>>> arff = read_arff("yeast-train.arff")
>>> labels = mulan_labels("yeast.xml")            # or arff.names[-14:]
>>> X = arff.frame.drop(columns=labels).to_numpy(); Y = arff.frame[labels].to_numpy()
"""

from __future__ import annotations

import csv
import gzip
import io
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from biodl.errors import DataError

_ATTR = re.compile(r"^@attribute\s+('(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\"|\S+)\s+(.+)$", re.IGNORECASE)
_NUMERIC = ("numeric", "real", "integer")


@dataclass
class ArffData:
    """A parsed ARFF file.

    Attributes
    ----------
    relation
        The ``@relation`` name.
    names
        Attribute names in file order.
    types
        ``"numeric"``, ``"string"``, ``"date"`` or the tuple of nominal values, per attribute.
    frame
        The data, one column per attribute.
    path
        Where it came from.
    """

    relation: str
    names: list[str]
    types: list[str | tuple[str, ...]]
    frame: pd.DataFrame
    path: str


def _unquote(text: str) -> str:
    t = text.strip()
    if len(t) >= 2 and t[0] == t[-1] and t[0] in "'\"":
        return t[1:-1].replace("\\" + t[0], t[0])
    return t


def _parse_type(spec: str, path: str, line_no: int) -> str | tuple[str, ...]:
    s = spec.strip()
    if s.startswith("{"):
        if not s.endswith("}"):
            raise DataError(f"{path} line {line_no}: nominal attribute values must be in braces: {s!r}")
        return tuple(_unquote(v) for v in next(csv.reader([s[1:-1]], skipinitialspace=True, quotechar="'")))
    low = s.split()[0].lower()
    if low in _NUMERIC:
        return "numeric"
    if low in ("string", "date"):
        return low
    raise DataError(f"{path} line {line_no}: unsupported attribute type {s!r}")


def _read_text(p: Path) -> str:
    data = p.read_bytes()
    if data[:2] == b"\x1f\x8b":
        data = gzip.decompress(data)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("latin-1")


def read_arff(path: str | Path) -> ArffData:
    """Read an ARFF file (optionally gzipped).

    Raises
    ------
    DataError
        Missing ``@data``, a row whose number of values differs from the attribute count (naming the
        line), an unknown nominal value, or a non-numeric value in a numeric attribute.
    """
    p = Path(path)
    if not p.is_file():
        raise DataError(f"data file not found: {p}")
    lines = _read_text(p).splitlines()
    relation, names, types = "", [], []
    data_start = None
    for i, raw in enumerate(lines):
        line = raw.strip()
        if not line or line.startswith("%"):
            continue
        low = line.lower()
        if low.startswith("@relation"):
            relation = _unquote(line[len("@relation") :])
        elif low.startswith("@attribute"):
            m = _ATTR.match(line)
            if m is None:
                raise DataError(f"{p} line {i + 1}: cannot parse attribute declaration {line!r}")
            names.append(_unquote(m.group(1)))
            types.append(_parse_type(m.group(2), str(p), i + 1))
        elif low.startswith("@data"):
            data_start = i + 1
            break
        else:
            raise DataError(f"{p} line {i + 1}: unexpected header line {line!r}")
    if data_start is None:
        raise DataError(f"{p}: no @data section")
    if not names:
        raise DataError(f"{p}: no @attribute declarations")
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise DataError(f"{p}: duplicate attribute name(s) {dup[:5]}")
    n_attr = len(names)
    # sparse rows omit zeros: 0 for numeric attributes, the first declared value for nominal ones
    sparse_default = [t[0] if isinstance(t, tuple) and t else "0" for t in types]
    rows: list[list[str]] = []
    line_nos: list[int] = []
    for j in range(data_start, len(lines)):
        line = lines[j].strip()
        if not line or line.startswith("%"):
            continue
        if line.startswith("{"):
            row = list(sparse_default)
            body = line.strip("{} ")
            for item in filter(None, (t.strip() for t in body.split(","))):
                idx_text, _, value = item.partition(" ")
                try:
                    idx = int(idx_text)
                except ValueError:
                    raise DataError(f"{p} line {j + 1}: bad sparse entry {item!r}") from None
                if not 0 <= idx < n_attr:
                    raise DataError(f"{p} line {j + 1}: sparse index {idx} outside 0..{n_attr - 1}")
                row[idx] = value.strip()
        else:
            row = next(csv.reader(io.StringIO(line), skipinitialspace=True, quotechar="'"))
            if len(row) != n_attr:
                raise DataError(f"{p} line {j + 1}: {len(row)} values but {n_attr} attributes are declared")
        rows.append(row)
        line_nos.append(j + 1)
    if not rows:
        raise DataError(f"{p}: the @data section is empty")
    table = np.array(rows, dtype=object)
    cols: dict[str, np.ndarray] = {}
    for k, (name, typ) in enumerate(zip(names, types)):
        col = table[:, k]
        missing = np.array([str(v).strip() == "?" for v in col])
        if typ == "numeric":
            vals = np.full(len(col), np.nan)
            for r, v in enumerate(col):
                if missing[r]:
                    continue
                try:
                    vals[r] = float(v)
                except ValueError:
                    raise DataError(f"{p} line {line_nos[r]}: attribute {name!r} is numeric, got {v!r}") from None
            cols[name] = vals
        elif isinstance(typ, tuple):
            allowed = set(typ)
            bad = [r for r in range(len(col)) if not missing[r] and _unquote(str(col[r])) not in allowed]
            if bad:
                r = bad[0]
                raise DataError(f"{p} line {line_nos[r]}: attribute {name!r} has {col[r]!r}, not one of {list(typ)}")
            if set(typ) <= {"0", "1"}:
                cols[name] = np.array([np.nan if missing[r] else float(_unquote(str(col[r]))) for r in range(len(col))])
            else:
                cols[name] = np.array([None if missing[r] else _unquote(str(col[r])) for r in range(len(col))], dtype=object)
        else:
            cols[name] = np.array([None if missing[r] else _unquote(str(col[r])) for r in range(len(col))], dtype=object)
    return ArffData(relation, names, types, pd.DataFrame(cols), str(p))


def mulan_labels(path: str | Path) -> list[str]:
    """Label names of a Mulan XML label file (``<label name="..."/>``, nested hierarchies flattened)."""
    import xml.etree.ElementTree as ET

    p = Path(path)
    if not p.is_file():
        raise DataError(f"label file not found: {p}")
    try:
        root = ET.parse(p).getroot()
    except ET.ParseError as exc:
        raise DataError(f"{p}: not valid XML ({exc})") from None
    names = [el.attrib["name"] for el in root.iter() if el.tag.rsplit("}", 1)[-1] == "label" and "name" in el.attrib]
    if not names:
        raise DataError(f"{p}: no <label name=...> elements")
    return names


def label_columns(arff: ArffData, labels: int | list[str] | str | Path) -> list[str]:
    """Resolve the label attributes: the last ``k`` (int), explicit names, or a Mulan XML file."""
    if isinstance(labels, int):
        if not 0 < labels < len(arff.names):
            raise DataError(f"{arff.path}: cannot take the last {labels} of {len(arff.names)} attributes as labels")
        return arff.names[-labels:]
    names = mulan_labels(labels) if isinstance(labels, (str, Path)) else list(labels)
    missing = [n for n in names if n not in arff.names]
    if missing:
        raise DataError(f"{arff.path}: label attribute(s) {missing[:5]} not declared")
    return names


def check_label_matrix(Y: np.ndarray, names: list[str], source: str, *, all_zero: str = "error") -> np.ndarray:
    """Validate a 0/1 label matrix ``(N, L)``; returns the boolean mask of label columns kept.

    A column that is not 0/1 is an error naming the first bad row. A column without any positive
    (or without any negative) is an error with ``all_zero="error"``, or dropped and reported with
    ``all_zero="drop"``.
    """
    Y = np.asarray(Y, dtype=float)
    keep = np.ones(Y.shape[1], dtype=bool)
    for j, name in enumerate(names):
        col = Y[:, j]
        bad = np.flatnonzero(~np.isnan(col) & (col != 0) & (col != 1))
        if bad.size:
            raise DataError(f"{source}: label column {name!r} must hold 0/1; row {bad[0] + 1} has {float(col[bad[0]]):g}")
        labelled = col[~np.isnan(col)]
        if labelled.size and labelled.min() == labelled.max():
            if all_zero == "error":
                raise DataError(
                    f"{source}: label column {name!r} is all {int(labelled[0])}s ({labelled.size} rows): nothing to learn; "
                    "drop it or use all_zero='drop'"
                )
            keep[j] = False
    return keep


def schema_labels(arff: ArffData) -> list[str]:
    """The attributes the data set itself declares as labels.

    The labels of a Mulan XML file beside the ARFF file (``yeast-train.arff`` → ``yeast-train.xml``
    or ``yeast.xml``), else Weka's convention: the last attribute, when it is nominal.
    """
    p = Path(arff.path)
    stem = p.name.split(".")[0]
    for name in dict.fromkeys([stem, re.split(r"[-_]", stem)[0]]):
        xml = p.with_name(f"{name}.xml")
        if xml.is_file():
            try:
                return [n for n in mulan_labels(xml) if n in arff.names]
            except DataError:
                break
    if arff.names and isinstance(arff.types[-1], tuple):
        return [arff.names[-1]]
    return []


def arff_table(path: str | Path) -> pd.DataFrame:
    """The data of an ARFF file as a data frame (for the ``tabular`` data type)."""
    return read_arff(path).frame
