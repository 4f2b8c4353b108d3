"""Run an Optuna study over an experiment config: storage, objective, workers.

>>> from biodl.config import ExperimentConfig
>>> from biodl.tune.study import run_study
>>> result = run_study(ExperimentConfig.from_yaml("exp.yaml"), "runs/tune")
>>> result.best_config          # runs/tune/best_config.yaml

Storage
    ``tune.storage`` null means ``OUTPUT_DIR/study.db`` (SQLite). Any SQLAlchemy URL
    (``sqlite:///FILE``, ``postgresql://...``, ``mysql+pymysql://...``) opens an RDB storage;
    ``journal:///FILE.log`` or a path ending in ``.log`` opens an Optuna journal file (for
    shared file systems without a database); a path ending in ``.db``/``.sqlite`` is a SQLite
    file. Every worker started with the same storage and study name joins the same study.
Killed workers
    RDB storages record a heartbeat of each running trial every ``tune.heartbeat_interval``
    seconds; a worker that starts (and every new trial) marks RUNNING trials silent for longer
    than ``tune.grace_period`` as FAIL. Journal files have no heartbeat: a killed worker's trial
    stays RUNNING there (it is never counted as complete nor run twice); list it with
    ``trials.csv`` and mark it failed with Optuna's API if needed.
Seeds and splits
    Trial ``n`` trains with ``train.seed + n`` and a fixed ``data.split_seed`` (the base
    config's split seed), so every trial is evaluated on the same validation rows.
"""

from __future__ import annotations

import math
import os
import time
import warnings
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import optuna
from optuna.samplers import BaseSampler
from optuna.storages import BaseStorage
from optuna.trial import FrozenTrial, TrialState

from biodl.config import ExperimentConfig, TrainConfig
from biodl.errors import BiodlError, ConfigError
from biodl.tune.pruning import PrunerContext, PruningCallback, make_pruner, pruned_in_storage
from biodl.tune.results import StudyTarget, TuneResult
from biodl.tune.samplers import LineSampler, SamplerContext, make_sampler
from biodl.tune.space import SearchSpace, check_space_values

__all__ = [
    "Objective",
    "StudyTarget",
    "TuneResult",
    "open_storage",
    "open_study",
    "resolve_target",
    "run_study",
    "storage_label",
    "trial_dir",
]

#: Study user attributes that every worker of one study must agree on.
_ATTR_METRIC = "biodl_metric"
_ATTR_SPACE = "biodl_space"
#: Exceptions that fail one trial without stopping the worker.
TRIAL_ERRORS: tuple[type[Exception], ...] = (BiodlError, RuntimeError, ValueError, FloatingPointError)


# ------------------------------------------------------------------------------------ storage
def storage_label(spec: str | None, output_dir: Path) -> str:
    """The storage as shown to users (passwords hidden)."""
    if spec is None:
        return str(output_dir / "study.db")
    if "://" in spec and not spec.startswith("journal://"):
        try:
            from sqlalchemy.engine import make_url

            return make_url(spec).render_as_string(hide_password=True)
        except Exception:  # a malformed URL is shown as given
            return spec
    return spec


