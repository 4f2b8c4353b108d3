"""CpG methylation (``--data-type cpg``): one example per CpG site, one binary target per cell (DeepCpG).

Each ``--data-path`` file is one cell: a (gzipped) table ``chromosome  position  state`` (tab-separated, no
header, 1-based positions, state 0/1), as DeepCpG reads them. The examples are the union of the positions over
the cells; the targets are ``(N, cells)`` with ``NaN`` where a cell has no call (left out of loss and metrics).
Cells are matched by file order; their names are ``data.cpg.cell_names`` or the file stems without a trailing
``_chrN``.

The inputs (:mod:`biodl.data.multi_input`; default ``cpg`` and, with ``--genome``, ``dna``; with
``--annotations``, ``annotation``):

``cpg-neighbours``
    For every cell, the states and distances of the ``k`` nearest *observed* CpGs on each side of the site (the
    site itself excluded), ``(cells, 2k, 3)`` after preprocessing: state (0.5 where no neighbour), standardised
    log distance, observed flag.
``dna-window``
    The ``data.cpg.window`` bases centred on the CpG from ``--genome`` (one-hot ``(4, window)``).
``bed-overlaps``
    One 0/1 feature per BED file (CpG islands, exons): whether the site lies in one of its regions.

Split: neighbouring CpGs share their context, so the default split (``split: auto``) holds out whole contiguous
genomic blocks of ``data.cpg.block_size`` bp (``split: group`` on blocks); ``split: chromosome`` holds out chromosomes.
"""

from __future__ import annotations

import gzip
import re
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from biodl.config import DataConfig, InputSpec
from biodl.data.base import DATA_TYPES, LoadedData
from biodl.data.columns import is_number
from biodl.data.multi_input import INPUT_TYPES, InputPart, MultiInput, Sites
from biodl.data.targets import Targets
from biodl.errors import DataError

CellTable = tuple[np.ndarray, np.ndarray, np.ndarray]


def _open_text(path: str) -> Any:
    p = Path(path)
    if not p.is_file():
        raise DataError(f"{path}: file not found")
    with open(p, "rb") as fh:
        gz = fh.read(2) == b"\x1f\x8b"
    return gzip.open(p, "rt") if gz else open(p)


def norm_chrom(name: str) -> str:
    """Chromosome name without a ``chr`` prefix (``chr18`` and ``18`` match)."""
    return name[3:] if name.lower().startswith("chr") else name


def read_cpg_table(path: str) -> tuple[CellTable, dict[str, Any]]:
    """One cell's calls, sorted by chromosome and position.

    Returns ``((chrom, pos, state), facts)``; ``facts["sorted"]`` is true when the rows had to be sorted.

    Raises
    ------
    DataError
        A row without 3 columns, a position that is not a positive integer, a state other than 0/1, a
        duplicate position (naming the file, row and field).
    """
    chroms: list[str] = []
    pos: list[int] = []
    state: list[float] = []
    header = False
    with _open_text(path) as fh:
        for row, line in enumerate(fh, start=1):
            text = line.rstrip("\r\n")
            if not text.strip() or text.startswith("#"):
                continue
            fields = text.split("\t") if "\t" in text else text.split()
            if len(fields) != 3:
                raise DataError(f"{path}: row {row}: {len(fields)} columns (expected 3: chromosome, position, state)")
            try:
                p = int(fields[1])
            except ValueError:
                if row == 1 and not is_number(fields[2]):
                    header = True  # a header line
                    continue
                raise DataError(f"{path}: row {row}: field 'position': {fields[1]!r} is not an integer") from None
            if p < 1:
                raise DataError(f"{path}: row {row}: field 'position': {p} (1-based positions expected)")
            v = fields[2].strip()
            if v not in ("0", "1") and not (is_number(v) and float(v) in (0.0, 1.0)):
                raise DataError(f"{path}: row {row}: field 'state': {v!r} (expected a binary state, 0 or 1)")
            chroms.append(norm_chrom(fields[0].strip()))
            pos.append(p)
            state.append(float(v))
    if not pos:
        raise DataError(f"{path}: no CpG rows")
    c = np.array(chroms, dtype=object).astype(str)
    p_arr = np.array(pos, dtype=np.int64)
    s_arr = np.array(state, dtype=np.float32)
    order = np.lexsort((p_arr, c))
    was_sorted = bool(np.array_equal(order, np.arange(len(order))))
    c, p_arr, s_arr = c[order], p_arr[order], s_arr[order]
    dup = np.flatnonzero((c[1:] == c[:-1]) & (p_arr[1:] == p_arr[:-1]))
    if len(dup):
        j = int(order[dup[0] + 1])  # the later row in the file
        rows = j + 1 + int(header)
        raise DataError(
            f"{path}: row {rows}: field 'position': duplicate position {c[dup[0]]}:{p_arr[dup[0]]} (one call per CpG expected)"
        )
    return (c, p_arr, s_arr), {"rows": len(p_arr), "sorted": not was_sorted, "header": header}


