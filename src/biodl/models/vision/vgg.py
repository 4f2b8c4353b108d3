"""VGG11/13/16 (± batch norm), Simonyan & Zisserman (2014), with torchvision's parameter names.

``features.N`` holds the convolution/pooling stack and ``classifier.{0,3,6}`` the three dense
layers, exactly as in ``torchvision.models.vgg16``, so a torchvision state dict saved as
``.safetensors`` or ``.pth`` loads directly (the 1000-class ImageNet head is skipped when the
number of classes differs).
"""

from __future__ import annotations

from typing import ClassVar, Literal

import torch
from pydantic import Field
from torch import nn

from biodl.errors import ConfigError
from biodl.models.base import MODELS, ModelParams
from biodl.models.vision.base import AdaptiveAvgPool2d, VisionModel, VisionParams, conv_init

#: Layer configurations ("M" = 2×2 max pooling), as in torchvision.
CONFIGS: dict[str, list[int | str]] = {
    "vgg11": [64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    "vgg13": [64, 64, "M", 128, 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    "vgg16": [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"],
}


def make_features(cfg: list[int | str], in_channels: int, batch_norm: bool) -> nn.Sequential:
    """torchvision's ``make_layers``: ``[Conv, (BN), ReLU] …, MaxPool`` per entry of ``cfg``."""
    layers: list[nn.Module] = []
    c = in_channels
    for v in cfg:
        if v == "M":
            layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
        else:
            assert isinstance(v, int)
            layers.append(nn.Conv2d(c, v, kernel_size=3, padding=1))
            if batch_norm:
                layers.append(nn.BatchNorm2d(v))
            layers.append(nn.ReLU(inplace=True))
            c = v
    return nn.Sequential(*layers)


def stage_slices(features: nn.Sequential) -> list[nn.Sequential]:
    """The convolution stages of ``features``, each ending with its max pooling."""
    stages: list[nn.Sequential] = []
    current: list[nn.Module] = []
    for m in features:
        current.append(m)
        if isinstance(m, nn.MaxPool2d):
            stages.append(nn.Sequential(*current))
            current = []
    if current:
        stages.append(nn.Sequential(*current))
    return stages


class VGGParams(VisionParams):
    """Hyper-parameters of :class:`VGG`."""

    encoder: Literal["vgg11", "vgg13", "vgg16"] = "vgg16"
    batch_norm: bool = False
    classifier_width: int = Field(default=4096, ge=1, description="units of the two hidden dense layers (torchvision: 4096)")
    pool_size: int = Field(default=7, ge=1, description="adaptive average pooling side before the classifier (torchvision: 7)")
    dropout: float = Field(default=0.5, ge=0.0, lt=1.0)


@MODELS.register("vgg")
class VGG(VisionModel):
    """VGG classifier: ``features`` (13/10/8 convolutions in 5 stages) → avgpool → ``classifier``.

    Input ``(N, C, H, W)`` with ``H, W >= 32``; output ``(N, num_outputs)`` logits.
    """

    Params: ClassVar[type[ModelParams]] = VGGParams

    def __init__(self, in_shape: tuple[int, ...], num_outputs: int, params: ModelParams) -> None:
        super().__init__(in_shape, num_outputs, params)
        assert isinstance(params, VGGParams)
        if min(self.in_shape[1:]) < 32:
            raise ConfigError(
                f"VGG needs images of at least 32×32 (5 poolings), got {self.in_shape[1]}×{self.in_shape[2]}; "
                "resize with data.image.size (--image-size 32) or use the 'cnn' model"
            )
        self.features = make_features(CONFIGS[params.encoder], self.in_channels, params.batch_norm)
        self.avgpool = AdaptiveAvgPool2d((params.pool_size, params.pool_size))
        w = params.classifier_width
        self.classifier = nn.Sequential(
            nn.Linear(512 * params.pool_size * params.pool_size, w),
            nn.ReLU(True),
            nn.Dropout(params.dropout),
            nn.Linear(w, w),
            nn.ReLU(True),
            nn.Dropout(params.dropout),
            nn.Linear(w, num_outputs),
        )
        conv_init(self)
        self._finish_init()

    def encoder_stages(self) -> list[nn.Module]:
        return list(stage_slices(self.features))

    def gradcam_layer(self) -> nn.Module:
        convs = [m for m in self.features if isinstance(m, nn.Conv2d)]
        return convs[-1]

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """Penultimate representation ``(N, classifier_width)``."""
        z = torch.flatten(self.avgpool(self.features(x)), 1)
        return self.classifier[:-1](z)

    def forward_logits(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(torch.flatten(self.avgpool(self.features(x)), 1))
