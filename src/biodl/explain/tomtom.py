"""Motif comparison in the manner of Tomtom (Gupta et al., Genome Biol. 8:R24, 2007), in process, and JASPAR.

Every query motif is aligned to every target at every offset on both strands. Columns are
compared by the Pearson correlation of their letter probabilities (or minus their Euclidean
distance), and an alignment's score is the sum over *all* query columns, query columns that
overhang the target being scored against the background (Tomtom's "complete" scores). The
null distribution of that score is Tomtom's: each query column's scores against every column
of the database form an empirical distribution, discretised and convolved over the query's
columns. The p-value of a target is that of its best alignment, corrected for the number of
alignments tried (``1 - (1 - p)^n``); E-values multiply by the number of targets.

JASPAR comes from the ``pyjaspar`` package's public API (``jaspardb(release=...).fetch_motifs``; offline). A JASPAR
matrix (base ID ``MA0062``) often has several versions (``MA0062.1`` ... ``MA0062.4``) built from
different data, and they can differ (GABPA: CCGGAAG in .1-.2, CAGGAAG in .3-.4). biodl's default
compares a query with every version and lists each matrix once, with its best-matching version
("best version per matrix"): comparing with the latest versions only can miss a factor whose
latest matrix differs from what the model learned, and listing every version lets the versions
of one matrix fill a query's top matches.

>>> db = jaspar_motifs(all_versions=True)    # CORE vertebrates, JASPAR 2024, every version
>>> matches = match_motifs([ppm], db, n_top=5)   # each base ID at most once per query
>>> matches[["query", "rank", "target_id", "target_name", "p_value"]]
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any, Literal, NamedTuple

import numpy as np
import pandas as pd

from biodl.errors import ConfigError, DataError

__all__ = ["MotifDatabase", "TomtomResult", "base_id", "jaspar_motifs", "latest_versions", "match_motifs", "tomtom"]

Metric = Literal["pearson", "ed"]


class MotifDatabase(NamedTuple):
    """Target motifs.

    Attributes
    ----------
    ids
        Identifiers (``MA0139.2``).
    names
        Names (``CTCF``).
    ppms
        Letter-probability matrices, each ``(4, width)`` (ACGT rows).
    families
        Free text (JASPAR class and family), ``""`` where unknown.
    """

    ids: list[str]
    names: list[str]
    ppms: list[np.ndarray]
    families: list[str]


class TomtomResult(NamedTuple):
    """All query × target comparisons (arrays ``(Q, T)``).

    Attributes
    ----------
    p_values
        Corrected p-values of the best alignment of each pair.
    e_values
        ``p_values × T``.
    scores
        Scores of the best alignments (sums of column similarities over the query).
    offsets
        Offset of the target's first column relative to the query's first column (target
        column ``j`` faces query column ``j + offset``).
    strands
        ``+1`` target as given, ``-1`` its reverse complement.
    overlaps
        Number of aligned columns.
    """

    p_values: np.ndarray
    e_values: np.ndarray
    scores: np.ndarray
    offsets: np.ndarray
    strands: np.ndarray
    overlaps: np.ndarray


def _jaspar_db(release: str) -> Any:
    """pyjaspar's offline database ``release`` (its public API: ``jaspardb(release=...)``)."""
    try:
        from pyjaspar import jaspardb
    except ImportError:
        raise DataError("JASPAR needs the pyjaspar package (pip install pyjaspar), which ships the database offline") from None
    try:
        return jaspardb(release=release)
    except Exception as exc:  # pyjaspar raises plain exceptions for unknown releases
        raise DataError(f"pyjaspar has no {release} database ({exc})") from None


