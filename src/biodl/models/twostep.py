"""The two-step deep non-negative auto-encoder learner as a registered model (``model.name: dnae``).

Kang et al. (2019), "Towards interpretable deep extreme multi-label learning"; the Python API is
:class:`biodl.multilabel.TwoStepLearner`. Trained by ``biodl train --task multilabel --model dnae``:

1. a deep non-negative auto-encoder (:func:`biodl.multilabel.fit_dnae`) is fitted on the label
   matrix of the *training* rows; its codes ``W_L = V H_1 ⋯ H_L`` are the latent labels;
2. a dense network (the :class:`biodl.models.mlp.MLP` layers, identity output) is trained to
   predict the latent labels with MSE, by the usual training loop (early stopping on the
   validation rows, learning-rate schedule, checkpoints, logs);
3. predictions are decoded by the frozen decoder ``H_L^T ⋯ H_1^T`` into label scores in ``[0, 1]``.

Both parts live in one module, so the bundle (``weights.safetensors``) holds the network and the
non-negative matrices ``H_l``, and ``biodl predict`` / ``evaluate`` / ``export`` / ``serve`` use it
like any multi-label model. ``forward`` returns the logits of the decoded scores (clipped to
``[ε, 1 − ε]``), so the multi-label head (sigmoid) gives the decoded scores back.

The run directory also gets ``label_hierarchy.csv`` (the top labels of every latent unit of every
layer, with its parent units), ``label_encoder.json`` (the DNAE's learning curve and weights) and
``figures/label_hierarchy.png``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, ClassVar, Literal

import numpy as np
import torch
from pydantic import Field
from torch import nn

from biodl.errors import ConfigError
from biodl.models.base import MODELS, BiodlModel, ModelParams
from biodl.models.init import InitName
from biodl.models.layers import Activation
from biodl.models.mlp import MLP, MLPParams
from biodl.multilabel.dnae import DeepNonNegativeAutoencoder, dnae_encode, fit_dnae_with, reconstruction_error

_EPS = 1e-6
#: The paper's layer widths (used when there are more labels than the first width).
PAPER_LAYERS = (64, 16)


def default_layers(n_labels: int) -> list[int]:
    """``model.layers: null``: the paper's ``[64, 16]`` for more than 64 labels, else ``[⌊6p/7⌋, ⌊4p/7⌋]``
    (yeast, 14 labels: ``[12, 8]``), so the last layer compresses the ``p`` labels."""
    if n_labels > PAPER_LAYERS[0]:
        return list(PAPER_LAYERS)
    return [max(1, (6 * n_labels) // 7), max(1, (4 * n_labels) // 7)]


class TwoStepDNAEParams(ModelParams):
    """Hyper-parameters of :class:`TwoStepDNAE` (step 1: ``layers`` … ``dnae_*``; step 2: the network)."""

    layers: list[int] | None = Field(
        default=None, description="DNAE code widths, the last below the number of labels (null: [64, 16] or [6p/7, 4p/7])"
    )
    nonneg: Literal["projection", "softplus"] = Field(default="projection", description="how H >= 0 is kept")
    label_weighting: Literal["none", "inverse_frequency"] = Field(default="none", description="tail-label re-weighting")
    weight_power: float = Field(default=0.5, ge=0.0, description="inverse_frequency: weight = frequency^-power")
    sparsity: float = Field(default=0.0, ge=0.0, description="L1 weight on the latent codes")
    dnae_epochs: int = Field(default=300, ge=1, description="DNAE epochs (per pre-training layer, then fine-tuning)")
    dnae_lr: float = Field(default=0.01, gt=0.0)
    dnae_batch_size: int = Field(default=256, ge=1)
    dnae_pretrain: bool = Field(default=True, description="greedy layer-wise initialisation of the DNAE")
    hierarchy_top: int = Field(default=5, ge=1, description="labels listed per latent unit in label_hierarchy.csv")
    hidden_sizes: list[int] = Field(default_factory=lambda: [256], description="step-2 network")
    activation: Activation = "relu"
    dropout: float = Field(default=0.3, ge=0.0, lt=1.0)
    input_dropout: float = Field(default=0.0, ge=0.0, lt=1.0)
    batch_norm: bool = False
    init: InitName = Field(
        default="torch_default", description="PyTorch's own initialisation, as the Python API's learner (TwoStepLearner)"
    )


@MODELS.register("dnae")
class TwoStepDNAE(BiodlModel):
    """Network predicting DNAE latent labels + the frozen non-negative decoder; output ``(N, labels)`` logits."""

    Params: ClassVar[type[ModelParams]] = TwoStepDNAEParams
    data_types: ClassVar[tuple[str, ...]] = ("tabular", "sequence", "molecule")
    tasks: ClassVar[tuple[str, ...]] = ("multilabel",)
    #: Trained in two steps by the experiment (:meth:`fit_label_encoder`, then :attr:`network` on :meth:`encode_labels`).
    two_step: ClassVar[bool] = True

    def __init__(self, in_shape: tuple[int, ...], num_outputs: int, params: ModelParams) -> None:
        super().__init__(in_shape, num_outputs, params)
        assert isinstance(params, TwoStepDNAEParams)
        layers = list(params.layers) if params.layers else default_layers(num_outputs)
        if any(k < 1 for k in layers):
            raise ConfigError(f"model.layers must be positive widths, got {layers}")
        if num_outputs < 2 or layers[-1] >= num_outputs:
            raise ConfigError(
                f"model.layers: the last DNAE layer ({layers[-1]}) must be smaller than the number of labels "
                f"({num_outputs}), e.g. model.layers={default_layers(num_outputs)}"
            )
        self.layers = layers
        self.dnae = DeepNonNegativeAutoencoder(num_outputs, layers, params.nonneg)
        mlp = MLPParams(
            hidden_sizes=params.hidden_sizes,
            activation=params.activation,
            dropout=params.dropout,
            input_dropout=params.input_dropout,
            batch_norm=params.batch_norm,
            init=params.init,
        )
        self.network = MLP(in_shape, layers[-1], mlp)
        self.label_encoder_history: dict[str, list[float]] = {}

    @property
    def latent_size(self) -> int:
        """Width of the latent labels ``k_L``."""
        return self.layers[-1]

    # ------------------------------------------------------------------ step 1
    def fit_label_encoder(self, Y_train: np.ndarray, *, seed: int = 0) -> dict[str, list[float]]:
        """Fit the DNAE on the training label matrix (complete 0/1 labels); returns its learning curves."""
        p = self.params
        assert isinstance(p, TwoStepDNAEParams)
        fit = fit_dnae_with(p, Y_train, self.layers, seed=seed, batch_size=p.dnae_batch_size, pretrain=p.dnae_pretrain)
        self.dnae.load_state_dict(fit.model.state_dict())
        for h in self.dnae.parameters():
            h.requires_grad_(False)  # frozen in step 2
        self.label_encoder_history = fit.history
        return fit.history

    def encode_labels(self, Y: np.ndarray) -> np.ndarray:
        """Latent labels ``W_L`` ``(N, k_L)`` of complete label rows: the step-2 targets."""
        return dnae_encode(self.dnae, Y)

    # ------------------------------------------------------------------ prediction
    def dense_blocks(self) -> list[nn.Sequential]:
        """The step-2 network's hidden blocks (``train.pretrain``)."""
        return self.network.dense_blocks()

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Predicted latent labels ``(N, k_L)`` (``biodl embed`` writes these)."""
        return self.network(x)

    def label_scores(self, x: torch.Tensor) -> torch.Tensor:
        """Decoded label scores ``(N, labels)`` in ``[0, 1]``."""
        return self.dnae.decode(self.network(x)).clamp(0.0, 1.0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits of the decoded label scores (the sigmoid head returns the scores, clipped to ``[ε, 1 − ε]``)."""
        p = self.dnae.decode(self.network(x)).clamp(_EPS, 1.0 - _EPS)
        return torch.log(p) - torch.log(1.0 - p)

    # ------------------------------------------------------------------ run outputs
    def label_encoder_report(self, Y: np.ndarray, parts: dict[str, np.ndarray]) -> dict[str, Any]:
        """``metrics.json`` block: layers, smallest weight, and the DNAE's relative reconstruction error per split."""
        from biodl.multilabel.dnae import dnae_reconstruct

        recon: dict[str, float | None] = {}
        for part, idx in parts.items():
            rows = Y[idx]
            rows = rows[~np.isnan(rows).any(axis=1)] if len(rows) else rows
            recon[part] = reconstruction_error(rows, dnae_reconstruct(self.dnae, rows))["relative"] if len(rows) else None
        return {
            "model": "dnae",
            "layers": self.layers,
            "min_weight": float(min(h.min() for h in self.dnae.weights())),
            "reconstruction_relative_error": recon,
        }

    def write_run_artifacts(self, out: Path, target_names: list[str], *, plots: bool = True) -> list[Path]:
        """``label_hierarchy.csv``, ``label_encoder.json`` and (``plots``) ``figures/label_hierarchy.png`` under ``out``."""
        from biodl.io_utils import atomic_write_text
        from biodl.multilabel.hierarchy import hierarchy_table, plot_hierarchy

        p = self.params
        assert isinstance(p, TwoStepDNAEParams)
        out.mkdir(parents=True, exist_ok=True)
        table = hierarchy_table(self.dnae, target_names, top=p.hierarchy_top)
        written = [out / "label_hierarchy.csv"]
        table.to_csv(written[0], index=False)
        doc = {
            "layers": self.layers,
            "nonneg": p.nonneg,
            "label_names": list(target_names),
            "history": self.label_encoder_history,
        }
        atomic_write_text(out / "label_encoder.json", json.dumps(doc, indent=1))
        written.append(out / "label_encoder.json")
        if plots:
            written.append(plot_hierarchy(self.dnae, target_names, out / "figures" / "label_hierarchy.png"))
        return written
