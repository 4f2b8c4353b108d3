"""Masked pooling of instance embeddings into one bag representation.

Every operator takes instance embeddings ``h`` ``(B, M, D)`` and a mask ``(B, M)`` (1 = real
instance, 0 = padding) and returns the bag representation ``(B, D)`` and instance weights
``(B, M)`` (zero on padding). Padded instances never change the result.

* ``mean`` and ``max``: the classical symmetric poolings (Wang et al., 2018).
* ``attention`` and ``gated_attention``: Ilse, Tomczak & Welling, "Attention-based deep multiple
  instance learning", ICML 2018, eq. 8 and 9.
* ``noisy_and`` (:class:`NoisyAnd`) pools instance *probabilities*, Kraus, Ba & Frey,
  Bioinformatics 32:i52 (2016), eq. 1.
"""

from __future__ import annotations

import torch
from torch import nn

#: Pooling operators of the ``mil`` model.
POOLINGS = ("mean", "max", "attention", "gated_attention", "noisy_and")


def masked_mean(h: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean of the real instances: ``z = Σ_k m_k h_k / Σ_k m_k``; weights ``m_k / Σ m``."""
    w = mask / mask.sum(dim=1, keepdim=True).clamp_min(1.0)
    return torch.einsum("bm,bmd->bd", w, h), w


def masked_max(h: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Element-wise maximum over real instances; an instance's weight is the share of embedding
    dimensions where it is the maximum."""
    very_low = torch.finfo(h.dtype).min
    filled = torch.where(mask.unsqueeze(-1) > 0.5, h, torch.full_like(h, very_low))
    z = filled.max(dim=1).values
    hits = (filled == z.unsqueeze(1)).to(h.dtype) * mask.unsqueeze(-1)
    w = hits.sum(dim=-1)
    return z, w / w.sum(dim=1, keepdim=True).clamp_min(1.0)


def masked_softmax(scores: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Softmax over the instance axis of ``scores`` ``(B, M)`` with padding at weight 0."""
    very_low = torch.finfo(scores.dtype).min
    s = torch.where(mask > 0.5, scores, torch.full_like(scores, very_low))
    w = torch.softmax(s, dim=1) * mask
    return w / w.sum(dim=1, keepdim=True).clamp_min(1e-12)


class AttentionPool(nn.Module):
    """Attention pooling (Ilse et al. 2018): ``a_k = softmax_k(wᵀ tanh(V h_k))``, or gated
    ``a_k = softmax_k(wᵀ (tanh(V h_k) ⊙ sigm(U h_k)))``; ``z = Σ_k a_k h_k``.

    Parameters
    ----------
    dim
        Embedding size ``D``.
    hidden
        Attention size ``L`` (rows of ``V`` and ``U``).
    gated
        Use the gated variant.
    """

    def __init__(self, dim: int, hidden: int, gated: bool = False) -> None:
        super().__init__()
        self.V = nn.Linear(dim, hidden)
        self.U = nn.Linear(dim, hidden) if gated else None
        self.w = nn.Linear(hidden, 1, bias=False)

    def scores(self, h: torch.Tensor) -> torch.Tensor:
        """Unnormalised attention scores ``(B, M)``."""
        a = torch.tanh(self.V(h))
        if self.U is not None:
            a = a * torch.sigmoid(self.U(h))
        return self.w(a).squeeze(-1)

    def forward(self, h: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        w = masked_softmax(self.scores(h), mask)
        return torch.einsum("bm,bmd->bd", w, h), w


class NoisyAnd(nn.Module):
    """Noisy-AND pooling of instance probabilities (Kraus et al. 2016, eq. 1).

    ``P = [σ(a(p̄ − b)) − σ(−a b)] / [σ(a(1 − b)) − σ(−a b)]`` with ``p̄`` the mean instance
    probability of a class in the bag, a fixed slope ``a`` and a learned threshold ``b ∈ (0, 1)``
    per class (``b = sigmoid(β)``).
    """

    def __init__(self, num_outputs: int, slope: float = 10.0) -> None:
        super().__init__()
        self.slope = float(slope)
        self.beta = nn.Parameter(torch.zeros(num_outputs))  # b = 0.5 at the start

    def forward(self, p: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Bag probabilities ``(B, K)`` from instance probabilities ``p`` ``(B, M, K)``."""
        mean, _ = masked_mean(p, mask)
        a, b = self.slope, torch.sigmoid(self.beta)
        low = torch.sigmoid(-a * b)
        return (torch.sigmoid(a * (mean - b)) - low) / (torch.sigmoid(a * (1 - b)) - low)
