"""Train/validation/test splits (random, stratified, group, chromosome, scaffold, predefined).

Cross-validation folds are in :mod:`biodl.data.folds`; split columns read from the data in
:mod:`biodl.data.split_columns`.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from biodl.errors import DataError
from biodl.io_utils import atomic_write_text


@dataclass
class Split:
    """Row indices of each part; ``method`` notes what was actually done."""

    train: np.ndarray
    val: np.ndarray
    test: np.ndarray
    method: str

    def sizes(self) -> dict[str, int]:
        """Rows per part."""
        return {"train": len(self.train), "val": len(self.val), "test": len(self.test)}

    def to_dict(self, ids: Sequence[str] | None = None, **extra: object) -> dict[str, object]:
        """JSON-ready description (indices, and ids when given)."""
        out: dict[str, object] = {"method": self.method, **extra, "sizes": self.sizes()}
        for part in ("train", "val", "test"):
            idx = getattr(self, part)
            out[part] = [int(i) for i in idx]
            if ids is not None:
                out[f"{part}_ids"] = [str(ids[i]) for i in idx]
        return out


def _counts(n: int, sizes: Sequence[float]) -> tuple[int, int]:
    n_test = round(sizes[2] * n)
    n_val = round(sizes[1] * n)
    if sizes[2] > 0:
        n_test = max(n_test, 1)
    if sizes[1] > 0:
        n_val = max(n_val, 1)
    if n - n_test - n_val < 1:
        raise DataError(f"{n} rows are too few for split sizes {list(sizes)}: the training split would be empty")
    return n_val, n_test


def random_split(n: int, sizes: Sequence[float], seed: int) -> Split:
    """Shuffle rows and cut them into train/val/test."""
    rng = np.random.default_rng(seed)
    perm = rng.permutation(n)
    n_val, n_test = _counts(n, sizes)
    test, val, train = perm[:n_test], perm[n_test : n_test + n_val], perm[n_test + n_val :]
    return Split(np.sort(train), np.sort(val), np.sort(test), "random")


def stratified_split(labels: np.ndarray, sizes: Sequence[float], seed: int) -> Split:
    """Split each class in proportion (``labels`` ``(N,)`` ints; ``-1`` rows go with a random part)."""
    rng = np.random.default_rng(seed)
    parts: dict[str, list[np.ndarray]] = {"train": [], "val": [], "test": []}
    for cls in np.unique(labels):
        idx = rng.permutation(np.flatnonzero(labels == cls))
        n = len(idx)
        n_test = round(sizes[2] * n)
        n_val = round(sizes[1] * n)
        parts["test"].append(idx[:n_test])
        parts["val"].append(idx[n_test : n_test + n_val])
        parts["train"].append(idx[n_test + n_val :])
    train, val, test = (np.sort(np.concatenate(parts[p])).astype(np.int64) for p in ("train", "val", "test"))
    if len(train) == 0 or (sizes[1] > 0 and len(val) == 0) or (sizes[2] > 0 and len(test) == 0):
        raise DataError(f"{len(labels)} rows are too few for a stratified split with sizes {list(sizes)}")
    return Split(train, val, test, "stratified")


def group_split(groups: np.ndarray, sizes: Sequence[float], seed: int) -> Split:
    """Keep every group on one side: whole groups are assigned until each part's share is reached."""
    rng = np.random.default_rng(seed)
    uniq, inverse, counts = np.unique(groups.astype(str), return_inverse=True, return_counts=True)
    if len(uniq) < 2 + (sizes[1] > 0):
        raise DataError(f"a group split needs at least {2 + (sizes[1] > 0)} groups, found {len(uniq)}")
    order = rng.permutation(len(uniq))
    n = len(groups)
    target_test, target_val = sizes[2] * n, sizes[1] * n
    assign = np.zeros(len(uniq), dtype=np.int64)  # 0 train, 1 val, 2 test
    filled = [0.0, 0.0, 0.0]
    for g in order:
        if filled[2] < target_test:
            part = 2
        elif filled[1] < target_val:
            part = 1
        else:
            part = 0
        assign[g] = part
        filled[part] += counts[g]
    if filled[0] == 0:
        # the last group always goes to training
        assign[order[-1]] = 0
    row_part = assign[inverse]
    return Split(np.flatnonzero(row_part == 0), np.flatnonzero(row_part == 1), np.flatnonzero(row_part == 2), "group")


