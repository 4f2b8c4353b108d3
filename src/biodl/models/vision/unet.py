"""U-Net (Ronneberger et al. 2015): a contracting encoder and an expanding decoder joined by skips.

``encoder: plain`` is the original design with configurable ``depth`` (poolings) and
``base_channels`` (doubling per level), "same" padding and batch norm. As in
segmentation_models.pytorch, the encoder can instead be a torchvision-named ResNet-18/34 or
VGG11/13/16 (``encoder.conv1.weight``, ``encoder.layer1.0.conv1.weight``,
``encoder.features.N.weight``), so ImageNet weights of those classifiers load with
``pretrained_weights`` and ``freeze`` works per encoder stage.

Input ``(N, C, H, W)`` of any size (padded to the encoder stride inside); output
``(N, num_outputs, H, W)`` logits.
"""

from __future__ import annotations

from typing import ClassVar, Literal

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import nn

from biodl.models.base import MODELS, ModelParams
from biodl.models.vision.base import SegmentationModel, SegmentationParams, conv_bn_relu, conv_init
from biodl.models.vision.resnet import LAYERS, BasicBlock
from biodl.models.vision.vgg import CONFIGS, make_features


def double_conv(cin: int, cout: int, batch_norm: bool = True) -> nn.Sequential:
    """Two ``Conv 3×3 → BN → ReLU`` layers."""
    return nn.Sequential(*conv_bn_relu(cin, cout, batch_norm), *conv_bn_relu(cout, cout, batch_norm))


class PlainEncoder(nn.Module):
    """Ronneberger's contracting path: double conv, then (max pool → double conv) × ``depth``."""

    def __init__(self, cin: int, base: int, depth: int, batch_norm: bool) -> None:
        super().__init__()
        widths = [base * 2**i for i in range(depth + 1)]
        self.stages = nn.ModuleList([double_conv(cin, widths[0], batch_norm)])
        for i in range(1, depth + 1):
            self.stages.append(nn.Sequential(nn.MaxPool2d(2), double_conv(widths[i - 1], widths[i], batch_norm)))
        self.out_channels = widths  # strides 1, 2, 4, ..., 2**depth
        self.stride = 2**depth

    def forward(self, x: torch.Tensor) -> list[torch.Tensor | None]:
        feats: list[torch.Tensor | None] = []
        for stage in self.stages:
            x = stage(x)
            feats.append(x)
        return feats

    def stage_list(self) -> list[nn.Module]:
        return list(self.stages)


class ResNetEncoder(nn.Module):
    """torchvision ResNet body (``conv1``, ``bn1``, ``layer1..4``) giving features at strides 2..32."""

    def __init__(self, cin: int, name: str) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, 64, 7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
        c = 64
        for i, (w, n) in enumerate(zip([64, 128, 256, 512], LAYERS[name])):
            blocks = [BasicBlock(c if j == 0 else w, w, stride=(1 if i == 0 or j > 0 else 2)) for j in range(n)]
            setattr(self, f"layer{i + 1}", nn.Sequential(*blocks))
            c = w
        self.out_channels = [0, 64, 64, 128, 256, 512]  # no stride-1 skip
        self.stride = 32

    def forward(self, x: torch.Tensor) -> list[torch.Tensor | None]:
        s2 = self.relu(self.bn1(self.conv1(x)))
        z = self.maxpool(s2)
        feats: list[torch.Tensor | None] = [None, s2]
        for i in range(1, 5):
            z = getattr(self, f"layer{i}")(z)
            feats.append(z)
        return feats

    def stage_list(self) -> list[nn.Module]:
        return [nn.ModuleList([self.conv1, self.bn1]), *(getattr(self, f"layer{i}") for i in range(1, 5))]


class VGGEncoder(nn.Module):
    """torchvision VGG ``features``; skips before each pooling, the last pooling is the bottleneck."""

    def __init__(self, cin: int, name: str, batch_norm: bool) -> None:
        super().__init__()
        self.features = make_features(CONFIGS[name], cin, batch_norm)
        self.out_channels = [64, 128, 256, 512, 512, 512]
        self.stride = 32

    def forward(self, x: torch.Tensor) -> list[torch.Tensor | None]:
        feats: list[torch.Tensor | None] = []
        for m in self.features:
            if isinstance(m, nn.MaxPool2d):
                feats.append(x)
            x = m(x)
        feats.append(x)
        return feats

    def stage_list(self) -> list[nn.Module]:
        stages: list[nn.Module] = []
        current: list[nn.Module] = []
        for m in self.features:
            current.append(m)
            if isinstance(m, nn.MaxPool2d):
                stages.append(nn.ModuleList(current))
                current = []
        return stages


