"""Joint augmentation keeps images and masks aligned; the road paper's strategies expand batches."""

from __future__ import annotations

import pytest
import torch

from biodl.data.image.augment import AUGMENTATIONS, FILTERS, ImageAugment, Intensity, expand, pil_filter
from biodl.errors import ConfigError

SPATIAL = ["flip", "rot90", "rotate", "scale", "crop"]


def planted(n: int = 16, size: int = 32) -> tuple[torch.Tensor, torch.Tensor]:
    """Images with one bright 3×3 square each and masks marking exactly that square."""
    x = torch.zeros(n, 2, size, size)
    y = torch.zeros(n, size, size, dtype=torch.int64)
    gen = torch.Generator().manual_seed(0)
    for b in range(n):
        i, j = (int(v) for v in torch.randint(4, size - 7, (2,), generator=gen))
        x[b, :, i : i + 3, j : j + 3] = 10.0
        y[b, i : i + 3, j : j + 3] = 1
    return x, y


@pytest.mark.parametrize("name", [*SPATIAL, "brightness_contrast", "noise", "filter"])
def test_planted_pixels_stay_under_their_mask(name: str) -> None:
    torch.manual_seed(1)
    x, y = planted()
    t = AUGMENTATIONS[name](p=1.0)
    xa, ya = t(x, y)
    assert ya is not None and xa.shape == x.shape and ya.shape == y.shape
    if not t.spatial:
        assert torch.equal(ya, y)
        return
    for b in range(len(x)):
        bright = xa[b, 0] > 5.0
        # every clearly bright pixel is foreground in the transformed mask, and vice versa
        assert (ya[b][bright] == 1).all(), name
        core = (ya[b] == 1) & (xa[b, 0] < 1.0)
        assert core.sum() <= 4, name  # interpolation may soften the rim of the square only


def test_rot90_and_flip_are_exact() -> None:
    torch.manual_seed(0)
    x, y = planted()
    for name in ("flip", "rot90"):
        xa, ya = AUGMENTATIONS[name](p=1.0)(x, y)
        assert ya is not None
        assert torch.equal((xa[:, 0] > 5).long(), ya)


def test_outside_pixels_become_unlabelled() -> None:
    torch.manual_seed(0)
    x, y = planted(4)
    _, ya = AUGMENTATIONS["rotate"](p=1.0, degrees=45)(x, y)
    assert ya is not None and (ya == -1).any()


@pytest.mark.parametrize(("strategy", "factor"), [("few-data", 1), ("classic", 4), ("filter", 1 + len(FILTERS))])
def test_strategies_expand_the_batch(strategy: str, factor: int) -> None:
    x, y = planted(3)
    xa, ya = expand(x, y, strategy, filters=list(FILTERS), intensity=Intensity(), segmentation=True)
    assert ya is not None and len(xa) == len(ya) == 3 * factor
    assert torch.equal(xa[:3], x) and torch.equal(ya[:3], y)
    if strategy == "classic":
        assert torch.equal((xa[:, 0] > 5).long(), ya)  # rotated masks follow rotated images
    labels = torch.tensor([[0.0], [1.0], [0.0]])
    _, lab = expand(x, labels, strategy, filters=list(FILTERS), intensity=Intensity(), segmentation=False)
    assert lab is not None and torch.equal(lab, labels.repeat(factor, 1))


def test_filters_match_pil() -> None:
    from PIL import Image, ImageFilter

    gen = torch.Generator().manual_seed(0)
    raw = torch.randint(0, 256, (1, 1, 20, 20), generator=gen).float() / 255
    mean, std = torch.tensor([0.5]), torch.tensor([0.25])
    x = (raw - 0.5) / 0.25
    out = pil_filter(x, "find_edges", Intensity(mean.numpy(), std.numpy()))
    expected = Image.fromarray((raw[0, 0] * 255).round().byte().numpy()).filter(ImageFilter.FIND_EDGES)
    got = ((out[0, 0] * 0.25 + 0.5) * 255).round()
    assert torch.allclose(got, torch.tensor(list(expected.getdata()), dtype=torch.float32).reshape(20, 20), atol=1)