def chromosome_split(
    chroms: np.ndarray,
    test_chroms: Sequence[str],
    val_chroms: Sequence[str],
    sizes: Sequence[float],
    seed: int,
    *,
    labels: np.ndarray | None = None,
) -> Split:
    """Hold out whole chromosomes: ``test_chroms`` for testing, ``val_chroms`` for validation.

    Without ``val_chroms`` the validation rows are drawn (stratified when ``labels`` are given)
    from the training chromosomes, a share ``sizes[1] / (sizes[0] + sizes[1])`` of them.
    """
    names = np.asarray(chroms).astype(str)
    if not test_chroms:
        raise DataError("split 'chromosome' needs test chromosomes: --test-chroms chr8 chr9 (data.test_chroms)")
    present = set(np.unique(names).tolist())
    for part, wanted in (("test", test_chroms), ("validation", val_chroms)):
        unknown = [c for c in wanted if c not in present]
        if unknown:
            shown = sorted(present)[:12]
            more = "..." if len(present) > 12 else ""
            raise DataError(f"{part} chromosome(s) {unknown} have no rows; the data have {shown}{more}")
    both = set(test_chroms) & set(val_chroms)
    if both:
        raise DataError(f"chromosome(s) {sorted(both)} are in both the test and the validation set")
    test = np.flatnonzero(np.isin(names, list(test_chroms)))
    if val_chroms:
        val = np.flatnonzero(np.isin(names, list(val_chroms)))
        train = np.flatnonzero(~np.isin(names, list(test_chroms) + list(val_chroms)))
        method = "chromosome"
    else:
        rest = np.flatnonzero(~np.isin(names, list(test_chroms)))
        share = sizes[1] / (sizes[0] + sizes[1])
        inner = make_split(len(rest), (1 - share, share, 0.0), "auto", seed, labels=labels[rest] if labels is not None else None)
        train, val = rest[inner.train], rest[inner.val]
        method = f"chromosome (validation: {inner.method} from the training chromosomes)"
    if len(train) == 0:
        raise DataError("the chromosome split leaves no training rows")
    return Split(np.sort(train), np.sort(val), np.sort(test), method)


def ordered_split(n: int, sizes: Sequence[float]) -> Split:
    """The first rows train, the next validate, the last test (e.g. slices 0–15 / 16–19)."""
    n_val, n_test = _counts(n, sizes)
    n_train = n - n_val - n_test
    idx = np.arange(n)
    return Split(idx[:n_train], idx[n_train : n_train + n_val], idx[n_train + n_val :], "ordered")


def predefined_split(parts: np.ndarray) -> Split:
    """Rows assigned by the data's own ``"train"``/``"val"``/``"test"`` labels."""
    p = np.asarray(parts).astype(str)
    unknown = sorted(set(p.tolist()) - {"train", "val", "test"})
    if unknown:
        raise DataError(f"predefined split labels must be train/val/test, got {unknown}")
    train = np.flatnonzero(p == "train")
    if len(train) == 0:
        raise DataError("the predefined split has no training rows")
    return Split(train, np.flatnonzero(p == "val"), np.flatnonzero(p == "test"), "predefined")


class SourceGroups:
    """Rows grouped by the row they were derived from (``LoadedData.sources``).

    Splitting works on one representative per source (its first row, the row read from the
    file) and every derived row then follows its source: a peak and its dinucleotide shuffles
    (or flank / GC-matched negatives) always share a split, whatever the method.
    """

    def __init__(self, sources: np.ndarray) -> None:
        keys = np.asarray(sources).astype(str)
        _, first, inverse = np.unique(keys, return_index=True, return_inverse=True)
        order = np.argsort(first, kind="stable")  # representatives in file order
        rank = np.empty_like(order)
        rank[order] = np.arange(len(order))
        self.rep = first[order]  # (G,) representative row of each source
        self.of_row = rank[inverse]  # (N,) source index of each row
        self.n_rows = len(keys)

    @property
    def n_derived(self) -> int:
        """Rows that are not their source's representative."""
        return self.n_rows - len(self.rep)

    def expand(self, split: Split) -> Split:
        """A split of the representatives → the split of all rows."""
        part = np.full(len(self.rep), -1, dtype=np.int64)
        for code, idx in enumerate((split.train, split.val, split.test)):
            part[idx] = code
        row_part = part[self.of_row]
        method = f"{split.method}, grouped by source ({self.n_derived} derived rows kept with their source)"
        train, val, test = (np.flatnonzero(row_part == c) for c in range(3))
        return Split(train, val, test, method)


def has_derived(sources: np.ndarray | None) -> bool:
    """Whether some rows were derived from others (so splits must group them)."""
    return sources is not None and len(np.unique(np.asarray(sources).astype(str))) < len(sources)


def _take(values: np.ndarray | None, idx: np.ndarray) -> np.ndarray | None:
    return None if values is None else np.asarray(values)[idx]


