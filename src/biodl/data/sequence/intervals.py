"""Genomic intervals (BED / narrowPeak) plus a genome FASTA → fixed-width windows and labels.

DeepSEA-style: every peak of every file gives one window of ``width`` bp centred on its summit
(narrowPeak column 10) or its centre; each file is one task, and a window is positive for a
task when that task's peaks cover at least ``min_overlap`` of the window's central label bin
or contain the window centre. Negatives come from flanking windows or from GC-matched random
windows that overlap no peak. Coordinates are 0-based, end-exclusive, as in BED.
"""

from __future__ import annotations

import gzip
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from biodl.data.sequence.fasta import GZIP_MAGIC
from biodl.data.sequence.genome import Genome
from biodl.errors import DataError

INTERVAL_SUFFIXES = (".bed", ".narrowpeak", ".broadpeak", ".bedgraph")
_REGION = re.compile(r"^([^:\s]+):(\d+)-(\d+)")


def is_interval_file(path: str | Path) -> bool:
    """Whether the name ends in .bed / .narrowPeak / .broadPeak (optionally .gz)."""
    name = Path(path).name.lower().removesuffix(".gz")
    return name.endswith(INTERVAL_SUFFIXES)


def task_name(path: str | Path) -> str:
    """A file's task name: its name without interval/compression suffixes."""
    name = Path(path).name
    for suffix in (".gz", *INTERVAL_SUFFIXES):
        if name.lower().endswith(suffix):
            name = name[: -len(suffix)]
    return name


def region_chrom(record_id: str) -> str | None:
    """The chromosome of an id like ``chr1:100-300`` (janggu/bedtools style), else ``None``."""
    m = _REGION.match(record_id)
    return m.group(1) if m else None


class Peaks(NamedTuple):
    """Intervals of one file.

    Attributes
    ----------
    chrom
        ``(P,)`` contig names.
    start, end
        ``(P,)`` int64, 0-based end-exclusive.
    center
        ``(P,)`` int64 window centres: ``start + summit`` for narrowPeak, else the midpoint.
    line
        ``(P,)`` 1-based line numbers (for error messages).
    path
        The file.
    """

    chrom: np.ndarray
    start: np.ndarray
    end: np.ndarray
    center: np.ndarray
    line: np.ndarray
    path: str


def read_peaks(path: str | Path) -> Peaks:
    """Read a BED/narrowPeak file (``track``/``browser``/``#`` lines skipped)."""
    p = Path(path)
    if not p.is_file():
        raise DataError(f"file not found: {p}")
    with open(p, "rb") as fh:
        gz = fh.read(2) == GZIP_MAGIC
    opener: Any = gzip.open if gz else open
    chroms: list[str] = []
    rows: list[tuple[int, int, int, int]] = []
    try:
        with opener(p, "rt") as fh:
            for n, line in enumerate(fh, start=1):
                if not line.strip() or line.startswith(("#", "track", "browser")):
                    continue
                f = line.rstrip("\n").split("\t") if "\t" in line else line.split()
                if len(f) < 3:
                    raise DataError(f"{p} line {n}: a BED line needs chrom, start, end; got {line.strip()[:60]!r}")
                try:
                    start, end = int(f[1]), int(f[2])
                    summit = int(f[9]) if len(f) >= 10 and f[9] not in ("", ".") else -1
                except ValueError:
                    raise DataError(f"{p} line {n}: start/end/summit must be integers; got {line.strip()[:60]!r}") from None
                if start < 0 or end <= start:
                    raise DataError(f"{p} line {n}: invalid interval {f[0]}:{start}-{end} (need 0 <= start < end)")
                center = start + summit if 0 <= summit < end - start else (start + end) // 2
                chroms.append(f[0])
                rows.append((start, end, center, n))
    except (OSError, UnicodeDecodeError, EOFError) as exc:
        raise DataError(f"{p}: cannot read as BED: {exc}") from None
    if not rows:
        raise DataError(f"{p}: no intervals")
    arr = np.asarray(rows, dtype=np.int64)
    return Peaks(np.asarray(chroms, dtype=object), arr[:, 0], arr[:, 1], arr[:, 2], arr[:, 3], str(p))


