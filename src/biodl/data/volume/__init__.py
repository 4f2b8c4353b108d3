"""Volumes: 3-D stacks (multi-page TIFF, NPY, folders of slices, MedMNIST 3-D NPZ) and time-lapse
clips; 3-D augmentation. Importing this package registers the ``volume`` data type."""

from biodl.data.volume.augment import VOLUME_AUGMENTATIONS, VolumeAugment
from biodl.data.volume.io import read_stack
from biodl.data.volume.modality import VolumeModality

__all__ = ["VOLUME_AUGMENTATIONS", "VolumeAugment", "VolumeModality", "read_stack"]
