"""Random 3-D training transforms of volume batches (and their mask stacks).

Every transform works on a batch ``x`` ``(B, C, D, H, W)`` and, for segmentation, its masks
``y`` ``(B, D, H, W)`` (``-1`` = unlabelled): voxels that move in the volume move in the mask.
Intensity transforms leave masks alone. For time-lapse clips (``time_axis``) the first axis is
time, so flips along it (playing a clip backwards) are off.

========================  ==================================================================
``flip``                  flips along depth, height and width (each with probability 0.5)
``rot90``                 in-plane rotation by 0/90/180/270° (0/180° for non-square planes)
``intensity``             brightness shift ±0.1 and contrast factor 0.8–1.2 (in standard units)
``noise``                 additive Gaussian noise, σ = 0.05 (in standard units)
========================  ==================================================================

Segmentation training first cuts ``crops_per_volume`` random crops of ``tile_size`` from every
volume of the batch (padded with unlabelled voxels where the volume is smaller).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

from biodl.errors import ConfigError

#: Registered names of :class:`VolumeAugment`.
VOLUME_AUGMENTATIONS: tuple[str, ...] = ("flip", "rot90", "intensity", "noise")


def random_crops_3d(
    x: torch.Tensor, y: torch.Tensor | None, size: Sequence[int], per_volume: int, generator: torch.Generator | None = None
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """``per_volume`` random crops of ``size`` ``(d, h, w)`` from each of ``x`` ``(B, C, D, H, W)`` and ``y``."""
    d, h, w = (int(s) for s in size)
    pads = [max(0, t - s) for t, s in zip((d, h, w), x.shape[-3:])]
    if any(pads):
        x = F.pad(x, (0, pads[2], 0, pads[1], 0, pads[0]), mode="replicate")
        if y is not None:
            y = F.pad(y, (0, pads[2], 0, pads[1], 0, pads[0]), value=-1)
    D, H, W = x.shape[-3:]
    xs, ys = [], []
    for b in range(x.shape[0]):
        for _ in range(per_volume):
            i = int(torch.randint(0, D - d + 1, (1,), generator=generator))
            j = int(torch.randint(0, H - h + 1, (1,), generator=generator))
            k = int(torch.randint(0, W - w + 1, (1,), generator=generator))
            xs.append(x[b, :, i : i + d, j : j + h, k : k + w])
            if y is not None:
                ys.append(y[b, i : i + d, j : j + h, k : k + w])
    return torch.stack(xs), (torch.stack(ys) if y is not None else None)


class VolumeAugment:
    """Random 3-D transforms (module docstring); a :class:`~biodl.data.base.JointAugment`.

    Parameters
    ----------
    names
        Transforms to apply (``flip``, ``rot90``, ``intensity``, ``noise``).
    time_axis
        The first spatial axis is time: no flips along it.
    crop
        Segmentation: ``(d, h, w)`` of random training crops, or ``None``.
    crops_per_volume
        Crops cut from each volume per batch.
    """

    def __init__(
        self,
        names: Sequence[str],
        *,
        time_axis: bool = False,
        crop: Sequence[int] | None = None,
        crops_per_volume: int = 1,
    ) -> None:
        unknown = [n for n in names if n not in VOLUME_AUGMENTATIONS]
        if unknown:
            raise ConfigError(f"unknown volume augmentation {unknown[0]!r}; choose from {', '.join(VOLUME_AUGMENTATIONS)}")
        self.names = list(names)
        self.time_axis = time_axis
        self.crop = tuple(int(s) for s in crop) if crop is not None else None
        self.crops_per_volume = crops_per_volume

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        """Augmented volumes ``(B, C, D, H, W)`` (classification)."""
        return self.augment_pair(x, None)[0]

    def augment_pair(self, x: torch.Tensor, y: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        """Augmented ``(x, y)``; ``y`` moves with ``x`` when it is a mask batch ``(B, D, H, W)``."""
        masks = y is not None and y.ndim == 4 and tuple(y.shape[-3:]) == tuple(x.shape[-3:])
        if self.crop is not None:
            x, cropped = random_crops_3d(x, y if masks else None, self.crop, self.crops_per_volume)
            if masks:
                y = cropped
            elif y is not None and self.crops_per_volume > 1:
                y = y.repeat_interleave(self.crops_per_volume, dim=0)
        ym = y if masks else None
        if "flip" in self.names:
            dims = (-2, -1) if self.time_axis else (-3, -2, -1)
            for dim in dims:
                x, ym = _per_sample(x, ym, lambda v, m, d=dim: (v.flip(d), None if m is None else m.flip(d)))
        if "rot90" in self.names:
            k = 4 if x.shape[-1] == x.shape[-2] else 2
            step = 4 // k
            choice = torch.randint(0, k, (x.shape[0],)) * step
            xs, ys = [], []
            for b in range(x.shape[0]):
                r = int(choice[b])
                xs.append(torch.rot90(x[b], r, dims=(-2, -1)))
                if ym is not None:
                    ys.append(torch.rot90(ym[b], r, dims=(-2, -1)))
            x = torch.stack(xs)
            ym = torch.stack(ys) if ym is not None else None
        if "intensity" in self.names:
            shape = (x.shape[0],) + (1,) * (x.ndim - 1)
            shift = (torch.rand(shape, device=x.device) - 0.5) * 0.2
            scale = 0.8 + torch.rand(shape, device=x.device) * 0.4
            x = x * scale + shift
        if "noise" in self.names:
            x = x + 0.05 * torch.randn_like(x)
        out_y = ym if masks else y
        assert out_y is not None or y is None
        return x, out_y  # type: ignore[return-value]


def _per_sample(x: torch.Tensor, y: torch.Tensor | None, fn: object) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Apply ``fn(x, y)`` to a random half of the batch (probability 0.5 per sample)."""
    pick = torch.rand(x.shape[0]) < 0.5
    if not bool(pick.any()):
        return x, y
    fx, fy = fn(x[pick], None if y is None else y[pick])  # type: ignore[operator]
    x = x.clone()
    x[pick] = fx
    if y is not None and fy is not None:
        y = y.clone()
        y[pick] = fy
    return x, y
