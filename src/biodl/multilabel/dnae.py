"""Deep non-negative auto-encoder (DNAE) of a label matrix (Kang et al., "Towards interpretable deep
extreme multi-label learning", 2019) and the NMF baseline.

With the ``n × p`` label matrix ``V`` and layers ``k_1 > k_2 > ... > k_L``:

.. math::

    W_1 = V H_1,\\; W_l = W_{l-1} H_l,\\qquad V' = W_L H_L^T \\cdots H_1^T,\\qquad
    \\min \\|V - V'\\|_F^2 \\;\\text{s.t.}\\; H_l \\ge 0

(the paper's objective; tied decoder ``H_l^T``). ``W_L`` are the latent labels a second model
learns to predict (:mod:`biodl.multilabel.twostep`); the columns of ``H_1`` and of the products
``H_1 H_2 ⋯ H_l`` name the label sets of every latent unit (:mod:`biodl.multilabel.hierarchy`).

Non-negativity (``nonneg``)
---------------------------
* ``projection`` (default): plain gradient steps on ``H_l`` followed by clipping to ``≥ 0`` after
  every step (projected gradient descent); weights are exactly non-negative at all times.
* ``softplus``: ``H_l = softplus(U_l)``, an unconstrained parameterisation; weights are strictly
  positive (never exactly 0, so hierarchies are less sparse).

Tail labels (the paper leaves them unsolved)
--------------------------------------------
* ``label_weighting="inverse_frequency"`` (power ``weight_power``): column ``j`` of the
  reconstruction error is weighted by ``(f_j)^{-α}`` (normalised to mean 1), so rare labels count.
* ``sparsity``: an L1 penalty on the codes ``W_L`` (fewer active latent units per sample).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Literal, Protocol

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from biodl.errors import DataError

NonNeg = Literal["projection", "softplus"]
LabelWeighting = Literal["none", "inverse_frequency"]


class DeepNonNegativeAutoencoder(nn.Module):
    """Tied, linear, non-negative auto-encoder ``V → V H_1 ⋯ H_L → (⋯) H_L^T ⋯ H_1^T``.

    Parameters
    ----------
    n_labels
        ``p``, columns of the label matrix.
    layers
        Code widths ``[k_1, ..., k_L]`` (the paper: ``[64, 16]``).
    nonneg
        How ``H_l >= 0`` is enforced (see the module docstring).
    seed
        Initialisation seed.
    """

    def __init__(self, n_labels: int, layers: list[int], nonneg: NonNeg = "projection", seed: int = 0) -> None:
        super().__init__()
        if not layers:
            raise ValueError("the DNAE needs at least one layer")
        self.n_labels = int(n_labels)
        self.layers = [int(k) for k in layers]
        self.nonneg = nonneg
        gen = torch.Generator().manual_seed(seed)
        sizes = [self.n_labels, *self.layers]
        params = []
        for a, b in itertools.pairwise(sizes):
            # uniform on [0, 2/a]: non-negative, and codes start at the scale of the inputs
            h = torch.rand((a, b), generator=gen) * (2.0 / a)
            if nonneg == "softplus":
                h = torch.log(torch.expm1(h.clamp_min(1e-4)))  # softplus^-1
            params.append(nn.Parameter(h))
        self.raw = nn.ParameterList(params)

    def weights(self) -> list[torch.Tensor]:
        """The non-negative coefficient matrices ``[H_1 (p × k_1), ..., H_L (k_{L-1} × k_L)]``."""
        if self.nonneg == "softplus":
            return [F.softplus(h) for h in self.raw]
        return list(self.raw)

    @torch.no_grad()
    def project(self) -> None:
        """Clip ``H_l`` to ``≥ 0`` (projection mode; a no-op for softplus)."""
        if self.nonneg == "projection":
            for h in self.raw:
                h.clamp_(min=0.0)

    def encode(self, v: torch.Tensor, depth: int | None = None) -> torch.Tensor:
        """Codes ``W_depth`` ``(n, k_depth)`` (default the last layer)."""
        w = v
        for h in self.weights()[: depth or len(self.layers)]:
            w = w @ h
        return w

    def decode(self, w: torch.Tensor) -> torch.Tensor:
        """Label scores ``(n, p)`` from last-layer codes ``W_L``."""
        out = w
        for h in reversed(self.weights()):
            out = out @ h.T
        return out

    def forward(self, v: torch.Tensor) -> torch.Tensor:
        """Reconstruction ``V'`` of ``V`` ``(n, p)``."""
        return self.decode(self.encode(v))

    def cumulative(self) -> list[np.ndarray]:
        """``[H_1, H_1 H_2, ...]`` as arrays ``(p, k_l)``: each latent unit's weight on every label."""
        out, acc = [], None
        with torch.no_grad():
            for h in self.weights():
                acc = h if acc is None else acc @ h
                out.append(acc.detach().cpu().numpy().copy())
        return out


