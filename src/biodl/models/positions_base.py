"""Shared pieces of the length-agnostic sequence networks (dilated CNN, CNN+BiRNN, Transformer, LSTM/GRU).

These models take padded one-hot input ``(N, A, L)`` of any length ``L``: the positions after a
sequence's end are all-zero columns. Hidden features are zeroed there after every layer, so a
sequence gets the same outputs whatever it is batched with (padding never changes a real
position's output; recurrent layers run on packed sequences, attention ignores padded keys).

With ``per_position`` the network returns scores ``(N, num_outputs, L)``, one per position
(sequence labelling, ``data.per_position``); otherwise the per-position features are pooled over
each sequence's positions (max or mean) into scores ``(N, num_outputs)``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar, Literal

import torch
from pydantic import Field
from torch import nn

from biodl.models.base import ModelParams
from biodl.models.sequence_base import SequenceModel, SequenceParams

#: Settings every per-position model recommends for ``data.per_position`` runs (on top of its own):
#: whole-protein batches are ~250 positions each, an epoch of NetSurfP-size data is ~40 k batches of
#: positions; a short plateau schedule and early stopping end training within ~15 epochs on a CPU.
POSITIONS_TRAINING: Mapping[str, object] = {
    "train.batch_size": 32,
    "train.max_epochs": 15,
    "train.patience": 3,
    "train.lr_patience": 1,
    "evaluate.baselines": ["window_logistic"],
}


class PositionParams(SequenceParams):
    """Parameters every length-agnostic sequence network has."""

    per_position: bool = Field(
        default=False, description="one output per position (N, C, L) (set by data.per_position), else per sequence (N, C)"
    )
    pooling: Literal["max", "mean"] = Field(default="max", description="per-sequence outputs: pooling over positions")


class ChannelNorm(nn.LayerNorm):
    """Layer normalisation over the channels of each position of ``(N, C, L)`` features.

    Unlike batch normalisation it does not mix positions or sequences: padding never changes a
    real position's value, and training and evaluation normalise alike.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x.transpose(1, 2)).transpose(1, 2)


def valid_positions(x: torch.Tensor) -> torch.Tensor:
    """``(N, L)`` bool: positions up to each sequence's last non-zero column (unknown residues inside count)."""
    occupied = x.ne(0).any(dim=1)
    index = torch.arange(1, x.shape[-1] + 1, device=x.device)
    last = (occupied * index).amax(dim=1, keepdim=True)
    return index.unsqueeze(0) <= last


def masked_pool(h: torch.Tensor, valid: torch.Tensor, how: str) -> torch.Tensor:
    """``(N, H)`` max or mean of features ``(N, H, L)`` over the valid positions."""
    m = valid.unsqueeze(1)
    if how == "mean":
        return (h * m).sum(-1) / m.sum(-1).clamp(min=1)
    return h.masked_fill(~m, float("-inf")).amax(-1).nan_to_num(0.0, neginf=0.0)


def run_rnn(rnn: nn.RNNBase, h: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """Run a batch-first RNN over features ``(N, H, L)`` on packed sequences; returns ``(N, H', L)``, zero after each end."""
    lengths = valid.sum(dim=1).clamp(min=1).cpu()
    packed = nn.utils.rnn.pack_padded_sequence(h.transpose(1, 2), lengths, batch_first=True, enforce_sorted=False)
    out, _ = rnn(packed)
    padded, _ = nn.utils.rnn.pad_packed_sequence(out, batch_first=True, total_length=h.shape[-1])
    return padded.transpose(1, 2)


class PositionModel(SequenceModel):
    """Base class: subclasses implement :meth:`encode` (features ``(N, H, L)``, zero at padding).

    The constructor of a subclass sets ``self.hidden_size`` (``H``) before calling :meth:`make_head`.
    """

    #: settings recommended for ``data.per_position`` runs (applied to keys the user left unset)
    positions_defaults: ClassVar[Mapping[str, object]] = POSITIONS_TRAINING

    def __init__(self, in_shape: tuple[int, ...], num_outputs: int, params: ModelParams) -> None:
        super().__init__(in_shape, num_outputs, params)
        assert isinstance(params, PositionParams)
        self.per_position = bool(params.per_position)
        self.pooling = params.pooling
        if self.per_position:
            self.rc_average = False  # a reverse strand's positions are in the other order
        self.head: nn.Module = nn.Identity()

    def make_head(self, hidden: int) -> None:
        """A 1x1 convolution per position, or a linear layer on pooled features."""
        self.head = nn.Conv1d(hidden, self.num_outputs, 1) if self.per_position else nn.Linear(hidden, self.num_outputs)

    def encode(self, x: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        """Features ``(N, H, L)`` of one-hot ``x`` ``(N, A, L)``, zero where ``valid`` ``(N, L)`` is false."""
        raise NotImplementedError

    def score(self, x: torch.Tensor) -> torch.Tensor:
        """Scores ``(N, num_outputs, L)`` (per position) or ``(N, num_outputs)``."""
        valid = valid_positions(x)
        h = self.encode(x, valid)
        if self.per_position:
            return self.head(h)
        return self.head(masked_pool(h, valid, self.pooling))
