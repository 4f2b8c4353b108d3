"""Small building blocks shared by architectures."""

from __future__ import annotations

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
