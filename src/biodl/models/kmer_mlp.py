"""A dense network on k-mer counts computed inside the model: the classical deep baseline."""

from __future__ import annotations

from typing import ClassVar

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import nn

from biodl.models.base import MODELS, ModelParams
from biodl.models.init import InitName, initialize
from biodl.models.layers import Activation, dense_stack
from biodl.models.sequence_base import SequenceModel, SequenceParams


class KmerMLPParams(SequenceParams):
    """Hyper-parameters of :class:`KmerMLP`."""

    k: int = Field(default=4, ge=1, le=8, description="k-mer length (A**k input features)")
    log_counts: bool = Field(default=True, description="use log(1 + count)")
    hidden_sizes: list[int] = Field(default_factory=lambda: [256, 64])
    activation: Activation = "relu"
    dropout: float = Field(default=0.5, ge=0.0, lt=1.0)
    batch_norm: bool = True
    init: InitName = "glorot_uniform"


@MODELS.register("kmer-mlp")
class KmerMLP(SequenceModel):
    """k-mer counts of one-hot input ``(N, A, L)`` → [Linear → BN → ReLU → Dropout] × k → Linear.

    Counting is a fixed convolution: a window's k-mer index is ``Σ_j code_j · A^(k-1-j)``, and
    windows touching an all-zero (unknown) column are not counted.
    """

    Params: ClassVar[type[ModelParams]] = KmerMLPParams

    def __init__(self, in_shape: tuple[int, ...], num_outputs: int, params: ModelParams) -> None:
        super().__init__(in_shape, num_outputs, params)
        assert isinstance(params, KmerMLPParams)
        self.k = params.k
        self.check_length(self.length - self.k + 1, f"{self.k}-mers")
        self.n_kmers = self.channels**self.k
        place = self.channels ** torch.arange(self.k - 1, -1, -1, dtype=torch.float32)  # (k,)
        kernel = torch.arange(self.channels, dtype=torch.float32)[:, None] * place[None, :]  # (A, k)
        self.register_buffer("index_kernel", kernel[None], persistent=False)
        self.log_counts = params.log_counts
        layers, n_in = dense_stack(self.n_kmers, params.hidden_sizes, params.activation, params.dropout, params.batch_norm)
        self.dense = nn.Sequential(*layers)
        self.head = nn.Linear(n_in, num_outputs)
        initialize(self, params.init)

    def kmer_counts(self, x: torch.Tensor) -> torch.Tensor:
        """Counts ``(N, A**k)`` of float one-hot input ``(N, A, L)``."""
        kernel = self.get_buffer("index_kernel").to(dtype=x.dtype)
        index = F.conv1d(x, kernel).squeeze(1).round().long()  # (N, L-k+1)
        valid = (x.amax(dim=1) == 1).to(x.dtype)[:, None, :]  # (N, 1, L)
        ok = F.conv1d(valid, torch.ones((1, 1, self.k), dtype=x.dtype, device=x.device)).squeeze(1) > self.k - 0.5
        index = torch.where(ok, index, torch.zeros_like(index)).clamp(0, self.n_kmers - 1)
        counts = torch.zeros((x.shape[0], self.n_kmers), dtype=x.dtype, device=x.device)
        return counts.scatter_add_(1, index, ok.to(x.dtype))

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Last hidden layer of the k-mer network."""
        c = self.kmer_counts(x)
        return self.dense(torch.log1p(c) if self.log_counts else c)

    def score(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))
