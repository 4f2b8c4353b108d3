"""A plain 3-D convolutional network: the review's Figure 1 network with 3-D convolutions.

Each block is ``[Conv 3×3×3 → BN → ReLU] × convs_per_block → MaxPool 2×2×2``; the last maps are
globally averaged (or flattened) into a hidden dense layer and the output layer. The default
(8-16-32 filters, one convolution per block, global average pooling) has about 20 k parameters and trains on 28³ volumes
on a CPU in seconds per epoch. ``members`` such networks (default 1) can be trained side by side from
different random weights, each on its own loss (a seed ensemble in one run); the output is the
mean of their logits.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar, Literal

import torch
from pydantic import Field
from torch import nn

from biodl.errors import ConfigError
from biodl.models.base import MODELS, ModelParams
from biodl.models.vision.volume_base import VolumeModel, conv3d_bn_relu, conv_init_3d


class CNN3DParams(ModelParams):
    """Hyper-parameters of :class:`CNN3D`."""

    encoder: Literal["cnn3d"] = "cnn3d"
    channels: list[int] = Field(default_factory=lambda: [8, 16, 32], min_length=1, description="filters of each block")
    convs_per_block: int = Field(default=1, ge=1, le=4)
    batch_norm: bool = True
    dense_units: int = Field(default=64, ge=1, description="hidden dense layer")
    dropout: float = Field(default=0.5, ge=0.0, lt=1.0)
    global_pool: bool = Field(default=True, description="average the last maps (else flatten them)")
    members: int = Field(
        default=1,
        ge=1,
        le=16,
        description="networks trained side by side from different random weights, each on its own loss; the "
        "output is the mean of their logits (a seed ensemble at members x the training cost)",
    )
    tta: Literal["none", "flip", "dihedral"] = Field(
        default="flip",
        description="test-time augmentation: average the logits over the 8 flips of the volume (flip) or over its 16 "
        "in-plane 90° rotations × flips × depth flips (dihedral)",
    )


@MODELS.register("cnn3d")
class CNN3D(VolumeModel):
    """Input ``(N, C, D, H, W)`` → ``(N, num_outputs)`` logits."""

    Params: ClassVar[type[ModelParams]] = CNN3DParams
    #: AdrenalMNIST3D (docs/volumes.md): batch 32 (38 steps per epoch instead of 10); at most 50 epochs
    #: (early stopping after 10 without improvement decides): in 5-fold CV the inner validation loss was
    #: still falling at the former cap of 30 (best epoch 25 of 30 in fold 0).
    config_defaults: ClassVar[Mapping[str, object]] = {"train.batch_size": 32, "train.max_epochs": 50}

    def __init__(self, in_shape: tuple[int, ...], num_outputs: int, params: ModelParams) -> None:
        super().__init__(in_shape, num_outputs, params)
        assert isinstance(params, CNN3DParams)
        side = list(self.in_shape[1:])
        if min(side) < 2 ** len(params.channels):
            raise ConfigError(
                f"{len(params.channels)} pooling blocks need volumes of at least {2 ** len(params.channels)} voxels per side, "
                f"got {'×'.join(map(str, side))}; use fewer model.channels or resize (--volume-size)"
            )
        first = _network(self.in_channels, side, num_outputs, params)
        # member 0 keeps the single network's parameter names (blocks.*, dense.*, head.*), the others
        # live in ``more_members`` (empty for one network, so one-network bundles load unchanged)
        blocks = first["blocks"]
        assert isinstance(blocks, nn.Sequential)
        self.blocks, self.pool, self.dense, self.head = blocks, first["pool"], first["dense"], first["head"]
        self.more_members = nn.ModuleList(
            [_network(self.in_channels, side, num_outputs, params) for _ in range(params.members - 1)]
        )
        conv_init_3d(self)
        for net in [first, *self._extra()]:
            hidden, head = net["dense"][1], net["head"]  # type: ignore[index]
            assert isinstance(hidden, nn.Linear) and isinstance(head, nn.Linear)
            nn.init.xavier_uniform_(hidden.weight)
            nn.init.xavier_uniform_(head.weight)

    def gradcam_layer(self) -> nn.Module:
        """The last ReLU of the first member (with several members: Grad-CAM of the ensemble's score
        through the first member's maps)."""
        return [m for m in self.blocks[-1].modules() if isinstance(m, nn.ReLU)][-1]

    def _extra(self) -> list[nn.ModuleDict]:
        """Members 2, 3, ... (each ``blocks``, ``pool``, ``dense``, ``head``)."""
        return [net for net in self.more_members if isinstance(net, nn.ModuleDict)]

    def _member_embeds(self, x: torch.Tensor) -> list[torch.Tensor]:
        out = [self.dense(self.pool(self.blocks(x)))]
        return out + [net["dense"](net["pool"](net["blocks"](x))) for net in self._extra()]

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """Hidden dense layer ``(N, dense_units)`` (``(N, members × dense_units)``: the members' side by side)."""
        return torch.cat(self._member_embeds(x), dim=1)

    def member_scores(self, x: torch.Tensor) -> torch.Tensor:
        """Every member's logits ``(members, N, num_outputs)`` (the training loss is their sum)."""
        heads = [self.head, *[net["head"] for net in self._extra()]]
        return torch.stack([head(h) for head, h in zip(heads, self._member_embeds(x))])

    def forward_logits(self, x: torch.Tensor) -> torch.Tensor:
        """Logits ``(N, num_outputs)``: the members' mean."""
        if not self.more_members:
            return self.head(self.dense(self.pool(self.blocks(x))))
        return self.member_scores(x).mean(dim=0)


def _network(in_channels: int, side: list[int], num_outputs: int, params: CNN3DParams) -> nn.ModuleDict:
    """One member: ``blocks`` → ``pool`` → ``dense`` (Flatten, Linear, ReLU, Dropout) → ``head``."""
    blocks = []
    c = in_channels
    for width in params.channels:
        layers: list[nn.Module] = []
        for _ in range(params.convs_per_block):
            layers += conv3d_bn_relu(c, width, params.batch_norm)
            c = width
        layers.append(nn.MaxPool3d(2))
        blocks.append(nn.Sequential(*layers))
        side = [s // 2 for s in side]
    flat = c if params.global_pool else c * side[0] * side[1] * side[2]
    pool: nn.Module = nn.AdaptiveAvgPool3d(1) if params.global_pool else nn.Identity()
    dense = nn.Sequential(nn.Flatten(), nn.Linear(flat, params.dense_units), nn.ReLU(inplace=True), nn.Dropout(params.dropout))
    head = nn.Linear(params.dense_units, num_outputs)
    return nn.ModuleDict({"blocks": nn.Sequential(*blocks), "pool": pool, "dense": dense, "head": head})
