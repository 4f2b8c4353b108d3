"""Dilated residual 1-D CNN for sequence labelling (and per-sequence tasks).

A stem convolution, then residual blocks of dilated convolutions whose dilation cycles through
``dilations`` (the receptive field grows exponentially with depth, as in ByteNet / the dilated
networks used for protein secondary structure), each Conv → LayerNorm → ReLU → Dropout, added to
its input. Any sequence length; padded positions are zeroed after every block. Normalisation is
per position over the channels (:class:`~biodl.models.positions_base.ChannelNorm`), so padding
and batch composition never change a sequence's outputs.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

import torch
from pydantic import Field
from torch import nn

from biodl.models.base import MODELS, ModelParams
from biodl.models.init import InitName, initialize
from biodl.models.positions_base import POSITIONS_TRAINING, ChannelNorm, PositionModel, PositionParams


class DilatedCNNParams(PositionParams):
    """Hyper-parameters of :class:`DilatedCNN`."""

    channels: int = Field(default=64, ge=1, description="feature channels of every block")
    stem_width: int = Field(default=9, ge=1, description="width of the first convolution")
    width: int = Field(default=5, ge=1, description="width of the dilated convolutions (odd)")
    blocks: int = Field(default=8, ge=1, description="residual blocks")
    dilations: list[int] = Field(default_factory=lambda: [1, 2, 4, 8], description="dilation of block k: dilations[k % len]")
    dropout: float = Field(default=0.15, ge=0.0, lt=1.0)
    init: InitName = "he_normal"


class _Block(nn.Module):
    def __init__(self, channels: int, width: int, dilation: int, dropout: float) -> None:
        super().__init__()
        self.conv = nn.Conv1d(channels, channels, width, padding=dilation * (width - 1) // 2, dilation=dilation)
        self.norm = ChannelNorm(channels)
        self.drop = nn.Dropout(dropout)

    def forward(self, h: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return (h + self.drop(torch.relu(self.norm(self.conv(h))))) * mask


@MODELS.register("dilated-cnn")
class DilatedCNN(PositionModel):
    """Stem Conv1d → ReLU → residual dilated blocks → per-position 1x1 head (or pooled linear head)."""

    Params: ClassVar[type[ModelParams]] = DilatedCNNParams
    #: per-position runs (NetSurfP-2.0 validation chains, docs/protein.md): 128 channels; 8 sequences per step at
    #: Adam lr 2e-3 (4x the optimiser steps of 32 per step for the same compute), decayed by a cosine over at
    #: most 10 epochs; label smoothing 0.1; stop after the epoch in which 90 minutes of training are spent; three
    #: members (seeds 0, 1, 2) averaged: validation Q3 0.714 / 0.715 / 0.716 alone, 0.721 for two, 0.723 for three
    positions_defaults: ClassVar[Mapping[str, object]] = {
        **POSITIONS_TRAINING,
        "model.channels": 128,
        "train.batch_size": 8,
        "train.lr": 2e-3,
        "train.max_epochs": 10,
        "train.lr_schedule": "cosine",
        "train.label_smoothing": 0.1,
        "train.max_time": 5400.0,
        "train.ensemble_size": 3,
    }

    def __init__(self, in_shape: tuple[int, ...], num_outputs: int, params: ModelParams) -> None:
        super().__init__(in_shape, num_outputs, params)
        assert isinstance(params, DilatedCNNParams)
        c = params.channels
        self.stem = nn.Conv1d(self.channels, c, params.stem_width, padding=params.stem_width // 2)
        if params.stem_width % 2 == 0 or params.width % 2 == 0:
            from biodl.errors import ConfigError

            raise ConfigError("dilated-cnn: stem_width and width must be odd (centred, length-preserving convolutions)")
        dil = params.dilations or [1]
        self.blocks = nn.ModuleList(_Block(c, params.width, dil[k % len(dil)], params.dropout) for k in range(params.blocks))
        self.make_head(c)
        initialize(self, params.init)

    def encode(self, x: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        mask = valid.unsqueeze(1).to(x.dtype)
        h = torch.relu(self.stem(x)) * mask
        for block in self.blocks:
            h = block(h, mask)
        return h
