"""Recurrent families ``lstm`` and ``gru``: stacked (bi)directional RNNs with an optional convolutional front end.

For per-sequence tasks the per-position states are pooled (max or mean over each sequence's
positions); for sequence labelling (``data.per_position``) each position gets its own output.
Sequences of any length run packed, so padding never reaches a real position.
"""

from __future__ import annotations

from typing import ClassVar

import torch
from pydantic import Field
from torch import nn

from biodl.models.base import MODELS, ModelParams
from biodl.models.init import InitName, initialize
from biodl.models.positions_base import PositionModel, PositionParams, run_rnn


class RecurrentParams(PositionParams):
    """Hyper-parameters of :class:`LSTMNet` / :class:`GRUNet`."""

    hidden: int = Field(default=128, ge=1, description="units per direction")
    layers: int = Field(default=2, ge=1, le=8, description="stacked recurrent layers")
    bidirectional: bool = True
    dropout: float = Field(default=0.2, ge=0.0, lt=1.0, description="between recurrent layers and before the head")
    conv_filters: int = Field(default=0, ge=0, description="convolutional front end: filters (0 = none, one-hot goes to the RNN)")
    conv_width: int = Field(default=9, ge=1, description="front-end filter width (odd)")
    init: InitName = "glorot_uniform"


class _Recurrent(PositionModel):
    """[Conv1d → ReLU] → stacked (bi)RNN → dropout → head."""

    Params: ClassVar[type[ModelParams]] = RecurrentParams
    cell: ClassVar[type[nn.LSTM] | type[nn.GRU]] = nn.LSTM

    def __init__(self, in_shape: tuple[int, ...], num_outputs: int, params: ModelParams) -> None:
        super().__init__(in_shape, num_outputs, params)
        assert isinstance(params, RecurrentParams)
        width = params.conv_width | 1
        self.front: nn.Module | None = None
        size = self.channels
        if params.conv_filters:
            self.front = nn.Conv1d(self.channels, params.conv_filters, width, padding=width // 2)
            size = params.conv_filters
        self.rnn = self.cell(
            size, params.hidden, num_layers=params.layers, batch_first=True, bidirectional=params.bidirectional,
            dropout=params.dropout if params.layers > 1 else 0.0,
        )  # fmt: skip
        self.drop = nn.Dropout(params.dropout)
        self.make_head(params.hidden * (2 if params.bidirectional else 1))
        initialize(self, params.init)

    def encode(self, x: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        mask = valid.unsqueeze(1).to(x.dtype)
        h = torch.relu(self.front(x)) * mask if self.front is not None else x
        return self.drop(run_rnn(self.rnn, h, valid)) * mask


@MODELS.register("lstm")
class LSTMNet(_Recurrent):
    """Stacked bidirectional LSTM (optionally after a convolution), per sequence or per position."""

    cell = nn.LSTM


@MODELS.register("gru")
class GRUNet(_Recurrent):
    """Stacked bidirectional GRU (optionally after a convolution), per sequence or per position."""

    cell = nn.GRU
