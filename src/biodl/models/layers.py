"""Small building blocks shared by architectures."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from torch import nn

Activation = Literal["relu", "tanh", "sigmoid", "elu", "gelu", "leaky_relu", "softplus"]

_ACTIVATIONS: dict[str, type[nn.Module]] = {
    "relu": nn.ReLU,
    "tanh": nn.Tanh,
    "sigmoid": nn.Sigmoid,
    "elu": nn.ELU,
    "gelu": nn.GELU,
    "leaky_relu": nn.LeakyReLU,
    "softplus": nn.Softplus,
}


def activation(name: Activation) -> nn.Module:
    """A fresh activation module by name."""
    return _ACTIVATIONS[name]()


def dense_block(in_features: int, out_features: int, act: Activation, dropout: float, batch_norm: bool) -> nn.Sequential:
    """Linear → (BatchNorm) → activation → (Dropout)."""
    layers: list[nn.Module] = [nn.Linear(in_features, out_features, bias=not batch_norm)]
    if batch_norm:
        layers.append(nn.BatchNorm1d(out_features))
    layers.append(activation(act))
    if dropout > 0:
        layers.append(nn.Dropout(dropout))
    return nn.Sequential(*layers)


def dense_stack(
    in_features: int, hidden_sizes: Sequence[int], act: Activation, dropout: float, batch_norm: bool
) -> tuple[list[nn.Module], int]:
    """Hidden layers of a dense network: one :func:`dense_block` per width.

    Parameters
    ----------
    in_features
        Width of the input of the first block.
    hidden_sizes
        Output width of each block, first to last (may be empty).
    act, dropout, batch_norm
        As for :func:`dense_block`.

    Returns
    -------
    tuple
        ``(blocks, out_features)``: the blocks, built first to last, and the width of the last
        one's output (``in_features`` when there are none).
    """
    blocks: list[nn.Module] = []
    n_in = in_features
    for width in hidden_sizes:
        blocks.append(dense_block(n_in, width, act, dropout, batch_norm))
        n_in = width
    return blocks, n_in
