"""Images: readers (PNG/JPEG/TIFF/NPZ), class folders, path tables, image + mask folders,
joint image/mask augmentation, tiling and sliding-window prediction.

Importing this package registers the ``image`` data type.
"""

from biodl.data.image.augment import AUGMENTATIONS, STRATEGIES, ImageAugment
from biodl.data.image.io import read_image, read_mask
from biodl.data.image.modality import ImageModality
from biodl.data.image.tiling import sliding_window

__all__ = ["AUGMENTATIONS", "STRATEGIES", "ImageAugment", "ImageModality", "read_image", "read_mask", "sliding_window"]