def _first_line(exc: BaseException) -> str:
    orig = getattr(exc, "orig", None)
    text = str(orig if orig is not None else exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _journal(path: str) -> BaseStorage:
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    p = Path(path).expanduser()
    if not p.parent.is_dir():
        raise ConfigError(f"cannot open study journal {p}: directory {p.parent} does not exist")
    try:
        return JournalStorage(JournalFileBackend(str(p)))
    except OSError as exc:
        raise ConfigError(f"cannot open study journal {p}: {exc.strerror or exc}") from None


def _rdb(url: str, label: str, heartbeat_interval: int, grace_period: int | None) -> BaseStorage:
    from optuna.storages import RDBStorage
    from sqlalchemy.exc import IntegrityError, OperationalError, SQLAlchemyError

    sqlite = url.startswith("sqlite")
    kwargs: dict[str, Any] = {"connect_args": {"timeout": 60}} if sqlite else {"pool_pre_ping": True}
    attempts = 6 if sqlite else 1
    for attempt in range(attempts):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                return RDBStorage(
                    url,
                    engine_kwargs=kwargs,
                    heartbeat_interval=heartbeat_interval,
                    grace_period=grace_period,
                    heartbeat_stale_trial_callback=_announce_stale,
                )
        except (OperationalError, IntegrityError) as exc:  # two workers creating a new SQLite file at once
            if attempt + 1 < attempts and any(s in str(exc) for s in ("already exists", "locked", "UNIQUE constraint")):
                time.sleep(0.5 * (attempt + 1))
                continue
            raise ConfigError(f"cannot open study storage {label}: {_first_line(exc)}") from None
        except (SQLAlchemyError, ImportError, ValueError, OSError) as exc:
            hint = " (install its database driver)" if isinstance(exc, ImportError) else ""
            raise ConfigError(f"cannot open study storage {label}: {_first_line(exc)}{hint}") from None
    raise AssertionError("unreachable")  # pragma: no cover


def open_storage(
    spec: str | None, output_dir: Path, *, heartbeat_interval: int = 30, grace_period: int | None = None
) -> BaseStorage:
    """Open the study storage named by ``spec`` (see the module docstring).

    Raises
    ------
    ConfigError
        One line naming the storage (password hidden) and the reason it cannot be opened.
    """
    label = storage_label(spec, output_dir)
    if spec is None:
        output_dir.mkdir(parents=True, exist_ok=True)
        return _rdb(f"sqlite:///{(output_dir / 'study.db').resolve()}", label, heartbeat_interval, grace_period)
    if spec.startswith("journal://"):
        return _journal(spec.removeprefix("journal://"))
    if "://" in spec:
        return _rdb(spec, label, heartbeat_interval, grace_period)
    if spec.endswith(".log"):
        return _journal(spec)
    if spec.endswith((".db", ".sqlite", ".sqlite3")):
        path = Path(spec).expanduser().resolve()
        if not path.parent.is_dir():
            raise ConfigError(f"cannot open study storage {spec}: directory {path.parent} does not exist")
        return _rdb(f"sqlite:///{path}", label, heartbeat_interval, grace_period)
    raise ConfigError(
        f"tune.storage: cannot interpret {spec!r}; give an RDB URL (sqlite:///FILE.db, postgresql://...), "
        "journal:///FILE.log, or a path ending in .db or .log"
    )


def _announce_stale(study: optuna.Study, trial: FrozenTrial) -> None:
    print(f"trial {trial.number}: its worker stopped sending heartbeats; marked FAIL")


# ------------------------------------------------------------------------------------ target
def _targets_kind(cfg: ExperimentConfig) -> str:
    """Load the data once (also catching data errors before any trial) and return the task kind."""
    from biodl.data import DATA_TYPES

    paths = cfg.data.path
    if not paths:
        raise ConfigError("data.path is empty: give --data-path")
    data: Any = None
    if len(paths) == 1:
        try:
            from biodl.data.store import is_store, open_store
        except ImportError:  # pragma: no cover - stores arrive with the HDF5 work
            pass
        else:
            if is_store(paths[0]):
                data, _ = open_store(paths[0])
    if data is None:
        data = DATA_TYPES[cfg.data.type](cfg.data).load(paths)
    if data.targets is None:
        raise ConfigError("the data have no targets to tune on (give --target-columns)")
    return str(data.targets.kind)


def resolve_target(cfg: ExperimentConfig, kind: str | None = None) -> StudyTarget:
    """Metric, direction and pruning monitor of ``cfg.tune`` for a task of ``kind``.

    ``kind`` (``binary``, ``multiclass``, ``regression`` ...) is read from the data when omitted.
    """
    from biodl.metrics import METRICS, main_metric

    tune = cfg.tune
    if kind is None:
        kind = _targets_kind(cfg)
    main, main_higher = main_metric(kind)
    metric = tune.metric or main
    if metric == "loss":
        higher = False
        monitor: str | None = "val_loss"
        if cfg.data.cv:
            raise ConfigError("tune.metric: 'loss' is not available with cross-validation; choose a metric")
    else:
        spec = METRICS[metric]
        if kind not in spec.kinds:
            raise ConfigError(f"tune.metric: {metric!r} cannot score {kind} tasks (it scores: {', '.join(spec.kinds)})")
        higher = main_higher if metric == main else bool(spec.higher_is_better)
        monitor = f"val_{metric}" if metric == main else None
    if cfg.data.cv:
        monitor = None  # each fold restarts the epochs; prune single train/val runs only
    direction = tune.direction or ("maximize" if higher else "minimize")
    return StudyTarget(metric, direction, monitor)


# ------------------------------------------------------------------------------------ study
def open_study(
    cfg: ExperimentConfig,
    output_dir: Path,
    space: SearchSpace,
    target: StudyTarget,
    sampler: BaseSampler,
) -> optuna.Study:
    """Create the study, or join it when it exists; fail stale trials of killed workers.

    Raises
    ------
    ConfigError
        When the storage cannot be opened, or the existing study optimises another metric,
        direction or search space.
    """
    tune = cfg.tune
    storage = open_storage(tune.storage, output_dir, heartbeat_interval=tune.heartbeat_interval, grace_period=tune.grace_period)
    pruner = make_pruner(tune.pruner, PrunerContext(tune, cfg.train.max_epochs))
    label = storage_label(tune.storage, output_dir)
    try:
        study = optuna.create_study(
            storage=storage,
            sampler=sampler,
            pruner=pruner,
            study_name=tune.study_name,
            direction=target.direction,  # type: ignore[arg-type]
            load_if_exists=True,
        )
    except Exception as exc:  # database errors become one line
        raise ConfigError(f"cannot open study {tune.study_name!r} in {label}: {_first_line(exc)}") from None
    if study.direction.name.lower() != target.direction:
        raise ConfigError(
            f"study {tune.study_name!r} in {label} was created to {study.direction.name.lower()}; "
            f"this worker would {target.direction} (use another --study-name)"
        )
    _agree(study, _ATTR_METRIC, target.metric, f"study {tune.study_name!r} in {label} optimises", "--study-name")
    _agree(study, _ATTR_SPACE, space.to_dict(), f"study {tune.study_name!r} in {label} searches another space:", "--search-space")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        optuna.storages.fail_stale_trials(study)
    return study


def _agree(study: optuna.Study, key: str, value: Any, what: str, flag: str) -> None:
    current = study.user_attrs.get(key)
    if current is None:
        study.set_user_attr(key, value)
    elif current != value:
        raise ConfigError(f"{what} {current!r}, not {value!r} (give the same {flag} to every worker, or another --study-name)")


def trial_dir(output_dir: Path, number: int) -> Path:
    """``OUTPUT_DIR/trials/trial_NNNN``."""
    return output_dir / "trials" / f"trial_{number:04d}"


class Objective:
    """Train one trial: sample the space, train into its directory, return the validation metric.

    Parameters
    ----------
    base
        The base config as plain data, without its ``tune`` section.
    space
        The search space.
    target
        Metric, direction and pruning monitor.
    output_dir
        The tune directory (trials go to ``trials/trial_NNNN``).
    sampler
        The study's sampler (a line search records the key each trial varies).
    keep_checkpoints_set
        Whether the experiment set ``train.keep_checkpoints`` itself; if not, a finished trial keeps no checkpoint.
    """

    def __init__(
        self,
        base: Mapping[str, Any],
        space: SearchSpace,
        target: StudyTarget,
        output_dir: Path,
        sampler: BaseSampler | None = None,
        *,
        keep_checkpoints_set: bool = False,
    ) -> None:
        self.base = dict(base)
        #: whether the experiment chose ``train.keep_checkpoints`` (else a finished trial keeps none)
        self.keep_checkpoints_set = keep_checkpoints_set
        self.space = space
        self.target = target
        self.output_dir = output_dir
        self.sampler = sampler
        self.seed = int(base["train"]["seed"])
        split_seed = base["data"].get("split_seed")
        self.split_seed = int(split_seed) if split_seed is not None else self.seed

    def config(self, values: Mapping[str, Any], seed: int, *, for_trial: bool = True) -> ExperimentConfig:
        """The config of a trial with sampled ``values`` (Optuna representation) and ``seed``.

        ``for_trial`` switches off what a trial does not need (progress bar, baselines, ``train.refit``, its
        finished checkpoints unless ``train.keep_checkpoints`` was set); the best config keeps the base config's
        settings.
        """
        raw = self.space.apply(self.base, values)
        if "train.seed" not in self.space.keys:
            raw["train"]["seed"] = seed
        if "data.split_seed" not in self.space.keys:
            raw["data"]["split_seed"] = self.split_seed
        if for_trial:
            raw["train"]["progress_bar"] = False
            raw["evaluate"]["baselines"] = []
            raw["train"]["refit"] = "never"  # a trial is a measurement: its model is not trained again
            if not self.keep_checkpoints_set:  # a finished trial is not trained further: its model/ is what stays
                raw["train"]["keep_checkpoints"] = "none"
        return ExperimentConfig.from_dict(raw, source="tune trial")

    def __call__(self, trial: optuna.Trial) -> float:
        from biodl.experiment import Experiment

        values = self.space.suggest(trial)
        seed = self.seed + trial.number
        out = trial_dir(self.output_dir, trial.number)
        trial.set_user_attr("seed", seed)
        trial.set_user_attr("dir", str(out.relative_to(self.output_dir)))
        if isinstance(self.sampler, LineSampler):
            trial.set_user_attr("varied", self.sampler.point(trial.number)[0])
        callbacks = [PruningCallback(trial, self.target.monitor)] if self.target.monitor else []
        try:
            cfg = self.config(values, seed)
            if cfg.train.logger in ("mlflow", "wandb"):
                cfg.train.tracking_run_name = out.name  # one tracked run per trial, in the study's experiment
            result = Experiment(cfg).fit(out, callbacks=callbacks)
        except TRIAL_ERRORS as exc:
            trial.set_user_attr("error", f"{type(exc).__name__}: {exc}"[:500])
            raise
        training = result.metrics.get("training") or {}
        if "epochs" in training:
            trial.set_user_attr("epochs", int(training["epochs"]))
        for cb in callbacks:
            if cb.pruned is not None or (cb.reported == 0 and pruned_in_storage(trial)):
                raise optuna.TrialPruned(f"pruned after epoch {cb.pruned}")
        return objective_value(result.metrics, result.history, self.target.metric)


def objective_value(metrics: Mapping[str, Any], history: Mapping[str, list[float]], metric: str) -> float:
    """The study value of a run: ``metrics["val"][metric]`` or the lowest ``val_loss``; NaN if missing."""
    if metric == "loss":
        losses = [v for v in history.get("val_loss", []) if v is not None and math.isfinite(v)]
        return min(losses) if losses else math.nan
    value = (metrics.get("val") or {}).get(metric)
    return float(value) if isinstance(value, (int, float)) else math.nan


# ------------------------------------------------------------------------------------ running
def _check_launch(cfg: ExperimentConfig) -> None:
    """Refuse set-ups in which every DDP rank would run its own study loop."""
    rank = os.environ.get("RANK") or os.environ.get("LOCAL_RANK") or os.environ.get("SLURM_PROCID")
    if rank not in (None, "", "0"):
        raise ConfigError(
            "biodl tune runs one study worker per process: start workers (several `biodl tune` processes), "
            "not ranks (torchrun/srun); multi-device trials use --strategy ddp_spawn"
        )
    strategy = str(cfg.train.strategy)
    spawns = any(s in strategy for s in ("spawn", "fork", "notebook"))
    several = str(cfg.train.devices) != "1" or cfg.train.num_nodes > 1
    if strategy.startswith("ddp") and not spawns and several:
        raise ConfigError(
            f"train.strategy {strategy!r} re-runs the command line in every rank, which under biodl tune would start "
            "one study loop per rank; use --strategy ddp_spawn (or ddp_fork) for multi-device trials"
        )


def _announce(space: SearchSpace, metric: str) -> Callable[[optuna.Study, FrozenTrial], None]:
    def callback(study: optuna.Study, trial: FrozenTrial) -> None:
        params = ", ".join(f"{k}={_short(v)}" for k, v in space.decoded(trial.params).items())
        duration = f" in {trial.duration.total_seconds():.1f} s" if trial.duration is not None else ""
        value = ""
        if trial.state == TrialState.COMPLETE and trial.value is not None:
            value = f" val {metric}={trial.value:.4g}"
        elif trial.state == TrialState.PRUNED:
            value = f" after {len(trial.intermediate_values)} epoch(s)"
        why = f" ({trial.user_attrs['error']})" if trial.state == TrialState.FAIL and "error" in trial.user_attrs else ""
        print(f"trial {trial.number}: {trial.state.name}{value}{duration} [{params}]{why}", flush=True)

    return callback


def _short(v: Any) -> str:
    return f"{v:.4g}" if isinstance(v, float) else str(v)


def run_study(cfg: ExperimentConfig, output_dir: str | Path, *, kind: str | None = None) -> TuneResult:
    """Run ``cfg.tune.n_trials`` trials of the study in this process and write the outputs.

    Parameters
    ----------
    cfg
        The base experiment with its ``tune`` section (space, sampler, pruner, storage ...).
    output_dir
        The tune directory: ``study.db`` (default storage), ``trials/trial_NNNN/``,
        ``trials.csv``, ``best_config.yaml``, ``figures/``, ``tune_report.html``.
    kind
        The task kind, if known (otherwise the data are loaded once to find it).

    Returns
    -------
    TuneResult
        The study and the written files (after this worker's trials; other workers may add more).
    """
    from biodl.tune.report import write_outputs

    out = Path(output_dir)
    tune = cfg.tune
    _check_launch(cfg)
    space = SearchSpace.from_config(cfg)
    base = cfg.to_dict()
    base.pop("tune", None)
    if cfg.train.logger == "mlflow":  # every trial a run of one MLflow experiment, in one store
        from biodl.training.tracking import check_tracker, tracking_uri

        base["train"]["tracking_uri"] = tracking_uri(cfg.train, out)
        base["train"]["tracking_experiment"] = cfg.train.tracking_experiment or tune.study_name
        check_tracker(TrainConfig.model_validate(base["train"]), out)
    check_space_values(base, space)
    if cfg.data.split_sizes[1] <= 0 and not cfg.data.cv:
        raise ConfigError("biodl tune scores trials on the validation split: data.split_sizes needs a validation fraction > 0")
    target = resolve_target(cfg, kind)
    seed = tune.seed if tune.seed is not None else cfg.train.seed
    sampler = make_sampler(tune.sampler, SamplerContext(space, base, seed, tune.line_points))
    out.mkdir(parents=True, exist_ok=True)
    study = open_study(cfg, out, space, target, sampler)
    objective = Objective(
        base, space, target, out, sampler, keep_checkpoints_set="keep_checkpoints" in cfg.train.model_fields_set
    )
    print(
        f"study {tune.study_name!r} in {storage_label(tune.storage, out)}: {tune.n_trials} trial(s) of "
        f"{tune.sampler} search over {', '.join(space.keys)}; {target.direction} val {target.metric}"
    )
    if tune.n_trials > 0:
        study.optimize(
            objective,
            n_trials=tune.n_trials,
            timeout=tune.timeout,
            catch=TRIAL_ERRORS,
            callbacks=[_announce(space, target.metric)],
            gc_after_trial=True,
        )
    return write_outputs(
        study,
        out,
        space=space,
        target=target,
        best_config=lambda t: objective.config(t.params, int(t.user_attrs.get("seed", objective.seed)), for_trial=False),
        storage=storage_label(tune.storage, out),
        sampler=tune.sampler,
        pruner=tune.pruner,
        report=cfg.evaluate.report,
        plots=cfg.evaluate.plots,
    )
