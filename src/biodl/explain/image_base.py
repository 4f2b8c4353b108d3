"""The common machinery of the image explainers: evaluation mode, per-image targets, segmentation wrapping.

:mod:`biodl.explain.image` (gradient, occlusion, Grad-CAM) and :mod:`biodl.explain.lime` build on it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

import torch
from torch import nn

from biodl.errors import ConfigError

__all__ = ["Explainer", "SegmentationTarget", "Target", "is_segmentation"]

#: What to explain: a class index, one per image, or ``None`` (the predicted class).
Target = int | torch.Tensor | None


class SegmentationTarget(nn.Module):
    """Scalar score of a segmentation model for explanation: the region it predicts.

    ``forward(x)`` returns ``(B, 1)``: the sum, over the pixels of ``mask``, of the class
    probability (sigmoid for one output map, softmax otherwise) — "why does the model put
    *this* region in class ``class_index``?".

    Parameters
    ----------
    model
        A segmentation network returning ``(B, K, H, W)`` logits.
    class_index
        The class explained (default 1, the foreground of binary masks).
    mask
        ``(H, W)`` region; ``None`` = the region predicted for the first input seen by
        :meth:`set_region` (call it with the unperturbed image).
    """

    def __init__(self, model: nn.Module, class_index: int = 1, mask: torch.Tensor | None = None) -> None:
        super().__init__()
        self.model = model
        self.class_index = class_index
        self.mask = mask

    def _probs(self, x: torch.Tensor) -> torch.Tensor:
        logits = self.model(x)
        if logits.shape[1] == 1:
            p = torch.sigmoid(logits[:, 0])
            return p if self.class_index >= 1 else 1 - p
        return torch.softmax(logits, dim=1)[:, self.class_index]

    @torch.no_grad()
    def set_region(self, x: torch.Tensor) -> torch.Tensor:
        """Fix the explained region to the model's prediction for ``x`` ``(1, C, H, W)``; returns it."""
        self.mask = (self._probs(x)[0] > 0.5).float()
        if self.mask.sum() == 0:  # nothing predicted: explain the whole image's score
            self.mask = torch.ones_like(self.mask)
        return self.mask

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, 1)`` region scores."""
        if self.mask is None:
            raise RuntimeError("call set_region(image) first (or pass mask=)")
        return (self._probs(x) * self.mask).sum(dim=(-2, -1))[:, None]


def is_segmentation(model: nn.Module) -> bool:
    """Whether ``model`` is a per-pixel network (or an ensemble of them)."""
    from biodl.models.vision.base import SegmentationModel

    members = getattr(model, "members", None)
    if not isinstance(model, SegmentationModel) and isinstance(members, nn.ModuleList) and len(members):
        return all(is_segmentation(m) for m in members)
    return isinstance(model, SegmentationModel)


class Explainer:
    """Common machinery: evaluation mode, per-image targets, segmentation wrapping."""

    name: ClassVar[str] = ""

    def __init__(self, model: nn.Module, *, class_index: int = 1) -> None:
        self.model = model
        self.segmentation = is_segmentation(model)
        self.class_index = class_index

    def _forward_for(self, x: torch.Tensor) -> tuple[Callable[[torch.Tensor], torch.Tensor], nn.Module]:
        """A scalar-per-class forward for one image ``x`` ``(1, C, H, W)``."""
        if self.segmentation:
            wrapper = SegmentationTarget(self.model, self.class_index)
            wrapper.set_region(x)
            return wrapper, wrapper
        return self.model, self.model

    def _target(self, scores: torch.Tensor, target: Target, i: int) -> int:
        if self.segmentation:
            return 0
        if target is None:
            return 0 if scores.shape[1] == 1 else int(scores.argmax(dim=1)[0])
        if isinstance(target, int):
            return target
        return int(target[i])

    def attribute(self, inputs: torch.Tensor, target: Target = None, **kwargs: Any) -> torch.Tensor:
        """Maps ``(N, 1, H, W)`` (see the module docstring)."""
        if inputs.ndim != 4:
            raise ConfigError(f"image explanations need (N, C, H, W) inputs, got {tuple(inputs.shape)}")
        was_training = self.model.training
        self.model.eval()
        try:
            maps = []
            for i in range(len(inputs)):
                x = inputs[i : i + 1].detach().float()
                fwd, _ = self._forward_for(x)
                with torch.no_grad():
                    scores = fwd(x)
                maps.append(self._one(fwd, x, self._target(scores, target, i), **kwargs))
            return torch.cat(maps)
        finally:
            self.model.train(was_training)

    def _one(self, fwd: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, target: int, **kwargs: Any) -> torch.Tensor:
        raise NotImplementedError
