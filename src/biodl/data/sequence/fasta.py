"""FASTA reading (plain or gzip-compressed, detected from the content)."""

from __future__ import annotations

import gzip
from pathlib import Path
from typing import NamedTuple

from biodl.errors import DataError

GZIP_MAGIC = b"\x1f\x8b"


class FastaRecords(NamedTuple):
    """Records of one FASTA file, in file order.

    Attributes
    ----------
    ids
        Record identifiers (the header up to the first whitespace).
    sequences
        The sequences as ASCII bytes, line breaks and spaces removed.
    descriptions
        The full header lines without ``>``.
    path
        The file they came from.
    """

    ids: list[str]
    sequences: list[bytes]
    descriptions: list[str]
    path: str


def read_bytes(path: str | Path) -> bytes:
    """The (decompressed) content of a file; gzip is detected from its magic bytes."""
    p = Path(path)
    if not p.is_file():
        raise DataError(f"file not found: {p}")
    try:
        with open(p, "rb") as fh:
            head = fh.read(2)
        if head == GZIP_MAGIC:
            with gzip.open(p, "rb") as gz:
                return gz.read()
        return p.read_bytes()
    except (OSError, EOFError) as exc:
        raise DataError(f"{p}: cannot read: {exc}") from None


def is_fasta(path: str | Path) -> bool:
    """Whether the first non-blank character of the file is ``>``."""
    p = Path(path)
    try:
        with open(p, "rb") as fh:
            head = fh.read(2)
        opener = gzip.open if head == GZIP_MAGIC else open
        with opener(p, "rb") as fh:  # type: ignore[operator]
            start = fh.read(4096)
    except (OSError, EOFError):
        return False
    return start.lstrip()[:1] == b">"


_WHITESPACE = b" \t\r\v\f"


def parse_fasta(data: bytes, path: str = "<bytes>") -> FastaRecords:
    """Parse FASTA text.

    Parameters
    ----------
    data
        File content; ``;`` comment lines and blank lines are ignored.
    path
        Name used in error messages.

    Raises
    ------
    DataError
        If sequence text comes before the first header or a header has no identifier.
    """
    text = data.replace(b"\r\n", b"\n")
    if not text.strip():
        raise DataError(f"{path}: the file is empty")
    body = text.lstrip()
    if not body.startswith(b">"):
        first = body.split(b"\n", 1)[0][:40].decode("ascii", "replace")
        raise DataError(f"{path}: not FASTA: the first line {first!r} is not a '>' header")
    ids: list[str] = []
    seqs: list[bytes] = []
    descs: list[str] = []
    for n, block in enumerate(body[1:].split(b"\n>")):
        header, _, rest = block.partition(b"\n")
        desc = header.decode("utf-8", "replace").strip()
        if not desc:
            raise DataError(f"{path}: record {n + 1} has an empty header line")
        lines = [ln for ln in rest.split(b"\n") if ln and not ln.startswith(b";")]
        seqs.append(b"".join(lines).translate(None, _WHITESPACE))
        ids.append(desc.split()[0])
        descs.append(desc)
    return FastaRecords(ids, seqs, descs, path)


def read_fasta(path: str | Path) -> FastaRecords:
    """Read a FASTA file (plain or gzip)."""
    return parse_fasta(read_bytes(path), str(path))


def write_fasta(path: str | Path, ids: list[str], sequences: list[str], width: int = 60) -> Path:
    """Write records as FASTA with lines of ``width`` characters."""
    p = Path(path)
    with open(p, "w") as fh:
        for rid, seq in zip(ids, sequences, strict=True):
            fh.write(f">{rid}\n")
            for i in range(0, len(seq), width):
                fh.write(seq[i : i + width] + "\n")
    return p
