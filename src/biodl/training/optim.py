"""Optimisers and learning-rate schedules from the config."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch

from biodl.config import TrainConfig

#: L-BFGS iterations (each with its line search) per training batch.
LBFGS_ITERATIONS = 20

#: The multi-tensor (``foreach``) update of the first-order optimisers: one kernel call per operation
#: for all parameters instead of one per parameter tensor. PyTorch uses it by default on CUDA only; on
#: CPU it gives the same parameters bit for bit (unit-tested) at a fraction of the Python dispatch, which
#: matters for small networks with many parameter tensors (``mil``'s five members: 30 tensors, ~10 ms
#: steps). See ``docs/mil.md`` (run time).
FOREACH = True


def make_optimizer(params: Iterable[torch.nn.Parameter], cfg: TrainConfig) -> torch.optim.Optimizer:
    """The configured optimiser (L2 via ``weight_decay``; for ``lbfgs`` the training step adds it to the loss,
    :func:`l2_penalty`)."""
    lr, wd = cfg.resolved_lr(), cfg.weight_decay
    name = cfg.optimizer
    if name == "lbfgs":
        return torch.optim.LBFGS(params, lr=lr, max_iter=LBFGS_ITERATIONS, line_search_fn="strong_wolfe")
    each = FOREACH
    if name == "sgd":
        nesterov = cfg.nesterov and cfg.momentum > 0
        return torch.optim.SGD(params, lr=lr, momentum=cfg.momentum, nesterov=nesterov, weight_decay=wd, foreach=each)
    if name == "adam":
        return torch.optim.Adam(params, lr=lr, weight_decay=wd, foreach=each)
    if name == "adamw":
        return torch.optim.AdamW(params, lr=lr, weight_decay=wd, foreach=each)
    if name == "rmsprop":
        return torch.optim.RMSprop(params, lr=lr, momentum=0.0, weight_decay=wd, foreach=each)
    if name == "adagrad":
        return torch.optim.Adagrad(params, lr=lr, weight_decay=wd, foreach=each)
    return torch.optim.Adadelta(params, lr=lr, weight_decay=wd, foreach=each)


def l2_penalty(params: Iterable[torch.nn.Parameter], weight_decay: float) -> torch.Tensor:
    """``weight_decay / 2 · Σ w²`` over the weight matrices and kernels in ``params`` (not biases or other vectors, as
    in logistic regression): the L2 term for L-BFGS, which has no ``weight_decay`` argument."""
    return 0.5 * weight_decay * sum((p * p).sum() for p in params if p.requires_grad and p.ndim > 1)  # type: ignore[return-value]


def make_scheduler(opt: torch.optim.Optimizer, cfg: TrainConfig) -> Any:
    """The epoch-wise learning-rate schedule of ``lr_schedule``, or ``None``.

    ``plateau`` halves the lr by default when the validation loss stalls; ``cosine`` decays it to
    ``lr x lr_min_factor`` at epoch ``max_epochs``.
    """
    if cfg.lr_schedule == "plateau":
        return torch.optim.lr_scheduler.ReduceLROnPlateau(opt, mode="min", factor=cfg.lr_factor, patience=cfg.lr_patience)
    if cfg.lr_schedule == "exponential":
        return torch.optim.lr_scheduler.ExponentialLR(opt, gamma=cfg.lr_gamma)
    if cfg.lr_schedule == "cosine":  # the last epoch trains at lr x lr_min_factor
        last = max(1, cfg.max_epochs - 1)
        return torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=last, eta_min=cfg.resolved_lr() * cfg.lr_min_factor)
    return None
