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
    outs: list[np.ndarray] = []
    for start in range(0, len(X), batch_size):
        xb = torch.from_numpy(np.ascontiguousarray(X[start : start + batch_size])).to(device)
        if not torch.is_floating_point(xb):
            xb = xb.float()
        outs.append(apply_head(kind, model(xb)).float().cpu().numpy())
    if not outs:
        return np.zeros((0, 0), dtype=np.float32)
    return np.concatenate(outs)
