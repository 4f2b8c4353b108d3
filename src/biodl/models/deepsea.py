"""DeepSEA (Zhou & Troyanskaya, Nat. Methods 12:931, 2015): three conv/pool blocks → dense, multitask."""

from __future__ import annotations

from typing import ClassVar

import torch
from pydantic import Field, model_validator
from torch import nn

from biodl.models.base import MODELS, ModelParams
from biodl.models.init import InitName, initialize
from biodl.models.sequence_base import Padding, SequenceModel, SequenceParams, conv_block, conv_length, pool_length


class DeepSEAParams(SequenceParams):
    """Hyper-parameters of :class:`DeepSEA` (paper defaults; 1000-bp inputs in the paper)."""

    filters: list[int] = Field(default_factory=lambda: [320, 480, 960], min_length=1)
    filter_widths: list[int] = Field(default_factory=lambda: [8, 8, 8], min_length=1)
    pool_sizes: list[int] = Field(default_factory=lambda: [4, 4, 1], description="max-pool after each conv (1 = none)")
    dropouts: list[float] = Field(default_factory=lambda: [0.2, 0.2, 0.5])
    dense_size: int = Field(default=925, ge=1)
    padding: Padding = "same"
    init: InitName = "glorot_uniform"

    @model_validator(mode="after")
    def _lengths(self) -> DeepSEAParams:
        n = len(self.filters)
        if not (len(self.filter_widths) == len(self.pool_sizes) == len(self.dropouts) == n):
            raise ValueError(
                f"filters, filter_widths, pool_sizes and dropouts need one entry per conv layer ({n}); got "
                f"{len(self.filter_widths)}, {len(self.pool_sizes)}, {len(self.dropouts)}"
            )
        return self


@MODELS.register("deepsea")
class DeepSEA(SequenceModel):
    """[Conv1d → ReLU → MaxPool → Dropout] × 3 → Linear → ReLU → Linear (one output per task)."""

    Params: ClassVar[type[ModelParams]] = DeepSEAParams

    def __init__(self, in_shape: tuple[int, ...], num_outputs: int, params: ModelParams) -> None:
        super().__init__(in_shape, num_outputs, params)
        assert isinstance(params, DeepSEAParams)
        blocks: list[nn.Module] = []
        ch, length = self.channels, self.length
        for f, w, p, d in zip(params.filters, params.filter_widths, params.pool_sizes, params.dropouts, strict=True):
            length = pool_length(conv_length(length, w, params.padding), p)
            self.check_length(length, "the conv/pool stack")
            blocks.append(conv_block(ch, f, w, params.padding, pool=p, dropout=d))
            ch = f
        self.conv = nn.Sequential(*blocks)
        self.dense = nn.Sequential(nn.Flatten(), nn.Linear(ch * length, params.dense_size), nn.ReLU())
        self.head = nn.Linear(params.dense_size, num_outputs)
        initialize(self, params.init)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Dense-layer representation ``(N, dense_size)``."""
        return self.dense(self.conv(x))

    def score(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))