@functools.lru_cache(maxsize=8)
def jaspar_motifs(
    collection: str = "CORE", tax_group: str | None = "vertebrates", release: str = "JASPAR2024", all_versions: bool = False
) -> MotifDatabase:
    """JASPAR matrices as probabilities (cached per argument set).

    Parameters
    ----------
    collection
        ``CORE`` or ``UNVALIDATED``.
    tax_group
        ``vertebrates``, ``insects``, ``plants``... or ``None`` for all.
    release
        A database shipped with pyjaspar (``JASPAR2024``).
    all_versions
        Keep every version of a matrix (default: the latest of each base ID). With every version,
        :func:`match_motifs` lists each base ID once per query (its best version) by default.

    Returns
    -------
    MotifDatabase
        Matrices sorted by base ID, then version.
    """
    if not all_versions:  # one filtering rule for every database: latest_versions
        return latest_versions(jaspar_motifs(collection, tax_group, release, True))
    db = _jaspar_db(release)
    motifs = db.fetch_motifs(collection=collection, tax_group=[tax_group] if tax_group else None, all_versions=True)
    motifs = sorted(motifs, key=lambda m: (str(m.base_id), int(m.version)))
    if not motifs:
        raise DataError(f"no JASPAR matrices for collection={collection!r}, tax_group={tax_group!r} in {release}")
    ppms = []
    families = []
    for m in motifs:
        counts = np.asarray([m.counts[b] for b in "ACGT"], dtype=np.float64)  # (4, width)
        ppms.append(counts / np.maximum(counts.sum(0, keepdims=True), 1e-12))
        fam: list[str] = []
        for v in [*(m.tf_class or []), *(m.tf_family or [])]:
            if v and v not in fam:
                fam.append(str(v))
        families.append("; ".join(fam))
    return MotifDatabase([f"{m.base_id}.{m.version}" for m in motifs], [str(m.name) for m in motifs], ppms, families)


def base_id(motif_id: str) -> str:
    """The matrix a versioned identifier belongs to: ``MA0062.2`` → ``MA0062``.

    Identifiers without a numeric ``.VERSION`` suffix (``my_motif``) are their own base ID.
    """
    head, sep, tail = str(motif_id).rpartition(".")
    return head if sep and head and tail.isdigit() else str(motif_id)


def _version(motif_id: str) -> int:
    head, sep, tail = str(motif_id).rpartition(".")
    return int(tail) if sep and head and tail.isdigit() else 0


def latest_versions(database: MotifDatabase) -> MotifDatabase:
    """The database restricted to the latest version of every base ID (see :func:`base_id`).

    Parameters
    ----------
    database
        Motifs, possibly several versions of each matrix.

    Returns
    -------
    MotifDatabase
        One motif per base ID, the one with the highest version (order kept).
    """
    latest: dict[str, int] = {}
    for m in database.ids:
        latest[base_id(m)] = max(latest.get(base_id(m), 0), _version(m))
    keep = [k for k, m in enumerate(database.ids) if _version(m) == latest[base_id(m)]]
    seen: set[str] = set()
    rows = []
    for k in keep:  # identical IDs: keep the first
        if base_id(database.ids[k]) not in seen:
            seen.add(base_id(database.ids[k]))
            rows.append(k)
    db = database
    return MotifDatabase([db.ids[k] for k in rows], [db.names[k] for k in rows], [db.ppms[k] for k in rows],
                         [db.families[k] for k in rows])  # fmt: skip


def _as_ppm(m: np.ndarray, name: str) -> np.ndarray:
    a = np.asarray(m, dtype=np.float64)
    if a.ndim != 2 or a.shape[0] != 4 or a.shape[1] < 1:
        raise DataError(f"{name}: a motif must be a (4, width) matrix, got shape {a.shape}")
    s = a.sum(0, keepdims=True)
    return np.where(s > 0, a / np.where(s > 0, s, 1), 0.25)


def _standardise(c: np.ndarray) -> np.ndarray:
    """Columns centred and scaled to unit norm (constant columns → 0): dot products are Pearson correlations."""
    c = c - c.mean(0, keepdims=True)
    n = np.linalg.norm(c, axis=0, keepdims=True)
    return np.where(n > 1e-12, c / np.where(n > 1e-12, n, 1), 0.0)


def _column_scores(q: np.ndarray, t: np.ndarray, metric: Metric, t_std: np.ndarray | None = None) -> np.ndarray:
    """Similarity of every query column with every target column: ``(wq, M)``."""
    if metric == "pearson":
        return _standardise(q).T @ (t_std if t_std is not None else _standardise(t))
    d = (q * q).sum(0)[:, None] + (t * t).sum(0)[None, :] - 2.0 * q.T @ t
    return -np.sqrt(np.maximum(d, 0.0))


