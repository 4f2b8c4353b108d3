"""Multi-task feed-forward network for molecular fingerprints and descriptors (DeepTox-style).

The same layers as :class:`biodl.models.mlp.MLP`, with defaults chosen for sparse, wide molecular
inputs (Mayr et al., *Front. Environ. Sci.* 2016: wide ReLU layers, dropout, one output per
assay, missing labels masked). Defaults were tuned on validation splits of ESOL and Tox21
(``benchmarks/molecules.py``).
"""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field

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
        if len(in_shape) != 1:
            raise ConfigError(
                f"model 'ffn' takes feature vectors, got inputs of shape {tuple(in_shape)}; "
                "use vector featurisers (morgan_counts, rdkit2d, maccs) or the 'dmpnn' model for graphs"
            )
        super().__init__(in_shape, num_outputs, params)
