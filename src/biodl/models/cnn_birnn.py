"""CNN + bidirectional RNN for sequence labelling (DCBLSTM / NetSurfP-2.0 style).

Multi-scale convolutions (widths ``conv_widths``, concatenated, as in DCBLSTM, Li & Yu 2016;
NetSurfP-2.0, Klausen et al. 2019) read local motifs; stacked bidirectional LSTM/GRU layers carry
context along the whole chain; the head sees the recurrent states together with the convolution
features. Sequences of any length run packed.
"""

from __future__ import annotations

from typing import ClassVar, Literal

import torch
from pydantic import Field
from torch import nn

from biodl.models.base import MODELS, ModelParams
from biodl.models.init import InitName, initialize
from biodl.models.positions_base import ChannelNorm, PositionModel, PositionParams, run_rnn


class CNNBiRNNParams(PositionParams):
    """Hyper-parameters of :class:`CNNBiRNN`."""

    conv_filters: int = Field(default=64, ge=1, description="filters per convolution width")
    conv_widths: list[int] = Field(default_factory=lambda: [3, 7, 11], description="odd widths of the parallel convolutions")
    cell: Literal["lstm", "gru"] = "gru"
    hidden: int = Field(default=96, ge=1, description="recurrent units per direction")
    layers: int = Field(default=2, ge=1, le=8)
    dropout: float = Field(default=0.2, ge=0.0, lt=1.0)
    init: InitName = "glorot_uniform"


@MODELS.register("cnn-birnn")
class CNNBiRNN(PositionModel):
    """Parallel Conv1d (concatenated) → LayerNorm → ReLU → stacked BiGRU/BiLSTM → [states, conv features] → head."""

    Params: ClassVar[type[ModelParams]] = CNNBiRNNParams

    def __init__(self, in_shape: tuple[int, ...], num_outputs: int, params: ModelParams) -> None:
        super().__init__(in_shape, num_outputs, params)
        assert isinstance(params, CNNBiRNNParams)
        widths = [w | 1 for w in params.conv_widths] or [7]
        self.convs = nn.ModuleList(nn.Conv1d(self.channels, params.conv_filters, w, padding=w // 2) for w in widths)
        conv_size = params.conv_filters * len(widths)
        self.norm = ChannelNorm(conv_size)
        cell = nn.GRU if params.cell == "gru" else nn.LSTM
        self.rnn = cell(
            conv_size, params.hidden, num_layers=params.layers, batch_first=True, bidirectional=True,
            dropout=params.dropout if params.layers > 1 else 0.0,
        )  # fmt: skip
        self.drop = nn.Dropout(params.dropout)
        self.make_head(2 * params.hidden + conv_size)
        initialize(self, params.init)

    def encode(self, x: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        mask = valid.unsqueeze(1).to(x.dtype)
        c = torch.relu(self.norm(torch.cat([conv(x) for conv in self.convs], dim=1))) * mask
        r = run_rnn(self.rnn, self.drop(c), valid)
        return self.drop(torch.cat([r, c], dim=1)) * mask
