"""Piecewise-linear encoding of numeric features (Gorishniy, Rubachev & Babenko, NeurIPS 2022).

Each feature ``x`` becomes ``bins`` numbers: with bin edges ``e_0 < e_1 < … < e_B`` at quantiles of the
training rows, bin ``t`` holds ``(x − e_t) / (e_{t+1} − e_t)`` clipped to ``[0, 1]`` — so the bins below ``x``
read 1, the bin holding ``x`` its position inside the bin, the bins above 0 — except that the first bin is
open below and the last open above (values outside the training range extrapolate linearly). A dense layer
on the encoding is then a learned piecewise-linear function of each feature, which lets a small network
fit the sharp, non-monotone effects that trees find and plain MLPs smooth over.

Features with fewer distinct values than bins get fewer bins (edges are the distinct quantiles; a binary
feature keeps one linear bin, a constant feature none); unused bins always read 0. The edges are buffers:
they are fitted on the training rows (:func:`fit_input_encoders`, called by the training step), stored with
the weights, and exported to ONNX as element-wise ``Sub``/``Div``/``Max``/``Min``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from biodl.errors import DataError


class PiecewiseLinearEncoding(nn.Module):
    """``(N, F)`` → ``(N, F × bins)`` piecewise-linear encoding; feature ``f``'s bins are columns
    ``f × bins … f × bins + bins − 1``.

    Until :meth:`fit` is called the edges are standard-normal quantiles (the inputs are standardised
    features).
    """

    #: ``(F, bins)`` buffers: each bin's lower edge and width, and the bounds its value is clipped to
    #: (``[0, 1]``; ``−inf`` below the first bin, ``+inf`` above the last used one; ``[0, 0]`` for unused bins)
    lower: torch.Tensor
    width: torch.Tensor
    floor: torch.Tensor
    ceiling: torch.Tensor

    def __init__(self, num_features: int, bins: int = 16) -> None:
        super().__init__()
        if bins < 1:
            raise ValueError(f"bins must be at least 1, got {bins}")
        self.num_features, self.bins = num_features, bins
        for name in ("lower", "width", "floor", "ceiling"):
            self.register_buffer(name, torch.zeros(num_features, bins))
        from scipy.stats import norm

        probs = np.linspace(0.0, 1.0, bins + 1)
        probs[0], probs[-1] = 0.5 / (bins + 1), 1 - 0.5 / (bins + 1)
        self._set_edges([np.asarray(norm.ppf(probs))] * num_features)

    def fit(self, x: np.ndarray) -> None:
        """Bin edges from the training features ``x`` ``(N, F)`` (NaN ignored): their ``bins + 1`` quantiles,
        duplicates merged."""
        x = np.asarray(x, dtype=np.float64).reshape(len(x), -1)
        if x.shape[1] != self.num_features:
            raise DataError(f"piecewise-linear encoding: expected {self.num_features} features, got {x.shape[1]}")
        if len(x) == 0:
            raise DataError("piecewise-linear encoding: no training rows to fit the bin edges on")
        with np.errstate(all="ignore"):
            q = np.nanquantile(x, np.linspace(0.0, 1.0, self.bins + 1), axis=0)  # (bins + 1, F)
        self._set_edges([np.unique(col[np.isfinite(col)]) for col in q.T])

    def _set_edges(self, edges: list[np.ndarray]) -> None:
        """Per feature, sorted distinct edges (at most ``bins + 1``): fill the four ``(F, bins)`` buffers."""
        lower = np.zeros((self.num_features, self.bins))
        width = np.ones_like(lower)
        floor = np.zeros_like(lower)
        ceiling = np.zeros_like(lower)  # unused bins: clipped to [0, 0]
        for f, e in enumerate(edges):
            used = len(e) - 1
            if used < 1:
                continue  # constant feature: all bins read 0
            lower[f, :used] = e[:-1]
            width[f, :used] = np.diff(e)
            ceiling[f, :used] = 1.0
            floor[f, 0] = -np.inf  # open below
            ceiling[f, used - 1] = np.inf  # open above
        for name, value in (("lower", lower), ("width", width), ("floor", floor), ("ceiling", ceiling)):
            buf = getattr(self, name)
            buf.copy_(torch.as_tensor(value, dtype=buf.dtype))

    def edges(self, feature: int) -> np.ndarray:
        """The distinct bin edges of one feature ``(used bins + 1,)``."""
        used = int((self.ceiling[feature] != 0).sum())
        if used == 0:
            return np.zeros(0)
        lo = self.lower[feature, :used].double().numpy()
        return np.append(lo, lo[-1] + float(self.width[feature, used - 1]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(N, F)`` → ``(N, F × bins)``."""
        e = (x.unsqueeze(-1) - self.lower) / self.width
        return torch.minimum(torch.maximum(e, self.floor), self.ceiling).flatten(1)


def fit_input_encoders(model: nn.Module, x: Any, rows: np.ndarray) -> int:
    """Fit every :class:`PiecewiseLinearEncoding` of ``model`` on the training rows ``x[rows]`` of the model
    inputs ``x`` ``(N, …)`` (flattened per row; a scipy sparse matrix is densified; a model with a
    ``fit_inputs(x)`` method, e.g. ``mil`` on packed bags, fits its own); returns how many there are.
    ``x`` None (a streamed store) is an error only when the model has such an encoding."""
    encoders = [m for m in model.modules() if isinstance(m, PiecewiseLinearEncoding)]
    if not encoders:
        return 0
    if x is None:
        raise DataError("model.numeric_encoding: ple needs the training features in memory, not a streamed store")
    part = x[rows]
    part = np.asarray(part.toarray() if hasattr(part, "toarray") else part)
    custom = getattr(model, "fit_inputs", None)
    if callable(custom):  # a model whose inputs are not one feature row each (packed bags)
        custom(part)
        return len(encoders)
    for enc in encoders:
        enc.fit(part.reshape(len(part), -1))
    return len(encoders)
