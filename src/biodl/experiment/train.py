"""Step 4: build the model (from the ``MODELS`` registry) and train it, single or as an ensemble."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from biodl.bundle import Bundle
from biodl.config import ExperimentConfig
from biodl.data.splits import Split
from biodl.errors import DataError
from biodl.experiment.reporting import write_parent_report, write_transfer_report
from biodl.experiment.results import Inputs, Prepared, Trained
from biodl.io_utils import atomic_write_text
from biodl.metrics import to_jsonable
from biodl.models import build_model, count_parameters
from biodl.models.numeric_encoding import fit_input_encoders
from biodl.training.fit import is_rank_zero, train_model


def train_network(
    cfg: ExperimentConfig,
    inputs: Inputs,
    split: Split,
    prepared: Prepared,
    out: Path,
    *,
    resume: bool = False,
    callbacks: Sequence[Any] = (),
    loggers: Sequence[Any] = (),
    stop: Callable[[], bool] | None = None,
) -> Trained:
    """Train ``cfg.model`` on the prepared training rows (checkpoints under ``out/checkpoints``).

    ``callbacks`` are extra Lightning callbacks. Two-step models (a label auto-encoder, then a network on
    the latent codes) fit their label encoder here first; ``train.pretrain`` pre-trains every network built.
    Once ``stop()`` is true an ensemble trains no further member (a time budget).
    """
    import torch

    modality, targets = inputs.modality, inputs.targets
    tr, va = split.train, split.val
    X, in_shape, y = prepared.X, prepared.in_shape, targets.y
    train_data, val_data = prepared.train_data, prepared.val_data
    torch.manual_seed(cfg.train.seed)  # the initial weights too depend on the seed only, not on earlier runs
    params = {**cfg.model.params(), **modality.model_params()}  # e.g. the named inputs of a multi-input model
    if cfg.train.ensemble_size == 1 and cfg.train.ensemble_variants:  # the only member is member 0
        params = {**params, **cfg.train.ensemble_variants[0]}
    model = build_model(str(cfg.model.name), in_shape, targets.num_outputs, params)
    modality.configure_model(model)
    if cfg.train.ensemble_size == 1:  # data-dependent input layers (piecewise-linear bin edges), training rows only;
        fit_input_encoders(model, X, tr)  # before init_from, so a parent's edges (with its weights) win; members: below
    if is_rank_zero():
        write_transfer_report(model, out)  # what pretrained weights were loaded / skipped, what is frozen
    if cfg.train.init_from:
        write_parent_report(model, cfg, targets, out)
    # what the training loop fits: the model on the targets, or (two-step models) a part of it on latent targets
    net, net_kind = model, targets.kind
    two_step = bool(getattr(model, "two_step", False))
    if two_step:
        if X is None:
            raise DataError(f"model '{cfg.model.name}' trains in two steps and needs in-memory data, not a streamed store")
        model.fit_label_encoder(y[tr], seed=cfg.train.seed)  # type: ignore[operator]
        latent = model.encode_labels(y)  # type: ignore[operator]
        train_data, val_data = (X[tr], latent[tr]), ((X[va], latent[va]) if len(va) else None)
        net, net_kind = model.network, "regression"  # type: ignore[assignment]
    scaler = prepared.scaler
    scale = (scaler.mean, scaler.std) if scaler is not None and net is model else None  # metrics on the original scale
    pretrain = Pretrainer(cfg, X, tr, out, skip=resume and (out / "checkpoints" / "last.ckpt").exists())
    if cfg.train.ensemble_size > 1:
        from biodl.training.ensemble import train_ensemble

        def configure(member: Any) -> None:
            modality.configure_model(member)
            fit_input_encoders(member, X, tr)
            pretrain(member)

        fit = train_ensemble(
            cfg, in_shape, targets.num_outputs, targets.kind, train_data, val_data, run_dir=out,
            augment=modality.train_augment(), resume=resume, configure=configure, target_scale=scale,
            params=params,
            extra_callbacks=list(callbacks), stop=stop,
        )  # fmt: skip
        model = fit.model  # type: ignore[assignment]
    else:
        pretrain(model)
        fit = train_model(
            net,
            net_kind,
            cfg.train,
            train_data,
            val_data,
            run_dir=out,
            augment=modality.train_augment(),
            resume=resume,
            extra_callbacks=list(callbacks),
            extra_loggers=list(loggers),
            target_scale=scale,
        )
        model.eval()
    pretrain.write()
    # an ensemble is rebuilt from its own spec (member architecture + size)
    spec = getattr(model, "spec", None)
    model_name, model_params = spec() if callable(spec) else (cfg.model.name, params)
    meta: dict[str, Any] = {
        "model": {
            "name": model_name,
            "params": model_params,
            "in_shape": list(in_shape),
            "num_outputs": targets.num_outputs,
            "trainable_parameters": count_parameters(model),
        },
        "task": cfg.data.task,
        "kind": targets.kind,
        "target_names": targets.names,
        "classes": targets.classes,
        "data": modality.cfg.model_dump(mode="json"),
        "columns": modality.columns(),
    }
    return Trained(
        bundle=Bundle(model, modality, meta, prepared.scaler),
        history=fit.history,
        best_epoch=fit.best_epoch,
        epochs=fit.epochs,
        is_global_zero=fit.is_global_zero,
        two_step=two_step,
        monitor=fit.monitor,
    )


class Pretrainer:
    """``train.pretrain``: pre-trains every network built for this run (ensemble members: seeds ``seed + k``)
    on the training rows, then writes ``pretrain.json`` (per-layer reconstruction losses)."""

    def __init__(self, cfg: ExperimentConfig, X: np.ndarray | None, tr: np.ndarray, out: Path, *, skip: bool) -> None:
        self.cfg, self.X, self.tr, self.out = cfg, X, tr, out
        self.active = cfg.train.pretrain != "none" and not skip  # a resumed run starts from its checkpoint
        self.reports: list[dict[str, Any]] = []

    def __call__(self, model: Any) -> None:
        if not self.active:
            return
        if self.X is None:
            raise DataError("train.pretrain needs in-memory training data, not a streamed store")
        from biodl.training.pretrain import pretrain_from_config

        seed = self.cfg.train.seed + len(self.reports)
        self.reports.append(pretrain_from_config(model, self.X[self.tr], self.cfg.train, seed=seed))

    def write(self) -> None:
        if self.reports and is_rank_zero():
            doc = self.reports[0] if len(self.reports) == 1 else {"members": self.reports}
            atomic_write_text(self.out / "pretrain.json", json.dumps(to_jsonable(doc), indent=1, allow_nan=False))
