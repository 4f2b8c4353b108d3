"""Reading sequence inputs into records: FASTA (one file per class) and sequence tables."""

from __future__ import annotations

import difflib
import io
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from biodl.data.columns import not_found
from biodl.data.sequence.alphabet import INVALID, Alphabet, encode_codes
from biodl.data.sequence.fasta import is_fasta, parse_fasta, read_bytes
from biodl.data.sequence.intervals import is_interval_file, region_chrom
from biodl.errors import DataError

FASTA_SUFFIXES = (".fa", ".fasta", ".fna", ".ffn", ".faa", ".fas", ".frn", ".seq.fa")
SEQUENCE_COLUMN_NAMES = ("seq", "sequence", "sequences", "dna", "rna", "protein")
CHROM_COLUMN_NAMES = ("chrom", "chr", "chromosome", "seqnames", "contig")
_HEADER_NAMES = {*SEQUENCE_COLUMN_NAMES, "label", "labels", "target", "class", "bound", "id", "name"}


@dataclass
class Records:
    """Sequences read from files, before encoding.

    Attributes
    ----------
    ids
        Record identifiers (FASTA ids, the id column, or row numbers).
    seqs
        Raw sequences (ASCII bytes).
    frame
        Per-record columns (labels, groups...), one row per record.
    where
        Per-record location for error messages (``file: record 'x'`` / ``file row 7``).
    ids_from_data
        Whether ``ids`` come from the files (then duplicates are checked).
    chrom
        Chromosome per record when known (FASTA ids like ``chr1:100-300``), else ``None`` entries.
    """

    ids: list[str]
    seqs: list[bytes]
    frame: pd.DataFrame
    where: list[str]
    ids_from_data: bool
    chrom: list[str | None] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.seqs)

    def subset(self, keep: np.ndarray) -> Records:
        """Rows where ``keep`` is true."""
        idx = np.flatnonzero(keep)
        return Records(
            [self.ids[i] for i in idx],
            [self.seqs[i] for i in idx],
            self.frame.iloc[idx].reset_index(drop=True),
            [self.where[i] for i in idx],
            self.ids_from_data,
            [self.chrom[i] for i in idx] if self.chrom else [],
        )


def split_label(spec: str) -> tuple[str | None, str]:
    """``CLASS=PATH`` → ``(CLASS, PATH)``; a plain path → ``(None, PATH)``."""
    if "=" in spec and not Path(spec).exists():
        label, _, path = spec.partition("=")
        if label and path and "/" not in label:
            return label, path
    return None, spec


def class_of(path: str) -> str:
    """The class a FASTA file stands for: its name without sequence/compression suffixes."""
    name = Path(path).name
    low = name.lower()
    for suffix in (".gz", ".bz2", *FASTA_SUFFIXES, ".txt"):
        if low.endswith(suffix):
            name, low = name[: -len(suffix)], low[: -len(suffix)]
    return name


_SPLIT_SUFFIXES = ("_test", "_train", "_val", "_valid", "_validation", "-test", "-train", "-val", ".test", ".train", ".val")


def match_class(path: str, classes: list[str]) -> str | None:
    """A trained model's class for a FASTA file: its name, or its name without ``_test``/``_train``/``_val``."""
    name = class_of(path)
    if name in classes:
        return name
    for suffix in _SPLIT_SUFFIXES:
        if name.lower().endswith(suffix) and name[: -len(suffix)] in classes:
            return name[: -len(suffix)]
    return None


def detect_format(paths: list[str], requested: str) -> str:
    """``fasta``, ``table`` or ``intervals`` for the files (all must agree)."""
    if requested != "auto":
        return requested
    kinds = []
    for p in paths:
        if not Path(p).is_file():
            raise DataError(f"file not found: {p}")
        if not read_bytes(p).strip():
            raise DataError(f"{p}: the file is empty")
        if is_interval_file(p):
            kinds.append("intervals")
        elif is_fasta(p) or Path(p).name.lower().removesuffix(".gz").endswith(FASTA_SUFFIXES):
            kinds.append("fasta")
        else:
            kinds.append("table")
    if len(set(kinds)) > 1:
        pairs = ", ".join(f"{Path(p).name} ({k})" for p, k in zip(paths, kinds, strict=True))
        raise DataError(f"the input files mix formats: {pairs}; give files of one format")
    return kinds[0]