def _diagonal_sums(D: np.ndarray, n_off: int) -> np.ndarray:
    """``out[t, k] = sum_i D[t, i, i + k]`` for ``D`` of shape ``(T, wq, W)`` (a strided view, no copy)."""
    T, wq, _ = D.shape
    s0, s1, s2 = D.strides
    view = np.lib.stride_tricks.as_strided(D, shape=(T, n_off, wq), strides=(s0, s2, s1 + s2), writeable=False)
    return view.sum(-1)


def tomtom(
    queries: Sequence[np.ndarray],
    targets: Sequence[np.ndarray] | MotifDatabase,
    *,
    metric: Metric = "pearson",
    min_overlap: int = 5,
    n_bins: int = 100,
) -> TomtomResult:
    """Compare query motifs with target motifs (both strands, all offsets).

    Parameters
    ----------
    queries
        Letter-probability (or count) matrices ``(4, wq)``, ACGT rows.
    targets
        Matrices ``(4, wt)`` or a :class:`MotifDatabase`.
    metric
        Column similarity: ``pearson`` correlation or ``ed`` (negative Euclidean distance).
    min_overlap
        Alignments must overlap by this many columns (or the shorter motif's width).
    n_bins
        Resolution of the discretised null distribution (bins over a column score's range).

    Returns
    -------
    TomtomResult
        ``(Q, T)`` arrays.
    """
    if metric not in ("pearson", "ed"):
        raise ConfigError(f"metric must be 'pearson' or 'ed', got {metric!r}")
    tlist = targets.ppms if isinstance(targets, MotifDatabase) else list(targets)
    if not tlist:
        raise DataError("no target motifs")
    T = [_as_ppm(t, f"target {i}") for i, t in enumerate(tlist)]
    both = T + [t[::-1, ::-1] for t in T]  # reverse complements (ACGT → TGCA, reversed)
    widths = np.array([t.shape[1] for t in both])
    cols = np.concatenate(both, axis=1)  # (4, M)
    col_target = np.repeat(np.arange(len(both)), widths)  # motif of each database column
    col_index = np.concatenate([np.arange(w) for w in widths])  # its position in that motif
    n_t = len(T)
    wmax = int(widths.max())
    lo, hi = (-1.0, 1.0) if metric == "pearson" else (-np.sqrt(2.0), 0.0)
    delta = (hi - lo) / n_bins
    bg = np.full((4, 1), 0.25)
    cols_std = _standardise(cols) if metric == "pearson" else None
    Qn = len(queries)
    out = [np.zeros((Qn, n_t)) for _ in range(3)] + [np.zeros((Qn, n_t), dtype=np.int64) for _ in range(3)]
    p_out, e_out, s_out, off_out, strand_out, ov_out = out
    for qi, qm in enumerate(queries):
        q = _as_ppm(qm, f"query {qi}")
        wq = q.shape[1]
        C = _column_scores(q, cols, metric, cols_std)  # (wq, M)
        Ci = np.clip(np.rint((C - lo) / delta), 0, n_bins).astype(np.int64)
        b = _column_scores(q, bg, metric)[:, 0]  # (wq,) score of an overhanging column
        bi = np.clip(np.rint((b - lo) / delta), 0, n_bins).astype(np.int64)
        # null: per-column empirical distributions over the database's columns, convolved
        pmf = np.ones(1)
        for i in range(wq):
            pmf = np.convolve(pmf, np.bincount(Ci[i], minlength=n_bins + 1) / Ci.shape[1])
        tail = np.cumsum(pmf[::-1])[::-1]  # tail[k] = P(score >= k)
        # alignment scores via diagonals of a padded (target, query column, target column) array
        n_off = wmax + wq - 1
        width = wmax + 2 * (wq - 1)
        D = np.zeros((len(both), wq, width))
        Di = np.zeros((len(both), wq, width), dtype=np.int64)
        D[col_target, :, wq - 1 + col_index] = (C - b[:, None]).T
        Di[col_target, :, wq - 1 + col_index] = (Ci - bi[:, None]).T
        # query column i at offset k faces padded column i + k
        score = _diagonal_sums(D, n_off) + b.sum()  # (2T, n_off)
        iscore = _diagonal_sums(Di, n_off) + bi.sum()
        o = np.arange(n_off)[None, :] - (wq - 1)  # query column i faces target column i + o
        overlap = np.minimum(wq, widths[:, None] - o) - np.maximum(0, -o)
        need = np.minimum(min_overlap, np.minimum(wq, widths))[:, None]
        ok = (overlap >= need) & (o <= widths[:, None] - 1)
        score = np.where(ok, score, -np.inf)
        per = score.reshape(2, n_t, n_off).transpose(1, 0, 2).reshape(n_t, 2 * n_off)
        best = per.argmax(1)
        strand_i, k = np.divmod(best, n_off)
        tgt = strand_i * n_t + np.arange(n_t)
        best_i = iscore[tgt, k]
        p = tail[np.clip(best_i, 0, len(tail) - 1)]
        n_align = ok.reshape(2, n_t, n_off).sum((0, 2))
        p_corr = -np.expm1(n_align * np.log1p(-np.minimum(p, 1 - 1e-16)))
        p_corr = np.where(p >= 1, 1.0, p_corr)
        p_out[qi] = np.clip(p_corr, 0, 1)
        e_out[qi] = p_out[qi] * n_t
        s_out[qi] = per[np.arange(n_t), best]
        off_out[qi] = -(k - (wq - 1))  # target column j faces query column j + offset
        strand_out[qi] = np.where(strand_i == 0, 1, -1)
        ov_out[qi] = overlap[tgt, k]
    return TomtomResult(p_out, e_out, s_out, off_out, strand_out, ov_out)


