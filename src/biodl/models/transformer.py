"""A small Transformer encoder for sequences (per position or per sequence).

A convolutional embedding of the one-hot input, sinusoidal positional encoding (Vaswani et al.
2017), and pre-norm encoder layers whose attention ignores padded positions
(``src_key_padding_mask``).
"""

from __future__ import annotations

import math
from typing import ClassVar

import torch
from pydantic import Field, model_validator
from torch import nn

from biodl.models.base import MODELS, ModelParams
from biodl.models.positions_base import PositionModel, PositionParams


class TransformerParams(PositionParams):
    """Hyper-parameters of :class:`TransformerNet`."""

    d_model: int = Field(default=128, ge=8, description="width of the token features")
    heads: int = Field(default=4, ge=1)
    layers: int = Field(default=3, ge=1, le=24)
    feedforward: int = Field(default=256, ge=1, description="hidden size of each layer's feed-forward block")
    embed_width: int = Field(default=7, ge=1, description="width of the convolutional embedding (odd)")
    dropout: float = Field(default=0.1, ge=0.0, lt=1.0)

    @model_validator(mode="after")
    def _heads_divide(self) -> TransformerParams:
        if self.d_model % self.heads:
            raise ValueError(f"d_model ({self.d_model}) must be divisible by heads ({self.heads})")
        return self


def sinusoidal_encoding(length: int, dim: int, device: torch.device | None = None) -> torch.Tensor:
    """``(dim, length)`` sine/cosine positional encoding."""
    pos = torch.arange(length, device=device, dtype=torch.float32).unsqueeze(1)
    freq = torch.exp(torch.arange(0, dim, 2, device=device, dtype=torch.float32) * (-math.log(10000.0) / dim))
    enc = torch.zeros(length, dim, device=device)
    enc[:, 0::2] = torch.sin(pos * freq)
    enc[:, 1::2] = torch.cos(pos * freq)[:, : dim // 2]
    return enc.T


@MODELS.register("transformer")
class TransformerNet(PositionModel):
    """Conv1d embedding + positional encoding → TransformerEncoder (padding masked) → head."""

    Params: ClassVar[type[ModelParams]] = TransformerParams

    def __init__(self, in_shape: tuple[int, ...], num_outputs: int, params: ModelParams) -> None:
        super().__init__(in_shape, num_outputs, params)
        assert isinstance(params, TransformerParams)
        w = params.embed_width | 1
        self.embed = nn.Conv1d(self.channels, params.d_model, w, padding=w // 2)
        layer = nn.TransformerEncoderLayer(
            params.d_model, params.heads, params.feedforward, params.dropout, batch_first=True, norm_first=True
        )
        self.encoder = nn.TransformerEncoder(layer, params.layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(params.d_model)
        self.make_head(params.d_model)

    def encode(self, x: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        mask = valid.unsqueeze(1).to(x.dtype)
        h = (self.embed(x) + sinusoidal_encoding(x.shape[-1], self.embed.out_channels, x.device)) * mask
        h = self.encoder(h.transpose(1, 2), src_key_padding_mask=~valid)
        return self.norm(h).transpose(1, 2) * mask
