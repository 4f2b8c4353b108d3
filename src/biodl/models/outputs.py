"""What a network's raw scores mean: probabilities (sigmoid / softmax) or values, batch by batch.

Shared by the training loop (:mod:`biodl.training`) and saved bundles (:mod:`biodl.bundle`), so that
predicting with a bundle needs no training code.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

__all__ = ["apply_head", "predict_outputs"]


def apply_head(kind: str, scores: torch.Tensor) -> torch.Tensor:
    """Scores → probabilities (sigmoid / softmax) or values (identity)."""
    if kind == "positions":
        return torch.softmax(scores, dim=1)
    if kind == "segmentation":
        return torch.sigmoid(scores) if scores.shape[1] == 1 else torch.softmax(scores, dim=1)
    if kind == "binary":
        return torch.sigmoid(scores)
    if kind == "multiclass":
        return torch.softmax(scores, dim=-1)
    return scores


@torch.inference_mode()
def predict_outputs(model: nn.Module, X: np.ndarray, kind: str, *, batch_size: int = 512) -> np.ndarray:
    """Head-applied outputs for inputs ``X`` ``(N, ...)``: probabilities or values ``(N, K)``."""
    model.eval()
    device = next(model.parameters()).device
    if kind == "positions":
        return _predict_positions(model, X, batch_size=batch_size)
    outs: list[np.ndarray] = []
    for start in range(0, len(X), batch_size):
        xb = torch.from_numpy(np.ascontiguousarray(X[start : start + batch_size])).to(device)
        if not torch.is_floating_point(xb):
            xb = xb.float()
        outs.append(apply_head(kind, model(xb)).float().cpu().numpy())
    if not outs:
        return np.zeros((0, 0), dtype=np.float32)
    return np.concatenate(outs)


def _predict_positions(model: nn.Module, X: np.ndarray, *, batch_size: int) -> np.ndarray:
    """Per-position probabilities ``(N, C, L)``: rows in length order, each batch cut after its longest sequence."""
    from biodl.data.positions import length_order, trim_batch

    device = next(model.parameters()).device
    order = length_order(X)
    out: np.ndarray | None = None
    for start in range(0, len(X), batch_size):
        rows = order[start : start + batch_size]
        xb, _ = trim_batch(torch.from_numpy(np.ascontiguousarray(X[rows])))
        xb = xb.to(device)
        probs = apply_head("positions", model(xb.float() if not torch.is_floating_point(xb) else xb)).float().cpu().numpy()
        if out is None:
            out = np.zeros((len(X), probs.shape[1], X.shape[-1]), dtype=np.float32)
        out[rows, :, : probs.shape[-1]] = probs
    return out if out is not None else np.zeros((0, 0, X.shape[-1]), dtype=np.float32)
