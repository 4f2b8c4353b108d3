"""DeepBind (Alipanahi et al., Nat. Biotechnol. 33:831, 2015): motif scanner + global pooling."""

from __future__ import annotations

from typing import ClassVar, Literal

import torch
from pydantic import Field
from torch import nn

from biodl.models.base import MODELS, ModelParams
from biodl.models.init import InitName, initialize
from biodl.models.layers import dense_stack
from biodl.models.sequence_base import Padding, SequenceModel, SequenceParams, conv1d, conv_length


class DeepBindParams(SequenceParams):
    """Hyper-parameters of :class:`DeepBind`."""

    filters: int = Field(default=128, ge=1, description="number of motif detectors (tuned on validation AUC)")
    filter_width: int = Field(default=24, ge=1, description="motif detector width (bp)")
    padding: Padding = "valid"
    pooling: Literal["max", "avg", "max+avg"] = Field(default="max+avg", description="global pooling over positions")
    hidden_sizes: list[int] = Field(default_factory=lambda: [32], description="dense layers after pooling ([] = none)")
    dropout: float = Field(default=0.5, ge=0.0, lt=1.0)
    batch_norm: bool = False
    init: InitName = "glorot_uniform"


@MODELS.register("deepbind")
class DeepBind(SequenceModel):
    """Conv1d(A → filters, width) → ReLU → global max (+ average) pool → dense → output.

    Input ``(N, A, L)`` one-hot, output ``(N, num_outputs)`` scores.
    """

    Params: ClassVar[type[ModelParams]] = DeepBindParams

    def __init__(self, in_shape: tuple[int, ...], num_outputs: int, params: ModelParams) -> None:
        super().__init__(in_shape, num_outputs, params)
        assert isinstance(params, DeepBindParams)
        out_length = conv_length(self.length, params.filter_width, params.padding)
        self.check_length(out_length, f"filters of width {params.filter_width}")
        self.conv = nn.Sequential(*conv1d(self.channels, params.filters, params.filter_width, params.padding))
        self.pooling = params.pooling
        n_in = params.filters * (2 if params.pooling == "max+avg" else 1)
        layers, n_in = dense_stack(n_in, params.hidden_sizes, "relu", params.dropout, params.batch_norm)
        if not params.hidden_sizes and params.dropout > 0:
            layers.append(nn.Dropout(params.dropout))
        self.dense = nn.Sequential(*layers)
        self.head = nn.Linear(n_in, num_outputs)
        initialize(self, params.init)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Pooled motif scores ``(N, filters)`` (``2 × filters`` for max+avg) of float input."""
        h = torch.relu(self.conv(x))
        if self.pooling == "max":
            return h.amax(dim=-1)
        if self.pooling == "avg":
            return h.mean(dim=-1)
        return torch.cat([h.amax(dim=-1), h.mean(dim=-1)], dim=1)

    def score(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.dense(self.features(x)))
