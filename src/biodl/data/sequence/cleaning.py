"""Record clean-up before training: empty records, duplicate ids and unequal lengths (errors or counted fixes)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from biodl.config import SequenceOptions
from biodl.data.sequence.alphabet import BLANK
from biodl.data.sequence.records import Records
from biodl.errors import DataError


def drop_empty(records: Records, opts: SequenceOptions, summary: dict[str, Any]) -> Records:
    """Records without empty sequences (``data.sequence.empty=drop``, counted) or an error naming the first."""
    empty = np.array([len(s) == 0 for s in records.seqs], dtype=bool)
    if not empty.any():
        return records
    if opts.empty == "error":
        i = int(np.argmax(empty))
        raise DataError(
            f"{records.where[i]}: empty sequence ({int(empty.sum())} empty record(s)); "
            "remove them or use --set data.sequence.empty=drop"
        )
    summary["empty records dropped"] = int(empty.sum())
    return records.subset(~empty)


def check_ids(records: Records, opts: SequenceOptions, summary: dict[str, Any]) -> Records:
    """Duplicate record ids: an error, or numbered ``id#2``, ``id#3``... (``data.sequence.duplicate_ids=rename``)."""
    if not records.ids_from_data:
        return records
    ids = pd.Series(records.ids)
    dup = ids.duplicated(keep="first").to_numpy()
    if not dup.any():
        return records
    if opts.duplicate_ids == "error":
        i = int(np.argmax(dup))
        first = int(np.flatnonzero(ids.to_numpy() == records.ids[i])[0])
        raise DataError(
            f"{records.where[i]}: duplicate id {records.ids[i]!r} (first seen at {records.where[first]}; "
            f"{int(dup.sum())} duplicate(s)); use --set data.sequence.duplicate_ids=rename to number them"
        )
    seen: dict[str, int] = {}
    new_ids = []
    for rid in records.ids:
        seen[rid] = seen.get(rid, 0) + 1
        new_ids.append(rid if seen[rid] == 1 else f"{rid}#{seen[rid]}")
    records.ids = new_ids
    summary["duplicate ids renamed (id#2, id#3...)"] = int(dup.sum())
    return records


def fix_lengths(
    codes: list[np.ndarray], records: Records, opts: SequenceOptions, length: int | None, summary: dict[str, Any]
) -> tuple[np.ndarray, int]:
    """Codes ``(N, L)`` and ``L``: equal lengths, or padded/cropped as ``length_mode`` allows.

    ``length`` is the required length (``None``: taken from the records as the mode says).
    """
    lengths = np.fromiter((len(c) for c in codes), dtype=np.int64, count=len(codes))
    target = length
    mode = opts.length_mode
    why = "data.sequence.length" if opts.length is not None else "the model's input length"
    if target is None:
        if mode == "fit":
            raise DataError("data.sequence.length_mode=fit needs a length: --sequence-length L")
        target = int(lengths.max() if mode == "pad" else lengths.min() if mode == "crop" else lengths[0])
        why = {"pad": "the longest record", "crop": "the shortest record"}.get(mode, "the first record's length")
    short = lengths < target
    long = lengths > target
    bad = (short & (mode in ("error", "crop"))) | (long & (mode in ("error", "pad")))
    if bad.any():
        i = int(np.argmax(bad))
        raise DataError(
            f"{records.where[i]}: length {int(lengths[i])}, but {target} is required ({why}); "
            f"{int(bad.sum())} record(s) differ. Use --length-mode pad (with N), crop, or fit (both, "
            "with --sequence-length L)"
        )
    if not short.any() and not long.any():
        X = np.concatenate(codes).reshape(len(codes), target) if codes else np.zeros((0, target), np.uint8)
        return X, target
    X = np.full((len(codes), target), BLANK, dtype=np.uint8)
    left = opts.align == "left"
    for i, c in enumerate(codes):
        n = len(c)
        if n == target:
            X[i] = c
        elif n < target:
            off = 0 if left else (target - n) // 2
            X[i, off : off + n] = c
        else:
            off = 0 if left else (n - target) // 2
            X[i] = c[off : off + target]
    if short.any():
        summary["sequences padded with N"] = int(short.sum())
    if long.any():
        summary["sequences cropped"] = int(long.sum())
    return X, target
