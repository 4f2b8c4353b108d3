"""Search spaces: dotted config keys with typed distributions.

A space maps config keys (``train.lr``, ``model.hidden_sizes``, ``data.normalize.log1p`` ...) to
:mod:`biodl.tune.spec` distributions. This module checks the keys against the schema, builds
the default space of a model, samples a trial's values through Optuna and writes them back into
a raw config mapping.

List-valued keys
    An ``int`` (or integer ``categorical``) distribution on a list of integers such as
    ``model.hidden_sizes: [256, 128]`` samples the width of the first layer; the other layers keep
    their proportion to it (``[256, 128]`` with width 64 gives ``[64, 32]``). A ``float``
    distribution on a list of floats (``model.dropouts``) sets every element. A ``categorical``
    whose choices are lists sets the whole list.

Optuna itself is imported only inside the functions that need it.
"""

from __future__ import annotations

import copy
import json
import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from pydantic import BaseModel

from biodl.config_tune import CategoricalSpec, DistributionSpec, FloatSpec, IntSpec
from biodl.registry import suggest

if TYPE_CHECKING:
    import optuna
    from optuna.distributions import BaseDistribution

    from biodl.config import ExperimentConfig

__all__ = [
    "DEFAULT_BATCH_SIZES",
    "DROPOUT_KEYS",
    "WIDTH_KEYS",
    "Param",
    "SearchSpace",
    "check_space",
    "check_space_keys",
    "check_space_values",
    "config_keys",
    "default_space",
    "get_nested",
]

#: Model parameters that set a network's width, in order of preference (the first present is
#: tuned by the default space): convolutional filters before dense hidden sizes.
WIDTH_KEYS: tuple[str, ...] = ("filters", "channels", "num_filters", "hidden_sizes", "hidden_size", "width", "units")
#: Model parameters that set dropout, in order of preference.
DROPOUT_KEYS: tuple[str, ...] = ("dropout", "dropouts")
#: Batch sizes of the default space.
DEFAULT_BATCH_SIZES: tuple[int, ...] = (32, 64, 128, 256)
_SCALARS = (type(None), bool, int, float, str)


# ---------------------------------------------------------------------------------- schema keys
def _section_keys(schema: type[BaseModel], prefix: str) -> Iterator[str]:
    for name, field in schema.model_fields.items():
        key = f"{prefix}.{name}" if prefix else name
        yield key
        ann = field.annotation
        if isinstance(ann, type) and issubclass(ann, BaseModel):
            yield from _section_keys(ann, key)


def config_keys(cfg: ExperimentConfig) -> list[str]:
    """Every dotted key of the schema that a search space may set (sections included).

    ``model.*`` keys are those of ``cfg``'s architecture; the ``tune`` section itself is excluded.
    """
    from biodl.config import ExperimentConfig
    from biodl.models import MODELS

    keys: list[str] = []
    for name, field in ExperimentConfig.model_fields.items():
        if name in ("tune", "model"):
            continue
        ann = field.annotation
        if isinstance(ann, type) and issubclass(ann, BaseModel):
            keys += list(_section_keys(ann, name))
    keys.append("model.name")
    keys += [f"model.{k}" for k in MODELS[str(cfg.model.name)].Params.model_fields]
    return keys


def check_space_keys(cfg: ExperimentConfig) -> None:
    """Raise ``ValueError`` naming every ``tune.space`` key that is not a config key.

    Parameters
    ----------
    cfg
        A config whose data and model sections are already validated.
    """
    if not cfg.tune.space:
        return
    valid = config_keys(cfg)
    bad = [key for key in cfg.tune.space if key not in valid]
    if bad:
        msgs = [f"unknown key '{key}'{suggest(key, valid)}" for key in bad]
        raise ValueError(f"tune.space: {'; '.join(msgs)}")


def get_nested(raw: Mapping[str, Any], key: str) -> Any:
    """``raw[a][b]...`` for the dotted ``key`` (``None`` when a part is missing)."""
    node: Any = raw
    for part in key.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return None
        node = node[part]
    return node


# ---------------------------------------------------------------------------------- default space
def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_int_list(v: Any) -> bool:
    return isinstance(v, list) and all(_is_int(x) for x in v)


def _is_float_like(v: Any) -> bool:
    return isinstance(v, float) or (isinstance(v, list) and bool(v) and all(isinstance(x, float) for x in v))


