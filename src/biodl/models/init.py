"""Weight initialisation schemes (review Table 2 default: Glorot uniform)."""

from __future__ import annotations

from typing import Literal

from torch import nn

InitName = Literal["glorot_uniform", "glorot_normal", "he_uniform", "he_normal", "normal", "uniform", "torch_default"]


def initialize(module: nn.Module, scheme: InitName = "glorot_uniform") -> None:
    """Initialise the weights of every linear/convolution layer of ``module`` in place.

    Biases are set to zero; normalisation layers and recurrent layers keep PyTorch's defaults.
    ``torch_default`` keeps PyTorch's own initialisation of every layer (uniform in ``±1/sqrt(fan_in)``,
    biases included).
    """
    if scheme == "torch_default":
        return
    for m in module.modules():
        if isinstance(m, (nn.Linear, nn.Conv1d, nn.Conv2d, nn.ConvTranspose1d, nn.ConvTranspose2d)):
            w = m.weight
            if scheme == "glorot_uniform":
                nn.init.xavier_uniform_(w)
            elif scheme == "glorot_normal":
                nn.init.xavier_normal_(w)
            elif scheme == "he_uniform":
                nn.init.kaiming_uniform_(w, nonlinearity="relu")
            elif scheme == "he_normal":
                nn.init.kaiming_normal_(w, nonlinearity="relu")
            elif scheme == "normal":
                nn.init.normal_(w, std=0.01)
            else:
                nn.init.uniform_(w, -0.05, 0.05)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