def test_image_augment_crops_and_expands() -> None:
    x = torch.randn(2, 3, 64, 48)
    y = torch.randint(0, 2, (2, 64, 48))
    aug = ImageAugment(["flip"], strategy="classic", segmentation=True, crop=32, crops_per_image=3)
    xa, ya = aug.augment_pair(x, y)
    assert xa.shape == (2 * 3 * 4, 3, 32, 32) and ya.shape == (24, 32, 32)
    small = ImageAugment([], segmentation=True, crop=80, crops_per_image=1)
    xs, ys = small.augment_pair(x, y)
    assert xs.shape == (2, 3, 80, 80) and (ys == -1).any()  # padding is unlabelled
    with pytest.raises(ConfigError, match="square"):
        ImageAugment([], strategy="classic").augment_pair(torch.randn(2, 1, 8, 6), torch.zeros(2, 1))
    with pytest.raises(ConfigError, match="unknown augmentation"):
        ImageAugment(["blur"])


# ---------------------------------------------------------------- segmentation training samples
@pytest.mark.parametrize(("strategy", "factor"), [("few-data", 1), ("classic", 4), ("filter", 5)])
def test_crop_dataset_counts_crops_and_copies(strategy: str, factor: int) -> None:
    from biodl.data.image.sampling import CropDataset

    torch.manual_seed(0)
    x, y = planted(n=3, size=40)
    ds = CropDataset(x.numpy(), y.numpy(), size=16, crops_per_image=5, strategy=strategy, filters=list(FILTERS))
    assert len(ds) == 3 * 5 * factor
    xb, yb = ds.__getitems__(list(range(len(ds))))
    assert xb.shape == (len(ds), 2, 16, 16) and yb.shape == (len(ds), 16, 16)
    if strategy != "filter":  # images and masks stay aligned in every crop and rotated copy
        assert torch.equal(xb[:, 0] > 5, yb == 1)


def test_crop_dataset_classic_copies_are_rotations_and_small_images_are_padded() -> None:
    from biodl.data.image.sampling import CropDataset

    x, y = planted(n=2, size=24)
    ds = CropDataset(x.numpy(), y.numpy(), size=24, crops_per_image=1, strategy="classic")
    xb, yb = ds.__getitems__([0, 1, 2, 3])  # whole image 0, then its 90/180/270° rotations
    for k in range(4):
        assert torch.equal(xb[k], torch.rot90(x[0], k, dims=(-2, -1))) and torch.equal(yb[k], torch.rot90(y[0], k, dims=(-2, -1)))
    big = CropDataset(x.numpy(), y.numpy(), size=32)
    xs, ys = big.__getitems__([0, 1])
    assert xs.shape == (2, 2, 32, 32) and (ys[:, 24:, :] == -1).all() and (ys[:, :, 24:] == -1).all()
    assert torch.equal(ys[0, :24, :24], y[0])  # the image itself is the only place a 32 crop fits


def test_image_augment_training_samples() -> None:
    x, y = planted(n=4, size=32)
    aug = ImageAugment(["flip"], strategy="filter", segmentation=True, crop=16, crops_per_image=2, filters=["contour"])
    samples = aug.training_samples(x.numpy(), y.numpy())
    assert samples is not None
    ds, rest = samples
    assert len(ds) == 4 * 2 * 2
    xb, yb = ds.__getitems__([0, 1, 2])
    xa, ya = rest.augment_pair(xb, yb)  # only the random transforms remain: no more crops or copies
    assert xa.shape == (3, 2, 16, 16) and ya.shape == (3, 16, 16)
    assert ImageAugment(["flip"]).training_samples(x.numpy(), torch.zeros(4, 1).numpy()) is None  # classification