def default_space(cfg: ExperimentConfig) -> dict[str, DistributionSpec]:
    """The default space: learning rate, batch size, dropout and width.

    ``train.lr`` log-uniform in [1e-4, 1e-1]; ``train.batch_size`` one of 32/64/128/256; the
    model's dropout (first of :data:`DROPOUT_KEYS` it has) uniform in [0.1, 0.75]; its width
    (first of :data:`WIDTH_KEYS` holding an integer or a list of integers) log-uniform integer in
    [32, 512]. A model without a dropout or width parameter is tuned on the others only.
    """
    space: dict[str, DistributionSpec] = {
        "train.lr": FloatSpec(type="float", low=1e-4, high=1e-1, log=True),
        "train.batch_size": CategoricalSpec(type="categorical", choices=list(DEFAULT_BATCH_SIZES)),
    }
    params = cfg.model.params()
    for key in DROPOUT_KEYS:
        if key in params and _is_float_like(params[key]):
            space[f"model.{key}"] = FloatSpec(type="float", low=0.1, high=0.75)
            break
    for key in WIDTH_KEYS:
        value = params.get(key)
        if _is_int(value) or (_is_int_list(value) and value):
            space[f"model.{key}"] = IntSpec(type="int", low=32, high=512, log=True)
            break
    return space


# ---------------------------------------------------------------------------------- parameters
def _encode(choice: Any) -> Any:
    """Optuna choices must be scalars: lists and mappings travel as JSON text."""
    return choice if isinstance(choice, _SCALARS) else json.dumps(choice, sort_keys=True)


def _round(x: float) -> float:
    return float(f"{x:.10g}")


