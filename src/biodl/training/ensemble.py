"""Train ``train.ensemble_size`` members independently and wrap them in an :class:`~biodl.models.ensemble.Ensemble`."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from biodl.config import ExperimentConfig
from biodl.data.base import BatchAugment
from biodl.models import build_model
from biodl.models.ensemble import Ensemble
from biodl.training.fit import FitResult, train_model


def train_ensemble(
    cfg: ExperimentConfig,
    in_shape: tuple[int, ...],
    num_outputs: int,
    kind: str,
    train: Any,
    val: Any,
    *,
    run_dir: Path,
    augment: BatchAugment | None = None,
    resume: bool = False,
    configure: Callable[[nn.Module], None] | None = None,
    target_scale: tuple[np.ndarray, np.ndarray] | None = None,
    params: dict[str, Any] | None = None,
    extra_callbacks: list[Any] | None = None,
    stop: Callable[[], bool] | None = None,
) -> FitResult:
    """Fit ``cfg.train.ensemble_size`` copies of ``cfg.model`` with seeds ``seed, seed + 1, ...``.

    Member ``k`` keeps its logs and checkpoints in ``run_dir/member_k``. The returned history and
    ``best_epoch`` are member 0's (the others' are in their ``logs/``). ``configure`` gives each
    new member data-dependent settings (:meth:`biodl.data.base.Modality.configure_model`); ``params``
    are the members' model parameters (default ``cfg.model.params()``; the experiment adds the data's own,
    e.g. the named inputs of a multi-input model, :meth:`biodl.data.base.Modality.model_params`).
    ``extra_callbacks`` go to every member's training; once ``stop()`` is true no further member is
    trained (the ensemble then has fewer members, at least one). With ``train.ensemble_variants`` member
    ``k`` is built with ``params`` updated by ``ensemble_variants[k % len]``, and the ensemble is saved as a
    blend of the members' own specs.
    """
    name = str(cfg.model.name)
    params = dict(params) if params is not None else cfg.model.params()
    variants = cfg.train.ensemble_variants
    members, specs = [], []
    fits: list[FitResult] = []
    for k in range(cfg.train.ensemble_size):
        if k and stop is not None and stop():
            break
        torch.manual_seed(cfg.train.seed + k)
        member_params = {**params, **variants[k % len(variants)]} if variants else params
        member = build_model(name, in_shape, num_outputs, member_params)
        specs.append((name, member.params.model_dump(mode="json")))
        if configure is not None:
            configure(member)
        member_cfg = cfg.train.model_copy(update={"seed": cfg.train.seed + k, "ensemble_size": 1})
        if fits and fits[0].max_epochs is not None and cfg.train.min_samples is not None:
            # the same training rows: member 0's sized epoch limit, not sized (and said) again
            member_cfg = member_cfg.model_copy(update={"max_epochs": fits[0].max_epochs, "min_samples": None})
        mdir = run_dir / f"member_{k}"
        fits.append(
            train_model(
                member,
                kind,
                member_cfg,
                train,
                val,
                run_dir=mdir,
                augment=augment,
                resume=resume and (mdir / "checkpoints" / "last.ckpt").exists(),
                target_scale=target_scale,
                extra_callbacks=list(extra_callbacks or []),
            )
        )
        members.append(member)
    if variants:
        ensemble = Ensemble.blend(members, specs, kind).eval()
    else:
        ensemble = Ensemble.from_members(members, name, params, kind).eval()
    return FitResult(ensemble, dict(fits[0].history), fits[0].best_epoch, max(f.epochs for f in fits), monitor=fits[0].monitor)
