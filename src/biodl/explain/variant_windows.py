"""Genome windows around variants: cached block reads, letter codes, no per-variant Python for SNVs.

SNV windows (:func:`snv_windows`) are cut from blocks of the genome read once each (variants
sorted by position, one read per block of ``block`` bases) and turned into letter codes by one
table lookup per block; other variants go through :func:`variant_windows` one by one (their
alternative windows differ in length and flank). Codes are ``0..3`` for ``ACGT`` and ``4`` for
any other letter; :func:`one_hot` turns them into model input.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from biodl.data.sequence.genome import Genome
from biodl.errors import DataError

__all__ = ["CODES", "STATUS_SCORED", "BlockReader", "assess_variants", "one_hot", "snv_windows", "variant_windows"]

STATUS_SCORED = "scored"
_STATUS_SCORED = STATUS_SCORED
_BASES = set("ACGTN")

#: Letter code of every byte: A/C/G/T (either case) → 0..3, anything else → 4.
CODES = np.full(256, 4, dtype=np.uint8)
for _i, _b in enumerate("ACGT"):
    CODES[ord(_b)] = CODES[ord(_b.lower())] = _i


def one_hot(codes: np.ndarray, unknown: str) -> torch.Tensor:
    """One-hot ``(N, 4, L)`` float32 of letter codes ``(N, L)`` (code 4: zeros, or 0.25 each if ``uniform``)."""
    table = np.vstack([np.eye(4, dtype=np.float32), np.full((1, 4), 0.25 if unknown == "uniform" else 0.0, np.float32)])
    return torch.from_numpy(np.ascontiguousarray(table[codes].transpose(0, 2, 1)))


class BlockReader:
    """Reads a :class:`Genome` in cached blocks: variants visited in sorted order cost one read per block.

    Same ``fetch``/``length``/``in`` interface as the genome; a fetch outside the cached block
    reads a new block of ``block`` bases starting there (or the request itself, if longer).
    """

    def __init__(self, genome: Genome, block: int = 1 << 20) -> None:
        self.genome, self.block = genome, block
        self.path = genome.path
        self.contigs = genome.contigs
        self._chrom: str | None = None
        self._start = self._end = 0
        self._seq = ""
        self.reads = 0

    def __contains__(self, chrom: object) -> bool:
        return chrom in self.genome

    def length(self, chrom: str) -> int:
        """Length of a contig."""
        return self.genome.length(chrom)

    def fetch(self, chrom: str, start: int, end: int) -> str:
        """Upper-case bases ``[start, end)`` (0-based), clipped to the contig."""
        start, end = max(0, start), min(end, self.genome.length(chrom))
        if end <= start:
            return ""
        if chrom != self._chrom or start < self._start or end > self._end:
            self._chrom, self._start = chrom, start
            self._end = min(self.genome.length(chrom), max(end, start + self.block))
            self._seq = self.genome.fetch(chrom, self._start, self._end)
            self.reads += 1
        return self._seq[start - self._start : end - self._start]


def variant_windows(genome: Genome | BlockReader, chrom: str, pos: int, ref: str, alt: str, length: int) -> tuple[str, str, bool]:
    """Reference and alternative windows of ``length`` bases centred on a variant.

    Parameters
    ----------
    pos
        1-based position of the first REF base (VCF convention).

    Returns
    -------
    tuple
        ``(ref_window, alt_window, clipped)``; ``clipped`` is true when the window runs past a
        contig end (the missing bases are ``N``).
    """
    p = pos - 1
    left = length // 2
    s = p - left
    n = genome.length(chrom)
    ref_win = genome.fetch(chrom, s, s + length)
    right_len = length - left - len(alt)
    alt_right = genome.fetch(chrom, p + len(ref), p + len(ref) + max(0, right_len))
    alt_win = genome.fetch(chrom, s, p) + alt + alt_right
    clipped = s < 0 or s + length > n or (right_len > 0 and p + len(ref) + right_len > n)
    if clipped:
        lpad = "N" * max(0, -s)
        ref_win = (lpad + ref_win).ljust(length, "N")
        alt_win = (lpad + genome.fetch(chrom, s, p) + alt + alt_right).ljust(length, "N")
    return ref_win[:length], alt_win[:length], clipped


def snv_windows(reader: BlockReader, chrom: str, pos0: np.ndarray, length: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Reference windows of single-base variants on one contig, from cached blocks.

    Parameters
    ----------
    reader
        The genome, read in blocks of ``reader.block`` bases.
    pos0
        0-based variant positions, sorted, inside the contig.
    length
        Window length; the variant sits at ``length // 2``.

    Returns
    -------
    tuple
        Letter codes ``(M, length)`` uint8 (``N`` past the contig ends), the genome's byte at
        each variant ``(M,)`` (upper case) and whether each window was clipped ``(M,)``.
    """
    m = len(pos0)
    codes = np.empty((m, length), dtype=np.uint8)
    letters = np.empty(m, dtype=np.uint8)
    n = reader.length(chrom)
    left = length // 2
    starts = pos0 - left
    span = max(reader.block, 2 * length)
    offsets = np.arange(length)
    i = 0
    while i < m:
        lo = max(0, int(starts[i]))
        j = int(np.searchsorted(starts, lo + span - length, side="right"))
        j = max(j, i + 1)
        hi = min(n, int(starts[j - 1]) + length)
        raw = np.frombuffer(reader.genome.fetch(chrom, lo, hi).encode("ascii"), dtype=np.uint8)
        reader.reads += 1
        # pad with N so that windows past either contig end index inside the block
        pad_l, pad_r = max(0, -int(starts[i])), max(0, int(starts[j - 1]) + length - hi)
        block = np.concatenate([np.full(pad_l, ord("N"), np.uint8), raw, np.full(pad_r, ord("N"), np.uint8)])
        idx = (starts[i:j] - lo + pad_l)[:, None] + offsets[None]
        codes[i:j] = CODES[block[idx]]
        letters[i:j] = block[pos0[i:j] - lo + pad_l]
        i = j
    clipped = (starts < 0) | (starts + length > n)
    return codes, letters, clipped


