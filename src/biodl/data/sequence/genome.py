"""Random access to a genome FASTA: the one genome reader of biodl.

Used for interval inputs (BED/narrowPeak windows, :mod:`biodl.data.sequence.intervals`) and for variant
effects (:mod:`biodl.explain.variant_effects`). Reads through a pyfaidx index (built on first use); when the
index cannot be built (read-only folder, plain-gzip FASTA) the file is read into memory instead.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from biodl.data.sequence.fasta import read_fasta
from biodl.errors import DataError

__all__ = ["Genome"]


class Genome:
    """Contig sequences of a genome FASTA.

    Parameters
    ----------
    path
        FASTA file (plain, bgzip or gzip).

    Attributes
    ----------
    lengths
        Contig name → length, in file order.
    indexed
        Whether the file is read through a pyfaidx index (else it was read into memory).
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        if not self.path.is_file():
            raise DataError(f"genome FASTA not found: {self.path}")
        self._faidx: Any = None
        self._memory: dict[str, bytes] | None = None
        self.indexed = True
        try:
            import pyfaidx

            self._faidx = pyfaidx.Fasta(str(self.path), as_raw=True, sequence_always_upper=False)
            self.lengths: dict[str, int] = {name: len(rec) for name, rec in self._faidx.records.items()}
        except Exception:  # no writable index / unsupported compression: read it whole
            records = read_fasta(self.path)
            self._memory = dict(zip(records.ids, records.sequences, strict=True))
            self.lengths = {k: len(v) for k, v in self._memory.items()}
            self.indexed = False
        self._cached: tuple[str, np.ndarray] | None = None

    @property
    def contigs(self) -> list[str]:
        """Contig names in file order."""
        return list(self.lengths)

    def __contains__(self, chrom: object) -> bool:
        return chrom in self.lengths

    def length(self, chrom: str) -> int:
        """Length of a contig."""
        return self.lengths[chrom]

    def contig(self, name: str) -> np.ndarray:
        """The whole contig as ``(length,)`` ASCII bytes (uint8, case as in the file); the last one is cached."""
        if self._cached is not None and self._cached[0] == name:
            return self._cached[1]
        if self._memory is not None:
            data = self._memory[name]
        else:
            data = str(self._faidx[name][:]).encode("ascii")
        arr = np.frombuffer(data, dtype=np.uint8)
        self._cached = (name, arr)
        return arr

    def fetch(self, chrom: str, start: int, end: int) -> str:
        """Upper-case bases ``[start, end)`` (0-based), clipped to the contig."""
        start, end = max(0, start), min(end, self.lengths[chrom])
        if end <= start:
            return ""
        if self._memory is not None:
            return self._memory[chrom][start:end].decode("ascii").upper()
        return str(self._faidx[chrom][start:end]).upper()

    def close(self) -> None:
        """Release the index file handle."""
        if self._faidx is not None:
            self._faidx.close()