def label_weights(V: np.ndarray, scheme: LabelWeighting, power: float = 0.5) -> np.ndarray:
    """``(p,)`` column weights of the reconstruction error (mean 1)."""
    p = V.shape[1]
    if scheme == "none":
        return np.ones(p, dtype=np.float32)
    freq = np.clip(np.nanmean(V, axis=0), 1.0 / max(len(V), 1), 1.0)
    w = freq ** (-power)
    return (w / w.mean()).astype(np.float32)


@dataclass
class DNAEFit:
    """A trained DNAE and its learning curve.

    Attributes
    ----------
    model
        The auto-encoder (eval mode).
    history
        ``{"loss": [...]}`` per epoch (weighted mean squared error + penalties), plus
        ``pretrain_layer_l`` curves of the layer-wise initialisation.
    weights
        Column weights used (``(p,)``).
    """

    model: DeepNonNegativeAutoencoder
    history: dict[str, list[float]] = field(default_factory=dict)
    weights: np.ndarray | None = None


def check_label_matrix(V: np.ndarray) -> np.ndarray:
    """Validate a dense 0/1 (or non-negative) label matrix ``(n, p)``; returns float32."""
    arr = np.asarray(V, dtype=np.float32)
    if arr.ndim != 2 or arr.shape[0] == 0 or arr.shape[1] == 0:
        raise DataError(f"the label matrix must be a non-empty (n, p) array, got shape {arr.shape}")
    if not np.isfinite(arr).all():
        raise DataError("the label matrix has missing or non-finite values; the DNAE needs complete labels")
    if (arr < 0).any():
        raise DataError("the label matrix must be non-negative")
    return arr


def _train(
    model: DeepNonNegativeAutoencoder,
    data: torch.Tensor,
    wt: torch.Tensor,
    *,
    epochs: int,
    lr: float,
    batch_size: int,
    sparsity: float,
    seed: int,
) -> list[float]:
    """Adam on the weighted reconstruction error, projecting onto ``H >= 0`` after every step."""
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    gen = torch.Generator().manual_seed(seed)
    history: list[float] = []
    for _ in range(epochs):
        total = 0.0
        for idx in torch.randperm(len(data), generator=gen).split(batch_size):
            v = data[idx]
            codes = model.encode(v)
            loss = (((model.decode(codes) - v) ** 2) * wt).mean()
            if sparsity > 0:
                loss = loss + sparsity * codes.abs().mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
            model.project()
            total += loss.item() * len(idx)
        history.append(total / len(data))
    return history


def fit_dnae(
    V: np.ndarray,
    layers: list[int],
    *,
    nonneg: NonNeg = "projection",
    epochs: int = 300,
    lr: float = 0.01,
    batch_size: int = 256,
    label_weighting: LabelWeighting = "none",
    weight_power: float = 0.5,
    sparsity: float = 0.0,
    pretrain: bool = True,
    seed: int = 0,
) -> DNAEFit:
    """Fit a DNAE to the label matrix ``V`` ``(n, p)`` with Adam.

    Parameters
    ----------
    V
        Non-negative label matrix (0/1 labels).
    layers
        Code widths, e.g. ``[64, 16]``.
    label_weighting, weight_power
        Tail-label re-weighting of the reconstruction error (see the module docstring).
    sparsity
        L1 weight on the last-layer codes.
    pretrain
        Greedy layer-wise initialisation (the review's recipe): ``H_1`` is fitted as a one-layer
        DNAE of ``V``, ``H_2`` as one of ``W_1 = V H_1``, ...; then all layers are fine-tuned
        together. Without it, the product of randomly initialised non-negative layers often
        settles in a poor optimum (many units switched off by the projection).
    """
    arr = check_label_matrix(V)
    torch.manual_seed(seed)
    model = DeepNonNegativeAutoencoder(arr.shape[1], layers, nonneg, seed)
    w = label_weights(arr, label_weighting, weight_power)
    wt = torch.from_numpy(w)
    data = torch.from_numpy(arr)
    opts = {"epochs": epochs, "lr": lr, "batch_size": batch_size, "seed": seed}
    history: dict[str, list[float]] = {}
    if pretrain and len(layers) > 1:
        inputs, weights = data, wt
        for i, k in enumerate(layers):
            single = DeepNonNegativeAutoencoder(inputs.shape[1], [k], nonneg, seed + i)
            history[f"pretrain_layer_{i + 1}"] = _train(single, inputs, weights, sparsity=0.0, **opts)  # type: ignore[arg-type]
            with torch.no_grad():
                model.raw[i].copy_(single.raw[0])
                inputs = single.encode(inputs)
            weights = torch.ones(inputs.shape[1])
    history["loss"] = _train(model, data, wt, sparsity=sparsity, **opts)  # type: ignore[arg-type]
    model.eval()
    return DNAEFit(model, history, w)


