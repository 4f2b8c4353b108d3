"""DanQ (Quang & Xie, Nucleic Acids Res. 44:e107, 2016): convolution → bidirectional LSTM → dense."""

from __future__ import annotations

from typing import ClassVar

import torch
from pydantic import Field
from torch import nn

from biodl.models.base import MODELS, ModelParams
from biodl.models.init import InitName, initialize
from biodl.models.sequence_base import Padding, SequenceModel, SequenceParams, conv1d, conv_length, pool_length


class DanQParams(SequenceParams):
    """Hyper-parameters of :class:`DanQ` (paper defaults; 1000-bp inputs in the paper)."""

    filters: int = Field(default=320, ge=1)
    filter_width: int = Field(default=26, ge=1)
    pool_size: int = Field(default=13, ge=1)
    conv_dropout: float = Field(default=0.2, ge=0.0, lt=1.0)
    lstm_hidden: int = Field(default=320, ge=1, description="LSTM units per direction")
    lstm_dropout: float = Field(default=0.5, ge=0.0, lt=1.0)
    dense_size: int = Field(default=925, ge=1)
    padding: Padding = "same"
    init: InitName = "glorot_uniform"


@MODELS.register("danq")
class DanQ(SequenceModel):
    """Conv1d → ReLU → MaxPool → Dropout → BiLSTM → Dropout → Flatten → Linear → ReLU → Linear."""

    Params: ClassVar[type[ModelParams]] = DanQParams

    def __init__(self, in_shape: tuple[int, ...], num_outputs: int, params: ModelParams) -> None:
        super().__init__(in_shape, num_outputs, params)
        assert isinstance(params, DanQParams)
        steps = pool_length(conv_length(self.length, params.filter_width, params.padding), params.pool_size)
        self.check_length(steps, "the convolution and pooling")
        self.conv = nn.Sequential(
            *conv1d(self.channels, params.filters, params.filter_width, params.padding),
            nn.ReLU(),
            nn.MaxPool1d(params.pool_size) if params.pool_size > 1 else nn.Identity(),
            nn.Dropout(params.conv_dropout),
        )
        self.lstm = nn.LSTM(params.filters, params.lstm_hidden, batch_first=True, bidirectional=True)
        self.drop = nn.Dropout(params.lstm_dropout)
        self.dense = nn.Sequential(nn.Flatten(), nn.Linear(steps * 2 * params.lstm_hidden, params.dense_size), nn.ReLU())
        self.head = nn.Linear(params.dense_size, num_outputs)
        initialize(self, params.init)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Dense-layer representation ``(N, dense_size)``."""
        h = self.conv(x).transpose(1, 2)  # (N, steps, filters)
        h, _ = self.lstm(h)
        return self.dense(self.drop(h))

    def score(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))