def make_split(
    n: int,
    sizes: Sequence[float],
    method: str,
    seed: int,
    *,
    labels: np.ndarray | None = None,
    groups: np.ndarray | None = None,
    test_chroms: Sequence[str] = (),
    val_chroms: Sequence[str] = (),
    parts: np.ndarray | None = None,
    sources: np.ndarray | None = None,
) -> Split:
    """Dispatch to the split ``method`` (``auto`` = stratified when class labels are given).

    ``chromosome`` holds out ``test_chroms`` (and ``val_chroms``); ``groups`` are then the
    chromosome of each row. ``ordered`` cuts the rows in file order (train first, then
    validation, then test). ``predefined`` (and ``auto`` when the data bring their own split,
    e.g. MedMNIST files) uses ``parts``, each row's ``"train"``/``"val"``/``"test"``.
    With ``sources`` (``(N,)`` source id of each row) that derive rows from others, every
    method splits the sources and each derived row goes with its source (stratified by the
    source's label; a derived negative follows its source's chromosome).
    """
    if has_derived(sources):
        assert sources is not None
        sg = SourceGroups(sources)
        r = sg.rep
        inner = make_split(
            len(r), sizes, method, seed, labels=_take(labels, r), groups=_take(groups, r),
            test_chroms=test_chroms, val_chroms=val_chroms, parts=_take(parts, r),
        )  # fmt: skip
        return sg.expand(inner)
    if method == "predefined" or (method == "auto" and parts is not None):
        if parts is None:
            raise DataError("split 'predefined' needs data that carry their own split (e.g. MedMNIST NPZ files)")
        return predefined_split(parts)
    if method == "ordered":
        return ordered_split(n, sizes)
    if method == "chromosome":
        if groups is None:
            raise DataError(
                "split 'chromosome' needs the chromosome of each row: interval files, FASTA ids like chr1:100-300, "
                "or a chromosome column (--group-column)"
            )
        return chromosome_split(groups, test_chroms, val_chroms, sizes, seed, labels=labels)
    if method == "scaffold":
        if groups is None:
            raise DataError("split 'scaffold' needs molecules (--data-type molecule): the scaffold of each row")
        return balanced_scaffold_split(groups, sizes, seed)
    if method == "group":
        if groups is None:
            raise DataError("split 'group' needs data.group_column (--group-column)")
        return group_split(groups, sizes, seed)
    if method in ("stratified", "auto") and labels is not None:
        _, counts = np.unique(labels, return_counts=True)
        if counts.min() >= 2:
            return stratified_split(labels, sizes, seed)
        if method == "stratified":
            raise DataError("a stratified split needs at least 2 rows per class")
    elif method == "stratified":
        raise DataError("split 'stratified' needs a single classification target")
    return random_split(n, sizes, seed)


def save_splits(path: Path, splits: dict[str, object]) -> None:
    """Write ``splits.json`` atomically."""
    atomic_write_text(path, json.dumps(splits, indent=1))


def balanced_scaffold_split(groups: np.ndarray, sizes: Sequence[float], seed: int) -> Split:
    """Assign whole scaffold sets to train/val/test.

    Sets larger than half the validation or test size go first (into training while it has
    room), the others follow in a seeded random order, so the big, common scaffolds do not all end
    up in one part by chance (Yang et al., 2019).

    Parameters
    ----------
    groups
        ``(N,)`` scaffold of each row (any hashable labels).
    sizes
        ``(train, val, test)`` fractions.
    seed
        Order of the small scaffold sets.
    """
    n = len(groups)
    n_val, n_test = _counts(n, sizes)
    n_train = n - n_val - n_test
    keys = np.asarray(groups).astype(str)
    uniq, inverse = np.unique(keys, return_inverse=True)
    if len(uniq) < 2:
        raise DataError(f"a scaffold split needs at least 2 distinct scaffolds, found {len(uniq)}")
    sets = [np.flatnonzero(inverse == g) for g in range(len(uniq))]
    big = [s for s in sets if len(s) > n_val / 2 or len(s) > n_test / 2]
    small = [s for s in sets if not (len(s) > n_val / 2 or len(s) > n_test / 2)]
    rng = np.random.default_rng(seed)
    rng.shuffle(big)  # type: ignore[arg-type]
    rng.shuffle(small)  # type: ignore[arg-type]
    parts: dict[str, list[np.ndarray]] = {"train": [], "val": [], "test": []}
    filled = {"train": 0, "val": 0, "test": 0}
    for s in [*big, *small]:
        if filled["train"] + len(s) <= n_train:
            part = "train"
        elif filled["val"] + len(s) <= n_val:
            part = "val"
        else:
            part = "test"
        parts[part].append(s)
        filled[part] += len(s)
    train, val, test = (
        np.sort(np.concatenate(parts[p])) if parts[p] else np.zeros(0, np.int64) for p in ("train", "val", "test")
    )
    if len(train) == 0:
        raise DataError("the scaffold split leaves no training rows")
    return Split(train.astype(np.int64), val.astype(np.int64), test.astype(np.int64), "scaffold (balanced Bemis-Murcko)")
