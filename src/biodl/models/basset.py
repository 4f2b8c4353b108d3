"""Basset (Kelley et al., Genome Res. 26:990, 2016): three batch-normalised conv blocks → two dense layers."""

from __future__ import annotations

from typing import ClassVar

import torch
from pydantic import Field, model_validator
from torch import nn

from biodl.models.base import MODELS, ModelParams
from biodl.models.init import InitName, initialize
from biodl.models.layers import dense_stack
from biodl.models.sequence_base import Padding, SequenceModel, SequenceParams, conv_block, conv_length, pool_length


class BassetParams(SequenceParams):
    """Hyper-parameters of :class:`Basset` (paper defaults; 600-bp inputs in the paper)."""

    filters: list[int] = Field(default_factory=lambda: [300, 200, 200], min_length=1)
    filter_widths: list[int] = Field(default_factory=lambda: [19, 11, 7], min_length=1)
    pool_sizes: list[int] = Field(default_factory=lambda: [3, 4, 4])
    hidden_sizes: list[int] = Field(default_factory=lambda: [1000, 1000])
    dropout: float = Field(default=0.3, ge=0.0, lt=1.0)
    batch_norm: bool = True
    padding: Padding = "same"
    init: InitName = "glorot_uniform"

    @model_validator(mode="after")
    def _lengths(self) -> BassetParams:
        n = len(self.filters)
        if not (len(self.filter_widths) == len(self.pool_sizes) == n):
            raise ValueError(
                f"filters, filter_widths and pool_sizes need one entry per conv layer ({n}); got "
                f"{len(self.filter_widths)} and {len(self.pool_sizes)}"
            )
        return self


@MODELS.register("basset")
class Basset(SequenceModel):
    """[Conv1d → BN → ReLU → MaxPool] × 3 → [Linear → BN → ReLU → Dropout] × 2 → Linear."""

    Params: ClassVar[type[ModelParams]] = BassetParams

    def __init__(self, in_shape: tuple[int, ...], num_outputs: int, params: ModelParams) -> None:
        super().__init__(in_shape, num_outputs, params)
        assert isinstance(params, BassetParams)
        blocks: list[nn.Module] = []
        ch, length = self.channels, self.length
        for f, w, p in zip(params.filters, params.filter_widths, params.pool_sizes, strict=True):
            length = pool_length(conv_length(length, w, params.padding), p)
            self.check_length(length, "the conv/pool stack")
            blocks.append(conv_block(ch, f, w, params.padding, batch_norm=params.batch_norm, pool=p))
            ch = f
        self.conv = nn.Sequential(*blocks)
        hidden, n_in = dense_stack(ch * length, params.hidden_sizes, "relu", params.dropout, params.batch_norm)
        self.dense = nn.Sequential(nn.Flatten(), *hidden)
        self.head = nn.Linear(n_in, num_outputs)
        initialize(self, params.init)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Last hidden layer ``(N, hidden_sizes[-1])``."""
        return self.dense(self.conv(x))

    def score(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))
