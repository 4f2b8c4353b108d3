"""Pixel operations shared by the image augmentations (:mod:`~biodl.data.image.augment`) and the
crop sampler (:mod:`~biodl.data.image.sampling`): 90° rotations, PIL filters, the 8-bit intensity mapping."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

__all__ = ["FILTERS", "Intensity", "Pair", "pil_filter", "rot90", "strategy_factor"]

#: An image batch and its (optional) mask batch.
Pair = tuple[torch.Tensor, torch.Tensor | None]

#: PIL filter names of the filter strategy.
FILTERS: dict[str, str] = {
    "contour": "CONTOUR",
    "detail": "DETAIL",
    "edge_enhance": "EDGE_ENHANCE",
    "find_edges": "FIND_EDGES",
}


def rot90(x: torch.Tensor, y: torch.Tensor | None, k: int) -> Pair:
    """Rotate a whole batch by ``k`` × 90° (counter-clockwise)."""
    xr = torch.rot90(x, k, dims=(-2, -1))
    return xr, (torch.rot90(y, k, dims=(-2, -1)) if y is not None else None)


class Intensity:
    """Maps model inputs back to 8-bit pixel values and forth (for PIL filters).

    Parameters
    ----------
    mean, std
        ``(C,)`` channel statistics the inputs were standardised with, or ``None`` when the
        inputs are not channel-standardised (then each image channel is min-max scaled).
    """

    def __init__(self, mean: np.ndarray | None = None, std: np.ndarray | None = None) -> None:
        self.mean = None if mean is None else torch.as_tensor(mean, dtype=torch.float32)[:, None, None]
        self.std = None if std is None else torch.as_tensor(std, dtype=torch.float32)[:, None, None]

    def to_uint8(self, img: torch.Tensor) -> tuple[np.ndarray, Any]:
        """``(C, H, W)`` uint8 and what :meth:`from_uint8` needs to undo the mapping."""
        if self.mean is not None and self.std is not None:
            raw = img * self.std + self.mean
            return (raw.clamp(0, 1) * 255).round().to(torch.uint8).numpy(), None
        lo = img.amin(dim=(-2, -1), keepdim=True)
        hi = img.amax(dim=(-2, -1), keepdim=True)
        span = (hi - lo).clamp_min(1e-8)
        return ((img - lo) / span * 255).round().clamp(0, 255).to(torch.uint8).numpy(), (lo, span)

    def from_uint8(self, arr: np.ndarray, ctx: Any) -> torch.Tensor:
        """Inverse of :meth:`to_uint8`."""
        t = torch.from_numpy(arr.astype(np.float32) / 255.0)
        if ctx is None:
            assert self.mean is not None and self.std is not None
            return (t - self.mean) / self.std
        lo, span = ctx
        return t * span + lo


def pil_filter(x: torch.Tensor, name: str, intensity: Intensity) -> torch.Tensor:
    """Apply the PIL ``ImageFilter`` ``name`` (a key of :data:`FILTERS`) to every image channel."""
    from PIL import Image, ImageFilter

    flt = getattr(ImageFilter, FILTERS[name])
    out = torch.empty_like(x)
    for b in range(len(x)):
        arr, ctx = intensity.to_uint8(x[b].detach().cpu().float())
        res = np.stack([np.asarray(Image.fromarray(ch).filter(flt)) for ch in arr])
        out[b] = intensity.from_uint8(res, ctx).to(x.dtype)
    return out


def strategy_factor(strategy: str, filters: Sequence[str]) -> int:
    """How many samples each original becomes."""
    return {"few-data": 1, "classic": 4, "filter": 1 + len(filters)}[strategy]
