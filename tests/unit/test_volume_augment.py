"""3-D augmentations keep labels and masks aligned with the voxels they describe."""

from __future__ import annotations

import pytest
import torch

from biodl.data.volume.augment import VolumeAugment, random_crops_3d
from biodl.errors import ConfigError


def _batch(b: int = 6, d: int = 5, h: int = 8, w: int = 8) -> tuple[torch.Tensor, torch.Tensor]:
    torch.manual_seed(0)
    x = torch.rand(b, 1, d, h, w)
    return x, (x[:, 0] > 0.5).long()


@pytest.mark.parametrize("names", [["flip"], ["rot90"], ["flip", "rot90"]])
def test_geometric_transforms_move_masks_with_voxels(names: list[str]) -> None:
    x, y = _batch()
    torch.manual_seed(1)
    xa, ya = VolumeAugment(names).augment_pair(x, y)
    assert xa.shape == x.shape and ya.shape == y.shape
    assert torch.equal(ya, (xa[:, 0] > 0.5).long())  # the mask still labels the same voxels
    assert not torch.equal(xa, x)  # something moved
    # voxel values are permuted, not changed
    assert torch.allclose(xa.flatten(1).sort(dim=1).values, x.flatten(1).sort(dim=1).values)


def test_non_square_planes_rotate_by_180_only() -> None:
    x, y = _batch(h=6, w=10)
    xa, ya = VolumeAugment(["rot90"]).augment_pair(x, y)
    assert xa.shape == x.shape and torch.equal(ya, (xa[:, 0] > 0.5).long())


def test_time_axis_is_never_flipped() -> None:
    x = torch.arange(4.0).reshape(1, 1, 4, 1, 1).expand(16, 1, 4, 3, 3).contiguous()  # frame index as value
    xa = VolumeAugment(["flip", "rot90"], time_axis=True)(x)
    assert torch.equal(xa[:, 0, :, 1, 1], x[:, 0, :, 1, 1])
    flipped = VolumeAugment(["flip"])(x)
    assert (flipped[:, 0, 0, 1, 1] == 3).any()  # without time_axis depth flips happen


def test_intensity_changes_values_but_not_labels() -> None:
    x, _ = _batch()
    labels = torch.tensor([[0.0], [1.0], [0.0], [1.0], [1.0], [0.0]])
    xa, ya = VolumeAugment(["intensity", "noise"]).augment_pair(x, labels)
    assert torch.equal(ya, labels) and not torch.allclose(xa, x)


def test_crops_cut_the_same_region_of_volume_and_mask() -> None:
    x, y = _batch(b=2, d=6, h=20, w=20)
    xc, yc = random_crops_3d(x, y, (4, 8, 8), per_volume=3)
    assert xc.shape == (6, 1, 4, 8, 8) and yc is not None and yc.shape == (6, 4, 8, 8)
    assert torch.equal(yc, (xc[:, 0] > 0.5).long())
    # smaller volumes are padded; padded voxels are unlabelled
    xs, ys = random_crops_3d(x[:, :, :2], y[:, :2], (4, 8, 8), per_volume=1)
    assert xs.shape == (2, 1, 4, 8, 8) and ys is not None and bool((ys[:, 2:] == -1).all())
    aug = VolumeAugment(["flip"], crop=(4, 8, 8), crops_per_volume=2)
    xa, ya = aug.augment_pair(x, y)
    assert xa.shape == (4, 1, 4, 8, 8) and torch.equal(ya, (xa[:, 0] > 0.5).long())


def test_unknown_augmentation_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="unknown volume augmentation 'rotate'"):
        VolumeAugment(["rotate"])
