"""Joint image + mask augmentation: registered random transforms and the road paper's strategies.

Every transform works on a batch ``x`` ``(B, C, H, W)`` and, for segmentation, its masks ``y``
``(B, H, W)`` (``-1`` = unlabelled): pixels that move in the image move in the mask (nearest
neighbour, so labels stay labels), pixels that come from outside the image become unlabelled.
Intensity transforms leave masks alone.

Random transforms (``data.image.augment``; each applied to a sample with probability ``p``):

========================  ==================================================================
``flip``                  horizontal and vertical flips
``rot90``                 rotation by 0/90/180/270° (0/180° for non-square images)
``rotate``                rotation by an arbitrary angle in [-30°, 30°]
``scale``                 zoom by a factor in [0.8, 1.25]
``crop``                  random crop of 70–100 % of each side, resized back
``brightness_contrast``   brightness shift ±0.1 and contrast factor 0.8–1.2 (in standard units)
``noise``                 additive Gaussian noise, σ = 0.05 (in standard units)
``filter``                one random PIL ``ImageFilter`` (contour, detail, edge enhance, find edges)
========================  ==================================================================

Strategies (``data.image.augment_strategy``), Kebir et al. (2021) Table 1 — deterministic
expansions of every training batch, so an epoch sees every original and every derived copy:

* ``few-data`` — the originals only;
* ``classic`` — originals + rotations by 90°, 180° and 270° (4× samples);
* ``filter`` — originals + one copy per filter of ``data.image.filters`` (default the paper's
  four: CONTOUR, DETAIL, EDGE_ENHANCE, FIND_EDGES → 5× samples; the paper's Table 1 counts
  "3 transformations", its text names four).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F

from biodl.data.image.ops import FILTERS, Intensity, Pair, pil_filter, rot90
from biodl.data.image.tiling import random_crops
from biodl.errors import ConfigError
from biodl.registry import Registry


class Transform:
    """A random transform of ``(x, y)`` batches.

    Parameters
    ----------
    p
        Probability of transforming each sample.
    """

    name: ClassVar[str] = ""
    #: Whether pixels move (then masks move with them).
    spatial: ClassVar[bool] = True

    def __init__(self, p: float = 0.5) -> None:
        self.p = p

    def _chosen(self, n: int) -> torch.Tensor:
        return torch.rand(n) < self.p

    def __call__(self, x: torch.Tensor, y: torch.Tensor | None) -> Pair:
        """Transform the batch ``x`` ``(B, C, H, W)`` and masks ``y`` ``(B, H, W)`` or ``None``."""
        raise NotImplementedError


AUGMENTATIONS: Registry[type[Transform]] = Registry("augmentation")


@AUGMENTATIONS.register("flip")
class Flip(Transform):
    """Horizontal flip and (independently) vertical flip, each with probability ``p``."""

    name = "flip"

    def __call__(self, x: torch.Tensor, y: torch.Tensor | None) -> Pair:
        for dim_x, dim_y in ((-1, -1), (-2, -2)):
            sel = self._chosen(len(x))
            if sel.any():
                x = x.clone()
                x[sel] = x[sel].flip(dim_x)
                if y is not None:
                    y = y.clone()
                    y[sel] = y[sel].flip(dim_y)
        return x, y


@AUGMENTATIONS.register("rot90")
class Rot90(Transform):
    """Rotation by a random multiple of 90° (180° only for non-square images)."""

    name = "rot90"

    def __call__(self, x: torch.Tensor, y: torch.Tensor | None) -> Pair:
        square = x.shape[-1] == x.shape[-2]
        ks = torch.randint(1, 4, (len(x),)) if square else torch.full((len(x),), 2)
        sel = self._chosen(len(x))
        x, y = x.clone(), (y.clone() if y is not None else None)
        for k in (1, 2, 3):
            idx = sel & (ks == k)
            if idx.any():
                xr, yr = rot90(x[idx], y[idx] if y is not None else None, k)
                x[idx] = xr
                if y is not None and yr is not None:
                    y[idx] = yr
        return x, y


def affine(x: torch.Tensor, y: torch.Tensor | None, theta: torch.Tensor) -> Pair:
    """Warp images (bilinear, reflected borders) and masks (nearest, outside = -1) by ``theta`` ``(B, 2, 3)``."""
    grid = F.affine_grid(theta.to(x.dtype), list(x.shape), align_corners=False)
    xo = F.grid_sample(x, grid, mode="bilinear", padding_mode="reflection", align_corners=False)
    yo = None
    if y is not None:
        shifted = (y.to(x.dtype) + 1.0)[:, None]
        yo = F.grid_sample(shifted, grid, mode="nearest", padding_mode="zeros", align_corners=False)[:, 0]
        yo = (yo.round() - 1).to(y.dtype)
    return xo, yo


class _Affine(Transform):
    def _theta(self, n: int) -> torch.Tensor:
        raise NotImplementedError

    def __call__(self, x: torch.Tensor, y: torch.Tensor | None) -> Pair:
        sel = self._chosen(len(x))
        if not sel.any():
            return x, y
        x, y = x.clone(), (y.clone() if y is not None else None)
        xo, yo = affine(x[sel], y[sel] if y is not None else None, self._theta(int(sel.sum())))
        x[sel] = xo
        if y is not None and yo is not None:
            y[sel] = yo
        return x, y


@AUGMENTATIONS.register("rotate")
class Rotate(_Affine):
    """Rotation by an angle drawn uniformly from ``[-degrees, degrees]``."""

    name = "rotate"

    def __init__(self, p: float = 0.5, degrees: float = 30.0) -> None:
        super().__init__(p)
        self.degrees = degrees

    def _theta(self, n: int) -> torch.Tensor:
        a = (torch.rand(n) * 2 - 1) * math.radians(self.degrees)
        c, s = torch.cos(a), torch.sin(a)
        z = torch.zeros(n)
        return torch.stack([torch.stack([c, -s, z], 1), torch.stack([s, c, z], 1)], 1)


@AUGMENTATIONS.register("scale")
class Scale(_Affine):
    """Zoom by a factor drawn log-uniformly from ``[low, high]`` (the view stays centred)."""

    name = "scale"

    def __init__(self, p: float = 0.5, low: float = 0.8, high: float = 1.25) -> None:
        super().__init__(p)
        self.low, self.high = low, high

    def _theta(self, n: int) -> torch.Tensor:
        f = torch.exp(torch.empty(n).uniform_(math.log(self.low), math.log(self.high)))
        z = torch.zeros(n)
        inv = 1.0 / f
        return torch.stack([torch.stack([inv, z, z], 1), torch.stack([z, inv, z], 1)], 1)


@AUGMENTATIONS.register("crop")
class Crop(_Affine):
    """A random crop of ``min_side``–100 % of each side, resized back to the input size."""

    name = "crop"

    def __init__(self, p: float = 0.5, min_side: float = 0.7) -> None:
        super().__init__(p)
        self.min_side = min_side

    def _theta(self, n: int) -> torch.Tensor:
        s = torch.empty(n).uniform_(self.min_side, 1.0)
        tx = (torch.rand(n) * 2 - 1) * (1 - s)
        ty = (torch.rand(n) * 2 - 1) * (1 - s)
        z = torch.zeros(n)
        return torch.stack([torch.stack([s, z, tx], 1), torch.stack([z, s, ty], 1)], 1)


@AUGMENTATIONS.register("brightness_contrast")
class BrightnessContrast(Transform):
    """``(x - mean) · c + mean + b`` per sample, ``c ∈ [0.8, 1.2]``, ``b ∈ [-0.1, 0.1]``."""

    name = "brightness_contrast"
    spatial = False

    def __init__(self, p: float = 0.5, brightness: float = 0.1, contrast: float = 0.2) -> None:
        super().__init__(p)
        self.brightness, self.contrast = brightness, contrast

    def __call__(self, x: torch.Tensor, y: torch.Tensor | None) -> Pair:
        n = len(x)
        sel = self._chosen(n).to(x.dtype)[:, None, None, None]
        c = 1 + (torch.rand(n, 1, 1, 1) * 2 - 1) * self.contrast
        b = (torch.rand(n, 1, 1, 1) * 2 - 1) * self.brightness
        mean = x.mean(dim=(-2, -1), keepdim=True)
        out = (x - mean) * c + mean + b
        return sel * out + (1 - sel) * x, y


@AUGMENTATIONS.register("noise")
class Noise(Transform):
    """Additive Gaussian noise of standard deviation ``sigma``."""

    name = "noise"
    spatial = False

    def __init__(self, p: float = 0.5, sigma: float = 0.05) -> None:
        super().__init__(p)
        self.sigma = sigma

    def __call__(self, x: torch.Tensor, y: torch.Tensor | None) -> Pair:
        sel = self._chosen(len(x)).to(x.dtype)[:, None, None, None]
        return x + sel * torch.randn_like(x) * self.sigma, y


@AUGMENTATIONS.register("filter")
class Filter(Transform):
    """One of the road paper's PIL filters, chosen at random per sample."""

    name = "filter"
    spatial = False

    def __init__(self, p: float = 0.5, filters: Sequence[str] = tuple(FILTERS), intensity: Intensity | None = None) -> None:
        super().__init__(p)
        self.filters = list(filters)
        self.intensity = intensity or Intensity()

    def __call__(self, x: torch.Tensor, y: torch.Tensor | None) -> Pair:
        sel = torch.nonzero(self._chosen(len(x))).flatten()
        if len(sel) == 0:
            return x, y
        x = x.clone()
        picks = torch.randint(0, len(self.filters), (len(sel),))
        for i, f in zip(sel.tolist(), picks.tolist()):
            x[i : i + 1] = pil_filter(x[i : i + 1], self.filters[f], self.intensity)
        return x, y


