"""Experiment trackers (``train.logger``): MLflow and Weights & Biases through Lightning's loggers.

Every run writes ``logs/metrics.csv``; ``train.logger`` adds a tracker:

* ``tensorboard`` (default): ``logs/tensorboard/``;
* ``csv``: nothing more;
* ``mlflow``: one MLflow run per training in ``train.tracking_uri`` (default: the
  ``MLFLOW_TRACKING_URI`` environment variable, else a file store ``RUN/mlruns``), experiment
  ``train.tracking_experiment`` (default ``biodl``). Parameters are the resolved configuration,
  flattened (``train.lr``, ``model.hidden_sizes`` ...); metrics are logged per epoch, then the final
  metrics block (``final.test.accuracy`` ...); the model bundle, ``metrics.json``, ``config.yaml``
  and ``report.html`` are the run's artifacts. View with ``mlflow ui --backend-store-uri RUN/mlruns``.
* ``wandb``: a Weights & Biases run, offline by default (``RUN/wandb/``; ``wandb sync`` uploads
  it later); ``train.wandb_mode: online`` sends it as it runs. Needs ``pip install wandb``.

A tracking server that cannot be reached is a one-line error before training starts.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from biodl.config import ExperimentConfig, TrainConfig
from biodl.errors import ConfigError

__all__ = ["Tracker", "check_tracker", "flatten", "open_tracker", "tracking_uri"]

#: ``train.logger`` values that are experiment trackers (a run of their own, artifacts, final metrics).
TRACKERS = ("mlflow", "wandb")
#: Artifacts of a finished run, relative to the run directory (those that exist are logged).
ARTIFACTS = ("model", "metrics.json", "config.yaml", "report.html", "splits.json")


def flatten(tree: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"a": {"b": 1}}`` → ``{"a.b": 1}``; lists stay values."""
    out: dict[str, Any] = {}
    for key, value in tree.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            out.update(flatten(value, name + "."))
        else:
            out[name] = value
    return out


def tracking_uri(cfg: TrainConfig, run_dir: Path) -> str:
    """The MLflow tracking URI: ``train.tracking_uri``, ``MLFLOW_TRACKING_URI``, or ``RUN/mlruns``."""
    uri = cfg.tracking_uri or os.environ.get("MLFLOW_TRACKING_URI")
    if uri:
        return uri
    return (run_dir / "mlruns").resolve().as_uri()


def _is_file_store(uri: str) -> bool:
    return uri.startswith("file:") or "://" not in uri


def _mlflow_env(uri: str) -> None:
    # MLflow 3 keeps the file store for local use behind an opt-in; remote calls fail fast, not after minutes of retries
    if _is_file_store(uri):
        os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "10")


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0][:200]}" if text else type(exc).__name__


def check_tracker(cfg: TrainConfig, run_dir: Path) -> None:
    """Fail before any training when the chosen tracker is missing or its server cannot be reached."""
    if cfg.logger == "mlflow":
        try:
            from mlflow.tracking import MlflowClient
        except ModuleNotFoundError:
            raise ConfigError("train.logger=mlflow needs the mlflow package: pip install mlflow-skinny") from None
        uri = tracking_uri(cfg, run_dir)
        _mlflow_env(uri)
        if _is_file_store(uri):
            path = Path(uri.removeprefix("file://").removeprefix("file:"))
            try:
                path.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise ConfigError(
                    f"train.logger=mlflow: cannot create the tracking store {path}: {exc}; training not started"
                ) from None
            return
        try:
            MlflowClient(tracking_uri=uri).search_experiments(max_results=1)
        except Exception as exc:  # connection refused, DNS, HTTP errors: all mean "not usable"
            raise ConfigError(
                f"train.logger=mlflow: the tracking URI {uri} cannot be reached ({_first_line(exc)}); training not started"
            ) from None
    elif cfg.logger == "wandb":
        try:
            import wandb  # noqa: F401
        except ModuleNotFoundError:
            raise ConfigError("train.logger=wandb needs the wandb package: pip install wandb") from None


