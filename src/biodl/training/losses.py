"""Losses with missing labels masked out."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def masked_loss(kind: str, scores: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Mean loss over labelled entries.

    Parameters
    ----------
    kind
        ``binary`` (BCE with logits), ``multiclass`` (cross-entropy) or ``regression`` (MSE).
    scores
        ``(N, T)`` logits/values, or ``(N, C)`` class logits.
    y
        ``(N, T)`` float with NaN = missing, or ``(N,)`` int64 with -1 = missing.
    """
    if kind == "multiclass":
        if (y >= 0).sum() == 0:
            return scores.sum() * 0.0
        return F.cross_entropy(scores, y.long(), ignore_index=-1)
    y = y.reshape(scores.shape)
    mask = ~torch.isnan(y)
    n = mask.sum()
    if n == 0:
        return scores.sum() * 0.0
    target = torch.where(mask, y, torch.zeros_like(y))
    if kind == "binary":
        per = F.binary_cross_entropy_with_logits(scores, target, reduction="none")
    else:
        per = (scores - target) ** 2
    return (per * mask).sum() / n


def apply_head(kind: str, scores: torch.Tensor) -> torch.Tensor:
    """Scores → probabilities (sigmoid / softmax) or values (identity)."""
    if kind == "binary":
        return torch.sigmoid(scores)
    if kind == "multiclass":
        return torch.softmax(scores, dim=-1)
    return scores