class DNAEOptions(Protocol):
    """DNAE options as the two-step learners hold them (``dnae_*`` for the optimisation)."""

    nonneg: NonNeg
    label_weighting: LabelWeighting
    weight_power: float
    sparsity: float
    dnae_epochs: int
    dnae_lr: float


def fit_dnae_with(
    options: DNAEOptions, V: np.ndarray, layers: list[int], *, seed: int, batch_size: int = 256, pretrain: bool = True
) -> DNAEFit:
    """:func:`fit_dnae` with the options of a two-step learner.

    Parameters
    ----------
    options
        Holds ``nonneg``, ``label_weighting``, ``weight_power``, ``sparsity``, ``dnae_epochs`` and
        ``dnae_lr`` (:class:`biodl.multilabel.TwoStepLearner`, the ``dnae`` model's parameters).
    V, layers, seed, batch_size, pretrain
        As for :func:`fit_dnae`.

    Returns
    -------
    DNAEFit
        The fitted auto-encoder.
    """
    return fit_dnae(
        V,
        layers,
        nonneg=options.nonneg,
        epochs=options.dnae_epochs,
        lr=options.dnae_lr,
        batch_size=batch_size,
        label_weighting=options.label_weighting,
        weight_power=options.weight_power,
        sparsity=options.sparsity,
        pretrain=pretrain,
        seed=seed,
    )


def reconstruction_error(V: np.ndarray, V_hat: np.ndarray) -> dict[str, float]:
    """Squared Frobenius error, its per-entry mean, and the relative error ``||V - V'||_F / ||V||_F``."""
    V = np.asarray(V, dtype=np.float64)
    diff = V - np.asarray(V_hat, dtype=np.float64)
    sq = float((diff**2).sum())
    norm = float((V**2).sum())
    return {"frobenius_sq": sq, "mse": sq / V.size, "relative": float(np.sqrt(sq / norm)) if norm > 0 else float("nan")}


def dnae_reconstruct(fit: DNAEFit | DeepNonNegativeAutoencoder, V: np.ndarray) -> np.ndarray:
    """``V'`` of a (possibly new) label matrix."""
    model = fit.model if isinstance(fit, DNAEFit) else fit
    with torch.no_grad():
        return model(torch.from_numpy(check_label_matrix(V))).numpy()


def dnae_encode(fit: DNAEFit | DeepNonNegativeAutoencoder, V: np.ndarray) -> np.ndarray:
    """Latent labels of a (possibly new) label matrix.

    Parameters
    ----------
    fit
        A fitted DNAE (:func:`fit_dnae`) or its auto-encoder.
    V
        Complete 0/1 label rows ``(N, p)`` (checked by :func:`check_label_matrix`).

    Returns
    -------
    numpy.ndarray
        The codes ``W_L = V H_1 ⋯ H_L`` ``(N, k_L)``, computed without gradients.
    """
    model = fit.model if isinstance(fit, DNAEFit) else fit
    with torch.no_grad():
        return model.encode(torch.from_numpy(check_label_matrix(V))).numpy()


@dataclass
class NMFBaseline:
    """Shallow baseline: scikit-learn NMF ``V ≈ W H`` with ``k`` components."""

    k: int
    seed: int = 0
    max_iter: int = 1000

    def fit(self, V: np.ndarray) -> NMFBaseline:
        """Fit on the training label matrix."""
        from sklearn.decomposition import NMF

        arr = check_label_matrix(V)
        k = min(self.k, *arr.shape)
        self.model = NMF(n_components=k, init="nndsvda", random_state=self.seed, max_iter=self.max_iter)
        self.model.fit(arr)
        return self

    def reconstruct(self, V: np.ndarray) -> np.ndarray:
        """``W H`` with ``W`` solved for fixed ``H`` (non-negative least squares)."""
        arr = check_label_matrix(V)
        return np.asarray(self.model.inverse_transform(self.model.transform(arr)))

    @property
    def components(self) -> np.ndarray:
        """``H`` ``(k, p)``."""
        return np.asarray(self.model.components_)