@dataclass(frozen=True)
class Param:
    """One searched config key.

    Attributes
    ----------
    key
        Dotted config key; also the Optuna parameter name.
    spec
        Its distribution.
    """

    key: str
    spec: DistributionSpec

    @property
    def choices(self) -> list[Any]:
        """Optuna's (encoded) choices of a categorical parameter."""
        assert isinstance(self.spec, CategoricalSpec)
        return [_encode(c) for c in self.spec.choices]

    def distribution(self) -> BaseDistribution:
        """The equivalent Optuna distribution."""
        from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

        s = self.spec
        if isinstance(s, FloatSpec):
            return FloatDistribution(s.low, s.high, log=s.log, step=s.step)
        if isinstance(s, IntSpec):
            return IntDistribution(s.low, s.high, log=s.log, step=s.step)
        return CategoricalDistribution(self.choices)

    def suggest(self, trial: optuna.Trial) -> Any:
        """Ask ``trial`` for a value (Optuna's representation: encoded for list choices)."""
        s = self.spec
        if isinstance(s, FloatSpec):
            return trial.suggest_float(self.key, s.low, s.high, log=s.log, step=s.step)
        if isinstance(s, IntSpec):
            return trial.suggest_int(self.key, s.low, s.high, log=s.log, step=s.step)
        return trial.suggest_categorical(self.key, self.choices)

    def decode(self, value: Any) -> Any:
        """The config value of a sampled (possibly encoded) value."""
        if isinstance(self.spec, CategoricalSpec):
            for choice in self.spec.choices:
                if _encode(choice) == value:
                    return copy.deepcopy(choice)
        return value

    def contains(self, value: Any) -> bool:
        """Whether ``value`` (Optuna representation) lies in the distribution."""
        s = self.spec
        if isinstance(s, CategoricalSpec):
            return any(value == c and type(value) is type(c) for c in self.choices)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return False
        if isinstance(s, IntSpec) and not float(value).is_integer():
            return False
        if not s.low <= value <= s.high:
            return False
        step = s.step
        if step is None:
            return True
        k = (value - s.low) / step
        return math.isclose(k, round(k), abs_tol=1e-8)

    def grid(self, n_points: int) -> list[Any]:
        """Values of a line search: categorical choices, or ``n_points`` spread over the range.

        Log-scaled ranges are spread geometrically, others linearly; values snap to ``step``.
        """
        s = self.spec
        if isinstance(s, CategoricalSpec):
            return self.choices
        if isinstance(s, IntSpec) and (s.high - s.low) // s.step + 1 <= n_points:
            return list(range(s.low, s.high + 1, s.step))
        raw = np.geomspace(s.low, s.high, n_points) if s.log else np.linspace(s.low, s.high, n_points)
        out: list[Any] = []
        for x in raw:
            v: float = float(x)
            if s.step is not None:
                v = min(s.high, s.low + round((v - s.low) / s.step) * s.step)
            value: Any = round(v) if isinstance(s, IntSpec) else _round(v)
            if value not in out:
                out.append(value)
        return out

    def base_point(self, base: Mapping[str, Any], n_points: int) -> Any:
        """The value the base config has for this key, or the middle of the grid if outside."""
        current = get_nested(base, self.key)
        if self.key == "train.lr" and current is None:
            from biodl.config import DEFAULT_LR

            current = DEFAULT_LR.get(str(get_nested(base, "train.optimizer")))
        list_choices = isinstance(self.spec, CategoricalSpec) and any(isinstance(c, list) for c in self.spec.choices)
        if isinstance(current, list) and current and not list_choices:
            current = current[0]
        candidate = _encode(current) if isinstance(self.spec, CategoricalSpec) else current
        if self.contains(candidate):
            return candidate
        grid = self.grid(n_points)
        return grid[len(grid) // 2]

    def apply(self, raw: dict[str, Any], value: Any) -> None:
        """Set this key in the raw config mapping ``raw`` to the sampled ``value``."""
        from biodl.config import set_nested

        decoded = self.decode(value)
        current = get_nested(raw, self.key)
        if isinstance(current, list) and not isinstance(decoded, list):
            decoded = _scale_list(current, decoded)
        set_nested(raw, self.key.split("."), decoded)


def _scale_list(current: list[Any], value: Any) -> list[Any]:
    """A list-valued key from one sampled number (see the module docstring)."""
    if _is_int(value) and _is_int_list(current):
        if not current or current[0] <= 0:
            return [value] * max(1, len(current))
        return [max(1, round(value * c / current[0])) for c in current]
    return [value] * max(1, len(current))


class SearchSpace:
    """An ordered set of :class:`Param`.

    Parameters
    ----------
    space
        Dotted config key → distribution spec, in search order (the line search follows it).
    """

    def __init__(self, space: Mapping[str, DistributionSpec]) -> None:
        self.params: list[Param] = [Param(k, v) for k, v in space.items()]

    @classmethod
    def from_config(cls, cfg: ExperimentConfig) -> SearchSpace:
        """``cfg.tune.space``, or :func:`default_space` when it is empty."""
        check_space_keys(cfg)
        return cls(cfg.tune.space or default_space(cfg))

    def __iter__(self) -> Iterator[Param]:
        return iter(self.params)

    def __len__(self) -> int:
        return len(self.params)

    @property
    def keys(self) -> list[str]:
        """The searched config keys, in order."""
        return [p.key for p in self.params]

    def to_dict(self) -> dict[str, dict[str, Any]]:
        """Plain data (for YAML, JSON and the study's attributes)."""
        return {p.key: p.spec.model_dump(mode="json", exclude_defaults=False) for p in self.params}

    def suggest(self, trial: optuna.Trial) -> dict[str, Any]:
        """Sample every parameter through ``trial``: ``{key: Optuna value}``."""
        return {p.key: p.suggest(trial) for p in self.params}

    def apply(self, raw: dict[str, Any], values: Mapping[str, Any]) -> dict[str, Any]:
        """A deep copy of the raw config ``raw`` with ``values`` (Optuna representation) set."""
        out = copy.deepcopy(raw)
        for p in self.params:
            if p.key in values:
                p.apply(out, values[p.key])
        return out

    def decoded(self, values: Mapping[str, Any]) -> dict[str, Any]:
        """``values`` as config values (list choices decoded)."""
        by_key = {p.key: p for p in self.params}
        return {k: by_key[k].decode(v) if k in by_key else v for k, v in values.items()}

    def probe_values(self) -> Iterator[tuple[str, Any]]:
        """``(key, value)`` pairs that exercise each distribution's extremes and choices."""
        for p in self.params:
            s = p.spec
            values: Sequence[Any] = p.choices if isinstance(s, CategoricalSpec) else (s.low, s.high)
            for v in values:
                yield p.key, v


def check_space(cfg: ExperimentConfig) -> None:
    """Check ``cfg.tune.space``: keys of the schema whose bounds and choices give valid configs."""
    if not cfg.tune.space:
        return
    check_space_keys(cfg)
    base = cfg.to_dict()
    base.pop("tune", None)
    check_space_values(base, SearchSpace(cfg.tune.space))


def check_space_values(base: Mapping[str, Any], space: SearchSpace, *, source: str = "tune.space") -> None:
    """Raise :class:`~biodl.errors.ConfigError` when a distribution's extreme makes an invalid config.

    Each low/high bound and each categorical choice is applied alone to the ``base`` config and
    validated, so a ``dropout`` range above 1 or a string batch size fails before any training.
    """
    from biodl.config import ExperimentConfig
    from biodl.errors import ConfigError

    for key, value in space.probe_values():
        raw = space.apply(dict(base), {key: value})
        try:
            ExperimentConfig.from_dict(raw, source=source)
        except ConfigError as exc:
            reason = str(exc).removeprefix(f"{source}: ")
            raise ConfigError(f"{source}.{key}: value {value!r} gives an invalid config: {reason}") from None