def fetch_windows(genome: Genome, chrom: np.ndarray, start: np.ndarray, width: int) -> np.ndarray:
    """Sequences of windows ``[start, start + width)`` as ``(N, width)`` ASCII bytes.

    Positions outside the contig are ``N``; contigs must exist (check with :func:`check_windows`).
    """
    out = np.full((len(start), width), ord("N"), dtype=np.uint8)
    offsets = np.arange(width, dtype=np.int64)
    for name in np.unique(chrom):
        rows = np.flatnonzero(chrom == name)
        seq = genome.contig(str(name))
        pos = start[rows, None] + offsets[None, :]
        inside = (pos >= 0) & (pos < len(seq))
        block = np.full(pos.shape, ord("N"), dtype=np.uint8)
        block[inside] = seq[pos[inside]]
        out[rows] = block
    return out


class _Coverage:
    """Merged intervals of one task on one contig, for fast overlap queries."""

    def __init__(self, starts: np.ndarray, ends: np.ndarray) -> None:
        order = np.argsort(starts, kind="stable")
        s, e = starts[order].astype(np.int64), ends[order].astype(np.int64)
        if len(s):
            new = np.ones(len(s), dtype=bool)
            new[1:] = s[1:] > np.maximum.accumulate(e)[:-1]
            s, e = s[new], np.maximum.reduceat(e, np.flatnonzero(new))
        self.s, self.e = s, e
        self.prefix = np.concatenate([[0], np.cumsum(e - s)]).astype(np.int64)

    def covered(self, x: np.ndarray) -> np.ndarray:
        """Bases of ``[0, x)`` inside the intervals, for each ``x``."""
        if len(self.s) == 0:
            return np.zeros(len(x), dtype=np.int64)
        j = np.searchsorted(self.e, x, side="right")
        out = self.prefix[j].copy()
        has_next = j < len(self.s)
        jj = np.minimum(j, len(self.s) - 1)
        out += np.where(has_next, np.clip(x - self.s[jj], 0, None), 0)
        return out

    def overlap(self, start: np.ndarray, end: np.ndarray) -> np.ndarray:
        """Bases of each ``[start, end)`` inside the intervals."""
        return self.covered(end) - self.covered(start)


def _coverages(chrom: np.ndarray, start: np.ndarray, end: np.ndarray) -> dict[str, _Coverage]:
    return {str(c): _Coverage(start[chrom == c], end[chrom == c]) for c in np.unique(chrom)}


def _overlap(cov: dict[str, _Coverage], chrom: np.ndarray, start: np.ndarray, end: np.ndarray) -> np.ndarray:
    out = np.zeros(len(start), dtype=np.int64)
    for c in np.unique(chrom):
        rows = chrom == c
        if str(c) in cov:
            out[rows] = cov[str(c)].overlap(start[rows], end[rows])
    return out


@dataclass
class IntervalOptions:
    """Window and label settings (mirrors ``data.sequence``)."""

    width: int = 200
    label_width: int | None = None
    min_overlap: float = 0.5
    negatives: str = "none"
    negatives_ratio: int = 1
    flank_distance: int | None = None
    out_of_bounds: str = "error"
    unknown_contigs: str = "error"
    seed: int = 0
    flank: int = 0


@dataclass
class Windows:
    """Windows read from interval files.

    Attributes
    ----------
    ids
        ``(N,)`` ``chrom:start-end`` strings.
    chrom, start
        ``(N,)`` contig names and 0-based starts.
    seqs
        ``(N, width + 2 * flank)`` ASCII bytes of the window sequences (with the flanks).
    y
        ``(N, T)`` float32 labels per task (``None`` without labels).
    tasks
        The ``T`` task names (file names without suffixes).
    negative
        ``(N,)`` bool: generated background windows.
    summary
        Counts of what was done (dropped, padded, merged, negatives...).
    source
        ``(N,)`` index of the window each row was derived from: its own index for windows of
        the interval files, the positive window's for its flank / GC-matched negatives (splits
        keep them together; a negative lies on its source's chromosome).
    """

    ids: np.ndarray
    chrom: np.ndarray
    start: np.ndarray
    seqs: np.ndarray
    y: np.ndarray | None
    tasks: list[str]
    negative: np.ndarray
    summary: dict[str, Any] = field(default_factory=dict)
    source: np.ndarray | None = None


