"""Cross-validation folds: ``k`` random folds or the folds given per row (``data.cv_column``)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from biodl.data.splits import SourceGroups, Split, _take, has_derived, make_split
from biodl.errors import DataError


def kfold_splits(
    n: int,
    k: int,
    sizes: Sequence[float],
    seed: int,
    *,
    labels: np.ndarray | None = None,
    groups: np.ndarray | None = None,
    sources: np.ndarray | None = None,
) -> list[Split]:
    """``k`` folds: each fold is the test part once; validation is carved from the rest.

    The validation share of the remaining rows is ``sizes[1] / (sizes[0] + sizes[1])``.
    With derived rows (``sources``) the folds are made of whole sources, as in :func:`~biodl.data.splits.make_split`.
    """
    if has_derived(sources):
        assert sources is not None
        sg = SourceGroups(sources)
        r = sg.rep
        inner_folds = kfold_splits(len(r), k, sizes, seed, labels=_take(labels, r), groups=_take(groups, r))
        return [sg.expand(f) for f in inner_folds]
    if k > n:
        raise DataError(f"cannot make {k} folds from {n} rows")
    rng = np.random.default_rng(seed)
    if groups is not None:
        uniq, inverse = np.unique(groups.astype(str), return_inverse=True)
        if len(uniq) < k:
            raise DataError(f"{k}-fold group cross-validation needs at least {k} groups, found {len(uniq)}")
        fold_of_group = rng.permutation(len(uniq)) % k
        fold = fold_of_group[inverse]
    elif labels is not None:
        fold = np.empty(n, dtype=np.int64)
        for cls in np.unique(labels):
            idx = rng.permutation(np.flatnonzero(labels == cls))
            fold[idx] = (np.arange(len(idx)) + int(rng.integers(k))) % k
    else:
        fold = rng.permutation(n) % k
    val_share = sizes[1] / (sizes[0] + sizes[1])
    out = []
    for f in range(k):
        test = np.flatnonzero(fold == f)
        rest = np.flatnonzero(fold != f)
        rest_groups = groups[rest] if groups is not None else None
        rest_labels = labels[rest] if labels is not None else None
        inner = make_split(
            len(rest),
            (1 - val_share, val_share, 0.0),
            "group" if groups is not None else "auto",
            seed + f + 1,
            labels=rest_labels,
            groups=rest_groups,
        )
        out.append(Split(rest[inner.train], rest[inner.val], test, f"{k}-fold cv ({inner.method} validation)"))
    return out


def predefined_folds(
    folds: np.ndarray,
    sizes: Sequence[float],
    seed: int,
    *,
    labels: np.ndarray | None = None,
    column: str = "fold",
    groups: np.ndarray | None = None,
) -> list[Split]:
    """Cross-validation folds given per row (``data.cv_column``): each distinct value is the test
    part once (in sorted order, numerically when the values are integers); validation is carved
    from the remaining rows as in :func:`kfold_splits` (stratified when ``labels`` are given; whole
    ``groups`` when given, e.g. the genomic blocks of CpG sites)."""
    names = np.asarray(folds).astype(str)
    uniq = list(np.unique(names))
    if all(u.lstrip("-").isdigit() for u in uniq):
        uniq.sort(key=int)
    if len(uniq) < 2:
        raise DataError(f"cv column {column!r} holds {len(uniq)} fold value(s) ({uniq}); cross-validation needs at least 2")
    val_share = sizes[1] / (sizes[0] + sizes[1])
    out = []
    for f, name in enumerate(uniq):
        test = np.flatnonzero(names == name)
        rest = np.flatnonzero(names != name)
        inner = make_split(
            len(rest),
            (1 - val_share, val_share, 0.0),
            "group" if groups is not None else "auto",
            seed + f + 1,
            labels=labels[rest] if labels is not None else None,
            groups=groups[rest] if groups is not None else None,
        )
        method = f"{len(uniq)}-fold cv from column {column!r}, test fold {name} ({inner.method} validation)"
        out.append(Split(rest[inner.train], rest[inner.val], test, method))
    return out


def cv_folds(
    n: int,
    k: int | None,
    column: str | None,
    folds: np.ndarray | None,
    sizes: Sequence[float],
    seed: int,
    *,
    labels: np.ndarray | None = None,
    groups: np.ndarray | None = None,
    sources: np.ndarray | None = None,
) -> list[Split]:
    """The folds of a cross-validation: ``k`` random folds (:func:`kfold_splits`) or the folds given
    per row in ``column`` (``folds``, :func:`predefined_folds`)."""
    if column is not None:
        if folds is None:
            raise DataError(f"cv column {column!r} not found in the data (or this data type cannot read it)")
        return predefined_folds(folds, sizes, seed, labels=labels, column=column, groups=groups)
    if k is None:
        raise DataError("cross-validation needs --cv K or --cv-column")
    return kfold_splits(n, k, sizes, seed, labels=labels, groups=groups, sources=sources)
