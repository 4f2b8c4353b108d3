"""3-D U-Net (Çiçek et al. 2016): Ronneberger's U-Net with 3-D convolutions, pooling and up-convolutions.

``depth`` poolings of 2×2×2, ``base_channels`` doubling per level, "same" padding and batch norm.

**Anisotropic stacks** (EM, confocal: slices far apart compared with the pixel size). With the
voxel spacing known (``spacing`` ``[z, y, x]``, filled in from ``data.volume.spacing`` /
``--voxel-spacing`` or the files' metadata), the levels are chosen as in nnU-Net (Isensee et al.,
Nat. Methods 2021): while the in-plane voxel size of a level is still below half the slice distance,
that level convolves in-plane only (1×3×3) and pools in-plane only (1×2×2); from the level where the
voxels are about isotropic on, convolutions and poolings are 3-D. For ISBI 2012 (50 nm × 4 nm × 4 nm)
with ``depth`` 3 that is three in-plane levels and a 3-D bottleneck. ``planar_levels`` sets the number
of in-plane levels by hand; ``pool_depth: false`` keeps every pooling in-plane.
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


def double_conv_3d(cin: int, cout: int, batch_norm: bool = True, planar: bool = False) -> nn.Sequential:
    """Two ``Conv 3×3×3 → BN → ReLU`` layers (``planar``: 1×3×3, in-plane only)."""
    if not planar:
        return nn.Sequential(*conv3d_bn_relu(cin, cout, batch_norm), *conv3d_bn_relu(cout, cout, batch_norm))
    layers: list[nn.Module] = []
    for a, b in ((cin, cout), (cout, cout)):
        layers += [nn.Conv3d(a, b, (1, 3, 3), padding=(0, 1, 1), bias=not batch_norm)]
        layers += [nn.BatchNorm3d(b)] if batch_norm else []
        layers += [nn.ReLU(inplace=True)]
    return nn.Sequential(*layers)


def planar_level_count(depth: int, spacing: list[float] | None) -> int:
    """nnU-Net's rule: levels ``0..depth`` whose in-plane voxel size (doubling per in-plane pooling) is
    still below half the slice distance convolve and pool in-plane only; at most ``depth + 1``."""
    if spacing is None or len(spacing) != 3:
        return 0
    z, xy = float(spacing[0]), float(min(spacing[1], spacing[2]))
    n = 0
    while n <= depth and xy * 2 < z:
        n += 1
        xy *= 2
    return n


class UNet3DParams(ModelParams):
    """Hyper-parameters of :class:`UNet3D`."""

    encoder: Literal["plain"] = "plain"
    depth: int = Field(default=3, ge=1, le=5, description="number of poolings")
    base_channels: int = Field(default=16, ge=1, description="filters of the first level (doubling per level)")
    batch_norm: bool = True
    pool_depth: bool = Field(default=True, description="pool along depth too (false: 1×2×2 at every level, for few-slice stacks)")
    planar_levels: int | Literal["auto"] = Field(
        default="auto",
        description="levels (from full resolution) that convolve and pool in-plane only (1×3×3, 1×2×2); auto: from "
        "spacing (levels whose in-plane voxel size is below half the slice distance), 0 when the spacing is unknown",
    )
    spacing: list[float] | None = Field(
        default=None, description="voxel spacing [z, y, x] (set from the data: --voxel-spacing or file metadata)"
    )
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
        planar = params.planar_levels if params.planar_levels != "auto" else planar_level_count(params.depth, params.spacing)
        #: per level: convolutions in-plane only?; per pooling (between level i and i+1): its kernel
        self.planar = [i < planar for i in range(params.depth + 1)]
        kernels: list[tuple[int, int, int]] = [
            (2, 2, 2) if params.pool_depth and not self.planar[i] else (1, 2, 2) for i in range(params.depth)
        ]
        self.depth_stride = 2 ** sum(k[0] == 2 for k in kernels)
        self.stride = 2**params.depth
        bn = params.batch_norm
        self.encoder = nn.ModuleList([double_conv_3d(self.in_channels, widths[0], bn, self.planar[0])])
        for i in range(1, len(widths)):
            self.encoder.append(
                nn.Sequential(nn.MaxPool3d(kernels[i - 1]), double_conv_3d(widths[i - 1], widths[i], bn, self.planar[i]))
            )
        self.up = nn.ModuleList()
        self.decoder = nn.ModuleList()
        for i in range(params.depth, 0, -1):
            self.up.append(nn.ConvTranspose3d(widths[i], widths[i - 1], kernels[i - 1], stride=kernels[i - 1]))
            self.decoder.append(double_conv_3d(2 * widths[i - 1], widths[i - 1], bn, self.planar[i - 1]))
        self.dropout = nn.Dropout3d(params.dropout)
        self.head = nn.Conv3d(widths[0], num_outputs, 1)
        conv_init_3d(self)

    def forward_logits(self, x: torch.Tensor) -> torch.Tensor:
        d, h, w = (int(s) for s in x.shape[-3:])
        pads = ((-w) % self.stride, (-h) % self.stride, (-d) % self.depth_stride)
        z = torch.nn.functional.pad(x, (0, pads[0], 0, pads[1], 0, pads[2]), mode="replicate") if any(pads) else x
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
