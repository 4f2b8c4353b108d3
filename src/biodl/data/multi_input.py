"""Several named inputs per example (DeepCpG-style multi-input models).

An experiment names its inputs in ``data.inputs`` (``{dna: {type: dna-window}, cpg: {type: cpg-neighbours}}``).
Each input is one :class:`InputPart`: either a registered *input type* (:data:`INPUT_TYPES`) computed for each
example from the example's site (CpG neighbours, a genome window, BED overlaps), or a registered *data type*
(:data:`biodl.data.base.DATA_TYPES`) that reads its own files; those are aligned with the first input by
example id (an id present in one input but not another is an error with the counts and the first ids).

Every part keeps its own preprocessing, fitted on the training rows only. The rest of the pipeline sees one
float32 array ``(N, F)``: the parts' rows flattened side by side (:class:`Layout`); the network gets the named
shapes (``model.inputs``, from :meth:`MultiInput.model_params`) and cuts its input back into one tensor per input.
A new multi-input task is one new registered :class:`InputPart` (or data type).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from biodl.config import DataConfig, InputSpec
from biodl.data.base import DATA_TYPES, LoadedData, Modality
from biodl.errors import DataError
from biodl.registry import Registry


@dataclass
class Sites:
    """Genomic positions of the examples, and what was observed around them.

    Attributes
    ----------
    chrom
        ``(N,)`` chromosome names (without a ``chr`` prefix).
    pos
        ``(N,)`` 1-based positions (int64).
    cells
        Observed tables, one per cell: ``(chrom (M,), pos (M,), state (M,))``, each sorted by position.
    """

    chrom: np.ndarray
    pos: np.ndarray
    cells: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = field(default_factory=list)


class InputPart(ABC):
    """One named input: raw rows for the examples, preprocessing fitted on training rows, model rows."""

    #: registered name (``data.inputs.<name>.type``)
    type_name: ClassVar[str] = ""

    def __init__(self, name: str, spec: InputSpec, cfg: DataConfig) -> None:
        self.name, self.spec, self.cfg = name, spec, cfg
        self.raw_shape: tuple[int, ...] = ()
        self.shape: tuple[int, ...] = ()

    @abstractmethod
    def build(self, ids: np.ndarray, sites: Sites | None) -> np.ndarray:
        """Raw rows ``(N, *raw_shape)`` for the examples ``ids`` (in that order)."""

    def fit(self, X: np.ndarray) -> None:
        """Fit preprocessing on the training rows ``(n, *raw_shape)``. Default: nothing."""
        return None

    def transform(self, X: np.ndarray) -> np.ndarray:
        """Raw rows → model rows ``(N, *shape)`` (float32). Default: as they are."""
        return X.astype(np.float32, copy=False)

    @abstractmethod
    def parse(self, value: Any, where: str) -> np.ndarray:
        """One request record's value of this input as one raw row ``raw_shape`` (DataError naming ``where``)."""

    def baseline_features(self, X: np.ndarray) -> np.ndarray:
        """2-D features ``(N, F)`` of the model rows for the classical baseline."""
        return X.reshape(len(X), -1)

    def state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        """Fitted preprocessing ``(json_meta, arrays)``."""
        return {}, {}

    def load_state(self, meta: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
        """Restore :meth:`state`."""
        return None


INPUT_TYPES: Registry[type[InputPart]] = Registry("input type")


class DataTypeInput(InputPart):
    """An input read by a registered data type from its own files (``spec.path``), aligned by example id."""

    def __init__(self, name: str, spec: InputSpec, cfg: DataConfig) -> None:
        super().__init__(name, spec, cfg)
        sub = cfg.model_copy(update={"type": spec.type, "path": list(spec.path) or list(cfg.path), "inputs": {}})
        self.modality: Modality = DATA_TYPES[spec.type](sub)
        self.loaded: LoadedData | None = None

    def read(self, require_targets: bool, classes: list[str] | None = None) -> LoadedData:
        """Read this input's files with its data type."""
        self.loaded = self.modality.load(list(self.modality.cfg.path), require_targets=require_targets, classes=classes)
        return self.loaded

    def build(self, ids: np.ndarray, sites: Sites | None) -> np.ndarray:
        data = self.loaded if self.loaded is not None else self.read(False)
        order = align_ids(ids, np.asarray(data.ids).astype(str), self.name, ", ".join(self.modality.cfg.path))
        X = np.asarray(data.X)[order]
        self.raw_shape = tuple(X.shape[1:])
        return X

    def fit(self, X: np.ndarray) -> None:
        self.modality.fit(X)

    def transform(self, X: np.ndarray) -> np.ndarray:
        return np.asarray(self.modality.transform(X), dtype=np.float32)

    def parse(self, value: Any, where: str) -> np.ndarray:
        try:
            return np.asarray(self.modality.parse_inputs([value]))[0]
        except DataError as exc:
            raise DataError(f"{where}: input {self.name!r}: {exc}") from None

    def baseline_features(self, X: np.ndarray) -> np.ndarray:
        return self.modality.baseline_features(X)

    def state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        return self.modality.state()

    def load_state(self, meta: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
        self.modality.load_state(meta, arrays)


def align_ids(ids: np.ndarray, other: np.ndarray, name: str, source: str) -> np.ndarray:
    """Row indices of ``other`` in the order of ``ids``.

    Raises
    ------
    DataError
        Duplicate ids, or ids present in one input but not the other (the counts and the first ids).
    """
    for which, values in (("the first input", ids), (f"input {name!r}", other)):
        uniq, counts = np.unique(values, return_counts=True)
        if (counts > 1).any():
            where = source if which != "the first input" else "inputs"
            raise DataError(f"{where}: {which}: duplicate example id {str(uniq[counts > 1][0])!r}")
    index = {v: i for i, v in enumerate(other.tolist())}
    missing = [v for v in ids.tolist() if v not in index]
    have = set(ids.tolist())
    extra = [v for v in other.tolist() if v not in have]
    if missing or extra:
        raise DataError(
            f"{source}: input {name!r}: {len(missing)} example id(s) of the first input missing here "
            f"(first: {', '.join(map(str, missing[:3])) or '-'}), {len(extra)} id(s) only here "
            f"(first: {', '.join(map(str, extra[:3])) or '-'}); every input needs the same examples"
        )
    return np.array([index[v] for v in ids.tolist()], dtype=np.int64)


@dataclass
class Layout:
    """Where each named input sits in the flat rows ``(N, F)``."""

    names: list[str]
    shapes: list[tuple[int, ...]]

    def sizes(self) -> list[int]:
        return [int(np.prod(s)) if s else 1 for s in self.shapes]

    def pack(self, parts: list[np.ndarray]) -> np.ndarray:
        """Flatten and join the parts' rows ``(N, *shape_i)`` into ``(N, F)`` float32."""
        n = len(parts[0]) if parts else 0
        return np.concatenate([np.asarray(p, dtype=np.float32).reshape(n, -1) for p in parts], axis=1)

    def unpack(self, X: np.ndarray) -> list[np.ndarray]:
        """The parts' rows back from ``(N, F)``."""
        out, start = [], 0
        for shape, size in zip(self.shapes, self.sizes(), strict=True):
            out.append(X[:, start : start + size].reshape(len(X), *shape))
            start += size
        if start != X.shape[1]:
            raise DataError(
                f"multi-input rows have {X.shape[1]} values, the inputs {dict(zip(self.names, self.shapes))} need {start}"
            )
        return out


def make_part(name: str, spec: InputSpec, cfg: DataConfig) -> InputPart:
    """The input part for ``spec.type``: a registered input type, else a data type reading its own files."""
    if spec.type in INPUT_TYPES:
        return INPUT_TYPES[spec.type](name, spec, cfg)
    if spec.type in DATA_TYPES:
        return DataTypeInput(name, spec, cfg)
    known = sorted(set(INPUT_TYPES.names()) | set(DATA_TYPES.names()))
    raise DataError(f"data.inputs.{name}.type: unknown input type {spec.type!r} (known: {', '.join(known)})")


@DATA_TYPES.register("multi")
class MultiInput(Modality):
    """Several named inputs per example (``data.inputs``); the first one's files bring ids and targets."""

    name: ClassVar[str] = "multi"
    input_hint = "a record {input name: that input's value} with every input"

    def __init__(self, cfg: DataConfig) -> None:
        super().__init__(cfg)
        specs = self.input_specs()
        if not specs:
            raise DataError("data.inputs: name at least one input ({name: {type, path}})")
        self.parts: list[InputPart] = [make_part(n, s, cfg) for n, s in specs.items()]
        self.raw_layout = Layout([p.name for p in self.parts], [])
        self.layout = Layout([p.name for p in self.parts], [])

    def input_specs(self) -> dict[str, InputSpec]:
        """The named inputs (``data.inputs``; subclasses add defaults)."""
        return dict(self.cfg.inputs)

    # ------------------------------------------------------------------ reading
    def load(self, paths: list[str], *, require_targets: bool = True, classes: list[str] | None = None) -> LoadedData:
        first = self.parts[0]
        if not isinstance(first, DataTypeInput):
            raise DataError(
                f"data.inputs: the first input ({first.name!r}) must read files with a data type (it brings the examples)"
            )
        files = list(paths) or list(first.spec.path)  # --data-path (predict, evaluate) replaces the first input's files
        if not files:
            raise DataError(f"data.inputs.{first.name}: no files (give its path, or --data-path)")
        first.modality.cfg = first.modality.cfg.model_copy(update={"path": files})
        data = first.read(require_targets, classes)
        ids = np.asarray(data.ids).astype(str)
        data.X = self.build_rows(ids, None)
        data.summary["inputs"] = {p.name: p.type_name or p.spec.type for p in self.parts}
        return data

    def build_rows(self, ids: np.ndarray, sites: Sites | None) -> np.ndarray:
        """Every part's raw rows for ``ids``, flattened side by side (sets the raw layout)."""
        raws = [p.build(ids, sites) for p in self.parts]
        for p, r in zip(self.parts, raws, strict=True):
            p.raw_shape = tuple(r.shape[1:])
        self.raw_layout = Layout([p.name for p in self.parts], [p.raw_shape for p in self.parts])
        return self.raw_layout.pack(raws)

    # ------------------------------------------------------------------ preprocessing
    def fit(self, X_train: np.ndarray) -> None:
        for p, raw in zip(self.parts, self.raw_layout.unpack(X_train), strict=True):
            p.fit(raw)

    def transform(self, X: np.ndarray) -> np.ndarray:
        out = [p.transform(raw) for p, raw in zip(self.parts, self.raw_layout.unpack(np.asarray(X)), strict=True)]
        for p, o in zip(self.parts, out, strict=True):
            p.shape = tuple(o.shape[1:])
        self.layout = Layout([p.name for p in self.parts], [p.shape for p in self.parts])
        return self.layout.pack(out)

    def model_params(self) -> dict[str, Any]:
        return {"inputs": {p.name: {"type": p.type_name or p.spec.type, "shape": list(p.shape)} for p in self.parts}}

    def baseline_features(self, X_model: np.ndarray) -> np.ndarray:
        parts = self.layout.unpack(np.asarray(X_model))
        return np.concatenate([p.baseline_features(x) for p, x in zip(self.parts, parts, strict=True)], axis=1).astype(np.float32)

    def parse_inputs(self, inputs: list[Any]) -> np.ndarray:
        names = [p.name for p in self.parts]
        rows: list[list[np.ndarray]] = [[] for _ in self.parts]
        for i, rec in enumerate(inputs):
            if not isinstance(rec, dict):
                raise DataError(f"record {i}: expected an object with the inputs {', '.join(names)}, got {type(rec).__name__}")
            for j, p in enumerate(self.parts):
                if p.name not in rec:
                    raise DataError(f"record {i}: input {p.name!r} missing (the model takes: {', '.join(names)})")
                row = np.asarray(p.parse(rec[p.name], f"record {i}"), dtype=np.float32)
                if p.raw_shape and tuple(row.shape) != tuple(p.raw_shape):
                    raise DataError(f"record {i}: input {p.name!r}: shape {list(row.shape)}, expected {list(p.raw_shape)}")
                rows[j].append(row)
        return self.raw_layout.pack(
            [np.stack(r) if r else np.zeros((0, *p.raw_shape)) for r, p in zip(rows, self.parts, strict=True)]
        )

    # ------------------------------------------------------------------ bundle
    def columns(self) -> dict[str, Any]:
        return {"inputs": {p.name: p.type_name or p.spec.type for p in self.parts}}

    def state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        meta: dict[str, Any] = {"inputs": {}}
        arrays: dict[str, np.ndarray] = {}
        for p in self.parts:
            m, a = p.state()
            meta["inputs"][p.name] = {"raw_shape": list(p.raw_shape), "shape": list(p.shape), "state": m}
            arrays.update({f"{p.name}.{k}": v for k, v in a.items()})
        return meta, arrays

    def load_state(self, meta: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
        stored = meta.get("inputs", {})
        for p in self.parts:
            if p.name not in stored:
                raise DataError(f"the bundle has no fitted state for input {p.name!r} (it has: {', '.join(stored)})")
            s = stored[p.name]
            p.raw_shape, p.shape = tuple(s["raw_shape"]), tuple(s["shape"])
            prefix = f"{p.name}."
            p.load_state(s["state"], {k.removeprefix(prefix): v for k, v in arrays.items() if k.startswith(prefix)})
        self.raw_layout = Layout([p.name for p in self.parts], [p.raw_shape for p in self.parts])
        self.layout = Layout([p.name for p in self.parts], [p.shape for p in self.parts])

    def for_fold(self) -> Modality:
        fresh = type(self)(self.cfg)
        fresh.raw_layout = self.raw_layout
        for new, old in zip(fresh.parts, self.parts, strict=True):
            new.raw_shape = old.raw_shape
        return fresh
