"""The whole experiment: the ``data``, ``model``, ``train``, ``evaluate``, ``tune`` and ``card`` sections."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, Field, ValidationError, model_validator

from biodl.config.base import _Section
from biodl.config.data import DataConfig
from biodl.config.evaluate import CardConfig, EvaluateConfig
from biodl.config.loading import apply_overrides, load_yaml
from biodl.config.messages import _format_errors
from biodl.config.model import ModelConfig
from biodl.config.train import TrainConfig
from biodl.config_tune import TuneConfig
from biodl.errors import ConfigError
from biodl.registry import hook


class ExperimentConfig(_Section):
    """A whole experiment."""

    data: DataConfig = Field(default_factory=DataConfig)
    model: ModelConfig = Field(default_factory=ModelConfig)
    train: TrainConfig = Field(default_factory=TrainConfig)
    evaluate: EvaluateConfig = Field(default_factory=EvaluateConfig)
    tune: TuneConfig = Field(default_factory=TuneConfig)
    card: CardConfig = Field(default_factory=CardConfig, description="model card texts (model/README.md)")

    @model_validator(mode="after")
    def _resolve_model(self) -> ExperimentConfig:
        # model defaults, data type / task / metric checks: biodl.wiring.resolve_experiment (registries live above)
        hook("resolve_experiment")(self)
        return self

    def _apply_model_defaults(self, name: str, defaults: Mapping[str, object]) -> None:
        """Set the model's recommended settings on every key the user left at its default.

        A recommended ``train.min_samples`` (epochs sized by samples seen) is not applied when the user
        chose ``train.max_epochs``: their epoch count stands.
        """
        user_epochs = "max_epochs" in self.train.model_fields_set
        for key, value in defaults.items():
            if key == "train.min_samples" and user_epochs:
                continue
            *path, field = key.split(".")
            section: BaseModel = self
            for part in path:
                section = getattr(section, part)
            if field in section.model_fields_set:
                continue
            try:
                setattr(section, field, value)
            except ValidationError as exc:  # a bad recommendation is a bug of the model class
                raise ConfigError(f"model '{name}' recommends an invalid {key}: {exc}") from None

    @model_validator(mode="after")
    def _check_tune_space(self) -> ExperimentConfig:
        hook("check_tune_space")(self)  # biodl.tune.space.check_space
        return self

    # ------------------------------------------------------------------ helpers
    @classmethod
    def from_dict(cls, raw: Mapping[str, Any], *, source: str = "config") -> ExperimentConfig:
        """Validate a nested mapping, raising :class:`ConfigError` with readable messages."""
        if not isinstance(raw, Mapping):
            raise ConfigError(f"{source}: expected a mapping of sections, got {type(raw).__name__}")
        try:
            return cls.model_validate(dict(raw))
        except ValidationError as exc:
            raise ConfigError(f"{source}: " + _format_errors(exc, prefix="", schema=cls)) from None
        except ConfigError as exc:
            raise ConfigError(f"{source}: {exc}") from None

    @classmethod
    def from_yaml(cls, path: str | Path, overrides: Sequence[str] = ()) -> ExperimentConfig:
        """Load a YAML file, then apply ``key=value`` overrides."""
        raw = load_yaml(path)
        apply_overrides(raw, overrides)
        return cls.from_dict(raw, source=str(path))

    def to_dict(self) -> dict[str, Any]:
        """The fully resolved configuration as plain data."""
        return self.model_dump(mode="json")

    def to_yaml(self) -> str:
        """The fully resolved configuration as YAML."""
        return yaml.safe_dump(self.to_dict(), sort_keys=False)
