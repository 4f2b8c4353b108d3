"""Versions of JASPAR matrices: each base ID listed once per query, with its best-matching version."""

from __future__ import annotations

import numpy as np
import pytest

from biodl.errors import ConfigError
from biodl.explain import FilterMotifs, jaspar_motifs, match_motifs, motif_matches
from biodl.explain.tomtom import MotifDatabase, base_id, latest_versions


def _ppm(seq: str, p: float = 0.85) -> np.ndarray:
    """A probability matrix favouring ``seq`` (``p`` on its letter, the rest spread evenly)."""
    m = np.full((4, len(seq)), (1 - p) / 3)
    m[["ACGT".index(c) for c in seq], np.arange(len(seq))] = p
    return m


QUERY = "GACCGGAAGTGC"


def _crowding_db() -> MotifDatabase:
    """Three versions of ``MX0001`` close to the query, one other matrix a little further, decoys."""
    ids = ["MX0001.1", "MX0001.2", "MX0001.3", "MX0002.1", "MX0003.1", "MX0003.2", "MX0004.1"]
    names = ["ONE", "ONE", "ONE", "TWO", "THREE", "THREE", "FOUR"]
    ppms = [
        _ppm("GACCGGAAGTGC", 0.90),  # the best version: the query itself
        _ppm("GACCGGAAGTGA", 0.80),
        _ppm("TACCGGAAGTGA", 0.70),
        _ppm("CACCGGAAGTCA", 0.65),  # another matrix, worse than every MX0001 version
        _ppm("TTTATGCAAATT", 0.90),  # unrelated
        _ppm("ATGCAAATTTAA", 0.90),
        _ppm("CCCCAAAACCCC", 0.90),
    ]
    return MotifDatabase(ids, names, ppms, [""] * len(ids))


def test_base_id_and_latest_versions() -> None:
    assert base_id("MA0062.2") == "MA0062" and base_id("my_motif") == "my_motif" and base_id("a.b") == "a.b"
    assert base_id("MA0062") == "MA0062" and base_id(".3") == ".3"
    latest = latest_versions(_crowding_db())
    assert latest.ids == ["MX0001.3", "MX0002.1", "MX0003.2", "MX0004.1"]
    assert latest.names == ["ONE", "TWO", "THREE", "FOUR"] and len(latest.ppms) == 4
    assert np.array_equal(latest.ppms[0], _crowding_db().ppms[2])


def test_versions_of_one_matrix_no_longer_crowd_out_another() -> None:
    db = _crowding_db()
    q = _ppm(QUERY, 0.8)
    every = match_motifs([q], db, n_top=3, one_per_matrix=False)
    assert list(every["target_id"]) == ["MX0001.1", "MX0001.2", "MX0001.3"]  # MX0002 pushed out of the top 3
    best = match_motifs([q], db, n_top=3)
    assert list(best["target_id"]) == ["MX0001.1", "MX0002.1", best["target_id"].iloc[2]]
    assert list(best["rank"]) == [1, 2, 3]
    assert best["target_id"].map(base_id).is_unique
    # the version kept is the best-ranked one, with the same figures as in the full listing
    full = match_motifs([q], db, n_top=len(db.ids), one_per_matrix=False).set_index("target_id")
    for _, r in best.iterrows():
        assert r["p_value"] == full.loc[r["target_id"], "p_value"]
        same = full[full.index.map(base_id) == base_id(r["target_id"])]
        assert r["p_value"] == same["p_value"].min()
        assert full.loc[r["target_id"], "rank"] == same["rank"].min()
    # ranks stay 1..n per query, n capped by the number of matrices
    two = match_motifs([q, q[::-1, ::-1]], db, n_top=10, query_names=["fwd", "rev"])
    for _, g in two.groupby("query"):
        assert list(g["rank"]) == list(range(1, 5)) and g["target_id"].map(base_id).is_unique
    # one version per matrix: de-duplication changes nothing
    lat = latest_versions(db)
    a, b = match_motifs([q], lat, n_top=4), match_motifs([q], lat, n_top=4, one_per_matrix=False)
    assert a.equals(b)
    with pytest.raises(ConfigError, match="n_top"):
        match_motifs([q], db, n_top=0)


def _filters(*ppms: np.ndarray) -> FilterMotifs:
    w = max(p.shape[1] for p in ppms)
    ppm = np.stack([np.pad(p, ((0, 0), (0, w - p.shape[1])), constant_values=0.25) for p in ppms])
    bg = np.full(4, 0.25)
    n = np.full(len(ppms), 50)
    return FilterMotifs("conv", ppm * 50, ppm, np.log2(ppm / 0.25), n, np.ones(len(ppms)), 0, 1, bg, "ACGT")


def test_motif_matches_jaspar_versions() -> None:
    db = _crowding_db()
    motifs = _filters(_ppm(QUERY, 0.8), _ppm("TTTATGCAAATT", 0.8))
    best = motif_matches(motifs, db, n_top=3)  # default: "best"
    assert list(best.columns)[:6] == ["filter", "rank", "jaspar_id", "jaspar_name", "score", "p_value"]
    f0 = best[best["filter"] == "filter_0"]
    assert list(f0["jaspar_id"][:2]) == ["MX0001.1", "MX0002.1"] and list(f0["rank"]) == [1, 2, 3]
    assert best.groupby("filter")["jaspar_id"].apply(lambda s: s.map(base_id).is_unique).all()
    f1 = best[best["filter"] == "filter_1"]
    assert f1["jaspar_id"].iloc[0] == "MX0003.1"  # the version matching this filter best, not the latest
    every = motif_matches(motifs, db, n_top=3, jaspar_versions="all")
    assert list(every[every["filter"] == "filter_0"]["jaspar_id"]) == ["MX0001.1", "MX0001.2", "MX0001.3"]
    latest = motif_matches(motifs, db, n_top=3, jaspar_versions="latest")
    assert set(latest["jaspar_id"]) <= set(latest_versions(db).ids)
    assert latest[latest["filter"] == "filter_1"]["jaspar_id"].iloc[0] == "MX0003.2"
    with pytest.raises(ConfigError, match="jaspar_versions"):
        motif_matches(motifs, db, jaspar_versions="newest")  # type: ignore[arg-type]


def test_jaspar_all_versions_listed_once_per_matrix() -> None:
    """GABPA's MA0062.2 (CCGGAAGT) against every JASPAR 2024 version: its own matrix once, at rank 1."""
    every = jaspar_motifs(all_versions=True)
    assert len(every.ids) > len(jaspar_motifs().ids) and "MA0062.2" in every.ids
    q = every.ppms[every.ids.index("MA0062.2")]
    crowded = match_motifs([q], every, n_top=5, one_per_matrix=False)
    assert crowded["target_id"].map(base_id).value_counts().max() > 1  # versions repeat without de-duplication
    table = match_motifs([q], n_top=5)  # default database: every version, one per matrix
    assert table["target_id"].iloc[0] == "MA0062.2" and table["target_id"].map(base_id).is_unique
    assert list(table["rank"]) == [1, 2, 3, 4, 5]