class Tracker:
    """One tracked run: the Lightning logger for the per-epoch metrics, then final metrics and artifacts."""

    def __init__(self, kind: str, logger: Any, run_dir: Path) -> None:
        self.kind, self.logger, self.run_dir = kind, logger, run_dir

    @property
    def run_id(self) -> str | None:
        """The tracker's id of this run."""
        return getattr(self.logger, "run_id", None) or getattr(self.logger, "version", None)

    def log_final(self, metrics: Mapping[str, Any]) -> None:
        """The numeric leaves of the final metrics block, as ``final.<part>.<metric>``."""
        flat = {
            f"final.{k}": float(v)
            for k, v in flatten(metrics).items()
            if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(float(v))
        }
        if not flat:
            return
        if self.kind == "mlflow":
            client, run_id = self.logger.experiment, self.logger.run_id
            import time

            from mlflow.entities import Metric

            now = int(time.time() * 1000)
            items = [Metric(k.replace("[", "_").replace("]", "_"), v, now, 0) for k, v in flat.items()]
            for start in range(0, len(items), 1000):
                client.log_batch(run_id, metrics=items[start : start + 1000])
        else:
            self.logger.experiment.summary.update(flat)

    def log_artifacts(self) -> list[str]:
        """Log the run's bundle, metrics, config and report; returns what was logged."""
        logged = []
        for name in ARTIFACTS:
            path = self.run_dir / name
            if not path.exists():
                continue
            if self.kind == "mlflow":
                client, run_id = self.logger.experiment, self.logger.run_id
                if path.is_dir():
                    client.log_artifacts(run_id, str(path), artifact_path=name)
                else:
                    client.log_artifact(run_id, str(path))
            else:
                self.logger.experiment.save(str(path / "*") if path.is_dir() else str(path), base_path=str(self.run_dir))
            logged.append(name)
        return logged

    def close(self, status: str = "FINISHED") -> None:
        """Mark the run finished (or ``FAILED``)."""
        if self.kind == "mlflow":
            self.logger.experiment.set_terminated(self.logger.run_id, status)
        else:
            self.logger.experiment.finish(exit_code=0 if status == "FINISHED" else 1)


def open_tracker(config: ExperimentConfig, run_dir: Path, *, run_name: str | None = None) -> Tracker | None:
    """Start the tracked run of ``config.train.logger`` (``None`` for ``csv``/``tensorboard``), params logged."""
    cfg = config.train
    if cfg.logger not in TRACKERS:
        return None
    check_tracker(cfg, run_dir)
    params = {k: (str(v) if v is not None else "null") for k, v in flatten(config.to_dict()).items()}
    experiment = cfg.tracking_experiment or "biodl"
    name = run_name or cfg.tracking_run_name or run_dir.name
    if cfg.logger == "mlflow":
        from lightning.pytorch.loggers import MLFlowLogger

        uri = tracking_uri(cfg, run_dir)
        try:
            logger = MLFlowLogger(experiment_name=experiment, run_name=name, tracking_uri=uri, log_model=False)
            logger.experiment.set_tag(logger.run_id, "biodl.run_dir", str(run_dir.resolve()))
        except Exception as exc:
            raise ConfigError(
                f"train.logger=mlflow: cannot start a run at {uri} ({_first_line(exc)}); training not started"
            ) from None
        logger.log_hyperparams(params)
        return Tracker("mlflow", logger, run_dir)
    from lightning.pytorch.loggers import WandbLogger

    mode = cfg.wandb_mode or os.environ.get("WANDB_MODE") or "offline"
    run_dir.mkdir(parents=True, exist_ok=True)
    online: dict[str, Any] = {} if mode == "offline" else {"mode": mode}  # offline: Lightning sets WANDB_MODE itself
    wlogger = WandbLogger(project=experiment, name=name, save_dir=str(run_dir), offline=mode == "offline", **online)
    wlogger.log_hyperparams(params)
    return Tracker("wandb", wlogger, run_dir)