#: The strategies of Kebir et al. (2021), Table 1.
STRATEGIES: tuple[str, ...] = ("few-data", "classic", "filter")


def expand(
    x: torch.Tensor, y: torch.Tensor | None, strategy: str, *, filters: Sequence[str], intensity: Intensity, segmentation: bool
) -> Pair:
    """Originals followed by the strategy's derived copies (masks/labels follow their images)."""
    if strategy == "few-data":
        return x, y
    xs, ys = [x], [y]
    if strategy == "classic":
        if x.shape[-1] != x.shape[-2]:
            raise ConfigError("augment_strategy 'classic' rotates by 90°: it needs square images or tiles")
        for k in (1, 2, 3):
            xr, yr = rot90(x, y if segmentation else None, k)
            xs.append(xr)
            ys.append(yr if segmentation else y)
    elif strategy == "filter":
        for name in filters:
            xs.append(pil_filter(x, name, intensity))
            ys.append(y)
    else:
        raise ConfigError(f"unknown augment strategy {strategy!r}; choose one of {', '.join(STRATEGIES)}")
    yy = torch.cat([t for t in ys if t is not None]) if y is not None else None
    return torch.cat(xs), yy


class ImageAugment:
    """The training-time augmentation of one run: crops → strategy expansion → random transforms.

    Implements :class:`biodl.data.base.JointAugment`, so training steps pass ``(x, y)``.

    Parameters
    ----------
    transforms
        Registered transform names, applied in order.
    strategy
        ``few-data``, ``classic`` or ``filter``.
    segmentation
        Whether ``y`` holds masks ``(B, H, W)`` (moved with the images) or labels (repeated).
    crop
        Segmentation: side of the random training crops (``None``: whole images).
    crops_per_image
        Random crops taken from each image.
    filters
        Filters of the ``filter`` strategy.
    intensity
        Maps inputs to 8-bit pixels for the PIL filters.
    """

    def __init__(
        self,
        transforms: Sequence[str],
        *,
        strategy: str = "few-data",
        segmentation: bool = False,
        crop: int | None = None,
        crops_per_image: int = 1,
        filters: Sequence[str] = tuple(FILTERS),
        intensity: Intensity | None = None,
    ) -> None:
        self.intensity = intensity or Intensity()
        self.transforms: list[Transform] = []
        for name in transforms:
            cls = AUGMENTATIONS[name]
            self.transforms.append(cls(filters=filters, intensity=self.intensity) if cls is Filter else cls())  # type: ignore[call-arg]
        if strategy not in STRATEGIES:
            raise ConfigError(f"unknown augment strategy {strategy!r}; choose one of {', '.join(STRATEGIES)}")
        self.strategy = strategy
        self.segmentation = segmentation
        self.crop = crop
        self.crops_per_image = crops_per_image
        self.filters = list(filters)

    def augment_pair(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Augmented batch; it grows by ``crops_per_image`` × the strategy's factor."""
        if not torch.is_floating_point(x):
            x = x.float()
        mask: torch.Tensor | None = y if self.segmentation else None
        if self.segmentation and self.crop is not None:
            x, mask = random_crops(x, mask, self.crop, self.crops_per_image)
        elif not self.segmentation and self.crops_per_image > 1:
            x = x.repeat_interleave(self.crops_per_image, dim=0)
            y = y.repeat_interleave(self.crops_per_image, dim=0)
        x, expanded = expand(
            x, mask if self.segmentation else y, self.strategy, filters=self.filters, intensity=self.intensity,
            segmentation=self.segmentation,
        )  # fmt: skip
        for t in self.transforms:
            x, mask_out = t(x, expanded if self.segmentation else None)
            if self.segmentation:
                expanded = mask_out
        assert expanded is not None
        return x.contiguous(), expanded.contiguous()

    def training_samples(self, X: np.ndarray, y: np.ndarray) -> tuple[Any, ImageAugment] | None:
        """Segmentation: the training set as random crops (see :mod:`biodl.data.image.sampling`).

        Returns the :class:`~biodl.data.image.sampling.CropDataset` (one sample = one crop or one of
        its strategy copies, so ``train.batch_size`` counts crops) and the per-batch augmentation
        that remains (the random transforms only); ``None`` for classification or without crops.
        """
        if not self.segmentation or self.crop is None:
            return None
        from biodl.data.image.sampling import CropDataset

        dataset = CropDataset(
            X, y, size=self.crop, crops_per_image=self.crops_per_image, strategy=self.strategy, filters=self.filters,
            intensity=self.intensity,
        )  # fmt: skip
        rest = ImageAugment([], segmentation=True, intensity=self.intensity)
        rest.transforms = list(self.transforms)
        return dataset, rest

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        """Image-only augmentation (no expansion or crops): the random transforms alone."""
        for t in self.transforms:
            x, _ = t(x, None)
        return x
