"""Feed-forward network for feature vectors."""

from __future__ import annotations

from typing import ClassVar, Literal

import torch
from pydantic import Field
from torch import nn

from biodl.models.base import MODELS, BiodlModel, ModelParams
from biodl.models.init import InitName, initialize
from biodl.models.layers import Activation, dense_stack
from biodl.models.numeric_encoding import PiecewiseLinearEncoding


class MLPParams(ModelParams):
    """Hyper-parameters of :class:`MLP` (review Table 2 defaults)."""

    hidden_sizes: list[int] = Field(default_factory=lambda: [256, 128])
    activation: Activation = "relu"
    dropout: float = Field(default=0.5, ge=0.0, lt=1.0)
    input_dropout: float = Field(default=0.0, ge=0.0, lt=1.0)
    batch_norm: bool = True
    init: InitName = "glorot_uniform"
    numeric_encoding: Literal["none", "ple"] = Field(
        default="none",
        description="ple: piecewise-linear encoding of every input feature on quantile bins of the training rows "
        "(Gorishniy et al. 2022) before the first dense layer",
    )
    encoding_bins: int = Field(default=16, ge=1, le=128, description="bins per feature of numeric_encoding: ple")
    encoding_max_columns: int = Field(
        default=65536,
        ge=1,
        description="numeric_encoding: ple uses fewer bins per feature (at least 1) when features x encoding_bins "
        "would exceed this many encoded columns (wide matrices: 20,000 genes get 3 bins)",
    )


@MODELS.register("mlp")
class MLP(BiodlModel):
    """Fully connected network: [Linear → BN → activation → Dropout] × k → Linear.

    Input ``(N, F)`` (other shapes are flattened), output ``(N, num_outputs)``. With
    ``numeric_encoding: ple`` the flattened input is first encoded piecewise-linearly, ``(N, F × bins)``
    (:mod:`biodl.models.numeric_encoding`; the bin edges are fitted on the training rows).
    """

    Params: ClassVar[type[ModelParams]] = MLPParams
    data_types: ClassVar[tuple[str, ...]] = ("tabular", "sequence", "molecule")

    def __init__(self, in_shape: tuple[int, ...], num_outputs: int, params: ModelParams) -> None:
        super().__init__(in_shape, num_outputs, params)
        assert isinstance(params, MLPParams)
        n_in = 1
        for s in self.in_shape:
            n_in *= s
        layers: list[nn.Module] = [nn.Flatten()]
        if params.numeric_encoding == "ple":
            bins = max(1, min(params.encoding_bins, params.encoding_max_columns // n_in))
            layers.append(PiecewiseLinearEncoding(n_in, bins))
            n_in *= bins
        if params.input_dropout > 0:
            layers.append(nn.Dropout(params.input_dropout))
        blocks, n_in = dense_stack(n_in, params.hidden_sizes, params.activation, params.dropout, params.batch_norm)
        layers += blocks
        self.body = nn.Sequential(*layers)
        self.head = nn.Linear(n_in, num_outputs)
        initialize(self, params.init)

    def dense_blocks(self) -> list[nn.Sequential]:
        """The hidden ``Linear → (BN) → activation → (Dropout)`` blocks, first to last (``train.pretrain``)."""
        return [m for m in self.body if isinstance(m, nn.Sequential)]

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Penultimate-layer representation ``(N, hidden_sizes[-1])``."""
        return self.body(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Scores ``(N, num_outputs)`` for input ``(N, *in_shape)``."""
        return self.head(self.body(x))
