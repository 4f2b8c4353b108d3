"""Read molecule files: delimited tables with a SMILES column, and SDF with property fields.

Both readers return a :class:`MoleculeTable`: one row per input record, the parsed molecules
(``None`` where invalid) and the per-record columns (targets, ids, groups).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from biodl.data.columns import not_found
from biodl.data.molecule.parse import InvalidRecord, ParseReport, apply_fragment_rule, parse_many, quiet_rdkit
from biodl.data.readers import read_delimited
from biodl.errors import DataError

#: Column names taken as the SMILES column when ``smiles_column`` is not given.
SMILES_NAMES = ("smiles", "SMILES", "Smiles", "canonical_smiles", "smi", "SMI")
SDF_SUFFIXES = (".sdf", ".sd", ".mol")


@dataclass
class MoleculeTable:
    """Records of one molecule file.

    Attributes
    ----------
    mols
        ``N`` RDKit molecules after the fragment rule; ``None`` where invalid.
    frame
        ``N`` rows of per-record columns (targets, ids, groups; SDF: the property fields).
    smiles_column
        The SMILES column used (``None`` for SDF).
    report
        Invalid records and fragment statistics.
    path
        The file.
    missing_fields
        SDF only: target field → number of records without it.
    """

    mols: list[Any | None]
    frame: pd.DataFrame
    smiles_column: str | None
    report: ParseReport
    path: str
    missing_fields: dict[str, int] = field(default_factory=dict)


def is_sdf(path: str | Path) -> bool:
    """Whether ``path`` is an SD file (by extension, ``.gz`` ignored)."""
    sfx = [s.lower() for s in Path(path).suffixes if s.lower() != ".gz"]
    return bool(sfx) and sfx[-1] in SDF_SUFFIXES


def resolve_smiles_column(columns: list[str], wanted: str | None, path: str) -> str:
    """The SMILES column: ``wanted``, else a conventional name, else the first column."""
    if wanted is not None:
        if wanted not in columns:
            raise not_found(path, "SMILES", wanted, columns)
        return wanted
    for name in SMILES_NAMES:
        if name in columns:
            return name
    if not columns:
        raise DataError(f"{path}: no columns")
    return columns[0]


def read_smiles_table(path: str | Path, *, smiles_column: str | None, fragments: str) -> MoleculeTable:
    """Read a CSV/TSV (optionally gzipped) with one SMILES column."""
    p = Path(path)
    if not p.is_file():
        raise DataError(f"data file not found: {p}")
    frame = read_delimited(p)
    if len(frame) == 0:
        raise DataError(f"{p}: no rows")
    col = resolve_smiles_column([str(c) for c in frame.columns], smiles_column, str(p))
    texts = frame[col].tolist()
    mols, report = parse_many(texts, source=str(p), fragments=fragments, row_offset=1)
    return MoleculeTable(mols, frame, col, report, str(p))


def _sdf_supplier(p: Path) -> Any:
    from rdkit import Chem

    if p.suffix.lower() == ".gz":
        import gzip

        return Chem.ForwardSDMolSupplier(gzip.open(p), sanitize=True, removeHs=True)
    return Chem.ForwardSDMolSupplier(str(p), sanitize=True, removeHs=True)


def read_sdf(path: str | Path, *, fragments: str, target_columns: list[str], require_targets: bool) -> MoleculeTable:
    """Read an SD file; every property field becomes a column (``_Name`` as ``name``).

    A record RDKit cannot read is an invalid record (numbered from 1). A record without one of
    ``target_columns`` gets a missing label for it (masked in the loss) and is counted; a field
    absent from every record is an error when targets are required.
    """
    p = Path(path)
    if not p.is_file():
        raise DataError(f"data file not found: {p}")
    report = ParseReport()
    mols: list[Any | None] = []
    rows: list[dict[str, Any]] = []
    with quiet_rdkit():
        try:
            for i, mol in enumerate(_sdf_supplier(p)):
                if mol is None or mol.GetNumAtoms() == 0:
                    report.invalid.append(InvalidRecord(str(p), i + 1, f"record {i + 1}", "RDKit cannot read the record"))
                    mols.append(None)
                    rows.append({})
                    continue
                props: dict[str, Any] = {"name": mol.GetProp("_Name") if mol.HasProp("_Name") else ""}
                props.update(mol.GetPropsAsDict(includePrivate=False, includeComputed=False))
                kept, reason, reduced = apply_fragment_rule(mol, fragments)
                if kept is None:
                    report.invalid.append(InvalidRecord(str(p), i + 1, props["name"] or f"record {i + 1}", reason))
                if reduced:
                    report.add_reduced(str(p), i + 1, props["name"] or f"record {i + 1}", kept)
                mols.append(kept)
                rows.append(props)
        except OSError as exc:
            raise DataError(f"{p}: cannot read as SDF: {exc}") from None
    if not mols:
        raise DataError(f"{p}: no SDF records")
    frame = pd.DataFrame(rows)
    missing: dict[str, int] = {}
    for col in target_columns:
        if col not in frame.columns:
            if require_targets:
                fields = sorted(c for c in frame.columns if c != "name")
                raise DataError(f"{p}: no record has the target field {col!r}; fields are {fields[:20]}")
            continue
        n_missing = int(frame[col].isna().sum())
        if n_missing:
            missing[col] = n_missing
    return MoleculeTable(mols, frame, None, report, str(p), missing)


def read_molecules(
    path: str | Path, *, smiles_column: str | None, fragments: str, target_columns: list[str], require_targets: bool
) -> MoleculeTable:
    """Read any supported molecule file by its extension."""
    if is_sdf(path):
        return read_sdf(path, fragments=fragments, target_columns=target_columns, require_targets=require_targets)
    return read_smiles_table(path, smiles_column=smiles_column, fragments=fragments)


def valid_mask(mols: list[Any | None]) -> np.ndarray:
    """Boolean ``(N,)``: records with a usable molecule."""
    return np.array([m is not None for m in mols], dtype=bool)
