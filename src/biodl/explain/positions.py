"""Per-residue attributions of per-position models: which positions drive the label of position ``i``.

A per-position model returns scores ``(N, C, L)``; :class:`PositionOutput` exposes the scores of one
position ``(N, C)``, so every attribution method (:mod:`biodl.explain.attributions`: saliency,
input × gradient, integrated gradients) explains that position's class ``c``:

>>> from biodl.explain import IntegratedGradients
>>> attr = IntegratedGradients(PositionOutput(bundle.model, 41, X.shape[-1])).attribute(X, target=2)
>>> per_residue = attr.sum(1)  # (N, L): contribution of each residue to class 2 at position 42
"""

from __future__ import annotations

import torch
from torch import nn


class PositionOutput(nn.Module):
    """Scores ``(N, C)`` of position ``position`` (0-based) of a per-position network on inputs ``(N, A, length)``."""

    def __init__(self, model: nn.Module, position: int, length: int) -> None:
        super().__init__()
        self.model = model
        self.position = int(position)
        channels = int(getattr(model, "in_shape", (0,))[0])
        self.in_shape = (channels, int(length))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)[:, :, self.position]  # type: ignore[no-any-return]


def residue_attributions(attr: torch.Tensor) -> torch.Tensor:
    """``(N, L)`` per-residue attribution: the one-hot attributions ``(N, A, L)`` summed over the alphabet."""
    return attr.sum(dim=1)