def read_fasta_records(specs: list[tuple[str | None, str]], classes: list[str] | None = None) -> Records:
    """FASTA files; each record's class is its file's label (``CLASS=PATH``) or file name.

    With a trained model's ``classes``, ``sample_test.fa`` stands for class ``sample`` when
    ``sample_test`` itself is not a class.
    """
    ids: list[str] = []
    seqs: list[bytes] = []
    where: list[str] = []
    labels: list[str] = []
    for label, path in specs:
        rec = parse_fasta(read_bytes(path), path)
        name = Path(path).name
        ids.extend(rec.ids)
        seqs.extend(rec.sequences)
        where.extend(f"{name}: record {i!r}" for i in rec.ids)
        labels.extend([label or (match_class(path, classes) if classes else None) or class_of(path)] * len(rec.ids))
    frame = pd.DataFrame({"class": labels})
    return Records(ids, seqs, frame, where, True, [region_chrom(i) for i in ids])


def _looks_like_sequence(text: str, alphabet: Alphabet, min_len: int) -> bool:
    t = text.strip()
    if len(t) < min_len or t.lower() in _HEADER_NAMES:
        return False
    try:
        codes = encode_codes(t.encode("ascii"), alphabet)
    except UnicodeEncodeError:
        return False
    return not bool((codes == INVALID).any())


def _sniff_separator(first: str) -> str | None:
    if "\t" in first:
        return "\t"
    if "," in first:
        return ","
    return None


def read_table_text(path: str) -> tuple[bytes, str]:
    """A table's bytes and its first line (gzip detected from the content)."""
    data = read_bytes(path)
    if not data.strip():
        raise DataError(f"{path}: the file is empty")
    first = data.lstrip(b"\r\n").split(b"\n", 1)[0].decode("utf-8", "replace").rstrip("\r")
    return data, first


