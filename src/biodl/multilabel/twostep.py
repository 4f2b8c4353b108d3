"""The two-step multi-label learner of Kang et al. (2019).

1. Fit a deep non-negative auto-encoder on the training label matrix ``V`` (:func:`fit_dnae`); its
   codes ``W_L = V H_1 ⋯ H_L`` are the latent labels.
2. Train a network (dense for feature vectors; any image model for images, via ``network``)
   to predict ``W_L`` with an identity output and MSE; the frozen decoder ``H_L^T ⋯ H_1^T`` maps
   its predictions back to label scores.

Predictions are label scores (reconstructions of 0/1 labels, clipped to ``[0, 1]``); top-N
label lists per sample come from :meth:`TwoStepLearner.top_labels`.

Example
-------
>>> learner = TwoStepLearner(layers=[64, 16]).fit(X_train, Y_train)
>>> scores = learner.predict(X_test)                 # (N, p)
>>> learner.top_labels(X_test, names, k=5)[0]        # [("Class12", 0.81), ...]
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from biodl.errors import DataError
from biodl.multilabel.dnae import DNAEFit, LabelWeighting, NonNeg, check_label_matrix, dnae_encode, fit_dnae_with

NetworkFactory = Callable[[tuple[int, ...], int], nn.Module]


def dense_regressor(in_shape: tuple[int, ...], n_out: int, hidden: Sequence[int] = (256,), dropout: float = 0.3) -> nn.Module:
    """Dense network ``F → hidden ... → n_out`` (ReLU, dropout, identity output)."""
    n_in = int(np.prod(in_shape))
    layers: list[nn.Module] = [nn.Flatten()]
    for width in hidden:
        layers += [nn.Linear(n_in, width), nn.ReLU(), nn.Dropout(dropout)]
        n_in = width
    layers.append(nn.Linear(n_in, n_out))
    return nn.Sequential(*layers)


@dataclass
class TwoStepLearner:
    """DNAE latent labels + a network that predicts them.

    Parameters
    ----------
    layers
        DNAE code widths (the paper: ``[64, 16]``; keep the last below the number of labels).
    nonneg, label_weighting, weight_power, sparsity
        DNAE options (:func:`biodl.multilabel.dnae.fit_dnae`).
    dnae_epochs, dnae_lr
        DNAE optimisation.
    network
        ``factory(in_shape, n_latent) -> nn.Module``; default :func:`dense_regressor`.
    epochs, lr, batch_size, weight_decay, patience, val_fraction
        Step-2 training (Adam, early stopping on a validation part of the training rows).
    seed
        Seed of everything.
    """

    layers: list[int] = field(default_factory=lambda: [64, 16])
    nonneg: NonNeg = "projection"
    label_weighting: LabelWeighting = "none"
    weight_power: float = 0.5
    sparsity: float = 0.0
    dnae_epochs: int = 300
    dnae_lr: float = 0.01
    network: NetworkFactory | None = None
    epochs: int = 200
    lr: float = 1e-3
    batch_size: int = 64
    weight_decay: float = 1e-4
    patience: int = 20
    val_fraction: float = 0.1
    seed: int = 0
    dnae: DNAEFit | None = field(default=None, init=False)
    regressor: nn.Module | None = field(default=None, init=False)
    history: dict[str, list[float]] = field(default_factory=dict, init=False)

    def fit(self, X: np.ndarray, Y: np.ndarray) -> TwoStepLearner:
        """Fit both steps on features ``X`` ``(N, ...)`` and labels ``Y`` ``(N, p)``."""
        V = check_label_matrix(Y)
        constant = [j for j in range(V.shape[1]) if V[:, j].min() == V[:, j].max()]
        if constant:
            raise DataError(
                f"label column(s) {constant[:10]} hold a single value in the training rows (all-zero tail labels?); "
                "drop them before fitting (biodl.data.arff.check_label_matrix(..., all_zero='drop'))"
            )
        X = np.asarray(X, dtype=np.float32)
        if len(X) != len(V):
            raise DataError(f"{len(X)} feature rows but {len(V)} label rows")
        if self.layers[-1] >= V.shape[1]:
            raise DataError(f"the last DNAE layer ({self.layers[-1]}) must be smaller than the number of labels ({V.shape[1]})")
        self.dnae = fit_dnae_with(self, V, self.layers, seed=self.seed)
        latent = self.latent_labels(V)
        torch.manual_seed(self.seed)
        factory = self.network or (lambda shape, k: dense_regressor(shape, k))
        self.regressor = factory(tuple(X.shape[1:]), latent.shape[1])
        self.history = _train_regressor(
            self.regressor, X, latent, epochs=self.epochs, lr=self.lr, batch_size=self.batch_size,
            weight_decay=self.weight_decay, patience=self.patience, val_fraction=self.val_fraction, seed=self.seed,
        )  # fmt: skip
        return self

    def latent_labels(self, Y: np.ndarray) -> np.ndarray:
        """``W_L`` ``(N, k_L)`` of label rows."""
        if self.dnae is None:
            raise RuntimeError("fit() first")
        return dnae_encode(self.dnae, Y)

    def predict_latent(self, X: np.ndarray) -> np.ndarray:
        """Predicted latent labels ``(N, k_L)``."""
        if self.regressor is None:
            raise RuntimeError("fit() first")
        self.regressor.eval()
        with torch.no_grad():
            return self.regressor(torch.from_numpy(np.asarray(X, dtype=np.float32))).numpy()

    def decode(self, latent: np.ndarray) -> np.ndarray:
        """Label scores ``(N, p)`` in ``[0, 1]`` from latent labels."""
        if self.dnae is None:
            raise RuntimeError("fit() first")
        with torch.no_grad():
            out = self.dnae.model.decode(torch.from_numpy(np.asarray(latent, dtype=np.float32))).numpy()
        return np.clip(out, 0.0, 1.0)

    def predict(self, X: np.ndarray) -> np.ndarray:
        """Label scores ``(N, p)``."""
        return self.decode(self.predict_latent(X))

    def top_labels(self, X: np.ndarray, names: Sequence[str], k: int = 5) -> list[list[tuple[str, float]]]:
        """The ``k`` highest-scored labels of every sample, as ``(name, score)``."""
        scores = self.predict(X)
        order = np.argsort(-scores, axis=1, kind="stable")[:, :k]
        return [[(str(names[j]), float(scores[i, j])) for j in row] for i, row in enumerate(order)]


def _train_regressor(
    net: nn.Module,
    X: np.ndarray,
    T: np.ndarray,
    *,
    epochs: int,
    lr: float,
    batch_size: int,
    weight_decay: float,
    patience: int,
    val_fraction: float,
    seed: int,
) -> dict[str, list[float]]:
    """MSE training with early stopping on a random validation part; restores the best weights."""
    rng = np.random.default_rng(seed)
    perm = rng.permutation(len(X))
    n_val = round(val_fraction * len(X)) if len(X) >= 20 else 0
    va, tr = perm[:n_val], perm[n_val:]
    xt, tt = torch.from_numpy(X), torch.from_numpy(T.astype(np.float32))
    opt = torch.optim.Adam(net.parameters(), lr=lr, weight_decay=weight_decay)
    gen = torch.Generator().manual_seed(seed)
    best, best_state, bad = float("inf"), None, 0
    hist: dict[str, list[float]] = {"train_loss": [], "val_loss": []}
    for _ in range(epochs):
        net.train()
        total = 0.0
        for b in torch.from_numpy(tr)[torch.randperm(len(tr), generator=gen)].split(batch_size):
            loss = ((net(xt[b]) - tt[b]) ** 2).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += loss.item() * len(b)
        hist["train_loss"].append(total / max(len(tr), 1))
        if n_val:
            net.eval()
            with torch.no_grad():
                v = float(((net(xt[va]) - tt[va]) ** 2).mean())
            hist["val_loss"].append(v)
            if v < best - 1e-7:
                best, bad = v, 0
                best_state = {k: t.detach().clone() for k, t in net.state_dict().items()}
            else:
                bad += 1
                if bad >= patience:
                    break
    if best_state is not None:
        net.load_state_dict(best_state)
    net.eval()
    return hist
