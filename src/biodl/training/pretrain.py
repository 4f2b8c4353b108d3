"""Layer-wise pre-training of a network's dense layers as denoising auto-encoders (``train.pretrain``).

The review's recipe for networks that overfit small data sets (Angermueller et al., 2016; Bengio
et al., 2007; Vincent et al., 2010): before supervised training, hidden layer ``l`` is trained as
the encoder of a one-hidden-layer denoising auto-encoder of the outputs of layers ``1 … l-1`` on
the *training* inputs, then supervised training starts from those weights.

Each encoder is the network's own block (``Linear → (BatchNorm) → activation``; dropout is left
out), trained in place with a temporary linear decoder and the mean squared reconstruction error
of the clean input from a corrupted copy (``pretrain_noise``: masking or Gaussian). Models take
part by exposing ``dense_blocks()`` (:class:`biodl.models.mlp.MLP`, ``ffn``, the ``dnae``
two-step learner's network).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from biodl.config import TrainConfig
from biodl.errors import ConfigError
from biodl.models.autoencoder import Noise, corrupt

#: Rows per forward pass when computing the codes that feed the next layer.
_CHUNK = 4096


def supports_pretraining(model: nn.Module | type) -> bool:
    """Whether a model (instance or class) exposes ``dense_blocks()`` for layer-wise pre-training."""
    return callable(getattr(model, "dense_blocks", None))


def _codes(encoder: nn.Module, h: torch.Tensor) -> torch.Tensor:
    encoder.eval()
    with torch.no_grad():
        return torch.cat([encoder(h[i : i + _CHUNK]) for i in range(0, len(h), _CHUNK)]) if len(h) else h


def pretrain_dense_layers(
    model: nn.Module,
    X: np.ndarray,
    *,
    epochs: int = 10,
    noise: Noise = "masking",
    noise_level: float = 0.2,
    batch_size: int = 128,
    lr: float = 1e-3,
    seed: int = 0,
) -> dict[str, Any]:
    """Pre-train every dense block of ``model`` in place, first to last, on training inputs ``X``.

    Parameters
    ----------
    model
        A model with ``dense_blocks()`` (its hidden ``Linear → (BN) → activation → (Dropout)`` blocks).
    X
        ``(N, ...)`` preprocessed training inputs (flattened per row).
    epochs
        Epochs per layer.
    noise, noise_level
        Corruption of the auto-encoder inputs (``masking``: drop probability; ``gaussian``: std; ``none``).
    batch_size, lr
        Adam mini-batches.
    seed
        Seed of the decoder initialisation, the batch order and the corruption.

    Returns
    -------
    dict
        ``method``, ``epochs``, ``noise``, ``noise_level`` and per layer ``in``/``out`` widths and
        its per-epoch reconstruction ``loss``.
    """
    if not supports_pretraining(model):
        raise ConfigError(f"{type(model).__name__} has no dense layers to pre-train (train.pretrain needs mlp, ffn or dnae)")
    blocks: list[nn.Sequential] = model.dense_blocks()  # type: ignore[operator]
    if not blocks:
        raise ConfigError("train.pretrain: the network has no hidden layers to pre-train (model.hidden_sizes is empty)")
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    h = torch.as_tensor(np.asarray(X, dtype=np.float32)).reshape(len(X), -1)
    was_training = model.training
    layers: list[dict[str, Any]] = []
    for block in blocks:
        linear = next(m for m in block if isinstance(m, nn.Linear))
        if linear.in_features != h.shape[1]:
            raise ConfigError(f"train.pretrain: layer of {linear.in_features} inputs gets codes of width {h.shape[1]}")
        encoder = nn.Sequential(*[m for m in block if not isinstance(m, nn.Dropout)])  # the network's own modules
        decoder = nn.Linear(linear.out_features, linear.in_features)
        nn.init.xavier_uniform_(decoder.weight)
        nn.init.zeros_(decoder.bias)
        opt = torch.optim.Adam([*encoder.parameters(), *decoder.parameters()], lr=lr)
        losses: list[float] = []
        for _ in range(epochs):
            encoder.train()
            total, seen = 0.0, 0
            for idx in torch.randperm(len(h), generator=gen).split(batch_size):
                if len(idx) < 2:  # batch normalisation needs two rows
                    continue
                xb = h[idx]
                loss = ((decoder(encoder(corrupt(xb, noise, noise_level))) - xb) ** 2).mean()
                opt.zero_grad()
                loss.backward()
                opt.step()
                total += float(loss.item()) * len(idx)
                seen += len(idx)
            losses.append(total / max(seen, 1))
        layers.append({"in": linear.in_features, "out": linear.out_features, "loss": losses})
        h = _codes(encoder, h)
    model.train(was_training)
    return {"method": "autoencoder", "epochs": epochs, "noise": noise, "noise_level": noise_level, "layers": layers}


def pretrain_from_config(model: nn.Module, X_train: np.ndarray, cfg: TrainConfig, *, seed: int | None = None) -> dict[str, Any]:
    """:func:`pretrain_dense_layers` with the ``train.pretrain_*`` settings."""
    return pretrain_dense_layers(
        model,
        X_train,
        epochs=cfg.pretrain_epochs,
        noise=cfg.pretrain_noise,
        noise_level=cfg.pretrain_noise_level,
        batch_size=cfg.batch_size,
        lr=cfg.pretrain_lr,
        seed=cfg.seed if seed is None else seed,
    )