def read_sequence_table(
    path: str,
    alphabet: Alphabet,
    *,
    column: str | None,
    header: bool | None,
) -> tuple[pd.DataFrame, str, bool]:
    """Read a delimited table with a sequence column.

    Parameters
    ----------
    path
        CSV/TSV/whitespace table, optionally gzipped, any extension (DeepBind ``.seq.gz``,
        DREAM5 ``.seq`` without a header).
    column
        The sequence column (``None``: ``seq``/``sequence``... or the first column that holds
        sequences).
    header
        Whether the first line names the columns (``None``: detected; a first line holding a
        sequence means no header). Without a header the columns are ``col1, col2...``, the
        sequence column is called ``sequence`` and, with exactly one other column, that one is
        called ``label``.

    Returns
    -------
    tuple
        The frame (every column as text), the sequence column's name, and whether a header
        was read.
    """
    data, first = read_table_text(path)
    sep = _sniff_separator(first)
    fields = first.split(sep) if sep else first.split()
    if header is None:
        header = not any(_looks_like_sequence(f, alphabet, 12) for f in fields)
    try:
        frame = pd.read_csv(
            io.BytesIO(data),
            sep=sep if sep else r"\s+",
            header=0 if header else None,
            dtype=str,
            keep_default_na=False,
            engine="c" if sep else "python",
        )
    except (pd.errors.ParserError, ValueError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: cannot parse as a delimited table: {exc}") from None
    if not header:
        frame.columns = [f"col{i + 1}" for i in range(frame.shape[1])]
    if len(frame) == 0:
        raise DataError(f"{path}: the table has no rows")
    cols = [str(c) for c in frame.columns]
    if column is not None:
        if column not in cols:
            close = difflib.get_close_matches(column, cols, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise DataError(f"{path}: sequence column {column!r} not found{hint}; columns are {cols[:20]}")
        seq_col = column
    else:
        named = [c for c in cols if c.lower() in SEQUENCE_COLUMN_NAMES]
        if named:
            seq_col = named[0]
        else:
            sniffed = [c for c in cols if _column_is_sequence(frame[c], alphabet)]
            if not sniffed:
                raise DataError(f"{path}: no sequence column found (columns {cols[:20]}); name it with --sequence-column")
            seq_col = sniffed[0]
    if not header and column is None:
        rename = {seq_col: "sequence"}
        others = [c for c in cols if c != seq_col]
        if len(others) == 1:
            rename[others[0]] = "label"
        frame = frame.rename(columns=rename)
        seq_col = "sequence"
    return frame, seq_col, bool(header)


def _column_is_sequence(col: pd.Series, alphabet: Alphabet) -> bool:
    values = [v for v in col.head(50).tolist() if v]
    return bool(values) and all(_looks_like_sequence(v, alphabet, 5) for v in values)


def table_records(frame: pd.DataFrame, seq_col: str, path: str, id_column: str | None, offset: int) -> Records:
    """Records of one sequence table (ids from ``id_column`` or row numbers)."""
    name = Path(path).name
    seqs = [s.strip().encode("ascii", "backslashreplace") for s in frame[seq_col].tolist()]
    if id_column is not None:
        if id_column not in frame.columns:
            raise not_found(path, "id", id_column, list(frame.columns))
        ids = frame[id_column].astype(str).tolist()
        where = [f"{name} row {i + 1} (id {r!r})" for i, r in enumerate(ids)]
    else:
        ids = [str(offset + i) for i in range(len(frame))]
        where = [f"{name} row {i + 1}" for i in range(len(frame))]
    rest = frame.drop(columns=[seq_col]).reset_index(drop=True)
    chrom_cols = [c for c in rest.columns if str(c).lower() in CHROM_COLUMN_NAMES]
    chrom: list[str | None] = list(rest[chrom_cols[0]].astype(str).tolist()) if chrom_cols else [region_chrom(i) for i in ids]
    return Records(ids, seqs, rest, where, id_column is not None, chrom)


def concat_records(parts: list[Records]) -> Records:
    """Records of several files, in order."""
    frame = pd.concat([p.frame for p in parts], ignore_index=True)
    return Records(
        [i for p in parts for i in p.ids],
        [s for p in parts for s in p.seqs],
        frame,
        [w for p in parts for w in p.where],
        all(p.ids_from_data for p in parts),
        [c for p in parts for c in p.chrom],
    )


def join_label_table(records: Records, path: str, id_column: str | None, summary: dict[str, object]) -> Records:
    """Attach the columns of a label table whose id column matches the record ids."""
    data, first = read_table_text(path)
    sep = _sniff_separator(first)
    try:
        table = pd.read_csv(
            io.BytesIO(data), sep=sep if sep else r"\s+", dtype=str, keep_default_na=False, engine="c" if sep else "python"
        )
    except (pd.errors.ParserError, ValueError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: cannot parse as a delimited table: {exc}") from None
    key = id_column or str(table.columns[0])
    if key not in table.columns:
        raise not_found(path, "id", key, list(table.columns))
    dup = table[key].duplicated()
    if dup.any():
        second = int(np.flatnonzero(dup.to_numpy())[0])
        value = table[key].iloc[second]
        earlier = int(np.flatnonzero((table[key] == value).to_numpy())[0])
        raise DataError(
            f"{path}: id {value!r} appears more than once in the label table (lines {earlier + 2} and {second + 2}; "
            f"{int(dup.sum())} duplicate(s))"
        )
    table = table.set_index(key)
    missing = [i for i in records.ids if i not in table.index]
    if missing:
        raise DataError(
            f"{path}: {len(missing)} record(s) have no row in the label table, e.g. {missing[:3]} (joined on column {key!r})"
        )
    unused = len(table) - len(set(records.ids))
    if unused:
        summary["label rows without a sequence (ignored)"] = int(unused)
    frame = pd.concat([records.frame, table.loc[records.ids].reset_index(drop=True)], axis=1)
    return Records(records.ids, records.seqs, frame, records.where, records.ids_from_data, records.chrom)


def is_one(value: str) -> bool:
    """Whether a label string means 1 (``1``, ``1.0``, ``true``)."""
    v = value.strip().lower()
    if v in ("true", "yes"):
        return True
    try:
        return float(v) == 1.0
    except ValueError:
        return False