def match_motifs(
    queries: Sequence[np.ndarray],
    database: MotifDatabase | None = None,
    *,
    n_top: int = 5,
    query_names: Sequence[str] | None = None,
    metric: Metric = "pearson",
    min_overlap: int = 5,
    one_per_matrix: bool = True,
) -> pd.DataFrame:
    """The best ``n_top`` database matches of every query, as a table.

    Parameters
    ----------
    queries
        Letter-probability (or count) matrices ``(4, wq)``, ACGT rows.
    database
        Target motifs (default: every version of every JASPAR 2024 CORE vertebrate matrix,
        ``jaspar_motifs(all_versions=True)``).
    n_top
        Matches listed per query.
    query_names
        Names of the queries in the ``query`` column (default ``0``, ``1``...).
    metric, min_overlap
        As for :func:`tomtom`.
    one_per_matrix
        When the database holds several versions of a matrix (``MA0062.2``, ``MA0062.3``: same
        :func:`base_id`), list only the best-ranked version of each base ID per query, so that
        the versions of one matrix do not crowd the others out of the top ``n_top``. Every
        version is still compared; p-values are those of the version kept (not corrected for
        the number of versions) and E-values count every motif of the database. No effect on a
        database with one version per matrix.

    Returns
    -------
    pandas.DataFrame
        Columns ``query, rank, target_id, target_name, score, p_value, e_value, offset,
        strand, overlap, family`` (rank 1 = smallest p-value, ties broken by the larger score;
        ranks ``1..n`` after de-duplication).
    """
    db = database if database is not None else jaspar_motifs(all_versions=True)
    if n_top < 1:
        raise ConfigError(f"n_top must be >= 1, got {n_top}")
    res = tomtom(queries, db, metric=metric, min_overlap=min_overlap)
    names = list(query_names) if query_names is not None else [str(i) for i in range(len(queries))]
    if len(names) != len(queries):
        raise ConfigError(f"{len(names)} query name(s) for {len(queries)} queries")
    groups = np.unique([base_id(m) for m in db.ids], return_inverse=True)[1] if one_per_matrix else None
    rows = []
    for qi, name in enumerate(names):
        order = np.lexsort((-res.scores[qi], res.p_values[qi]))
        if groups is not None:  # the first (best-ranked) version of each base ID, in rank order
            first = np.unique(groups[order], return_index=True)[1]
            order = order[np.sort(first)]
        for rank, t in enumerate(order[:n_top], start=1):
            rows.append({
                "query": name, "rank": rank, "target_id": db.ids[t], "target_name": db.names[t],
                "score": float(res.scores[qi, t]), "p_value": float(res.p_values[qi, t]), "e_value": float(res.e_values[qi, t]),
                "offset": int(res.offsets[qi, t]), "strand": "+" if res.strands[qi, t] > 0 else "-",
                "overlap": int(res.overlaps[qi, t]), "family": db.families[t],
            })  # fmt: skip
    cols = ["query", "rank", "target_id", "target_name", "score", "p_value", "e_value", "offset", "strand", "overlap", "family"]
    return pd.DataFrame(rows, columns=cols)
