"""Multi-task feed-forward network for molecular fingerprints and descriptors (DeepTox-style).

The same layers as :class:`biodl.models.mlp.MLP`, with defaults chosen for sparse, wide molecular
inputs (Mayr et al., *Front. Environ. Sci.* 2016: wide ReLU layers, dropout, one output per
assay, missing labels masked). Defaults were tuned on validation splits of ESOL and Tox21
(``benchmarks/molecules.py``).
"""

from __future__ import annotations

from typing import ClassVar

import torch
from pydantic import Field

from biodl.data.molecule.graph import BASE_WIDTH, GraphLayout
from biodl.errors import ConfigError
from biodl.models.base import MODELS, ModelParams
from biodl.models.mlp import MLP, MLPParams


class FFNParams(MLPParams):
    """Hyper-parameters of :class:`FFN`."""

    hidden_sizes: list[int] = Field(default_factory=lambda: [1024, 512])
    dropout: float = Field(default=0.3, ge=0.0, lt=1.0)
    input_dropout: float = Field(default=0.1, ge=0.0, lt=1.0)


@MODELS.register("ffn")
class FFN(MLP):
    """Fully connected multi-task network on molecule (or any vector) features; output ``(N, num_outputs)``."""

    Params: ClassVar[type[ModelParams]] = FFNParams
    data_types: ClassVar[tuple[str, ...]] = ("molecule", "tabular")
    #: Featurisers used when ``data.molecule.featurizer`` is not given.
    default_featurizer: ClassVar[tuple[str, ...]] = ("morgan_counts", "rdkit2d")

    def __init__(self, in_shape: tuple[int, ...], num_outputs: int, params: ModelParams) -> None:
        self.graph_slots = 0  # > 0: packed molecular graphs, of which the descriptor slots are read
        if len(in_shape) == 2 and in_shape[1] > BASE_WIDTH:
            layout = GraphLayout.from_shape(in_shape)
            super().__init__((layout.n_descriptors,), num_outputs, params)
            self.in_shape, self.graph_slots = tuple(int(s) for s in in_shape), layout.slots
            return
        if len(in_shape) != 1:
            raise ConfigError(
                f"model 'ffn' takes feature vectors (or the vector features in a graph's descriptor slots), got inputs "
                f"of shape {tuple(in_shape)}; use vector featurisers (morgan_counts, rdkit2d, maccs) or the 'dmpnn' model"
            )
        super().__init__(in_shape, num_outputs, params)

    def vectors(self, x: torch.Tensor) -> torch.Tensor:
        """The feature vectors ``(N, F)``: ``x`` itself, or the descriptor slots of packed graphs ``(N, R, W)``
        (so that an FFN and a D-MPNN reading the same graphs can be averaged, :mod:`biodl.experiment.portfolio`)."""
        return x[:, :, BASE_WIDTH:].reshape(x.shape[0], -1) if self.graph_slots else x

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Penultimate-layer representation ``(N, hidden_sizes[-1])``."""
        return self.body(self.vectors(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Scores ``(N, num_outputs)`` for features ``(N, F)`` or packed graphs ``(N, R, W)``."""
        return self.head(self.body(self.vectors(x)))