def _check_contigs(peaks: Peaks, genome: Genome, policy: str, summary: dict[str, Any]) -> np.ndarray:
    known = np.array([str(c) in genome.lengths for c in peaks.chrom], dtype=bool)
    if known.all():
        return known
    bad = np.flatnonzero(~known)
    first = int(bad[0])
    if policy == "error":
        names = list(genome.lengths)
        raise DataError(
            f"{peaks.path} line {peaks.line[first]}: contig {peaks.chrom[first]!r} is not in the genome {genome.path.name} "
            f"({len(bad)} interval(s) on unknown contigs; the genome has {', '.join(names[:8])}"
            f"{'...' if len(names) > 8 else ''}); use --set data.sequence.unknown_contigs=drop to drop them"
        )
    summary["dropped (unknown contig)"] = summary.get("dropped (unknown contig)", 0) + len(bad)
    return known


def _check_bounds(
    peaks: Peaks, keep: np.ndarray, wstart: np.ndarray, width: int, genome: Genome, policy: str, summary: dict[str, Any]
) -> np.ndarray:
    lengths = np.array([genome.lengths.get(str(c), 0) for c in peaks.chrom], dtype=np.int64)
    outside = keep & ((wstart < 0) | (wstart + width > lengths))
    if not outside.any():
        return keep
    i = int(np.flatnonzero(outside)[0])
    if policy == "error":
        raise DataError(
            f"{peaks.path} line {peaks.line[i]}: the {width}-bp window {peaks.chrom[i]}:{wstart[i]}-{wstart[i] + width} "
            f"runs past the end of {peaks.chrom[i]} (length {lengths[i]}); {int(outside.sum())} window(s) do; "
            "use --set data.sequence.out_of_bounds=drop (or pad, with N)"
        )
    key = "dropped (window past contig end)" if policy == "drop" else "padded with N (window past contig end)"
    summary[key] = summary.get(key, 0) + int(outside.sum())
    return keep & ~outside if policy == "drop" else keep


