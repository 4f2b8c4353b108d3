"""Sequence characters → alphabet codes: whole record sets (with the ``unknown`` policy) and request strings."""

from __future__ import annotations

from typing import Any

import numpy as np

from biodl.config import SequenceOptions
from biodl.data.sequence.alphabet import BLANK, INVALID, WILDCARD, Alphabet, encode_codes, find_invalid
from biodl.data.sequence.records import Records
from biodl.errors import DataError


def first_bad(codes: np.ndarray, offsets: np.ndarray, value: int) -> tuple[int, int]:
    """(record index, 0-based position) of the first ``value`` in the flat codes."""
    flat = int(np.argmax(codes == value))
    rec = int(np.searchsorted(offsets, flat, side="right") - 1)
    return rec, flat - int(offsets[rec])


def encode_records(records: Records, alpha: Alphabet, opts: SequenceOptions, summary: dict[str, Any]) -> list[np.ndarray]:
    """Per-record codes through the alphabet's lookup table; bad characters are errors or masked."""
    lengths = np.fromiter((len(s) for s in records.seqs), dtype=np.int64, count=len(records))
    offsets = np.concatenate([[0], np.cumsum(lengths)])
    flat = b"".join(records.seqs)
    codes = np.frombuffer(flat.translate(alpha.table), dtype=np.uint8)
    n_bad = int(np.count_nonzero(codes == INVALID))
    if n_bad:
        if opts.unknown != "mask":
            rec, pos = first_bad(codes, offsets, INVALID)
            char = chr(records.seqs[rec][pos])
            raise DataError(
                f"{records.where[rec]}: position {pos + 1}: character {char!r} is not in the {alpha.name} alphabet "
                f"({alpha.symbols}; unknown: {alpha.wildcards}); {n_bad} such character(s) in total. "
                "Fix the input or use --set data.sequence.unknown=mask to encode them as all-zero"
            )
        codes = codes.copy()
        codes[codes == INVALID] = BLANK
        summary["masked characters (not in the alphabet)"] = n_bad
    n_wild = int(np.count_nonzero(codes == WILDCARD))
    if n_wild:
        if opts.unknown == "error":
            rec, pos = first_bad(codes, offsets, WILDCARD)
            raise DataError(
                f"{records.where[rec]}: position {pos + 1}: unknown base {chr(records.seqs[rec][pos])!r} "
                f"(data.sequence.unknown=error; {n_wild} in total)"
            )
        how = "uniform" if opts.unknown == "uniform" else "all-zero"
        summary[f"unknown bases ({alpha.unknown_symbol}...) encoded as {how}"] = n_wild
    return [codes[offsets[i] : offsets[i + 1]] for i in range(len(records))]


def parse_sequence(i: int, seq: Any, length: int | None, alphabet: Alphabet, unknown: str) -> np.ndarray:
    """Codes ``(L,)`` of request input ``i`` (``unknown``: the ``data.sequence.unknown`` policy)."""
    if not isinstance(seq, str) or not seq:
        raise DataError(f"input {i}: expected a non-empty {alphabet.name} sequence string")
    if length is not None and len(seq) != length:
        raise DataError(f"input {i}: expected {length} characters, got {len(seq)}")
    try:
        raw = seq.encode("ascii")
    except UnicodeEncodeError:
        raise DataError(f"input {i}: non-ASCII character in the sequence") from None
    row = encode_codes(raw, alphabet)
    bad = find_invalid(row, raw)
    if bad is not None and unknown != "mask":
        raise DataError(
            f"input {i}: character {bad.char!r} at position {bad.position + 1} is not in the "
            f"{alphabet.name} alphabet ({alphabet.symbols})"
        )
    if bad is not None:
        row = np.where(row == INVALID, BLANK, row).astype(np.uint8)
    if unknown == "error" and (row == WILDCARD).any():
        raise DataError(f"input {i}: unknown base at position {int(np.argmax(row == WILDCARD)) + 1}")
    return np.asarray(row, dtype=np.uint8)
