"""Training samples of segmentation runs: random crops, each in every copy of the augment strategy.

Segmentation data sets are small in images but large in pixels (20 ISBI slices, 20 road
images), so counting whole images per optimisation step gives one or two steps per epoch.
Here one *sample* is one random ``tile_size`` × ``tile_size`` crop (with its mask):

* an epoch is ``crops_per_image`` random crops of every training image, each in every copy of
  the road paper's strategy (``few-data`` ×1, ``classic`` ×4: the crop and its 90/180/270°
  rotations, ``filter`` ×(1 + filters): the crop and its PIL-filtered copies), shuffled;
* ``train.batch_size`` counts these samples, so the number of steps per epoch is
  ``ceil(images × crops_per_image × strategy factor / batch_size)``;
* images smaller than a crop are padded (reflect, or edge where reflection is impossible) and the
  padding is unlabelled (``-1``), so it does not count in the loss.

The random transforms (flips, rotations, intensity, ...) are then applied per batch by
:class:`biodl.data.image.augment.ImageAugment`.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

from biodl.data.image.ops import Intensity, pil_filter, rot90, strategy_factor


def pad_to_size(x: torch.Tensor, y: torch.Tensor | None, size: int) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Pad ``(N, C, H, W)`` images (and ``(N, H, W)`` masks with ``-1``) at the bottom/right to at least ``size``."""
    h, w = x.shape[-2:]
    ph, pw = max(0, size - h), max(0, size - w)
    if ph == 0 and pw == 0:
        return x, y
    mode = "reflect" if ph < h and pw < w else "replicate"
    x = F.pad(x, (0, pw, 0, ph), mode=mode)
    if y is not None:
        y = F.pad(y, (0, pw, 0, ph), value=-1)
    return x, y


class CropDataset(Dataset[tuple[torch.Tensor, torch.Tensor]]):
    """Random ``size`` crops of segmentation images and masks, with the strategy's derived copies.

    Parameters
    ----------
    X
        Model inputs ``(N, C, H, W)`` (already standardised).
    y
        Masks ``(N, H, W)``, ``-1`` = unlabelled.
    size
        Crop side; images smaller than it are padded (padding unlabelled).
    crops_per_image
        Random crops of each image per epoch (before the strategy's copies).
    strategy
        ``few-data``, ``classic`` or ``filter`` (see :mod:`biodl.data.image.augment`).
    filters
        PIL filters of the ``filter`` strategy.
    intensity
        Maps inputs to 8-bit pixels for the PIL filters.
    """

    def __init__(
        self,
        X: np.ndarray,
        y: np.ndarray,
        *,
        size: int,
        crops_per_image: int = 1,
        strategy: str = "few-data",
        filters: Sequence[str] = (),
        intensity: Intensity | None = None,
    ) -> None:
        x_t = torch.from_numpy(np.ascontiguousarray(X, dtype=np.float32))
        y_t = torch.from_numpy(np.ascontiguousarray(y))
        self.X, padded = pad_to_size(x_t, y_t, size)
        assert padded is not None
        self.y = padded
        self.size = int(size)
        self.crops_per_image = int(crops_per_image)
        self.strategy = strategy
        self.filters = list(filters)
        self.factor = strategy_factor(strategy, self.filters)
        self.intensity = intensity or Intensity()

    @property
    def per_image(self) -> int:
        """Samples drawn from each image per epoch."""
        return self.crops_per_image * self.factor

    def __len__(self) -> int:
        return int(self.X.shape[0]) * self.per_image

    def _crop(self, image: int) -> tuple[torch.Tensor, torch.Tensor]:
        h, w = self.X.shape[-2:]
        i = int(torch.randint(0, h - self.size + 1, (1,)))
        j = int(torch.randint(0, w - self.size + 1, (1,)))
        return self.X[image, :, i : i + self.size, j : j + self.size], self.y[image, i : i + self.size, j : j + self.size]

    def _copy(self, x: torch.Tensor, y: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Derived copy ``k`` of a crop (0 = the crop itself)."""
        if k == 0:
            return x, y
        if self.strategy == "classic":
            xr, yr = rot90(x[None], y[None], k)
            assert yr is not None
            return xr[0], yr[0]
        return pil_filter(x[None], self.filters[k - 1], self.intensity)[0], y

    def __getitem__(self, idx: int) -> tuple[torch.Tensor, torch.Tensor]:
        image, k = divmod(int(idx), self.per_image)
        x, y = self._crop(image)
        return self._copy(x, y, k % self.factor)

    def __getitems__(self, idx: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
        pairs = [self[i] for i in idx]
        return torch.stack([p[0] for p in pairs]).contiguous(), torch.stack([p[1] for p in pairs]).contiguous()