def load_windows(
    paths: Sequence[str], genome_path: str | None, opts: IntervalOptions, *, labels: bool, tasks: list[str] | None = None
) -> Windows:
    """Windows, sequences and per-task labels (plus background negatives) from interval files.

    Parameters
    ----------
    paths
        BED/narrowPeak files, one per task (with ``labels``); for prediction any number of files
        of regions to score (their windows are pooled).
    genome_path
        The genome FASTA (indexed with pyfaidx).
    opts
        Window, label and negative settings.
    labels
        Compute labels and negatives (``False`` for prediction).
    tasks
        Task names to report instead of the file names (a trained model's).
    """
    if not genome_path:
        raise DataError("interval files need a genome FASTA: --genome genome.fa (data.sequence.genome)")
    genome = Genome(genome_path)
    width = opts.width
    half = width // 2
    summary: dict[str, Any] = {"genome": str(genome_path), "window width": width}
    if not genome.indexed:
        summary["genome access"] = "read into memory (no writable .fai index)"
    all_peaks = [read_peaks(p) for p in paths]
    task_names = list(tasks) if tasks is not None else [task_name(p) for p in paths]
    if labels and tasks is not None and len(tasks) != len(paths):
        # labels come from one file per task; regions to score (prediction) may be any number of files
        raise DataError(
            f"the model has {len(tasks)} task(s) ({', '.join(tasks)}) but {len(paths)} interval file(s) were given; "
            "labels need one BED file per task, in the model's task order"
        )
    chroms: list[np.ndarray] = []
    starts: list[np.ndarray] = []
    for peaks in all_peaks:
        keep = _check_contigs(peaks, genome, opts.unknown_contigs, summary)
        wstart = peaks.center - half
        keep = _check_bounds(peaks, keep, wstart, width, genome, opts.out_of_bounds, summary)
        chroms.append(peaks.chrom[keep])
        starts.append(wstart[keep])
        summary[f"intervals in {Path(peaks.path).name}"] = len(peaks.start)
    chrom = np.concatenate(chroms).astype(str)
    start = np.concatenate(starts)
    if len(start) == 0:
        raise DataError(f"{', '.join(paths)}: no windows left after dropping")
    # identical windows from several files (or duplicate lines) become one row
    key = np.char.add(np.char.add(chrom, ":"), start.astype(str))
    _, first = np.unique(key, return_index=True)
    first = np.sort(first)
    if len(first) < len(start):
        summary["identical windows merged"] = int(len(start) - len(first))
    chrom, start = chrom[first], start[first]
    negative = np.zeros(len(start), dtype=bool)
    source = np.arange(len(start), dtype=np.int64)
    y = None
    if labels:
        covs = [_coverages(p.chrom.astype(str), p.start, p.end) for p in all_peaks]
        y = _labels(covs, chrom, start, width, opts)
        for t, name in enumerate(task_names):
            summary[f"positive windows ({name})"] = int(np.nansum(y[:, t]))
        if opts.negatives in ("flank", "gc-matched"):
            union = _coverages(
                np.concatenate([p.chrom for p in all_peaks]).astype(str),
                np.concatenate([p.start for p in all_peaks]),
                np.concatenate([p.end for p in all_peaks]),
            )
            rng = np.random.default_rng(opts.seed)
            if opts.negatives == "flank":
                nc, ns, nsrc = _flank_negatives(chrom, start, width, union, genome, opts, summary)
            else:
                nc, ns, nsrc = _gc_negatives(chrom, start, width, union, genome, opts, rng, summary)
            summary[f"negatives ({opts.negatives})"] = len(ns)
            chrom = np.concatenate([chrom, nc])
            start = np.concatenate([start, ns])
            y = np.concatenate([y, np.zeros((len(ns), y.shape[1]), dtype=np.float32)])
            negative = np.concatenate([negative, np.ones(len(ns), dtype=bool)])
            source = np.concatenate([source, nsrc])
    if opts.flank:
        # context on both sides for random-shift training: a shifted window is a slice of real sequence
        lengths = np.array([genome.lengths[str(c)] for c in chrom], dtype=np.int64)
        past = int(np.count_nonzero((start - opts.flank < 0) | (start + width + opts.flank > lengths)))
        summary["shift flank (bp each side)"] = opts.flank
        if past:
            summary["windows whose flank runs past a contig end (N-padded flank)"] = past
    seqs = fetch_windows(genome, chrom, start - opts.flank, width + 2 * opts.flank)
    genome.close()
    ids = np.char.add(np.char.add(np.char.add(chrom, ":"), start.astype(str)), np.char.add("-", (start + width).astype(str)))
    return Windows(ids.astype(object), chrom, start, seqs, y, task_names, negative, summary, source)


def _labels(
    covs: list[dict[str, _Coverage]], chrom: np.ndarray, start: np.ndarray, width: int, opts: IntervalOptions
) -> np.ndarray:
    bin_w = min(opts.label_width or 200, width)
    bs = start + (width - bin_w) // 2
    center = start + width // 2
    y = np.zeros((len(start), len(covs)), dtype=np.float32)
    for t, cov in enumerate(covs):
        frac = _overlap(cov, chrom, bs, bs + bin_w) / bin_w
        inside = _overlap(cov, chrom, center, center + 1) > 0
        y[:, t] = (frac >= opts.min_overlap) | inside
    return y


