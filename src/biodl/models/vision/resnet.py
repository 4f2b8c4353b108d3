"""ResNet-18/34 (He et al. 2015) with torchvision's parameter names.

``conv1``, ``bn1``, ``layer1.0.conv1``, ..., ``layer4.1.bn2``, ``fc`` match
``torchvision.models.resnet18/34``, so their state dicts load directly. ``stem: small`` swaps
the 7×7/stride-2 stem and max pooling for one 3×3 convolution (28×28 MedMNIST-size images);
its ``conv1`` then no longer takes ImageNet weights (reported as skipped).
"""

from __future__ import annotations

from typing import ClassVar, Literal

import torch
from torch import nn

from biodl.errors import ConfigError
from biodl.models.base import MODELS, ModelParams
from biodl.models.vision.base import VisionModel, VisionParams, conv_init

LAYERS: dict[str, list[int]] = {"resnet18": [2, 2, 2, 2], "resnet34": [3, 4, 6, 3]}


class BasicBlock(nn.Module):
    """Two 3×3 convolutions with an identity (or 1×1 projection) shortcut."""

    expansion = 1

    def __init__(self, cin: int, cout: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.downsample: nn.Module | None = None
        if stride != 1 or cin != cout:
            self.downsample = nn.Sequential(nn.Conv2d(cin, cout, 1, stride=stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``relu(bn2(conv2(relu(bn1(conv1(x))))) + shortcut(x))``."""
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)


class ResNetParams(VisionParams):
    """Hyper-parameters of :class:`ResNet`."""

    encoder: Literal["resnet18", "resnet34"] = "resnet18"
    stem: Literal["imagenet", "small"] = "imagenet"
    dropout: float = 0.0


@MODELS.register("resnet")
class ResNet(VisionModel):
    """ResNet classifier: stem → layer1..4 → global average pool → ``fc``.

    Input ``(N, C, H, W)``; output ``(N, num_outputs)`` logits.
    """

    Params: ClassVar[type[ModelParams]] = ResNetParams

    def __init__(self, in_shape: tuple[int, ...], num_outputs: int, params: ModelParams) -> None:
        super().__init__(in_shape, num_outputs, params)
        assert isinstance(params, ResNetParams)
        need = 32 if params.stem == "imagenet" else 8
        if min(self.in_shape[1:]) < need:
            raise ConfigError(
                f"ResNet with the {params.stem} stem needs images of at least {need}×{need}, got "
                f"{self.in_shape[1]}×{self.in_shape[2]}; use stem: small or resize (--image-size)"
            )
        if params.stem == "imagenet":
            self.conv1 = nn.Conv2d(self.in_channels, 64, 7, stride=2, padding=3, bias=False)
            self.maxpool: nn.Module = nn.MaxPool2d(3, stride=2, padding=1)
        else:
            self.conv1 = nn.Conv2d(self.in_channels, 64, 3, stride=1, padding=1, bias=False)
            self.maxpool = nn.Identity()
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        widths = [64, 128, 256, 512]
        c = 64
        for i, (w, n) in enumerate(zip(widths, LAYERS[params.encoder])):
            blocks = [BasicBlock(c if j == 0 else w, w, stride=(1 if i == 0 or j > 0 else 2)) for j in range(n)]
            setattr(self, f"layer{i + 1}", nn.Sequential(*blocks))
            c = w
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.dropout = nn.Dropout(params.dropout)
        self.fc = nn.Linear(512, num_outputs)
        conv_init(self)
        self._finish_init()

    @property
    def layers(self) -> list[nn.Sequential]:
        """``layer1`` .. ``layer4``."""
        return [getattr(self, f"layer{i}") for i in range(1, 5)]

    def stem(self, x: torch.Tensor) -> torch.Tensor:
        """``relu(bn1(conv1(x)))`` (stride 2 with the ImageNet stem)."""
        return self.relu(self.bn1(self.conv1(x)))

    def encoder_stages(self) -> list[nn.Module]:
        stem = nn.ModuleList([self.conv1, self.bn1])
        return [stem, *self.layers]

    def gradcam_layer(self) -> nn.Module:
        return self.layers[-1]

    def feature_map(self, x: torch.Tensor) -> torch.Tensor:
        """Output of ``layer4`` ``(N, 512, H/32, W/32)``."""
        z = self.maxpool(self.stem(x))
        for layer in self.layers:
            z = layer(z)
        return z

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """Pooled ``layer4`` features ``(N, 512)``."""
        return torch.flatten(self.avgpool(self.feature_map(x)), 1)

    def forward_logits(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.dropout(self.embed(x)))
