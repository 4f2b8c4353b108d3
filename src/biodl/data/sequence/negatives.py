"""Generated negatives for positives-only sequence input: dinucleotide shuffles (DeepBind's protocol)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from biodl.config import SequenceOptions
from biodl.data.sequence.records import Records, is_one
from biodl.data.sequence.shuffle import dinucleotide_shuffle
from biodl.errors import DataError


def shuffled_negatives(
    records: Records,
    codes: list[np.ndarray],
    label_cols: list[str],
    task: str | None,
    opts: SequenceOptions,
    summary: dict[str, Any],
) -> tuple[Records, list[np.ndarray], np.ndarray | None]:
    """Dinucleotide shuffles of positives-only input, and each row's source id (``None``: no shuffles)."""
    if opts.negatives == "none":
        return records, codes, None
    if opts.negatives != "dinucleotide-shuffle":
        raise DataError(f"negatives {opts.negatives!r} need interval files and a genome; use dinucleotide-shuffle")
    if task == "regression":
        raise DataError("shuffled negatives are for classification (bound / not bound), not regression")
    values = records.frame[label_cols].to_numpy(dtype=object).ravel()
    labelled = [str(v) for v in values if str(v).strip().lower() not in ("", "na", "nan", "none", "null")]
    if not labelled or not all(is_one(v) for v in labelled):
        summary["negatives"] = "none generated: the input already has negative labels"
        return records, codes, None
    rng = np.random.default_rng(opts.seed)
    k = opts.resolved_negatives_ratio()
    shuffled = [dinucleotide_shuffle(c, rng) for c in codes for _ in range(k)]
    src = np.repeat(np.arange(len(records)), k)
    suffix = ["_shuf"] if k == 1 else [f"_shuf{j + 1}" for j in range(k)]
    ids = [f"{records.ids[i]}{suffix[j % k]}" for j, i in enumerate(src)]
    where = [f"dinucleotide shuffle of {records.where[i]}" for i in src]
    neg_frame = pd.DataFrame({c: ["0"] * len(src) for c in label_cols})
    extra = [c for c in records.frame.columns if c not in label_cols]
    for c in extra:
        neg_frame[c] = records.frame[c].to_numpy()[src]
    frame = pd.concat([records.frame, neg_frame[list(records.frame.columns)]], ignore_index=True)
    chrom = records.chrom + [records.chrom[i] for i in src] if records.chrom else []
    summary[f"negatives (dinucleotide shuffles, seed {opts.seed})"] = len(shuffled)
    out = Records(records.ids + ids, records.seqs + [b""] * len(src), frame, records.where + where, records.ids_from_data, chrom)
    sources = np.asarray(records.ids + [records.ids[i] for i in src], dtype=object)
    return out, codes + shuffled, sources
