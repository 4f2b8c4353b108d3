"""3-D U-Net (Çiçek et al. 2016): Ronneberger's U-Net with 3-D convolutions, pooling and up-convolutions.

``depth`` poolings of 2×2×2 (``pool_depth: false`` pools only in-plane, 1×2×2, for anisotropic
stacks with few slices), ``base_channels`` doubling per level, "same" padding and batch norm.
Input ``(N, C, D, H, W)`` of any size (padded to the stride inside); output
``(N, num_outputs, D, H, W)`` logits. In gradient-free evaluation volumes larger than the
inference window (``data.volume.predict_tile_size``) are predicted in overlapping windows.
"""

from __future__ import annotations

from typing import ClassVar, Literal

import torch
from pydantic import Field
from torch import nn

from biodl.models.base import MODELS, ModelParams
from biodl.models.vision.volume_base import VolumeSegmentationModel, conv3d_bn_relu, conv_init_3d


def double_conv_3d(cin: int, cout: int, batch_norm: bool = True) -> nn.Sequential:
    """Two ``Conv 3×3×3 → BN → ReLU`` layers."""
    return nn.Sequential(*conv3d_bn_relu(cin, cout, batch_norm), *conv3d_bn_relu(cout, cout, batch_norm))


class UNet3DParams(ModelParams):
    """Hyper-parameters of :class:`UNet3D`."""

    encoder: Literal["plain"] = "plain"
    depth: int = Field(default=3, ge=1, le=5, description="number of poolings")
    base_channels: int = Field(default=16, ge=1, description="filters of the first level (doubling per level)")
    batch_norm: bool = True
    pool_depth: bool = Field(default=True, description="pool along depth too (false: 1×2×2, for few-slice stacks)")
    dropout: float = Field(default=0.0, ge=0.0, lt=1.0, description="dropout before the output layer")
    threshold: float = Field(default=0.5, gt=0.0, lt=1.0, description="binary masks: foreground probability threshold")


@MODELS.register("unet3d")
class UNet3D(VolumeSegmentationModel):
    """Encoder (double conv, pool) × depth → bottleneck → decoder (up-conv, concat skip, double conv) × depth → 1³ conv."""

    Params: ClassVar[type[ModelParams]] = UNet3DParams

    def __init__(self, in_shape: tuple[int, ...], num_outputs: int, params: ModelParams) -> None:
        super().__init__(in_shape, num_outputs, params)
        assert isinstance(params, UNet3DParams)
        widths = [params.base_channels * 2**i for i in range(params.depth + 1)]
        kernel: tuple[int, int, int] = (2, 2, 2) if params.pool_depth else (1, 2, 2)
        self.stride = 2**params.depth
        self.encoder = nn.ModuleList([double_conv_3d(self.in_channels, widths[0], params.batch_norm)])
        for i in range(1, len(widths)):
            self.encoder.append(nn.Sequential(nn.MaxPool3d(kernel), double_conv_3d(widths[i - 1], widths[i], params.batch_norm)))
        self.up = nn.ModuleList()
        self.decoder = nn.ModuleList()
        for i in range(params.depth, 0, -1):
            self.up.append(nn.ConvTranspose3d(widths[i], widths[i - 1], kernel, stride=kernel))
            self.decoder.append(double_conv_3d(2 * widths[i - 1], widths[i - 1], params.batch_norm))
        self.dropout = nn.Dropout3d(params.dropout)
        self.head = nn.Conv3d(widths[0], num_outputs, 1)
        self.pool_depth = params.pool_depth
        conv_init_3d(self)

    def forward_logits(self, x: torch.Tensor) -> torch.Tensor:
        from biodl.models.vision.volume_base import pad_to_multiple_3d

        d, h, w = (int(s) for s in x.shape[-3:])
        if self.pool_depth:
            z, _ = pad_to_multiple_3d(x, self.stride)
        else:  # pad only in-plane
            z = torch.nn.functional.pad(x, (0, (-w) % self.stride, 0, (-h) % self.stride, 0, 0), mode="replicate")
        return self.forward_net(z)[..., :d, :h, :w]

    def gradcam_layer(self) -> nn.Module:
        return self.decoder[-1]

    def forward_net(self, x: torch.Tensor) -> torch.Tensor:
        skips = []
        z = x
        for stage in self.encoder:
            z = stage(z)
            skips.append(z)
        z = skips.pop()
        for up, dec in zip(self.up, self.decoder):
            z = dec(torch.cat([up(z), skips.pop()], dim=1))
        return self.head(self.dropout(z))
