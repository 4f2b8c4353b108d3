"""SMILES parsing, the salt/fragment rule and invalid-molecule bookkeeping.

The fragment rule (``data.molecule.fragments``)
-----------------------------------------------
Many data sets store salts and mixtures as dot-separated SMILES (``CCN.Cl``, ``[Na+].O=C([O-])c1ccccc1``).
With ``largest`` (the default) the molecule is reduced to ONE fragment, chosen by, in order:

1. the most heavy atoms;
2. containing carbon (organic) rather than not;
3. the larger molecular weight;
4. the first in the SMILES string.

Counter-ions and solvent molecules are thereby dropped (``CCN.Cl`` → ``CCN``); charges of the kept
fragment are left as written (no neutralisation). ``keep`` keeps every fragment as one (disconnected)
graph, ``error`` refuses multi-fragment inputs. The number of molecules reduced is reported in the
data summary (``fragments_removed``).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from biodl.errors import DataError

#: At most this many offending rows are named in an error message.
MAX_SHOWN = 10


@contextmanager
def quiet_rdkit() -> Iterator[None]:
    """Silence RDKit's parse warnings (invalid molecules are reported by biodl instead)."""
    from rdkit import RDLogger

    RDLogger.DisableLog("rdApp.*")  # type: ignore[attr-defined]
    try:
        yield
    finally:
        RDLogger.EnableLog("rdApp.*")  # type: ignore[attr-defined]


@dataclass
class InvalidRecord:
    """One molecule that could not be used.

    Attributes
    ----------
    source
        The file it came from.
    row
        1-based data row (CSV: the line after the header is row 1; SDF: record number).
    text
        The SMILES (or record name) as given.
    reason
        Why it was rejected.
    """

    source: str
    row: int
    text: str
    reason: str

    def as_dict(self) -> dict[str, Any]:
        """Plain JSON-ready record."""
        return {"source": self.source, "row": self.row, "input": self.text, "reason": self.reason}


@dataclass
class ParseReport:
    """What happened while parsing a batch of molecules."""

    invalid: list[InvalidRecord] = field(default_factory=list)
    fragments_removed: int = 0
    #: records used in a changed form (salts reduced to the largest fragment): ``source, row, input, changed_to, reason``
    changed: list[dict[str, Any]] = field(default_factory=list)

    def add_reduced(self, source: str, row: int, text: str, mol: Any) -> None:
        """Count and list one molecule reduced to its largest fragment."""
        from rdkit import Chem

        self.fragments_removed += 1
        self.changed.append(
            {
                "source": source,
                "row": row,
                "input": text,
                "changed_to": Chem.MolToSmiles(mol),
                "reason": "salt/mixture reduced to its largest fragment",
            }
        )

    def raise_or_count(self, skip_invalid: bool, *, total: int) -> None:
        """Raise a :class:`DataError` naming rows unless ``skip_invalid`` allows dropping them."""
        if not self.invalid or skip_invalid:
            return
        shown = "; ".join(f"{r.source} row {r.row}: {r.reason} ({r.text!r})" for r in self.invalid[:MAX_SHOWN])
        more = f" (+{len(self.invalid) - MAX_SHOWN} more)" if len(self.invalid) > MAX_SHOWN else ""
        raise DataError(
            f"{len(self.invalid)} of {total} molecule(s) cannot be used: {shown}{more}. "
            "Fix them, or pass --skip-invalid (data.molecule.skip_invalid=true) to drop them; "
            "the dropped rows are then written to skipped_rows.csv in the run directory"
        )


def _fragment_key(frag: Any, position: int) -> tuple[int, int, float, int]:
    from rdkit.Chem import Descriptors

    heavy = frag.GetNumHeavyAtoms()
    organic = int(any(a.GetAtomicNum() == 6 for a in frag.GetAtoms()))
    return heavy, organic, float(Descriptors.MolWt(frag)), -position  # type: ignore[attr-defined]


def largest_fragment(mol: Any) -> tuple[Any, bool]:
    """Apply the documented fragment rule; returns ``(mol, reduced)``."""
    from rdkit import Chem

    frags = Chem.GetMolFrags(mol, asMols=True, sanitizeFrags=False)
    if len(frags) <= 1:
        return mol, False
    best = max(range(len(frags)), key=lambda i: _fragment_key(frags[i], i))
    # re-parse: a fresh, fully perceived molecule (ring information, aromaticity) of the kept fragment
    kept = Chem.MolFromSmiles(Chem.MolToSmiles(frags[best]))
    return (kept if kept is not None else frags[best]), True


def parse_smiles(smiles: str, fragments: str = "largest") -> tuple[Any | None, str, bool]:
    """Parse one SMILES with the fragment rule.

    Returns
    -------
    tuple
        ``(mol or None, reason if None, whether fragments were removed)``.
    """
    from rdkit import Chem

    text = "" if smiles is None else str(smiles).strip()
    if not text or text.lower() in ("nan", "none", "null"):
        return None, "empty SMILES", False
    mol = Chem.MolFromSmiles(text)
    if mol is None:
        return None, "RDKit cannot parse the SMILES", False
    if mol.GetNumAtoms() == 0:
        return None, "no atoms", False
    return apply_fragment_rule(mol, fragments)


def apply_fragment_rule(mol: Any, fragments: str) -> tuple[Any | None, str, bool]:
    """``(mol, "", reduced)`` after the fragment rule, or ``(None, reason, False)``."""
    from rdkit import Chem

    n_frags = len(Chem.GetMolFrags(mol))
    if n_frags > 1:
        if fragments == "error":
            return None, f"{n_frags} fragments (data.molecule.fragments=error)", False
        if fragments == "largest":
            frag, reduced = largest_fragment(mol)
            return frag, "", reduced
    return mol, "", False


def canonical_smiles(mols: Sequence[Any]) -> list[str]:
    """Canonical isomeric SMILES of each molecule."""
    from rdkit import Chem

    return [Chem.MolToSmiles(m) for m in mols]


def parse_many(texts: Sequence[Any], *, source: str, fragments: str, row_offset: int = 1) -> tuple[list[Any | None], ParseReport]:
    """Parse a column of SMILES; ``row_offset`` is the 1-based row number of ``texts[0]``.

    Returns the molecules (``None`` where invalid) and the report of invalid rows.
    """
    report = ParseReport()
    mols: list[Any | None] = []
    with quiet_rdkit():
        for i, text in enumerate(texts):
            mol, reason, reduced = parse_smiles(text, fragments)
            shown = _cell_text(text)
            if mol is None:
                report.invalid.append(InvalidRecord(source, row_offset + i, shown, reason))
            if reduced:
                report.add_reduced(source, row_offset + i, shown, mol)
            mols.append(mol)
    return mols, report


def _cell_text(value: Any) -> str:
    """A table cell as written: an empty cell (read as ``None``/NaN) is ``""``, not ``'nan'``."""
    if value is None or (isinstance(value, float) and value != value):
        return ""
    return str(value)


def mols_from_smiles(smiles: Sequence[str]) -> list[Any]:
    """Parse canonical SMILES produced by this module (raises on failure: they were valid once)."""
    from rdkit import Chem

    out = []
    with quiet_rdkit():
        for i, s in enumerate(smiles):
            mol = Chem.MolFromSmiles(str(s))
            if mol is None or mol.GetNumAtoms() == 0:
                raise DataError(f"molecule {i}: invalid SMILES {s!r}")
            out.append(mol)
    return out
