"""Feature normalisation fitted on the training split only (review Fig. 5B).

Steps, in order: optional ``log1p``, zero-centring, scaling to unit variance, optional clipping
(then, with ``rescale``, standardising the clipped features again), optional whitening (PCA or ZCA).
The fitted state is a few arrays stored in the model bundle.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from biodl.config import NormalizeConfig
from biodl.errors import DataError

_EPS = 1e-8


@dataclass
class Normaliser:
    """Fitted feature normalisation.

    Attributes
    ----------
    config
        Which steps are applied.
    mean, std
        ``(F,)`` arrays (identity when the step is off).
    whitening
        ``(F, F)`` matrix applied after centring/scaling, or ``None``.
    """

    config: NormalizeConfig
    mean: np.ndarray
    std: np.ndarray
    whitening: np.ndarray | None = None
    #: ``normalize.rescale``: mean and std ``(F,)`` of the clipped training features, applied after clipping
    rescaled: tuple[np.ndarray, np.ndarray] | None = None
    arrays_prefix: str = field(default="features", repr=False)

    @classmethod
    def fit(cls, X: Any, config: NormalizeConfig) -> Normaliser:
        """Fit on training rows ``X`` ``(N, F)``: an array or a scipy sparse matrix (statistics computed sparsely)."""
        import scipy.sparse as sp

        if sp.issparse(X):
            if config.whiten == "none":
                return cls._fit_sparse(sp.csr_matrix(X, dtype=np.float64), config).with_rescale(X)
            X = X.toarray()
        X = original = np.asarray(X, dtype=np.float64)
        if config.log1p:
            if (X < 0).any():
                raise DataError("normalize.log1p needs non-negative features (found negative values)")
            X = np.log1p(X)
        F = X.shape[1]
        mean = X.mean(axis=0) if config.center else np.zeros(F)
        std = X.std(axis=0) if config.scale else np.ones(F)
        std = np.where(std < _EPS, np.inf if config.clip is not None else 1.0, std)  # clip: constant → 0
        Z = (X - mean) / std
        whitening = None
        if config.whiten != "none":
            Zc = Z - Z.mean(axis=0)
            cov = Zc.T @ Zc / max(len(Z) - 1, 1)
            vals, vecs = np.linalg.eigh(cov)
            inv_sqrt = 1.0 / np.sqrt(np.maximum(vals, 0.0) + 1e-5)
            pca = vecs * inv_sqrt  # (F, F): columns are scaled eigenvectors
            whitening = pca[:, ::-1].copy() if config.whiten == "pca" else pca @ vecs.T
        if config.clip is not None and config.rescale and whitening is None:
            return cls(config, mean.astype(np.float32), std.astype(np.float32)).with_rescale(original)
        return cls(
            config, mean.astype(np.float32), std.astype(np.float32), None if whitening is None else whitening.astype(np.float32)
        )

    def with_rescale(self, X: Any, chunk: int = 4096) -> Normaliser:
        """With ``clip`` and ``rescale``: fit the second standardisation on the clipped training rows ``X`` ``(N, F)``
        (in chunks of ``chunk`` rows; sparse rows are densified one chunk at a time); else ``self`` unchanged."""
        if self.config.clip is None or not self.config.rescale or self.whitening is not None:
            return self
        n, total, squares = 0, np.zeros(self.mean.shape, np.float64), np.zeros(self.mean.shape, np.float64)
        for i in range(0, X.shape[0], chunk):
            part = X[i : i + chunk]
            Z = self.transform(part.toarray() if hasattr(part, "toarray") else part).astype(np.float64)
            n, total, squares = n + len(Z), total + Z.sum(axis=0), squares + (Z * Z).sum(axis=0)
        mean = total / max(n, 1)
        std = np.sqrt(np.maximum(squares / max(n, 1) - mean**2, 0.0))
        std = np.where(std < _EPS, np.inf, std)  # constant after clipping: 0
        self.rescaled = (mean.astype(np.float32), std.astype(np.float32))
        return self

    @classmethod
    def _fit_sparse(cls, X: Any, config: NormalizeConfig) -> Normaliser:
        """Mean and std of a CSR matrix without densifying it (``log1p`` keeps zeros zero)."""
        if config.log1p:
            if (X.data < 0).any():
                raise DataError("normalize.log1p needs non-negative features (found negative values)")
            X = X.log1p()
        F = X.shape[1]
        n = max(X.shape[0], 1)
        mean = np.asarray(X.sum(axis=0)).ravel() / n
        sq = np.asarray(X.multiply(X).sum(axis=0)).ravel() / n
        std = np.sqrt(np.maximum(sq - mean**2, 0.0)) if config.scale else np.ones(F)
        std = np.where(std < _EPS, np.inf if config.clip is not None else 1.0, std)  # clip: constant → 0
        mean = mean if config.center else np.zeros(F)
        return cls(config, mean.astype(np.float32), std.astype(np.float32), None)

    def transform(self, X: np.ndarray) -> np.ndarray:
        """Apply to ``X`` ``(N, F)``; returns float32 ``(N, F)``."""
        X = np.asarray(X, dtype=np.float32)
        if X.shape[1] != self.mean.shape[0]:
            raise DataError(f"expected {self.mean.shape[0]} features, got {X.shape[1]}")
        if self.config.log1p:
            if (X < 0).any():
                raise DataError("normalize.log1p needs non-negative features (found negative values)")
            X = np.log1p(X)
        Z = (X - self.mean) / self.std
        if self.config.clip is not None:
            Z = np.clip(Z, -self.config.clip, self.config.clip)
            if self.rescaled is not None:
                Z = (Z - self.rescaled[0]) / self.rescaled[1]
        if self.whitening is not None:
            Z = Z @ self.whitening
        return Z.astype(np.float32)

    def state(self) -> tuple[dict[str, object], dict[str, np.ndarray]]:
        """``(json_meta, arrays)`` for the bundle."""
        arrays = {"mean": self.mean, "std": self.std}
        if self.whitening is not None:
            arrays["whitening"] = self.whitening
        if self.rescaled is not None:
            arrays["rescale_mean"], arrays["rescale_std"] = self.rescaled
        return self.config.model_dump(), arrays

    @classmethod
    def from_state(cls, meta: dict[str, object], arrays: dict[str, np.ndarray]) -> Normaliser:
        """Inverse of :meth:`state`."""
        rescaled = (arrays["rescale_mean"], arrays["rescale_std"]) if "rescale_mean" in arrays else None
        return cls(NormalizeConfig.model_validate(meta), arrays["mean"], arrays["std"], arrays.get("whitening"), rescaled)


@dataclass
class TargetScaler:
    """Standardise regression targets on the training split (NaN-aware), and undo it."""

    mean: np.ndarray
    std: np.ndarray

    @classmethod
    def fit(cls, y: np.ndarray) -> TargetScaler:
        """Fit on training targets ``(N, T)`` with NaN = missing."""
        with np.errstate(invalid="ignore"):
            mean = np.nan_to_num(np.nanmean(y, axis=0))
            std = np.nan_to_num(np.nanstd(y, axis=0), nan=1.0)
        std = np.where(std < _EPS, 1.0, std)
        return cls(mean.astype(np.float32), std.astype(np.float32))

    def transform(self, y: np.ndarray) -> np.ndarray:
        """Scale ``(N, T)``."""
        return ((y - self.mean) / self.std).astype(np.float32)

    def inverse(self, y: np.ndarray) -> np.ndarray:
        """Unscale ``(N, T)``."""
        return (y * self.std + self.mean).astype(np.float32)
