"""The ``molecule`` data type: SMILES tables and SD files → fingerprints, descriptors or graphs.

Inputs (``--data-type molecule``):

* CSV/TSV (optionally gzipped) with a SMILES column (``--smiles-column``; default a column called
  ``smiles``/``SMILES``, else the first) and target columns (default: every other column; blank =
  missing label, masked in the loss);
* SD files (``.sdf``) with property fields as targets (``--target-columns SOL``).

Raw arrays are canonical SMILES ``(N,)`` (after the fragment rule of
:mod:`biodl.data.molecule.parse`); :meth:`MoleculeModality.transform` featurises them:
``(N, D)`` float32 for vector featurisers, ``(N, R, W)`` packed graphs with ``graph``,
``(N, 4, S, S)`` images with ``chemception`` (:mod:`biodl.data.molecule.image`; molecules wider
than the grid are drawn scaled down and listed in ``summary["changed_rows"]``, or refused with
``grid_oversize: error``).

Invalid molecules are an error naming the rows, unless ``--skip-invalid``: then they are dropped,
counted in the summary (``invalid_skipped``) and listed in ``summary["skipped_rows"]`` (the
experiment writes them to ``skipped_rows.csv``).
"""

from __future__ import annotations

import sys
from typing import Any, ClassVar, Literal

import numpy as np
import pandas as pd

from biodl.config import DataConfig, MoleculeOptions
from biodl.data.base import DATA_TYPES, REFIT_ROWS, BatchAugment, LoadedData, Modality
from biodl.data.columns import shorten
from biodl.data.molecule.featurizers import FEATURIZERS, Featurizer, MorganCounts, split_featurizers
from biodl.data.molecule.graph import MIN_CAPACITY, GraphLayout, atom_type_counts, graph_size, pack_graphs, unpack_descriptors
from biodl.data.molecule.image import GridSpec, RandomRotation, draw_many, oversized
from biodl.data.molecule.parse import ParseReport, canonical_smiles, mols_from_smiles, parse_smiles, quiet_rdkit
from biodl.data.molecule.readers import is_sdf, read_molecules, valid_mask
from biodl.data.molecule.scaffold import scaffolds
from biodl.data.targets import default_targets, encode_targets
from biodl.errors import ConfigError, DataError

#: The features both ``auto`` candidates read: graphs whose descriptor slots hold Morgan counts + RDKit descriptors.
BLEND_FEATURIZER = ("graph", "morgan_counts", "rdkit2d")


