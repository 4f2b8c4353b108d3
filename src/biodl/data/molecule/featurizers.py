"""Registered molecule featurisers: Morgan/ECFP counts or bits, RDKit 2-D descriptors, MACCS keys, graphs.

Every vector featuriser maps RDKit molecules to a float32 matrix ``(N, D)`` and may fit a
normalisation on the training rows (only ``rdkit2d`` does). Several featurisers are concatenated
in the order given (``featurizer: [morgan_counts, rdkit2d]``). ``graph`` is special: it makes
packed molecular graphs (:mod:`biodl.data.molecule.graph`) and any vector featurisers listed with it
fill the graph's descriptor slots (the D-MPNN concatenates them after message passing).

Example
-------
>>> from biodl.config import MoleculeOptions
>>> fp = FEATURIZERS["morgan_counts"](MoleculeOptions(radius=2, n_bits=1024))
>>> fp.featurize([Chem.MolFromSmiles("CCO")]).shape
(1, 1024)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np

from biodl.config import MoleculeOptions
from biodl.errors import ConfigError, DataError
from biodl.registry import Registry

#: Featurisers used when ``data.molecule.featurizer`` is not given and the model declares none.
DEFAULT_VECTOR_FEATURIZER: list[str] = ["morgan_counts", "rdkit2d"]
#: Count fingerprints are clipped here (a few atoms environments recur dozens of times).
MAX_COUNT = 255.0
#: Descriptor values are clipped to these training quantiles before standardising.
CLIP_QUANTILES = (0.005, 0.995)
#: Standardised descriptors are finally clipped to ``±`` this.
MAX_Z = 6.0


class Featurizer:
    """Base class: molecules → ``(N, dim)`` float32 features.

    Parameters
    ----------
    opts
        The ``data.molecule`` options (radius, size, chirality).
    """

    name: ClassVar[str] = ""

    def __init__(self, opts: MoleculeOptions) -> None:
        self.opts = opts

    @property
    def dim(self) -> int:
        """Number of features."""
        raise NotImplementedError

    def names(self) -> list[str]:
        """Feature names (``dim`` strings)."""
        return [f"{self.name}_{i}" for i in range(self.dim)]

    def featurize(self, mols: Sequence[Any]) -> np.ndarray:
        """Raw features ``(N, dim)`` float32."""
        raise NotImplementedError

    def fit(self, F_train: np.ndarray) -> None:
        """Fit normalisation on raw training features (default: none)."""

    def transform(self, F: np.ndarray) -> np.ndarray:
        """Normalise raw features (default: unchanged)."""
        return F

    def state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        """Fitted normalisation as ``(json_meta, arrays)``."""
        return {}, {}

    def load_state(self, meta: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
        """Restore :meth:`state`."""


FEATURIZERS: Registry[type[Featurizer]] = Registry("featurizer")


class _Morgan(Featurizer):
    counts: ClassVar[bool] = True

    def _generator(self) -> Any:
        from rdkit.Chem import rdFingerprintGenerator

        return rdFingerprintGenerator.GetMorganGenerator(
            radius=self.opts.radius, fpSize=self.opts.n_bits, includeChirality=self.opts.use_chirality
        )

    @property
    def dim(self) -> int:
        return self.opts.n_bits

    def featurize(self, mols: Sequence[Any]) -> np.ndarray:
        gen = self._generator()
        out = np.zeros((len(mols), self.dim), dtype=np.float32)
        for i, m in enumerate(mols):
            out[i] = gen.GetCountFingerprintAsNumPy(m) if self.counts else gen.GetFingerprintAsNumPy(m)
        return np.minimum(out, MAX_COUNT, out=out)

    def bit_atoms(self, mol: Any) -> dict[int, list[tuple[int, int]]]:
        """Fingerprint bit → ``[(centre atom, radius), ...]`` environments setting it."""
        from rdkit.Chem import rdFingerprintGenerator

        ao = rdFingerprintGenerator.AdditionalOutput()
        ao.AllocateBitInfoMap()
        self._generator().GetCountFingerprintAsNumPy(mol, additionalOutput=ao)
        return {int(k): [(int(a), int(r)) for a, r in v] for k, v in ao.GetBitInfoMap().items()}


@FEATURIZERS.register("morgan_counts")
class MorganCounts(_Morgan):
    """Folded Morgan (ECFP-like) count fingerprint: how often each hashed environment occurs (clipped at 255)."""

    name = "morgan_counts"
    counts = True


@FEATURIZERS.register("morgan_bits")
class MorganBits(_Morgan):
    """Folded Morgan (ECFP-like) bit fingerprint."""

    name = "morgan_bits"
    counts = False


@FEATURIZERS.register("maccs")
class MACCS(Featurizer):
    """The 166 MACCS structural keys (RDKit's 167-bit vector; bit 0 is always 0)."""

    name = "maccs"

    @property
    def dim(self) -> int:
        return 167

    def featurize(self, mols: Sequence[Any]) -> np.ndarray:
        from rdkit.Chem import MACCSkeys

        out = np.zeros((len(mols), 167), dtype=np.float32)
        for i, m in enumerate(mols):
            out[i] = np.asarray(MACCSkeys.GenMACCSKeys(m), dtype=np.float32)  # type: ignore[attr-defined]
        return out


_DESCRIPTOR_CACHE: dict[tuple[str, str], np.ndarray] = {}
_CACHE_LIMIT = 200_000


def descriptor_names() -> list[str]:
    """Names of RDKit's 2-D descriptors, as :func:`rdkit.Chem.Descriptors.CalcMolDescriptors` gives them
    (the set depends on the RDKit version)."""
    from rdkit import Chem
    from rdkit.Chem import Descriptors

    return list(Descriptors.CalcMolDescriptors(Chem.MolFromSmiles("C")))


def calc_descriptors(mol: Any) -> dict[str, float]:
    """Every RDKit 2-D descriptor of ``mol`` (RDKit's public ``CalcMolDescriptors``; a failing one is NaN)."""
    from rdkit.Chem import Descriptors

    return {k: float(v) for k, v in Descriptors.CalcMolDescriptors(mol, missingVal=float("nan")).items()}


@FEATURIZERS.register("rdkit2d")
class RDKit2D(Featurizer):
    """All RDKit 2-D descriptors (``rdkit.Chem.Descriptors``), normalised on the training split.

    Normalisation: non-finite values become the training median, values are clipped to the
    training 0.5–99.5 % quantiles, standardised, and clipped to ±6. The descriptor names are
    stored with the model, so a bundle refuses an RDKit that lacks one of them.
    """

    name = "rdkit2d"

    def __init__(self, opts: MoleculeOptions) -> None:
        super().__init__(opts)
        self.descriptor_names: list[str] = sorted(descriptor_names())
        self.stats: dict[str, np.ndarray] | None = None

    @property
    def dim(self) -> int:
        return len(self.descriptor_names)

    def names(self) -> list[str]:
        return list(self.descriptor_names)

    def featurize(self, mols: Sequence[Any]) -> np.ndarray:
        from rdkit import Chem

        available = set(descriptor_names())
        missing = [n for n in self.descriptor_names if n not in available]
        if missing:
            raise DataError(f"this RDKit lacks descriptor(s) {missing[:5]} the model was trained with")
        key_names = ",".join(self.descriptor_names)
        out = np.empty((len(mols), len(self.descriptor_names)), dtype=np.float32)
        for i, m in enumerate(mols):
            key = (key_names, Chem.MolToSmiles(m))
            row = _DESCRIPTOR_CACHE.get(key)
            if row is None:
                values = calc_descriptors(m)
                row = np.array([values[n] for n in self.descriptor_names], dtype=np.float64)
                with np.errstate(over="ignore", invalid="ignore"):
                    row = row.astype(np.float32)
                if len(_DESCRIPTOR_CACHE) < _CACHE_LIMIT:
                    _DESCRIPTOR_CACHE[key] = row
            out[i] = row
        return out

    def fit(self, F_train: np.ndarray) -> None:
        F = np.where(np.isfinite(F_train), F_train, np.nan).astype(np.float64)
        with np.errstate(all="ignore"):
            med = np.nan_to_num(np.nanmedian(F, axis=0))
            lo = np.nan_to_num(np.nanquantile(F, CLIP_QUANTILES[0], axis=0))
            hi = np.nan_to_num(np.nanquantile(F, CLIP_QUANTILES[1], axis=0))
        Z = np.clip(np.where(np.isnan(F), med, F), lo, hi)
        mean, std = Z.mean(axis=0), Z.std(axis=0)
        std = np.where(std < 1e-8, 1.0, std)
        self.stats = {k: v.astype(np.float32) for k, v in {"median": med, "lo": lo, "hi": hi, "mean": mean, "std": std}.items()}

    def transform(self, F: np.ndarray) -> np.ndarray:
        if self.stats is None:
            raise RuntimeError("rdkit2d: fit() must be called before transform()")
        s = self.stats
        X = np.where(np.isfinite(F), F, s["median"])
        X = (np.clip(X, s["lo"], s["hi"]) - s["mean"]) / s["std"]
        return np.clip(X, -MAX_Z, MAX_Z).astype(np.float32)

    def state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        return {"descriptor_names": self.descriptor_names}, dict(self.stats or {})

    def load_state(self, meta: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
        self.descriptor_names = list(meta.get("descriptor_names", self.descriptor_names))
        if arrays:
            self.stats = {k: np.asarray(v, dtype=np.float32) for k, v in arrays.items()}


@FEATURIZERS.register("graph")
class GraphFeaturizer(Featurizer):
    """Marker for packed molecular graphs (atoms + bonds); see :mod:`biodl.data.molecule.graph`."""

    name = "graph"

    @property
    def dim(self) -> int:
        return 0


@FEATURIZERS.register("chemception")
class ChemceptionFeaturizer(Featurizer):
    """Marker for molecule images on a grid (Chemception); see :mod:`biodl.data.molecule.image`."""

    name = "chemception"

    @property
    def dim(self) -> int:
        return 0


#: Featurisers that are not feature vectors (they change what the model input is).
STRUCTURE_FEATURIZERS = ("graph", "chemception")


def split_featurizers(names: Sequence[str]) -> tuple[bool, list[str]]:
    """``(uses_graph, vector featuriser names)``; unknown names are :class:`ConfigError`."""
    resolved = [FEATURIZERS[n].name for n in names]
    if not resolved:
        raise ConfigError("data.molecule.featurizer: give at least one featuriser")
    dup = {n for n in resolved if resolved.count(n) > 1}
    if dup:
        raise ConfigError(f"data.molecule.featurizer: {sorted(dup)} listed twice")
    if "chemception" in resolved and len(resolved) > 1:
        raise ConfigError("data.molecule.featurizer: 'chemception' images cannot be combined with other featurisers")
    return "graph" in resolved, [n for n in resolved if n not in STRUCTURE_FEATURIZERS]


def default_featurizer(model_cls: Any) -> list[str]:
    """The featurisers a model asks for (class attribute ``default_featurizer``), else morgan counts + rdkit2d."""
    wanted = getattr(model_cls, "default_featurizer", None)
    return list(wanted) if wanted else list(DEFAULT_VECTOR_FEATURIZER)
