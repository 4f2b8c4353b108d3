"""The review's Figure 1 / Box 2 convolutional network: N convolution + pooling blocks, two dense layers.

Each block is ``[Conv 3×3 → BN → ReLU] × convs_per_block → MaxPool 2×2``; the pooled maps are
flattened (or globally averaged) into a hidden dense layer and the output layer. Small enough
to train on a CPU in minutes (BreastMNIST 28×28: about 0.3 M parameters with the defaults).
"""

from __future__ import annotations

from typing import ClassVar, Literal

import torch
from pydantic import Field
from torch import nn

from biodl.errors import ConfigError
from biodl.models.base import MODELS, ModelParams
from biodl.models.vision.base import VisionModel, VisionParams, conv_bn_relu, conv_init


class CNNParams(VisionParams):
    """Hyper-parameters of :class:`CNN`."""

    encoder: Literal["cnn"] = "cnn"
    channels: list[int] = Field(default_factory=lambda: [32, 64, 128], min_length=1, description="filters of each block")
    convs_per_block: int = Field(default=2, ge=1, le=4)
    kernel_size: int = Field(default=3, ge=1)
    batch_norm: bool = True
    dense_units: int = Field(default=128, ge=1, description="hidden dense layer")
    dropout: float = Field(default=0.5, ge=0.0, lt=1.0)
    global_pool: bool = Field(default=False, description="average the last maps instead of flattening them")


@MODELS.register("cnn")
class CNN(VisionModel):
    """Input ``(N, C, H, W)`` → ``(N, num_outputs)`` logits."""

    Params: ClassVar[type[ModelParams]] = CNNParams

    def __init__(self, in_shape: tuple[int, ...], num_outputs: int, params: ModelParams) -> None:
        super().__init__(in_shape, num_outputs, params)
        assert isinstance(params, CNNParams)
        h, w = self.in_shape[1:]
        if min(h, w) < 2 ** len(params.channels):
            raise ConfigError(
                f"{len(params.channels)} pooling blocks need images of at least {2 ** len(params.channels)} pixels per side, "
                f"got {h}×{w}; use fewer model.channels or resize (--image-size)"
            )
        blocks = []
        c = self.in_channels
        for width in params.channels:
            layers: list[nn.Module] = []
            for _ in range(params.convs_per_block):
                layers += conv_bn_relu(c, width, params.batch_norm, params.kernel_size)
                c = width
            layers.append(nn.MaxPool2d(2))
            blocks.append(nn.Sequential(*layers))
            h, w = h // 2, w // 2
        self.blocks = nn.Sequential(*blocks)
        flat = c if params.global_pool else c * h * w
        self.pool: nn.Module = nn.AdaptiveAvgPool2d(1) if params.global_pool else nn.Identity()
        hidden = nn.Linear(flat, params.dense_units)
        self.dense = nn.Sequential(nn.Flatten(), hidden, nn.ReLU(inplace=True), nn.Dropout(params.dropout))
        self.head = nn.Linear(params.dense_units, num_outputs)
        conv_init(self)
        nn.init.xavier_uniform_(hidden.weight)
        nn.init.xavier_uniform_(self.head.weight)
        self._finish_init()

    def encoder_stages(self) -> list[nn.Module]:
        return list(self.blocks)

    def gradcam_layer(self) -> nn.Module:
        return [m for m in self.blocks[-1].modules() if isinstance(m, nn.Conv2d)][-1]

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """Hidden dense layer ``(N, dense_units)``."""
        return self.dense(self.pool(self.blocks(x)))

    def forward_logits(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.embed(x))