def _variant_type(ref: str, alt: str) -> str:
    if len(ref) == len(alt):
        return "SNV" if len(ref) == 1 else "MNV"
    if len(ref) < len(alt) and alt.startswith(ref):
        return "insertion"
    if len(ref) > len(alt) and ref.startswith(alt):
        return "deletion"
    return "complex"


def assess_variants(
    genome: BlockReader, table: pd.DataFrame, L: int, window_edge: str, on_error: str, source: str
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]]:
    """Type, status, genome REF (mismatches), clipped flag of every variant; the scored rows and their windows.

    Problems (REF ≠ genome, unknown contigs, positions past a contig end, unsupported alleles)
    get a status; with ``on_error="raise"`` the first one in genome order raises
    :class:`~biodl.errors.DataError` naming the record.

    SNVs are checked and cut from cached blocks without per-variant Python
    (:func:`~biodl.explain.variant_windows.snv_windows`); other variants one by one, in genome
    order. Windows are letter codes ``(M, L)`` of the scored rows (in genome order), with each
    SNV's alternative code and position (``-1`` for other variants).
    """
    n_var = len(table)
    chrom = table["chrom"].astype(str).to_numpy()
    pos = table["pos"].to_numpy(dtype=np.int64)
    ref_u = table["ref"].astype(str).str.upper().to_numpy()
    alt_u = table["alt"].astype(str).str.upper().to_numpy()
    status = np.full(n_var, _STATUS_SCORED, dtype=object)
    types = np.full(n_var, "SNV", dtype=object)
    genome_ref = np.full(n_var, "", dtype=object)
    clipped = np.zeros(n_var, dtype=bool)
    lengths = (
        np.array([genome.length(c) if c in genome else -1 for c in chrom.tolist()], dtype=np.int64)
        if n_var
        else np.zeros(0, np.int64)
    )
    one = np.array([len(r) == 1 for r in ref_u.tolist()], bool) & np.array([len(a) == 1 for a in alt_u.tolist()], bool)
    letters = np.array(list("ACGTN"), dtype=object)
    fast = one & np.isin(ref_u, letters) & np.isin(alt_u, letters) & (pos >= 1) & (pos <= lengths)
    order = np.lexsort((pos, chrom))
    messages: dict[int, str] = {}
    rows_w: list[np.ndarray] = []
    ref_w: list[np.ndarray] = []
    alt_w: list[np.ndarray] = []
    code_w: list[np.ndarray] = []
    centre = L // 2
    for c in pd.unique(chrom[order][fast[order]]).tolist():
        rows = order[fast[order] & (chrom[order] == c)]
        codes, gbytes, edge = snv_windows(genome, c, pos[rows] - 1, L)
        ref_b = np.array([ord(r) for r in ref_u[rows].tolist()], dtype=np.uint8)
        bad = gbytes != ref_b
        for r, g in zip(rows[bad].tolist(), gbytes[bad].tolist(), strict=True):
            status[r], genome_ref[r] = "ref_mismatch", chr(g)
            messages[r] = f"REF {table['ref'].iat[r]!r} does not match the genome ({chr(g)!r}) at {c}:{pos[r]}"
        clipped[rows] = edge
        keep = ~bad & ~(edge if window_edge == "skip" else np.zeros_like(edge))
        status[rows[~bad & ~keep]] = "window_past_contig_end"
        alt_c = CODES[np.array([ord(a) for a in alt_u[rows].tolist()], dtype=np.uint8)]
        rows_w.append(rows[keep])
        ref_w.append(codes[keep])
        code_w.append(np.where(alt_c[keep] < 4, alt_c[keep].astype(np.int64), -1))  # ALT N: the full path
        alt = codes[keep].copy()
        alt[:, centre] = alt_c[keep]
        alt_w.append(alt)
    slow_rows, slow_ref, slow_alt = [], [], []
    for i in order[~fast[order]].tolist():
        ch, p, ref, alt = chrom[i], int(pos[i]), ref_u[i], alt_u[i]
        types[i] = _variant_type(ref, alt)
        st, msg = _STATUS_SCORED, ""
        if not ref or not alt or alt in (".", "*") or not set(ref) <= _BASES or not set(alt) <= _BASES:
            st = "unsupported_allele"
            msg = (
                f"REF {table['ref'].iat[i]!r} / ALT {table['alt'].iat[i]!r} is not a sequence of A, C, G, T, N "
                "(symbolic and missing alleles are not scored)"
            )
        elif ch not in genome:
            st = "unknown_contig"
            other = ch[3:] if ch.startswith("chr") else f"chr{ch}"
            hint = f" (the genome has {other!r})" if other in genome else ""
            msg = f"contig {ch!r} is not in {genome.path.name}{hint}; contigs: {genome.contigs[:8]}"
        elif p < 1 or p - 1 + len(ref) > genome.length(ch):
            st = "past_contig_end"
            msg = f"position {p} (REF length {len(ref)}) is past the end of {ch} (length {genome.length(ch)})"
        else:
            gref = genome.fetch(ch, p - 1, p - 1 + len(ref))
            if gref != ref:
                st, genome_ref[i] = "ref_mismatch", gref
                msg = f"REF {table['ref'].iat[i]!r} does not match the genome ({gref!r}) at {ch}:{p}"
        if st == _STATUS_SCORED:
            rw, aw, clip = variant_windows(genome, ch, p, ref, alt, L)
            clipped[i] = clip
            if clip and window_edge == "skip":
                st = "window_past_contig_end"
            else:
                slow_rows.append(i)
                slow_ref.append(rw)
                slow_alt.append(aw)
        status[i] = st
        if msg:
            messages[i] = msg
    if slow_rows:
        rows_w.append(np.asarray(slow_rows, dtype=np.int64))
        ref_w.append(CODES[np.frombuffer("".join(slow_ref).encode("ascii"), np.uint8).reshape(len(slow_rows), L)])
        alt_w.append(CODES[np.frombuffer("".join(slow_alt).encode("ascii"), np.uint8).reshape(len(slow_rows), L)])
        code_w.append(np.full(len(slow_rows), -1, dtype=np.int64))
    if on_error == "raise" and messages:
        first = min(messages, key=lambda r: (chrom[r], pos[r], r))
        raise DataError(
            f"{source}variant record {table['record'].iat[first]} ({chrom[first]}:{pos[first]} "
            f"{table['ref'].iat[first]}>{table['alt'].iat[first]}): {messages[first]}"
        )
    if not rows_w:
        empty = np.zeros((0, L), np.uint8)
        return (
            types,
            status,
            genome_ref,
            clipped,
            np.zeros(0, np.int64),
            (empty, empty, np.zeros(0, np.int64), np.zeros(0, np.int64)),
        )
    scored = np.concatenate(rows_w)
    snv_code = np.concatenate(code_w)
    snv_centre = np.where(snv_code >= 0, centre, -1)
    return types, status, genome_ref, clipped, scored, (np.concatenate(ref_w), np.concatenate(alt_w), snv_code, snv_centre)