def cell_names(paths: list[str], given: list[str] | None) -> list[str]:
    """``given`` (one per file), else each file's stem without extensions and a trailing ``_chrN``."""
    if given is not None:
        if len(given) != len(paths):
            raise DataError(f"--cell-names: {len(given)} name(s) for {len(paths)} cell file(s)")
        return list(given)
    names = []
    for p in paths:
        stem = Path(p).name
        stem = re.sub(r"(\.(tsv|txt|bed|csv|gz|bz2))+$", "", stem, flags=re.IGNORECASE)
        stem = re.sub(r"[_.-]chr[0-9A-Za-z]+$", "", stem)
        names.append(stem)
    if len(set(names)) != len(names):
        raise DataError(f"cell files give the same name twice ({', '.join(names)}); name them with --cell-names")
    return names


def neighbour_rows(sites: Sites, k: int, max_distance: int) -> np.ndarray:
    """States and distances of the ``k`` nearest observed CpGs on each side, per cell.

    Returns
    -------
    np.ndarray
        ``(N, cells, 2k, 2)`` float32: ``[..., 0]`` state, ``[..., 1]`` distance in bp (capped at
        ``max_distance``); ``NaN`` where a side has fewer than ``k`` observed CpGs. Columns ``0..k-1`` are the
        left neighbours from far to near, ``k..2k-1`` the right ones from near to far. The site itself never
        counts as its own neighbour.
    """
    n = len(sites.pos)
    out = np.full((n, len(sites.cells), 2 * k, 2), np.nan, dtype=np.float32)
    for ci, (cc, cp, cs) in enumerate(sites.cells):
        for ch in np.unique(sites.chrom):
            rows = np.flatnonzero(sites.chrom == ch)
            sel = cc == ch
            P, S = cp[sel], cs[sel]
            if not len(P):
                continue
            x = sites.pos[rows]
            left = np.searchsorted(P, x, side="left")  # P[left-1] < x
            right = np.searchsorted(P, x, side="right")  # P[right] > x
            for o in range(1, k + 1):
                for idx, col in ((left - o, k - o), (right + o - 1, k + o - 1)):
                    ok = (idx >= 0) & (idx < len(P))
                    j = idx[ok]
                    r = rows[ok]
                    out[r, ci, col, 0] = S[j]
                    out[r, ci, col, 1] = np.minimum(np.abs(P[j] - x[ok]), max_distance)
    return out


