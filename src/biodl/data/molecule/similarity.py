"""Tanimoto similarities to training molecules as features (a kernel machine's view of a molecule).

``featurizer: [tanimoto]`` describes a molecule by its Tanimoto similarity (Jaccard index of Morgan bit
fingerprints) to up to :data:`MAX_PROTOTYPES` molecules of the training split. A linear layer on these
features is kernel logistic regression with the Tanimoto kernel, the fingerprint kernel of choice for
support-vector machines on molecules (MoleculeNet's kernel SVM is level with its random forest on SIDER and
BBBP); a network adds non-linearity on top. The prototypes' fingerprints are fitted on the training rows and
stored with the model (uint8 arrays in safetensors), so predictions on new molecules need nothing else.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np

from biodl.config import MoleculeOptions
from biodl.data.molecule.featurizers import FEATURIZERS, Featurizer, MorganBits

#: At most this many training molecules serve as prototypes (drawn with a fixed seed beyond that).
MAX_PROTOTYPES = 2048


def tanimoto(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Tanimoto similarity of the 0/1 rows of ``a`` ``(N, D)`` and ``b`` ``(P, D)``: ``(N, P)`` float32.

    Two empty fingerprints have similarity 0.
    """
    a32, b32 = a.astype(np.float32, copy=False), b.astype(np.float32, copy=False)
    both = a32 @ b32.T
    union = a32.sum(axis=1, keepdims=True) + b32.sum(axis=1)[None, :] - both
    with np.errstate(invalid="ignore", divide="ignore"):
        out = np.where(union > 0, both / union, 0.0)
    return out.astype(np.float32)


@FEATURIZERS.register("tanimoto")
class TanimotoSimilarity(Featurizer):
    """Similarities ``(N, P)`` to ``P ≤ MAX_PROTOTYPES`` training molecules (Morgan bits, the run's radius and size)."""

    name: ClassVar[str] = "tanimoto"

    def __init__(self, opts: MoleculeOptions) -> None:
        super().__init__(opts)
        self.prototypes: np.ndarray | None = None  # (P, n_bits) uint8

    @property
    def dim(self) -> int:
        if self.prototypes is None:
            raise RuntimeError("tanimoto: the number of features is known once fit() has seen the training molecules")
        return int(self.prototypes.shape[0])

    def featurize(self, mols: Sequence[Any]) -> np.ndarray:
        """Raw Morgan bits ``(N, n_bits)``; :meth:`transform` turns them into similarities."""
        return MorganBits(self.opts).featurize(mols)

    def fit(self, F_train: np.ndarray) -> None:
        bits = (F_train > 0).astype(np.uint8)
        if len(bits) > MAX_PROTOTYPES:
            keep = np.sort(np.random.default_rng(0).choice(len(bits), MAX_PROTOTYPES, replace=False))
            bits = bits[keep]
        self.prototypes = bits

    def transform(self, F: np.ndarray) -> np.ndarray:
        if self.prototypes is None:
            raise RuntimeError("tanimoto: fit() must be called before transform()")
        return tanimoto(F > 0, self.prototypes)

    def state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        return {}, {} if self.prototypes is None else {"prototypes": self.prototypes}

    def load_state(self, meta: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
        if "prototypes" in arrays:
            self.prototypes = np.asarray(arrays["prototypes"], dtype=np.uint8)
