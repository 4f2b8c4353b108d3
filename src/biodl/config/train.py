"""The ``train`` section: optimisation, schedules, stopping and batch sizes (review Table 2 defaults)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator

from biodl.config.base import _Section

#: ``train.batch_size`` of segmentation runs when not set: random training crops per step (cellpose
#: and segmentation_models.pytorch examples use 8; whole-image batches of 128 gave one step per epoch).
SEGMENTATION_BATCH_SIZE = 8

#: Default learning rate per optimiser (review Table 2: 0.01 for SGD; Adam's usual 1e-3).
DEFAULT_LR: dict[str, float] = {
    "sgd": 0.01,
    "adam": 1e-3,
    "adamw": 1e-3,
    "rmsprop": 1e-3,
    "adagrad": 0.01,
    "adadelta": 1.0,
    "lbfgs": 1.0,
}


#: Default ``train.time_budget`` (CPU seconds for all ``model.name: auto`` candidates): a molecule set of
#: 1,000-8,000 molecules then finishes in under 10 minutes on 2 idle cores (docs/defaults.md).
DEFAULT_TIME_BUDGET = 300.0


class TrainConfig(_Section):
    """Optimisation (review Table 2 defaults)."""

    optimizer: Literal["adam", "adamw", "sgd", "rmsprop", "adagrad", "adadelta", "lbfgs"] = Field(
        default="adam",
        description="lbfgs: L-BFGS with a strong-Wolfe line search, up to 20 iterations per batch, for small "
        "tables with batch_size covering the training rows (weight_decay becomes an explicit L2 term)",
    )
    lr: float | None = Field(default=None, description="null = the optimiser's default")
    momentum: float = Field(default=0.9, ge=0.0, lt=1.0, description="SGD momentum")
    nesterov: bool = Field(default=False, description="SGD: Nesterov momentum")
    weight_decay: float = Field(default=0.0, ge=0.0, description="L2 penalty")
    l1: float = Field(default=0.0, ge=0.0, description="L1 penalty on weights")
    batch_size: int = Field(
        default=128,
        ge=1,
        description="samples per optimisation step: rows, sequences, molecules or images; for segmentation random "
        f"data.image.tile_size crops (default {SEGMENTATION_BATCH_SIZE} when not set; an epoch is crops_per_image crops "
        "of every training image × the augment_strategy copies)",
    )
    max_epochs: int = Field(default=100, ge=1)
    min_samples: int | None = Field(
        default=None,
        ge=1,
        description="size small training sets by samples seen: max_epochs is raised to ceil(min_samples / training "
        "rows) where that is more (the epoch count a schedule such as cosine counts to; early stopping still ends "
        "sooner); null: off. A model's recommended value is dropped when you set train.max_epochs yourself; not "
        "used by train.select_by: cv, which chooses the epoch count",
    )
    lr_schedule: Literal["none", "plateau", "exponential", "cosine"] = Field(
        default="plateau",
        description="plateau: x lr_factor when the validation loss stalls; exponential: x lr_gamma per epoch; cosine: "
        "cosine decay per epoch from lr to lr x lr_min_factor at max_epochs",
    )
    lr_factor: float = Field(default=0.5, gt=0.0, lt=1.0, description="plateau: factor applied to the learning rate")
    lr_patience: int = Field(default=3, ge=0, description="plateau: epochs without improvement before the decay")
    lr_gamma: float = Field(default=0.95, gt=0.0, le=1.0, description="exponential: learning-rate factor per epoch")
    lr_min_factor: float = Field(default=0.01, ge=0.0, le=1.0, description="cosine: final learning rate as a fraction of lr")
    early_stopping: bool = Field(default=True, description="stop when the monitored value stops improving; best weights restored")
    monitor: Literal["loss", "metric", "auto"] = Field(
        default="loss",
        description="what early stopping and the kept (best) weights follow on the validation rows: loss = the "
        "validation loss; metric = the task's headline metric (AUROC for binary tasks, accuracy for classes, RMSE for "
        "regression, ...); auto = the metric for two or more binary tasks (multi-task or multi-label), else the loss. "
        "The plateau learning-rate schedule follows the validation loss either way; without validation rows the training loss is "
        "followed. The molecule data type's default candidates use auto",
    )
    patience: int = Field(default=10, ge=1, description="early stopping: epochs without improvement")
    min_delta: float = Field(default=0.0, ge=0.0, description="early stopping: smallest improvement that counts")
    select_by: Literal["val", "cv", "auto"] = Field(
        default="val",
        description="how the epoch count (and evaluate.select_threshold's threshold) are chosen: val = early stopping on "
        "the validation rows; cv = select_folds-fold cross-validation over the training + validation rows (pooled "
        "out-of-fold predictions), then one model trained on all of them for the chosen epochs; auto = cv for at most "
        "64 such rows (images), else val",
    )
    select_folds: int = Field(default=4, ge=2, le=20, description="select_by cv: folds of the cross-validation")
    select_ensemble: bool = Field(
        default=False,
        description="select_by cv: the run's model averages the network trained on all rows with the selection folds' "
        "networks (each after its last epoch), as nnU-Net ensembles its cross-validation models; select_folds + 1 members",
    )
    gradient_clip: float | None = Field(default=None, gt=0.0, description="clip the gradient norm to this value (null: off)")
    precision: str = "32-true"
    accelerator: str = "auto"
    devices: int | str = "auto"
    strategy: str = "auto"
    num_nodes: int = Field(default=1, ge=1)
    seed: int = 0
    ensemble_size: int = Field(default=1, ge=1, le=100, description="independently trained members (seed, seed+1, ...), averaged")
    ensemble_variants: list[dict[str, Any]] = Field(
        default_factory=list,
        description="model parameters that differ between ensemble members, cycled: member k trains model.params "
        "updated with ensemble_variants[k % len] (e.g. [{}, {numeric_encoding: ple}]: plain and encoded members "
        "alternate; with ensemble_size 1 the one network is member 0); empty: every member the same network",
    )
    time_budget: float | None = Field(
        default=DEFAULT_TIME_BUDGET,
        gt=0,
        description="model.name: auto: seconds for training all candidates; a candidate still training when it is spent "
        "stops after its current epoch, later ones are skipped (both recorded; null: no limit)",
    )
    portfolio_blend: Literal["auto", "better", "always", "never"] = Field(
        default="auto",
        description="model.name: auto: whether the run's model is the best candidate or the average of candidates "
        "reading the same inputs (all, or the best two): auto = the data type's prior (molecule regression: the "
        "average; tables and molecule classification: the best single one) unless validation favours the other by "
        "more than one standard error of the paired difference (bootstrap over the validation rows); better = the "
        "average whenever it scores higher on validation; always; never",
    )
    refit: Literal["auto", "always", "never"] = Field(
        default="auto",
        description="once the run is measured, train its chosen model again (same candidates, members and settings) "
        "on the training + test rows, the validation rows kept for early stopping, and ship that as RUN/model; the "
        "measured model stays in RUN/model_heldout and is what metrics.json's test figures describe. auto = for "
        "data types and sizes where the rows matter more than the time (tables, expression matrices and "
        "molecules of at most 3,000 rows, in memory, with a test split biodl drew, not one the data named), always, never",
    )
    time_budget_clock: Literal["cpu", "wall"] = Field(
        default="cpu",
        description="what train.time_budget and train.max_time count: cpu = CPU seconds this process used per "
        "PyTorch thread (about elapsed time on an idle machine of any size; a busy machine does not cut the candidates short; at "
        "most 5x the budget in elapsed time), wall = elapsed seconds",
    )
    max_time: float | None = Field(
        default=None,
        gt=0,
        description="seconds of training (on the train.time_budget_clock clock) after which the run stops at the end "
        "of the current epoch (the best epoch's weights are kept, as with early stopping; null: no limit)",
    )
    loss: Literal["mse", "huber"] = Field(
        default="mse", description="regression loss on the standardised targets: mse, or huber (robust to heavy tails)"
    )
    huber_delta: float = Field(default=1.0, gt=0.0, description="huber: where the loss turns linear (standardised units)")
    label_smoothing: float = Field(
        default=0.0,
        ge=0.0,
        lt=1.0,
        description="classification (single-label and per-position): label smoothing of the training cross-entropy "
        "(0: none); the validation loss that early stopping monitors stays the plain cross-entropy",
    )
    pretrain: Literal["none", "autoencoder"] = Field(
        default="none",
        description="autoencoder: pre-train the dense layers layer by layer as denoising auto-encoders on the training inputs",
    )
    pretrain_epochs: int = Field(default=10, ge=1, le=10_000, description="pre-training epochs per layer")
    pretrain_noise: Literal["none", "gaussian", "masking"] = Field(
        default="masking", description="corruption of the pre-training inputs (denoising auto-encoders)"
    )
    pretrain_noise_level: float = Field(default=0.2, ge=0.0, description="masking: drop probability; gaussian: std")
    pretrain_lr: float = Field(default=1e-3, gt=0.0, description="Adam learning rate of the pre-training")
    num_workers: int = Field(default=0, ge=0)
    threads: int | None = Field(
        default=None, ge=1, description="CPU threads of PyTorch during the run (null: PyTorch's default, one per core)"
    )
    init_from: str | None = Field(
        default=None,
        description="fine-tune: start from the weights of a model (zoo:NAME[@VERSION], hf://OWNER/REPO, http(s)://..., "
        "a bundle or a run directory); tensors whose names and shapes match are loaded, a head whose labels differ is "
        "re-initialised, and the parent is recorded in the model card",
    )
    freeze_layers: int = Field(
        default=0, ge=0, description="with init_from: freeze the first N parameterised layers (0: fine-tune everything)"
    )
    checkpoint_every_n_steps: int | None = Field(
        default=None, ge=1, description="also checkpoint every N optimiser steps (null: at epoch ends only)"
    )
    keep_checkpoints: Literal["all", "last", "none"] = Field(
        default="last",
        description="what a run keeps of its Lightning checkpoints (checkpoints/*.ckpt with the optimiser state, of "
        "the run and of its ensemble members, model.name: auto candidates, refit networks and cross-validation folds) "
        "once it has finished and written model/ and metrics.json: all = last.ckpt and previous.ckpt (the fallback of "
        "--resume when last.ckpt is damaged); last = last.ckpt only, enough for --resume to train the finished run "
        "further; none = no checkpoint (model/ holds the weights; the run can no longer be continued with --resume). "
        "A failed or interrupted run keeps them all",
    )
    batches_per_step: int | None = Field(
        default=None,
        ge=1,
        description="mini-batches of in-memory data fetched and stepped through per Lightning step (null: up to 8, "
        "by input size; 1: one per step, e.g. for callbacks that act per batch). Training is the same either way",
    )
    progress_bar: bool = Field(default=True, description="show a progress bar while training")
    deterministic: bool = Field(default=False, description="deterministic algorithms only (slower, bit-reproducible)")
    logger: Literal["tensorboard", "csv", "mlflow", "wandb"] = Field(
        default="tensorboard",
        description="experiment tracker besides logs/metrics.csv (always written): tensorboard (logs/tensorboard), csv "
        "(nothing more), mlflow (params, per-epoch and final metrics, bundle and report as artifacts), wandb",
    )
    tracking_uri: str | None = Field(
        default=None, description="mlflow: tracking URI (null: MLFLOW_TRACKING_URI, else a file store RUN/mlruns)"
    )
    tracking_experiment: str | None = Field(default=None, description="mlflow experiment / wandb project (null: biodl)")
    tracking_run_name: str | None = Field(default=None, description="name of the tracked run (null: the run directory's name)")
    wandb_mode: Literal["offline", "online"] | None = Field(
        default=None, description="wandb: offline (RUN/wandb, sync later) or online (null: WANDB_MODE, else offline)"
    )

    @field_validator("lr")
    @classmethod
    def _lr(cls, v: float | None) -> float | None:
        if v is not None and v <= 0:
            raise ValueError(f"learning rate must be > 0, got {v}")
        return v

    def resolved_lr(self) -> float:
        """The learning rate actually used (``lr`` or the optimiser default)."""
        return self.lr if self.lr is not None else DEFAULT_LR[self.optimizer]
