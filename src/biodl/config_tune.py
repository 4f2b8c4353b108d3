"""The typed ``tune`` section of the experiment schema.

Part of the config layer (imported by :mod:`biodl.config`), kept free of Optuna and of :mod:`biodl.tune`;
:mod:`biodl.tune.space` turns these specifications into Optuna distributions. Sampler and pruner names are
checked against their registries through :data:`biodl.registry.HOOKS`.

Example
-------
.. code-block:: yaml

    tune:
      n_trials: 30
      sampler: tpe
      pruner: median
      space:
        train.lr: {type: float, low: 1.0e-4, high: 1.0e-1, log: true}
        train.batch_size: {type: categorical, choices: [32, 64, 128, 256]}
        model.hidden_sizes: {type: int, low: 32, high: 512, log: true}
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from biodl.errors import ConfigError
from biodl.registry import Registry, hook

__all__ = ["CategoricalSpec", "DistributionSpec", "FloatSpec", "IntSpec", "TuneConfig"]

#: The ``type`` of a distribution specification.
SPEC_TYPES: tuple[str, ...] = ("float", "int", "categorical")


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class FloatSpec(_Spec):
    """``{type: float, low, high, log, step}``: a real value, log-uniform with ``log: true``."""

    type: Literal["float"]
    low: float
    high: float
    log: bool = False
    step: float | None = Field(default=None, gt=0.0)

    @model_validator(mode="after")
    def _bounds(self) -> FloatSpec:
        if self.low > self.high:
            raise ValueError(f"low ({self.low:g}) must not exceed high ({self.high:g})")
        if self.log and self.low <= 0:
            raise ValueError(f"log: true needs low > 0 (got {self.low:g})")
        if self.log and self.step is not None:
            raise ValueError("give either log: true or step, not both")
        return self


class IntSpec(_Spec):
    """``{type: int, low, high, step, log}``: an integer, log-uniform with ``log: true``."""

    type: Literal["int"]
    low: int
    high: int
    step: int = Field(default=1, ge=1)
    log: bool = False

    @model_validator(mode="after")
    def _bounds(self) -> IntSpec:
        if self.low > self.high:
            raise ValueError(f"low ({self.low}) must not exceed high ({self.high})")
        if self.log and self.low < 1:
            raise ValueError(f"log: true needs low >= 1 (got {self.low})")
        if self.log and self.step != 1:
            raise ValueError("log: true needs step 1")
        return self


class CategoricalSpec(_Spec):
    """``{type: categorical, choices: [...]}``: one of the listed values (lists allowed as values)."""

    type: Literal["categorical"]
    choices: list[Any] = Field(min_length=1)

    @field_validator("choices")
    @classmethod
    def _distinct(cls, v: list[Any]) -> list[Any]:
        seen: list[Any] = []
        for c in v:
            if c in seen:
                raise ValueError(f"choice {c!r} is listed twice")
            seen.append(c)
        return v


DistributionSpec = Annotated[FloatSpec | IntSpec | CategoricalSpec, Field(discriminator="type")]


_SPEC_CLASSES: dict[str, type[_Spec]] = {"float": FloatSpec, "int": IntSpec, "categorical": CategoricalSpec}


def _normalise_spec(key: str, spec: Any) -> Any:
    """Validate one distribution, accepting a bare list as ``categorical``.

    Errors name the space key and the field (``train.lr: low: ...``), not pydantic's union tags.
    """
    if isinstance(spec, _Spec):
        return spec
    if isinstance(spec, list):
        spec = {"type": "categorical", "choices": spec}
    if not isinstance(spec, Mapping):
        raise ValueError(
            f"{key}: expected a mapping such as {{type: float, low: 0.001, high: 0.1}} "
            f"or a list of choices, got {type(spec).__name__}"
        )
    kind = spec.get("type")
    if kind is None:
        raise ValueError(f"{key}: missing 'type' (one of: {', '.join(SPEC_TYPES)})")
    if kind not in SPEC_TYPES:
        close = difflib.get_close_matches(str(kind), SPEC_TYPES, n=1, cutoff=0.5)
        hint = f" (did you mean '{close[0]}'?)" if close else ""
        raise ValueError(f"{key}: unknown type {kind!r}{hint}; choose one of: {', '.join(SPEC_TYPES)}")
    cls = _SPEC_CLASSES[kind]
    try:
        return cls.model_validate(dict(spec))
    except ValidationError as exc:
        raise ValueError("; ".join(_spec_error(key, kind, cls, err) for err in exc.errors())) from None


def _spec_error(key: str, kind: str, cls: type[_Spec], err: Any) -> str:
    loc = ".".join(str(p) for p in err["loc"])
    if err["type"] == "extra_forbidden":
        close = difflib.get_close_matches(loc, list(cls.model_fields), n=1, cutoff=0.5)
        hint = f" (did you mean '{close[0]}'?)" if close else ""
        return f"{key}: unknown field '{loc}' of a {kind} distribution{hint}"
    msg = str(err["msg"]).removeprefix("Value error, ")
    shown = f" (got {err['input']!r})" if err["type"] != "value_error" and "input" in err else ""
    return f"{key}.{loc}: {msg}{shown}" if loc else f"{key}: {msg}"


class TuneConfig(BaseModel):
    """Hyper-parameter search settings (``biodl tune``); ignored by ``biodl train``."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    n_trials: int = Field(default=20, ge=0, description="trials this worker runs (each worker adds its own)")
    timeout: float | None = Field(default=None, gt=0.0, description="seconds after which this worker starts no new trial")
    sampler: str = Field(default="tpe", description="line, random or tpe")
    pruner: str = Field(default="median", description="none, median, successive-halving or hyperband")
    metric: str | None = Field(
        default=None, description="validation metric to optimise (null: the task's main metric; loss: lowest val_loss)"
    )
    direction: Literal["minimize", "maximize"] | None = Field(default=None, description="null: from the metric")
    storage: str | None = Field(
        default=None, description="RDB URL, journal:///FILE.log or FILE.log/FILE.db (null: OUTPUT_DIR/study.db)"
    )
    study_name: str = Field(default="biodl", min_length=1, description="name of the Optuna study (and of its MLflow experiment)")
    seed: int | None = Field(default=None, description="sampler seed (null: train.seed)")
    line_points: int = Field(default=5, ge=2, le=100, description="line search: grid points per numeric key")
    startup_trials: int = Field(default=5, ge=0, description="median pruner: complete trials before pruning starts")
    warmup_epochs: int = Field(default=1, ge=0, description="median pruner: epochs a trial always runs")
    min_epochs: int = Field(default=1, ge=1, description="successive halving / hyperband: smallest budget")
    reduction_factor: int = Field(default=3, ge=2, description="successive halving / hyperband")
    heartbeat_interval: int = Field(default=30, ge=1, description="RDB storage: seconds between trial heartbeats")
    grace_period: int | None = Field(
        default=None, ge=1, description="RDB storage: a RUNNING trial silent this long is marked FAIL (null: 2 x heartbeat)"
    )
    space: dict[str, DistributionSpec] = Field(
        default_factory=dict, description="dotted config key -> distribution (empty: the default space)"
    )

    @field_validator("space", mode="before")
    @classmethod
    def _space(cls, v: Any) -> Any:
        if v is None:
            return {}
        if not isinstance(v, Mapping):
            raise ValueError(f"tune.space: expected a mapping of dotted config keys to distributions, got {type(v).__name__}")
        out: dict[str, Any] = {}
        errors: list[str] = []
        for key, spec in v.items():
            try:
                out[str(key)] = _normalise_spec(str(key), spec)
            except ValueError as exc:
                errors.append(str(exc))
        if errors:
            raise ValueError("; ".join(errors))
        return out

    @field_validator("sampler")
    @classmethod
    def _sampler(cls, v: str) -> str:
        return _registered(hook("tune_samplers")(), v)  # biodl.tune.samplers.SAMPLERS

    @field_validator("pruner")
    @classmethod
    def _pruner(cls, v: str) -> str:
        return _registered(hook("tune_pruners")(), v)  # biodl.tune.pruning.PRUNERS


def _registered(registry: Registry[Any], name: str) -> str:
    """``name`` if registered; else a ``ValueError`` (pydantic then names the key)."""
    try:
        registry[name]
    except ConfigError as exc:
        raise ValueError(str(exc)) from None
    return name