class DecoderBlock(nn.Module):
    """Upsample ×2 → concatenate the skip (if any) → double conv."""

    def __init__(self, cin: int, skip: int, cout: int, upsample: str, batch_norm: bool) -> None:
        super().__init__()
        self.up: nn.Module = nn.ConvTranspose2d(cin, cin // 2, 2, stride=2) if upsample == "transpose" else nn.Identity()
        up_c = cin // 2 if upsample == "transpose" else cin
        self.conv = double_conv(up_c + skip, cout, batch_norm)
        self.mode = upsample

    def forward(self, x: torch.Tensor, skip: torch.Tensor | None) -> torch.Tensor:
        x = self.up(x) if self.mode == "transpose" else F.interpolate(x, scale_factor=2.0, mode="bilinear", align_corners=False)
        if skip is not None:
            x = torch.cat([x, skip], dim=1)
        return self.conv(x)


class UNetParams(SegmentationParams):
    """Hyper-parameters of :class:`UNet`."""

    encoder: Literal["plain", "resnet18", "resnet34", "vgg11", "vgg13", "vgg16"] = "plain"
    depth: int = Field(default=4, ge=1, le=6, description="plain encoder: number of poolings")
    base_channels: int = Field(
        default=16, ge=1, description="plain encoder: first-level filters, doubling per level (Ronneberger: 64; 16 suits CPUs)"
    )
    decoder_channels: list[int] | None = Field(
        default=None, description="filters of each decoder level, deepest first (null = mirror the encoder)"
    )
    upsample: Literal["transpose", "bilinear"] = "transpose"
    batch_norm: bool = True
    dropout: float = Field(default=0.0, ge=0.0, lt=1.0, description="dropout on the bottleneck")


@MODELS.register("unet")
class UNet(SegmentationModel):
    """Encoder → bottleneck → decoder with skip connections → 1×1 convolution to the classes."""

    Params: ClassVar[type[ModelParams]] = UNetParams
    pretrained_prefix: ClassVar[str] = "encoder."

    def __init__(self, in_shape: tuple[int, ...], num_outputs: int, params: ModelParams) -> None:
        super().__init__(in_shape, num_outputs, params)
        assert isinstance(params, UNetParams)
        enc: PlainEncoder | ResNetEncoder | VGGEncoder
        if params.encoder == "plain":
            enc = PlainEncoder(self.in_channels, params.base_channels, params.depth, params.batch_norm)
        elif params.encoder.startswith("resnet"):
            enc = ResNetEncoder(self.in_channels, params.encoder)
        else:
            enc = VGGEncoder(self.in_channels, params.encoder, params.batch_norm)
        self.encoder = enc
        self.stride = enc.stride
        skips = enc.out_channels[:-1][::-1]  # deepest skip first
        n_up = len(skips)
        dec = params.decoder_channels or [c if c > 0 else max(16, skips[i - 1] // 2) for i, c in enumerate(skips)]
        if len(dec) != n_up:
            raise ValueError(f"decoder_channels needs {n_up} entries for this encoder, got {len(dec)}")
        self.dropout = nn.Dropout2d(params.dropout) if params.dropout > 0 else nn.Identity()
        blocks = []
        c = enc.out_channels[-1]
        for skip, out in zip(skips, dec):
            blocks.append(DecoderBlock(c, skip, out, params.upsample, params.batch_norm))
            c = out
        self.decoder = nn.ModuleList(blocks)
        self.head = nn.Conv2d(c, num_outputs, 1)
        conv_init(self)
        self._finish_init()

    def encoder_stages(self) -> list[nn.Module]:
        return self.encoder.stage_list()

    def gradcam_layer(self) -> nn.Module:
        return self.decoder[-1]

    def forward_net(self, x: torch.Tensor) -> torch.Tensor:
        feats = self.encoder(x)
        z = feats[-1]
        assert z is not None
        z = self.dropout(z)
        for block, skip in zip(self.decoder, feats[:-1][::-1]):
            z = block(z, skip)
        return self.head(z)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """Globally averaged bottleneck features ``(N, C)``."""
        from biodl.data.image.tiling import pad_to_multiple

        z, _ = pad_to_multiple(x, self.stride)
        deepest = self.encoder(z)[-1]
        assert deepest is not None
        return deepest.mean(dim=(-2, -1))
