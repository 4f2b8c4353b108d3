"""The composition root: installs the checks that the config schema runs against the higher layers.

:mod:`biodl.config` sits at the bottom of the layers (everything may import it; it imports nothing above
:mod:`biodl.registry`). Validating a whole experiment, though, needs the registries of the layers above it:
data types, models (their defaults and parameters), metrics and tune search spaces. The schema calls them
by name through :data:`biodl.registry.HOOKS`; this module defines them and is imported by ``biodl/__init__.py``,
so the hooks are installed before any submodule runs. It imports the higher layers only inside the hooks,
which keeps ``import biodl`` fast.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from biodl.errors import ConfigError
from biodl.registry import HOOKS

if TYPE_CHECKING:
    from biodl.config import ExperimentConfig

__all__ = ["check_tune_space", "resolve_experiment"]


def resolve_experiment(cfg: ExperimentConfig) -> None:
    """Resolve the model (default for the data type and task, its recommended settings, its parameters) and check
    the data type, task, metrics and molecule featurizer of ``cfg`` in place (a ``ConfigError`` when they clash)."""
    from pydantic import ValidationError

    from biodl.config import AUTO, SEGMENTATION_BATCH_SIZE, ModelConfig, _format_errors
    from biodl.data import DATA_TYPES
    from biodl.errors import ConfigError
    from biodl.models import MODELS, default_model_name

    DATA_TYPES[cfg.data.type]
    if cfg.data.type == "image" and cfg.data.task is None and cfg.data.image.mask_dir:
        cfg.data.task = "segmentation"
    if cfg.data.type == "volume" and cfg.data.task is None and cfg.data.image.mask_dir:
        cfg.data.task = "segmentation"
    per_position = cfg.data.per_position
    data_type = DATA_TYPES[cfg.data.type]
    auto_tasks = data_type.auto_tasks
    default_auto = (
        cfg.model.name is None and bool(data_type.portfolio) and not cfg.model.params()  # a model section: its network
        and (auto_tasks is None or cfg.data.task in auto_tasks)
        and "tune" not in cfg.model_fields_set  # a search space tunes the data type's default network
    )  # fmt: skip
    if cfg.model.name == AUTO or (default_auto and not per_position and cfg.data.task != "reconstruction"):
        if cfg.train.select_by == "cv":
            raise ConfigError("train.select_by: cv needs a named model (model.name: auto chooses its network on validation)")
        _resolve_auto(cfg)
        return
    name = cfg.model.name or (
        "timelapse" if cfg.data.type == "volume" and cfg.data.volume.time_axis and cfg.data.task != "segmentation"
        else default_model_name(cfg.data.type, "positions" if per_position else cfg.data.task)
    )  # fmt: skip
    spec = MODELS[name]
    cfg._apply_model_defaults(name, spec.config_defaults)
    if per_position:
        _check_per_position(cfg, name, spec, MODELS)
    elif cfg.model.params().get("per_position"):
        raise ConfigError("model.per_position: per-position outputs need per-position labels (--per-position)")
    if cfg.data.task == "segmentation" and "batch_size" not in cfg.train.model_fields_set:
        cfg.train.batch_size = SEGMENTATION_BATCH_SIZE  # counts random crops, not images
    if cfg.data.type not in spec.data_types:
        hint = getattr(spec, "data_type_hints", {}).get(cfg.data.type)  # how to give this data as the model's type
        raise ConfigError(
            f"model '{name}' does not take data type '{cfg.data.type}' (it takes: {', '.join(spec.data_types)})"
            + (f"; {hint}" if hint else "")
        )
    tasks: tuple[str, ...] | None = getattr(spec, "tasks", None)
    if tasks and cfg.data.task is not None and cfg.data.task not in tasks:
        raise ConfigError(f"model '{name}' does not do {cfg.data.task} (it does: {', '.join(tasks)})")
    if cfg.train.pretrain != "none" and not callable(getattr(spec, "dense_blocks", None)):
        able = [n for n in MODELS.names() if callable(getattr(MODELS[n], "dense_blocks", None))]
        raise ConfigError(
            f"train.pretrain={cfg.train.pretrain}: model '{name}' has no dense layers to pre-train "
            f"(models that have: {', '.join(able)})"
        )
    if cfg.train.select_by == "cv" and cfg.train.ensemble_size > 1:
        raise ConfigError("train.select_by: cv trains one network per fold; train.ensemble_size must be 1")
    if cfg.train.ensemble_size > 1 and getattr(spec, "two_step", False):
        raise ConfigError(
            f"model '{name}' trains in two steps (label auto-encoder, then a network); train.ensemble_size must be 1"
        )
    try:
        params = spec.Params.model_validate(cfg.model.params())
    except ValidationError as exc:
        raise ValueError(_format_errors(exc, prefix="model", schema=spec.Params)) from None
    for k, variant in enumerate(cfg.train.ensemble_variants):  # every member's network must build
        try:
            spec.Params.model_validate({**params.model_dump(mode="json"), **variant})
        except ValidationError as exc:
            raise ValueError(_format_errors(exc, prefix=f"train.ensemble_variants[{k}]", schema=spec.Params)) from None
    object.__setattr__(cfg, "model", ModelConfig(name=name, **params.model_dump(mode="json")))
    if cfg.data.type == "molecule" and not cfg.data.molecule.featurizer:
        from biodl.data.molecule.featurizers import default_featurizer

        cfg.data.molecule.featurizer = default_featurizer(spec)
    if cfg.data.type == "cpg":  # CpG sites: contiguous held-out blocks; the neighbour-mean baseline
        cfg.data.task = cfg.data.task or "classification"
        if "split" not in cfg.data.model_fields_set or cfg.data.split == "auto":
            cfg.data.split = "group"
        if "baselines" not in cfg.evaluate.model_fields_set:
            cfg.evaluate.baselines = ["neighbour_mean"]
    if cfg.data.task == "reconstruction" and "baselines" not in cfg.evaluate.model_fields_set:
        cfg.evaluate.baselines = []  # per-feature baselines are pointless; the run reports a PCA reference
    from biodl.metrics.compute import check_task_metrics

    check_task_metrics(cfg.evaluate.metrics, cfg.data.task)
    if cfg.train.loss != "mse" and cfg.data.task not in (None, "regression"):
        raise ConfigError(f"train.loss={cfg.train.loss} is a regression loss; task {cfg.data.task!r} has its own")
    if cfg.evaluate.select_threshold is not None:
        if cfg.data.task != "segmentation":
            raise ConfigError(f"evaluate.select_threshold applies to binary segmentation, not {cfg.data.task or 'this task'}")
        check_task_metrics([cfg.evaluate.select_threshold], "segmentation")


def _resolve_auto(cfg: ExperimentConfig) -> None:
    """``model.name: auto``: the data type's portfolio (checked here by resolving every candidate's config)."""
    from biodl.config import AUTO, ModelConfig
    from biodl.data import DATA_TYPES

    if cfg.model.params():
        raise ConfigError(f"model.name: auto takes no model parameters (got {', '.join(sorted(cfg.model.params()))})")
    candidates = DATA_TYPES[cfg.data.type].portfolio
    if not candidates:
        raise ConfigError(f"model.name: auto: data type {cfg.data.type!r} has no portfolio of candidate models")
    if cfg.train.ensemble_size > 1:
        raise ConfigError("model.name: auto chooses ensembles itself; leave train.ensemble_size at 1")
    object.__setattr__(cfg, "model", ModelConfig(name=AUTO))
    cfg._apply_model_defaults(AUTO, getattr(DATA_TYPES[cfg.data.type], "auto_settings", {}))
    if cfg.data.type == "molecule" and not cfg.data.molecule.featurizer:
        from biodl.data.molecule.featurizers import default_featurizer
        from biodl.models import MODELS

        first = candidates[0]
        data = first.get("data")
        mol = data.get("molecule", {}) if isinstance(data, dict) else {}
        own = mol.get("featurizer") if isinstance(mol, dict) else None
        cfg.data.molecule.featurizer = list(own) if own else default_featurizer(MODELS[str(first["name"])])
    from biodl.metrics.compute import check_task_metrics

    check_task_metrics(cfg.evaluate.metrics, cfg.data.task)


def check_tune_space(cfg: ExperimentConfig) -> None:
    """Check ``tune.space`` of ``cfg`` (keys of the schema, values the config accepts)."""
    from biodl.tune.space import check_space

    check_space(cfg)


def _tune_samplers() -> Any:
    from biodl.tune.samplers import SAMPLERS

    return SAMPLERS


def _tune_pruners() -> Any:
    from biodl.tune.pruning import PRUNERS

    return PRUNERS


HOOKS.update(
    {
        "resolve_experiment": resolve_experiment,
        "check_tune_space": check_tune_space,
        "tune_samplers": _tune_samplers,
        "tune_pruners": _tune_pruners,
    }
)


def _check_per_position(cfg: ExperimentConfig, name: str, spec: Any, models: Any) -> None:
    """``data.per_position``: a sequence classification task and a model with per-position outputs.

    The model's ``positions_defaults`` (settings for per-position tasks) apply to keys the user left
    unset, and its ``per_position`` parameter is switched on.
    """
    if cfg.data.type != "sequence":
        raise ConfigError(f"data.per_position is for sequence data (--data-type sequence), not {cfg.data.type!r}")
    if cfg.data.task not in (None, "classification"):
        raise ConfigError(f"data.per_position labels each position with a class; task {cfg.data.task!r} is not supported")
    if "per_position" not in spec.Params.model_fields:
        able = [n for n in models.names() if "per_position" in models[n].Params.model_fields]
        raise ConfigError(f"model '{name}' has no per-position outputs (models that have: {', '.join(able)})")
    cfg.data.task = "classification"
    cfg._apply_model_defaults(name, getattr(spec, "positions_defaults", {}))
    params = cfg.model.params()
    if params.get("per_position") is False:
        raise ConfigError("data.per_position needs model.per_position true")
    cfg.model.__pydantic_extra__ = {**params, "per_position": True}
