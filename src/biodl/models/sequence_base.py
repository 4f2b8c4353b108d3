"""Shared pieces of the sequence architectures (DeepBind, DeepSEA, Basset, DanQ, k-mer MLP).

Every sequence model takes one-hot input ``(N, A, L)`` (compact integer batches are cast to
float here) and returns scores ``(N, num_outputs)``. With ``rc_average`` (the default) a
model in eval mode scores both strands and averages them, so validation, test metrics and
saved bundles all predict strand-symmetrically; training sees single strands (use
``data.sequence.rc_augment`` for random strands).
"""

from __future__ import annotations

from typing import ClassVar, Literal

import torch
from pydantic import Field
from torch import nn

from biodl.errors import ConfigError
from biodl.models.base import BiodlModel, ModelParams

Padding = Literal["valid", "same"]


class SequenceParams(ModelParams):
    """Parameters every sequence architecture has."""

    rc_average: bool = Field(default=True, description="eval mode: average the scores of both strands (4-letter alphabets only)")


def reverse_complement(x: torch.Tensor) -> torch.Tensor:
    """Reverse complement of one-hot ``(N, 4, L)`` (ACGT/ACGU channel order)."""
    return x.flip(-2).flip(-1)


def conv_length(length: int, width: int, padding: Padding) -> int:
    """Output length of a stride-1 convolution."""
    return length if padding == "same" else length - width + 1


def pool_length(length: int, size: int) -> int:
    """Output length of non-overlapping pooling (incomplete windows dropped)."""
    return length // size if size > 1 else length


class SequenceModel(BiodlModel):
    """Base class: input checks, float casting and reverse-complement averaging."""

    data_types: ClassVar[tuple[str, ...]] = ("sequence",)

    def __init__(self, in_shape: tuple[int, ...], num_outputs: int, params: ModelParams) -> None:
        super().__init__(in_shape, num_outputs, params)
        if len(self.in_shape) != 2:
            raise ConfigError(f"{type(self).__name__} takes one-hot sequences (A, L), got input shape {self.in_shape}")
        self.channels, self.length = self.in_shape
        assert isinstance(params, SequenceParams)
        self.rc_average = bool(params.rc_average and self.channels == 4)
        self.input_flank = 0

    def check_length(self, length: int, what: str) -> None:
        """Raise a config error when the sequence is too short for the layers."""
        if length < 1:
            raise ConfigError(
                f"{type(self).__name__}: sequences of length {self.length} are too short for {what}; "
                "use smaller filter widths/pooling, padding 'same', or longer sequences"
            )

    def score(self, x: torch.Tensor) -> torch.Tensor:
        """Scores ``(N, num_outputs)`` of float one-hot input ``(N, A, L)`` (one strand)."""
        raise NotImplementedError

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Scores ``(N, num_outputs)``; in eval mode averaged over both strands if ``rc_average``.

        Inputs of ``length + 2 * input_flank`` positions are centre-cropped: interval windows keep
        flanks of real sequence for random-shift training (set by the sequence data type).
        """
        if self.input_flank and x.shape[-1] == self.length + 2 * self.input_flank:
            x = x[..., self.input_flank : x.shape[-1] - self.input_flank]
        if not torch.is_floating_point(x):
            x = x.float()
        if self.training or not self.rc_average:
            return self.score(x)
        return 0.5 * (self.score(x) + self.score(reverse_complement(x)))


def conv1d(in_ch: int, out_ch: int, width: int, padding: Padding, *, bias: bool = True) -> list[nn.Module]:
    """A stride-1 Conv1d; ``same`` zero-pads ``(width - 1) // 2`` left and ``width // 2`` right."""
    conv = nn.Conv1d(in_ch, out_ch, width, bias=bias)
    if padding == "valid" or width == 1:
        return [conv]
    return [nn.ConstantPad1d(((width - 1) // 2, width // 2), 0.0), conv]


def conv_block(
    in_ch: int, out_ch: int, width: int, padding: Padding, *, batch_norm: bool = False, pool: int = 1, dropout: float = 0.0
) -> nn.Sequential:
    """Conv1d → (BatchNorm) → ReLU → (MaxPool) → (Dropout)."""
    layers: list[nn.Module] = conv1d(in_ch, out_ch, width, padding, bias=not batch_norm)
    if batch_norm:
        layers.append(nn.BatchNorm1d(out_ch))
    layers.append(nn.ReLU())
    if pool > 1:
        layers.append(nn.MaxPool1d(pool))
    if dropout > 0:
        layers.append(nn.Dropout(dropout))
    return nn.Sequential(*layers)