def _flank_negatives(
    chrom: np.ndarray,
    start: np.ndarray,
    width: int,
    union: dict[str, _Coverage],
    genome: Genome,
    opts: IntervalOptions,
    summary: dict[str, Any],
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Windows ``flank_distance`` away from each positive, and the positive each comes from."""
    dist = opts.flank_distance or 2 * width
    taken: set[tuple[str, int]] = set(zip(chrom.tolist(), start.tolist(), strict=True))
    lengths = np.array([genome.lengths[str(c)] for c in chrom], dtype=np.int64)
    need = np.full(len(start), opts.negatives_ratio)
    out_c: list[str] = []
    out_s: list[int] = []
    out_src: list[int] = []
    for m in (1, -1, 2, -2, 3, -3):
        cand = start + m * dist
        ok = (need > 0) & (cand >= 0) & (cand + width <= lengths)
        ok &= _overlap(union, chrom, cand, cand + width) == 0
        for i in np.flatnonzero(ok):
            k = (str(chrom[i]), int(cand[i]))
            if k in taken:
                continue
            taken.add(k)
            out_c.append(k[0])
            out_s.append(k[1])
            out_src.append(int(i))
            need[i] -= 1
    short = int(need.sum())
    if short:
        summary["flank negatives not found (no free flank)"] = short
    return np.asarray(out_c, dtype=str), np.asarray(out_s, dtype=np.int64), np.asarray(out_src, dtype=np.int64)


def gc_fraction(seqs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """GC fraction among ACGT bases and N fraction of ``(N, W)`` ASCII windows."""
    up = seqs & np.uint8(0xDF)
    gc = np.count_nonzero((up == ord("G")) | (up == ord("C")), axis=1)
    acgt = gc + np.count_nonzero((up == ord("A")) | (up == ord("T")), axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        frac = np.where(acgt > 0, gc / np.maximum(acgt, 1), np.nan)
    return frac, 1.0 - acgt / seqs.shape[1]


def _gc_negatives(
    chrom: np.ndarray,
    start: np.ndarray,
    width: int,
    union: dict[str, _Coverage],
    genome: Genome,
    opts: IntervalOptions,
    rng: np.random.Generator,
    summary: dict[str, Any],
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Random peak-free windows of the same GC content as each positive, on the positive's own
    chromosome (so a chromosome split keeps them with their source), and the positive each comes from."""
    n_bins = 20
    pos_gc, _ = gc_fraction(fetch_windows(genome, chrom, start, width))
    pos_bin = np.minimum((np.nan_to_num(pos_gc, nan=0.5) * n_bins).astype(np.int64), n_bins - 1)
    out_c: list[np.ndarray] = []
    out_s: list[np.ndarray] = []
    out_src: list[np.ndarray] = []
    short = 0
    for c in np.unique(chrom):
        rows = np.flatnonzero(chrom == c)
        need = len(rows) * opts.negatives_ratio
        size = genome.lengths[str(c)] - width
        if size <= 0:
            short += need
            continue
        n_cand = max(20 * need, 200)
        cc = np.full(n_cand, str(c))
        cs = (rng.random(n_cand) * size).astype(np.int64)
        ok = _overlap(union, cc, cs, cs + width) == 0
        cc, cs = cc[ok], cs[ok]
        gc, n_frac = gc_fraction(fetch_windows(genome, cc, cs, width))
        ok = (n_frac <= 0.1) & np.isfinite(gc)
        cs, gc = cs[ok], gc[ok]
        cand_bin = np.minimum((gc * n_bins).astype(np.int64), n_bins - 1)
        pools = {b: list(rng.permutation(np.flatnonzero(cand_bin == b))) for b in range(n_bins)}
        chosen: list[int] = []
        src: list[int] = []
        for i in np.repeat(rows, opts.negatives_ratio):
            b = int(pos_bin[i])
            for d in range(n_bins):
                hit = next((bb for bb in (b - d, b + d) if 0 <= bb < n_bins and pools[bb]), None)
                if hit is not None:
                    chosen.append(int(pools[hit].pop()))
                    src.append(int(i))
                    break
        short += need - len(chosen)
        idx = np.asarray(chosen, dtype=np.int64)
        out_c.append(np.full(len(idx), str(c)))
        out_s.append(cs[idx])
        out_src.append(np.asarray(src, dtype=np.int64))
    if short:
        summary["gc-matched negatives not found"] = short
    return (
        np.concatenate(out_c).astype(str) if out_c else np.zeros(0, str),
        np.concatenate(out_s) if out_s else np.zeros(0, np.int64),
        np.concatenate(out_src) if out_src else np.zeros(0, np.int64),
    )