@INPUT_TYPES.register("cpg-neighbours")
class CpgNeighbours(InputPart):
    """Per cell, states and distances of the ``k`` nearest observed CpGs on each side (DeepCpG's CpG module)."""

    type_name = "cpg-neighbours"

    def __init__(self, name: str, spec: InputSpec, cfg: DataConfig) -> None:
        super().__init__(name, spec, cfg)
        self.mean, self.std = 0.0, 1.0

    def build(self, ids: np.ndarray, sites: Sites | None) -> np.ndarray:
        if sites is None or not sites.cells:
            raise DataError(f"input {self.name!r} (cpg-neighbours) needs CpG tables (--data-type cpg)")
        return neighbour_rows(sites, self.cfg.cpg.k, self.cfg.cpg.max_distance)

    def fit(self, X: np.ndarray) -> None:
        d = X[..., 1]
        d = np.log1p(d[~np.isnan(d)])
        if d.size:
            self.mean, self.std = float(d.mean()), float(d.std()) or 1.0

    def transform(self, X: np.ndarray) -> np.ndarray:
        X = np.asarray(X, dtype=np.float32)
        observed = ~np.isnan(X[..., 0])
        state = np.where(observed, X[..., 0], 0.5)
        d = np.where(observed, X[..., 1], float(self.cfg.cpg.max_distance))
        dist = (np.log1p(d) - self.mean) / self.std
        return np.stack([state, dist, observed.astype(np.float32)], axis=-1).astype(np.float32)

    def baseline_features(self, X: np.ndarray) -> np.ndarray:
        """``(N, cells)``: the mean observed neighbouring state of each cell (0.5 when none was observed)."""
        obs = X[..., 2]
        total = obs.sum(axis=2)
        mean = (X[..., 0] * obs).sum(axis=2) / np.maximum(total, 1.0)
        return np.where(total > 0, mean, 0.5).astype(np.float32)

    def parse(self, value: Any, where: str) -> np.ndarray:
        shape = self.raw_shape[:2]
        if not isinstance(value, dict) or "state" not in value or "distance" not in value:
            raise DataError(
                f"{where}: input {self.name!r}: expected {{'state': [[...]], 'distance': [[...]]}}, "
                f"{shape[0]} cells x {shape[1]} neighbours (null = none)"
            )
        parts = []
        for key in ("state", "distance"):
            try:
                arr = np.array([[np.nan if v is None else float(v) for v in row] for row in value[key]], dtype=np.float32)
            except (TypeError, ValueError):
                raise DataError(f"{where}: input {self.name!r}: field {key!r}: numbers or null expected") from None
            if arr.shape != tuple(shape):
                raise DataError(f"{where}: input {self.name!r}: field {key!r}: shape {list(arr.shape)}, expected {list(shape)}")
            parts.append(arr)
        return np.stack(parts, axis=-1)

    def state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        return {"k": self.cfg.cpg.k, "log_distance_mean": self.mean, "log_distance_std": self.std}, {}

    def load_state(self, meta: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
        self.mean, self.std = float(meta["log_distance_mean"]), float(meta["log_distance_std"])


_BASES = np.full(256, 4, dtype=np.uint8)
for _i, _b in enumerate(b"ACGT"):
    _BASES[_b] = _i
    _BASES[_b + 32] = _i


@INPUT_TYPES.register("dna-window")
class DnaWindow(InputPart):
    """The DNA window centred on each site, from the genome FASTA (``--genome``); one-hot ``(4, window)``."""

    type_name = "dna-window"

    def build(self, ids: np.ndarray, sites: Sites | None) -> np.ndarray:
        from biodl.data.sequence.genome import Genome

        if sites is None:
            raise DataError(f"input {self.name!r} (dna-window) needs genomic sites (--data-type cpg)")
        path = self.spec.path[0] if self.spec.path else self.cfg.sequence.genome
        if not path:
            raise DataError(f"input {self.name!r} (dna-window) needs a genome FASTA (--genome)")
        genome = Genome(path)
        names = {norm_chrom(c): c for c in genome.contigs}
        w = self.cfg.cpg.window
        out = np.full((len(sites.pos), w), 4, dtype=np.uint8)
        for ch in np.unique(sites.chrom):
            if ch not in names:
                raise DataError(
                    f"{path}: no contig {ch!r} (or chr{ch}) for the CpG sites (contigs: {', '.join(genome.contigs[:5])})"
                )
            seq = _BASES[genome.contig(names[ch])]
            rows = np.flatnonzero(sites.chrom == ch)
            start = sites.pos[rows] - 1 - w // 2
            idx = start[:, None] + np.arange(w)[None, :]
            ok = (idx >= 0) & (idx < len(seq))
            vals = np.full(idx.shape, 4, dtype=np.uint8)
            vals[ok] = seq[idx[ok]]
            out[rows] = vals
        genome.close()
        return out

    def transform(self, X: np.ndarray) -> np.ndarray:
        codes = np.asarray(X).astype(np.int64)
        onehot = np.zeros((len(codes), 5, codes.shape[1]), dtype=np.float32)
        np.put_along_axis(onehot, codes[:, None, :], 1.0, axis=1)
        return onehot[:, :4]

    def baseline_features(self, X: np.ndarray) -> np.ndarray:
        return X.mean(axis=2)  # base composition of the window

    def parse(self, value: Any, where: str) -> np.ndarray:
        w = self.cfg.cpg.window
        if not isinstance(value, str) or len(value) != w:
            got = f"{len(value)} bases" if isinstance(value, str) else type(value).__name__
            raise DataError(f"{where}: input {self.name!r}: a DNA string of {w} bases expected, got {got}")
        return _BASES[np.frombuffer(value.encode("ascii", "replace"), dtype=np.uint8)].astype(np.float32)


@INPUT_TYPES.register("bed-overlaps")
class BedOverlaps(InputPart):
    """One 0/1 feature per BED file (``path``, default ``data.cpg.annotations``): the site lies in one of its regions."""

    type_name = "bed-overlaps"

    def files(self) -> list[str]:
        return list(self.spec.path) or list(self.cfg.cpg.annotations)

    def build(self, ids: np.ndarray, sites: Sites | None) -> np.ndarray:
        if sites is None:
            raise DataError(f"input {self.name!r} (bed-overlaps) needs genomic sites (--data-type cpg)")
        files = self.files()
        if not files:
            raise DataError(f"input {self.name!r} (bed-overlaps) needs BED files (path, or --annotations)")
        out = np.zeros((len(sites.pos), len(files)), dtype=np.float32)
        for j, f in enumerate(files):
            regions = read_bed(f)
            for ch in np.unique(sites.chrom):
                if ch not in regions:
                    continue
                starts, ends = regions[ch]
                rows = np.flatnonzero(sites.chrom == ch)
                x = sites.pos[rows] - 1  # 0-based, BED half-open
                i = np.searchsorted(starts, x, side="right") - 1
                inside = (i >= 0) & (x < ends[np.maximum(i, 0)])
                out[rows, j] = inside
        return out

    def parse(self, value: Any, where: str) -> np.ndarray:
        n = len(self.files())
        if not isinstance(value, (list, tuple)) or len(value) != n or any(v not in (0, 1, True, False) for v in value):
            raise DataError(f"{where}: input {self.name!r}: a list of {n} 0/1 overlaps expected ({', '.join(self.files())})")
        return np.asarray(value, dtype=np.float32)

    def state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        return {"files": [Path(f).name for f in self.files()]}, {}


def read_bed(path: str) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Merged regions of a BED file per chromosome: ``{chrom: (starts, ends)}`` sorted, 0-based half-open."""
    by: dict[str, list[tuple[int, int]]] = {}
    with _open_text(path) as fh:
        for row, line in enumerate(fh, start=1):
            if not line.strip() or line.startswith(("#", "track", "browser")):
                continue
            f = line.split()
            if len(f) < 3:
                raise DataError(f"{path}: row {row}: {len(f)} columns (BED needs chrom, start, end)")
            try:
                s, e = int(f[1]), int(f[2])
            except ValueError:
                raise DataError(f"{path}: row {row}: field 'start'/'end': integers expected, got {f[1]!r} {f[2]!r}") from None
            by.setdefault(norm_chrom(f[0]), []).append((s, e))
    out = {}
    for ch, iv in by.items():
        iv.sort()
        merged: list[list[int]] = []
        for s, e in iv:
            if merged and s <= merged[-1][1]:
                merged[-1][1] = max(merged[-1][1], e)
            else:
                merged.append([s, e])
        arr = np.array(merged, dtype=np.int64)
        out[ch] = (arr[:, 0], arr[:, 1])
    return out


@DATA_TYPES.register("cpg")
class CpgData(MultiInput):
    """Single-cell CpG methylation: one file per cell, one example per CpG site, one masked binary target per cell."""

    name: ClassVar[str] = "cpg"
    input_hint = "a record {'cpg': {'state': [[...]], 'distance': [[...]]}, ...} with every input of the model"

    def __init__(self, cfg: DataConfig) -> None:
        super().__init__(cfg)
        self.cells: list[str] | None = None

    def input_specs(self) -> dict[str, InputSpec]:
        if self.cfg.inputs:
            return dict(self.cfg.inputs)
        specs = {"cpg": InputSpec(type="cpg-neighbours")}
        if self.cfg.sequence.genome:
            specs["dna"] = InputSpec(type="dna-window")
        if self.cfg.cpg.annotations:
            specs["annotation"] = InputSpec(type="bed-overlaps")
        return specs

    def load(self, paths: list[str], *, require_targets: bool = True, classes: list[str] | None = None) -> LoadedData:
        if self.cfg.task not in (None, "classification"):
            raise DataError(f"cpg: one binary state per cell is a classification task, not {self.cfg.task!r}")
        names = cell_names(paths, self.cfg.cpg.cell_names)
        if self.cells is not None and len(paths) != len(self.cells):
            raise DataError(
                f"the model predicts {len(self.cells)} cells ({', '.join(self.cells)}); {len(paths)} cell file(s) given "
                "(cells are matched by file order)"
            )
        tables, facts = [], {}
        for p, name in zip(paths, names, strict=True):
            table, f = read_cpg_table(p)
            if f["sorted"]:
                print(f"note: {p}: rows were not sorted by position; sorted")
            tables.append(table)
            facts[name] = {"file": p, "calls": f["rows"], "methylated": float(table[2].mean()), "sorted": f["sorted"]}
        chrom = np.concatenate([t[0] for t in tables])
        pos = np.concatenate([t[1] for t in tables])
        key = np.char.add(np.char.add(chrom.astype(str), ":"), pos.astype(str))
        ids, first = np.unique(key, return_index=True)
        s_chrom, s_pos = chrom[first], pos[first]
        order = np.lexsort((s_pos, s_chrom))
        ids, s_chrom, s_pos = ids[order], s_chrom[order], s_pos[order]
        index = {v: i for i, v in enumerate(ids.tolist())}
        y = np.full((len(ids), len(tables)), np.nan, dtype=np.float32)
        for c, (tc, tp, ts) in enumerate(tables):
            rows = [index[f"{a}:{b}"] for a, b in zip(tc.tolist(), tp.tolist(), strict=True)]
            y[rows, c] = ts
        sites = Sites(s_chrom, s_pos, tables)
        X = self.build_rows(ids, sites)
        blocks = np.char.add(np.char.add(s_chrom.astype(str), ":"), (s_pos // self.cfg.cpg.block_size).astype(str))
        groups = s_chrom.astype(object) if self.cfg.split == "chromosome" else blocks.astype(object)
        folds = None
        if self.cfg.cv_column is not None:  # the tables have no fold column: folds are whole chromosomes
            if self.cfg.cv_column not in ("chromosome", "chrom"):
                raise DataError(
                    f"--cv-column {self.cfg.cv_column!r}: CpG tables have the columns chromosome, position, state; "
                    "use --cv-column chromosome (one fold per chromosome) or --cv K (folds of whole genomic blocks)"
                )
            folds = s_chrom.astype(object)
        summary = {
            "files": list(paths),
            "rows": len(ids),
            "cells": facts,
            "inputs": {p.name: p.type_name or p.spec.type for p in self.parts},
            "sorted_files": [p for p, n in zip(paths, names, strict=True) if facts[n]["sorted"]],
        }
        return LoadedData(
            X=X,
            targets=Targets(y=y, kind="binary", names=names, classes=None),
            ids=ids.astype(object),
            groups=groups,
            summary=summary,
            folds=folds,
        )

    def state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        meta, arrays = super().state()
        meta["cells"] = list(self.cells or cell_names(self.cfg.path, self.cfg.cpg.cell_names))
        return meta, arrays

    def load_state(self, meta: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
        super().load_state(meta, arrays)
        self.cells = list(meta.get("cells", [])) or None
