"""Image architectures, one module per family (segmentation_models.pytorch-style uniform arguments).

Classifiers: ``cnn`` (the review's Figure 1 network), ``vgg`` (VGG11/13/16 ± BN), ``resnet``
(ResNet-18/34). Segmentation: ``unet`` (plain, ResNet or VGG encoder) and ``vgg_autoencoder``
(the road paper's VGG16/12/10 encoder-decoders). Volumes (``--data-type volume``): ``cnn3d``,
``resnet3d`` (r3d_18 names), ``unet3d`` and ``timelapse`` (per-frame 2-D CNN + temporal model).
Importing this package registers them.
"""

from biodl.models.vision import cnn as _cnn  # noqa: F401
from biodl.models.vision import cnn3d as _cnn3d  # noqa: F401
from biodl.models.vision import resnet as _resnet  # noqa: F401
from biodl.models.vision import resnet3d as _resnet3d  # noqa: F401
from biodl.models.vision import timelapse as _timelapse  # noqa: F401
from biodl.models.vision import unet as _unet  # noqa: F401
from biodl.models.vision import unet3d as _unet3d  # noqa: F401
from biodl.models.vision import vgg as _vgg  # noqa: F401
from biodl.models.vision import vgg_autoencoder as _vgg_autoencoder  # noqa: F401
from biodl.models.vision.base import SegmentationModel, VisionModel, read_weights

__all__ = ["SegmentationModel", "VisionModel", "read_weights"]
