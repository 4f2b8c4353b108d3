"""Losses with missing labels masked out."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from biodl.models.outputs import apply_head as apply_head  # re-exported: the training loop's former home of it


def masked_loss(
    kind: str,
    scores: torch.Tensor,
    y: torch.Tensor,
    *,
    complete: bool = False,
    huber_delta: float | None = None,
    label_smoothing: float = 0.0,
) -> torch.Tensor:
    """Mean loss over labelled entries.

    Parameters
    ----------
    kind
        ``binary`` (BCE with logits), ``multiclass`` (cross-entropy) or ``regression`` (MSE).
    scores
        ``(N, T)`` logits/values, or ``(N, C)`` class logits.
    y
        ``(N, T)`` float with NaN = missing, or ``(N,)`` int64 with -1 = missing.
        ``segmentation``: scores ``(N, K, H, W)`` and masks ``(N, H, W)`` with -1 = unlabelled;
        ``K = 1`` is per-pixel BCE (mask value > 0 = foreground, so instance ids work), else
        per-pixel cross-entropy.
        ``positions``: scores ``(N, C, L)`` and class indices ``(N, L)`` with -1 = not counted
        (padding, masked positions); the mean cross-entropy over counted positions.
    huber_delta
        Regression: the Huber loss with this ``delta`` instead of MSE (``None``: MSE).
    label_smoothing
        ``multiclass`` and ``positions``: label smoothing of the cross-entropy (0: none).
    complete
        The caller knows no entry is missing: the plain mean loss, without building a mask
        (the same value, a few fewer operations per step).
    """
    if kind == "segmentation":
        return segmentation_loss(scores, y)
    if kind == "positions":
        return positions_loss(scores, y, label_smoothing=label_smoothing)
    if complete and kind == "multiclass":
        return F.cross_entropy(scores, y.long(), label_smoothing=label_smoothing)
    if complete:
        target = y.reshape(scores.shape).to(scores.dtype)
        if kind == "binary":
            return F.binary_cross_entropy_with_logits(scores, target)
        if huber_delta is not None:
            return F.huber_loss(scores, target, delta=huber_delta)
        return F.mse_loss(scores, target)
    if kind == "multiclass":
        if (y >= 0).sum() == 0:
            return scores.sum() * 0.0
        return F.cross_entropy(scores, y.long(), ignore_index=-1, label_smoothing=label_smoothing)
    y = y.reshape(scores.shape)
    mask = ~torch.isnan(y)
    n = mask.sum()
    if n == 0:
        return scores.sum() * 0.0
    target = torch.where(mask, y, torch.zeros_like(y))
    if kind == "binary":
        per = F.binary_cross_entropy_with_logits(scores, target, reduction="none")
    elif huber_delta is not None:
        per = F.huber_loss(scores, target, reduction="none", delta=huber_delta)
    else:
        per = (scores - target) ** 2
    return (per * mask).sum() / n


def segmentation_loss(scores: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Mean per-pixel loss over labelled pixels (``y >= 0``) of ``(N, K, H, W)`` logits."""
    y = y.long()
    labelled = y >= 0
    n = labelled.sum()
    if n == 0:
        return scores.sum() * 0.0
    if scores.shape[1] == 1:
        target = (y > 0).to(scores.dtype)
        per = F.binary_cross_entropy_with_logits(scores[:, 0], target, reduction="none")
        return (per * labelled).sum() / n
    return F.cross_entropy(scores, y, ignore_index=-1)


def positions_loss(scores: torch.Tensor, y: torch.Tensor, *, label_smoothing: float = 0.0) -> torch.Tensor:
    """Mean cross-entropy over counted positions (``y >= 0``) of ``(N, C, L)`` logits.

    Positions with ``y = -1`` (padding, masked) contribute nothing, whatever their scores; scores
    may be shorter than ``y`` (a batch cut after its longest sequence), never longer.
    ``label_smoothing`` mixes each counted position's one-hot target with the uniform distribution.
    """
    y = y.long()[..., : scores.shape[-1]]
    if scores.shape[-1] > y.shape[-1]:
        scores = scores[..., : y.shape[-1]]
    if (y >= 0).sum() == 0:
        return scores.sum() * 0.0
    return F.cross_entropy(scores, y, ignore_index=-1, label_smoothing=label_smoothing)