@DATA_TYPES.register("molecule")
class MoleculeModality(Modality):
    """Small molecules given as SMILES or SDF records.

    Parameters
    ----------
    cfg
        The data section; ``cfg.molecule`` holds the molecule options.
    """

    name: ClassVar[str] = "molecule"
    input_hint: ClassVar[str] = "a SMILES string"
    #: ``model.name: auto`` (the default): five dense networks on Morgan counts + RDKit 2-D descriptors, then
    #: chemprop's recipe, a D-MPNN with the normalised RDKit 2-D descriptors as extra features. Both read the same
    #: packed graphs (whose descriptor slots hold the fingerprint and the descriptors; the D-MPNN reads the
    #: descriptors only), so their average is one network, for regression the run's model unless validation
    #: favours one family by more than a standard error (:attr:`blend_prior`, docs/defaults.md). Multi-task
    #: binary classification keeps each network's epoch with the best mean validation AUROC (``train.monitor:
    #: auto``), as chemprop does, not the lowest validation loss (docs/defaults.md: SIDER, ClinTox, Tox21).
    refit_rows: ClassVar[int] = REFIT_ROWS
    portfolio: ClassVar[tuple[dict[str, object], ...]] = (
        {
            "name": "ffn",
            "train": {"ensemble_size": 5, "monitor": "auto"},
            "data": {"molecule": {"featurizer": list(BLEND_FEATURIZER)}},
        },
        {
            # three networks averaged ("ensembles for small sets"): better validation on 8 of 9 development runs
            # (benchmarks/results/dmpnn_screen.md, docs/defaults.md); on large sets the time budget's fair
            # share stops the ensemble after its first member or two
            "name": "dmpnn",
            "extra_features": ["rdkit2d"],
            "train": {"monitor": "auto", "ensemble_size": 3},
            "data": {"molecule": {"featurizer": list(BLEND_FEATURIZER)}},
        },
    )
    #: ``train.portfolio_blend: auto`` keeps the mean of the two families for regression unless validation shows
    #: the better one ahead by more than one standard error: the mean was the better model on the held-out rows
    #: of all 8 ESOL and solubility splits measured, also where 113 validation molecules had preferred one family.
    #: Classification keeps the better family (prior single): on Tox21 and a 2,000-molecule Tox21 subset the mean
    #: was slightly worse on 5 of 5 splits (docs/defaults.md).
    blend_prior: ClassVar[Literal["average", "single"]] = "average"
    blend_prior_tasks: ClassVar[tuple[str, ...] | None] = ("regression",)
    #: The run's own features under ``auto`` (the classical baseline's): Morgan counts + RDKit 2-D descriptors.
    auto_settings: ClassVar[dict[str, object]] = {"data.molecule.featurizer": ["morgan_counts", "rdkit2d"]}

    def __init__(self, cfg: DataConfig) -> None:
        super().__init__(cfg)
        try:
            import rdkit  # noqa: F401
        except ImportError:
            raise ConfigError("the molecule data type needs RDKit: pip install rdkit") from None
        featurizer = cfg.molecule.featurizer or ["morgan_counts", "rdkit2d"]
        self.uses_graph, vector_names = split_featurizers(featurizer)
        self.featurizers: list[Featurizer] = [FEATURIZERS[n](cfg.molecule) for n in vector_names]
        self.uses_image = "chemception" in [FEATURIZERS[n].name for n in featurizer]
        self.grid = GridSpec(cfg.molecule.grid_size, cfg.molecule.grid_resolution)
        self.layout: GraphLayout | None = None
        self.capacity_seen = 0
        self.smiles_column: str | None = cfg.molecule.smiles_column
        self._last: tuple[np.ndarray, np.ndarray] | None = None

    @property
    def opts(self) -> MoleculeOptions:
        """The ``data.molecule`` options."""
        return self.cfg.molecule

    def with_data(self, cfg: DataConfig) -> MoleculeModality:
        """A fresh instance with other options (e.g. another featuriser), keeping the columns and graph sizes read."""
        molecule = cfg.molecule.model_copy(update={"smiles_column": self.smiles_column})
        fresh = type(self)(cfg.model_copy(update={"molecule": molecule}))
        fresh.capacity_seen = self.capacity_seen
        return fresh

    # ------------------------------------------------------------------ reading
    def _target_columns(self, frame: pd.DataFrame, sdf: bool, path: str) -> list[str]:
        if self.cfg.target_columns:
            return list(self.cfg.target_columns)
        if sdf:
            fields = sorted(c for c in frame.columns if c != "name")
            raise DataError(f"{path}: name the SDF target field(s) with --target-columns; fields are {fields[:20]}")
        reserved = {self.smiles_column, self.cfg.id_column, self.cfg.group_column, self.cfg.val_column, self.cfg.mask_column}
        cols = [str(c) for c in frame.columns if c not in reserved]
        if not cols:
            raise DataError(f"{path}: no target columns besides the SMILES column {self.smiles_column!r}")
        targets, left = default_targets(frame, cols, self.cfg.task, source=path)
        if len(cols) > 1:
            out = "; left out: " + "; ".join(f"{c} ({why})" for c, why in left.items()) if left else ""
            print(
                f"note: no --target-columns given: targets {shorten(targets)}{out}. Name them with --target-columns",
                file=sys.stderr,
            )
        return targets

    def load(self, paths: list[str], *, require_targets: bool = True, classes: list[str] | None = None) -> LoadedData:
        cfg, opts = self.cfg, self.opts
        if not paths:
            raise DataError("no data file given (--data-path)")
        mols: list[Any] = []
        frames: list[pd.DataFrame] = []
        ids: list[np.ndarray] = []
        origin: list[tuple[str, int]] = []  # (file, 1-based data row) of every kept molecule
        report = ParseReport()
        missing_fields: dict[str, int] = {}
        total = 0
        targets_cols: list[str] | None = list(cfg.target_columns) or None
        for p in paths:
            table = read_molecules(
                p,
                smiles_column=self.smiles_column,
                fragments=opts.fragments,
                target_columns=list(cfg.target_columns),
                require_targets=require_targets,
            )
            if table.smiles_column is not None:
                self.smiles_column = table.smiles_column
            if targets_cols is None and (require_targets or not is_sdf(p)):
                targets_cols = self._target_columns(table.frame, is_sdf(p), p)
            total += len(table.mols)
            report.invalid.extend(table.report.invalid)
            report.fragments_removed += table.report.fragments_removed
            report.changed.extend(table.report.changed)
            for k, v in table.missing_fields.items():
                missing_fields[k] = missing_fields.get(k, 0) + v
            ok = valid_mask(table.mols)
            frame = table.frame
            if cfg.id_column is not None:
                if cfg.id_column not in frame.columns:
                    raise DataError(f"{p}: id column {cfg.id_column!r} not found")
                row_ids = frame[cfg.id_column].astype(str).to_numpy()
            elif "name" in frame.columns and is_sdf(p) and frame["name"].astype(str).str.len().gt(0).all():
                row_ids = frame["name"].astype(str).to_numpy()
            else:
                row_ids = np.array([f"{total - len(table.mols) + i}" for i in range(len(table.mols))])
            mols.extend(m for m, keep in zip(table.mols, ok) if keep)
            frames.append(frame.loc[ok].reset_index(drop=True))
            ids.append(row_ids[ok])
            origin.extend((p, int(r)) for r in np.flatnonzero(np.asarray(ok)) + 1)
        report.raise_or_count(opts.skip_invalid, total=total)
        if report.invalid:
            rows = ", ".join(str(r.row) for r in report.invalid[:10]) + (", ..." if len(report.invalid) > 10 else "")
            print(f"note: skipped {len(report.invalid)} invalid molecule(s) (rows {rows})", file=sys.stderr)
        if not mols:
            raise DataError(f"{paths[0]}: no valid molecules")
        frame = pd.concat(frames, ignore_index=True)
        smiles = np.array(canonical_smiles(mols), dtype=object)
        self.capacity_seen = max(self.capacity_seen, max(graph_size(m) for m in mols))
        targets = None
        single: list[str] = []
        cols = targets_cols or []
        has_targets = bool(cols) and all(c in frame.columns for c in cols)
        if require_targets or has_targets:
            if not cols:
                raise DataError("no target columns given (--target-columns)")
            if cfg.task is None:
                raise DataError("no task given (--task regression|classification|multilabel)")
            targets = encode_targets(frame, cols, cfg.task, source=", ".join(paths), classes=classes)
            single = single_class_columns(targets.y, targets.names) if targets.kind == "binary" else []
        if cols and cols != list(cfg.target_columns):
            self.cfg = cfg = cfg.model_copy(update={"target_columns": cols})
        if self.smiles_column != cfg.molecule.smiles_column:
            self.cfg = cfg = cfg.model_copy(
                update={"molecule": cfg.molecule.model_copy(update={"smiles_column": self.smiles_column})}
            )
        groups = None
        if cfg.group_column is not None:
            if cfg.group_column not in frame.columns:
                raise DataError(f"{paths[0]}: group column {cfg.group_column!r} not found")
            groups = frame[cfg.group_column].astype(str).to_numpy()
        elif cfg.split == "scaffold":
            groups = scaffolds(mols)
        summary: dict[str, Any] = {
            "files": list(paths),
            "rows": total,
            "molecules": len(mols),
            "smiles_column": self.smiles_column,
            "featurizer": "+".join(cfg.molecule.featurizer or []),
            "fragments_removed": report.fragments_removed,
        }
        if self.uses_image:
            self._report_oversized(mols, origin, report, summary)
        if report.invalid:
            summary["invalid_skipped"] = len(report.invalid)
            summary["skipped_rows"] = [r.as_dict() for r in report.invalid]
        if report.changed:
            summary["changed_rows"] = list(report.changed)
        if missing_fields:
            summary["records_without_target_field"] = missing_fields
        if targets is not None and single:
            summary["single_class_label_columns"] = single
        parts = None
        if cfg.val_column is not None and cfg.val_column in frame.columns:
            from biodl.data.split_columns import validation_parts

            parts = validation_parts(frame, cfg.val_column, source=", ".join(paths))
        return LoadedData(smiles, targets, np.concatenate(ids), groups, summary, parts)

    def _report_oversized(
        self, mols: list[Any], origin: list[tuple[str, int]], report: ParseReport, summary: dict[str, Any]
    ) -> None:
        """Molecules wider than the image grid: an error (``grid_oversize: error``) or listed as changed rows."""
        big = oversized(mols, self.grid)
        span = self.grid.size * self.grid.resolution
        summary["image_grid"] = {"size": self.grid.size, "resolution": self.grid.resolution, "oversized": len(big)}
        if not big:
            return
        if self.opts.grid_oversize == "error":
            rows = ", ".join(f"{origin[i][0]} row {origin[i][1]}" for i, _ in big[:10]) + (", ..." if len(big) > 10 else "")
            raise DataError(
                f"{len(big)} molecule(s) wider than the {span:g} Å image grid (rows {rows}); "
                "data.molecule.grid_oversize=scale draws them scaled down, or raise data.molecule.grid_size"
            )
        rows = ", ".join(f"{origin[i][0]} row {origin[i][1]}" for i, _ in big[:5]) + (", ..." if len(big) > 5 else "")
        print(f"note: {len(big)} molecule(s) wider than the {span:g} Å image grid drawn scaled down ({rows}; "
              "data.molecule.grid_oversize=error refuses them)", file=sys.stderr)  # fmt: skip
        smiles = canonical_smiles(mols)
        for i, scale in big:
            report.changed.append(
                {
                    "source": origin[i][0],
                    "row": origin[i][1],
                    "input": smiles[i],
                    "changed_to": f"drawn at scale {scale:.3f}",
                    "reason": f"wider than the {span:g} Å image grid: drawn scaled down",
                }
            )

    def input_notes(self, raw: np.ndarray) -> list[str] | None:
        """Molecule images: a note for each molecule wider than the grid (drawn scaled down); else ``None``."""
        if not self.uses_image:
            return None
        big = dict(oversized(mols_from_smiles(list(raw)), self.grid))
        span = self.grid.size * self.grid.resolution
        return [f"wider than the {span:g} Å image grid: drawn at scale {big[i]:.3f}" if i in big else "" for i in range(len(raw))]

    def parse_inputs(self, inputs: list[Any]) -> np.ndarray:
        """SMILES strings or ``{"smiles": ...}`` objects → canonical SMILES ``(N,)``."""
        out = []
        with quiet_rdkit():
            for i, rec in enumerate(inputs):
                text = rec.get(self.smiles_column or "smiles", rec.get("smiles")) if isinstance(rec, dict) else rec
                if not isinstance(text, str):
                    raise DataError(f"input {i}: expected a SMILES string or a {{'smiles': ...}} object")
                mol, reason, _ = parse_smiles(text, self.opts.fragments)
                if mol is None:
                    raise DataError(f"input {i}: {reason} ({text!r})")
                out.append(mol)
        return np.array(canonical_smiles(out), dtype=object)

    # ------------------------------------------------------------ preprocessing
    def _vector(self, mols: list[Any], *, fit: bool) -> np.ndarray:
        blocks = []
        for f in self.featurizers:
            raw = f.featurize(mols)
            if fit:
                f.fit(raw)
            blocks.append(f.transform(raw))
        if not blocks:
            return np.zeros((len(mols), 0), dtype=np.float32)
        return np.concatenate(blocks, axis=1).astype(np.float32, copy=False)

    def fit(self, X_train: np.ndarray) -> None:
        mols = mols_from_smiles(list(X_train))
        F = self._vector(mols, fit=True)
        if self.uses_graph:
            capacity = self.opts.max_atoms or max(self.capacity_seen, max(graph_size(m) for m in mols), MIN_CAPACITY)
            self.layout = GraphLayout.for_data(capacity, F.shape[1])

    def transform(self, X: np.ndarray) -> np.ndarray:
        mols = mols_from_smiles(list(X))
        if self.uses_image:
            out = draw_many(mols, self.grid, oversize=self.opts.grid_oversize)
            self._last = (out, np.asarray(X))
            return out
        F = self._vector(mols, fit=False)
        if not self.uses_graph:
            return F
        if self.layout is None:
            raise RuntimeError("fit() must be called before transform()")
        out = pack_graphs(mols, self.layout, F)
        self._last = (out, np.asarray(X))
        return out

    def baseline_features(self, X_model: np.ndarray) -> np.ndarray:
        """Vector features as given; for graphs, Morgan counts (radius/size from the options) of the same molecules.

        The SMILES behind a graph array are remembered from the latest :meth:`transform`; for other
        arrays element and bond-type counts plus the descriptor slots are used.
        """
        if X_model.ndim == 2:
            return X_model.astype(np.float32, copy=False)
        if self._last is not None and self._last[0] is X_model:
            return MorganCounts(self.opts).featurize(mols_from_smiles(list(self._last[1])))
        if X_model.ndim == 4:  # images: per-channel sums, counts of atoms per element and bond order
            img = X_model.astype(np.float32)
            return np.concatenate([img.sum(axis=(2, 3)), (img[:, 1:2] > 0).sum(axis=(2, 3))], axis=1)
        return np.concatenate([atom_type_counts(X_model), unpack_descriptors(X_model)], axis=1)

    def configure_model(self, model: Any) -> None:
        """Graph networks with ``extra_features`` read only those featurisers' descriptor slots (a mask)."""
        import torch

        if self.layout is None:
            return
        for module in model.modules():
            wanted = getattr(getattr(module, "params", None), "extra_features", None)
            if wanted is None or not hasattr(module, "set_extra_mask"):
                continue
            names = [FEATURIZERS[n].name for n in wanted]
            unknown = [n for n in names if n not in [f.name for f in self.featurizers]]
            if unknown:
                raise ConfigError(f"model.extra_features: {unknown} not among the featurisers {self.cfg.molecule.featurizer}")
            mask = torch.zeros(self.layout.n_descriptors)
            start = 0
            for f in self.featurizers:
                if f.name in names:
                    mask[start : start + f.dim] = 1.0
                start += f.dim
            module.set_extra_mask(mask)

    def train_augment(self) -> BatchAugment | None:
        """Random rotation of molecule images (``data.molecule.rotate``); nothing for vectors and graphs."""
        return RandomRotation() if self.uses_image and self.opts.rotate else None

    def feature_names(self) -> list[str]:
        """Names of the vector features (descriptor slots for graphs)."""
        return [n for f in self.featurizers for n in f.names()]

    def columns(self) -> dict[str, Any]:
        return {"smiles_column": self.smiles_column, "target_columns": list(self.cfg.target_columns)}

    def state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        meta: dict[str, Any] = {"smiles_column": self.smiles_column, "featurizers": {}}
        arrays: dict[str, np.ndarray] = {}
        for f in self.featurizers:
            m, a = f.state()
            meta["featurizers"][f.name] = m
            arrays.update({f"{f.name}.{k}": v for k, v in a.items()})
        if self.uses_image:
            meta["image_grid"] = {"size": self.grid.size, "resolution": self.grid.resolution}
        if self.layout is not None:
            meta["graph_layout"] = {"rows": self.layout.rows, "slots": self.layout.slots}
        return meta, arrays

    def load_state(self, meta: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
        self.smiles_column = meta.get("smiles_column", self.smiles_column)
        for f in self.featurizers:
            prefix = f"{f.name}."
            f.load_state(
                meta.get("featurizers", {}).get(f.name, {}),
                {k.removeprefix(prefix): v for k, v in arrays.items() if k.startswith(prefix)},
            )
        if "image_grid" in meta:
            self.grid = GridSpec(int(meta["image_grid"]["size"]), float(meta["image_grid"]["resolution"]))
        if "graph_layout" in meta:
            self.layout = GraphLayout(int(meta["graph_layout"]["rows"]), int(meta["graph_layout"]["slots"]))


def single_class_columns(y: np.ndarray, names: list[str]) -> list[str]:
    """Names of 0/1 label columns whose labelled rows hold one class only (nothing to learn; AUROC undefined)."""
    out = []
    for j, name in enumerate(names):
        col = y[:, j][~np.isnan(y[:, j])]
        if col.size == 0 or col.max() == col.min():
            out.append(name)
    return out
