"""Samplers of ``biodl tune``: the ``SAMPLERS`` registry.

``line``
    The review's line search (Angermueller et al. 2016): one key is varied over a grid while the
    others stay fixed, then the next key. The first key's sweep runs with every other key at its
    base-config value; each later sweep fixes the keys swept before at the best values found so
    far (a coordinate search). Trials beyond one full sweep start the next sweep.
``random``
    Independent uniform / log-uniform sampling.
``tpe``
    Optuna's tree-structured Parzen estimator (Bayesian optimisation); random for the first
    10 trials.

``random`` and ``tpe`` are re-seeded per trial from the tune seed and the trial number, so
several workers on one study never draw the same values by sharing a seed, and a study run
by one worker is reproducible.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import optuna
from optuna.distributions import BaseDistribution
from optuna.samplers import BaseSampler, RandomSampler, TPESampler
from optuna.study import Study, StudyDirection
from optuna.trial import FrozenTrial, TrialState

from biodl.registry import Registry
from biodl.tune.space import SearchSpace

__all__ = ["SAMPLERS", "LineSampler", "SamplerContext", "TrialSeededSampler", "make_sampler", "trial_seed"]


@dataclass(frozen=True)
class SamplerContext:
    """What a sampler factory gets.

    Attributes
    ----------
    space
        The search space.
    base
        The base config as plain data (the line search's fixed values).
    seed
        The tune seed.
    line_points
        Grid points per numeric key of the line search.
    """

    space: SearchSpace
    base: Mapping[str, Any]
    seed: int
    line_points: int = 5


SamplerFactory = Callable[[SamplerContext], BaseSampler]

#: Registered samplers (``line``, ``random``, ``tpe``).
SAMPLERS: Registry[SamplerFactory] = Registry("sampler")


def trial_seed(seed: int, number: int) -> int:
    """A well-mixed 31-bit seed for trial ``number`` of a study seeded with ``seed``."""
    return int(np.random.SeedSequence([abs(seed), number]).generate_state(1)[0] & 0x7FFFFFFF)


class TrialSeededSampler(BaseSampler):
    """Delegates to a fresh sampler per trial, seeded from ``(seed, trial.number)``.

    Parameters
    ----------
    make
        Builds the inner sampler from a seed.
    seed
        The study's seed.
    """

    def __init__(self, make: Callable[[int], BaseSampler], seed: int) -> None:
        self._make = make
        self._seed = seed
        self._inner: dict[int, BaseSampler] = {}

    def _for(self, trial: FrozenTrial) -> BaseSampler:
        sampler = self._inner.get(trial.number)
        if sampler is None:
            if len(self._inner) > 16:  # trials whose after_trial never came (killed elsewhere)
                self._inner.clear()
            sampler = self._inner[trial.number] = self._make(trial_seed(self._seed, trial.number))
        return sampler

    def infer_relative_search_space(self, study: Study, trial: FrozenTrial) -> dict[str, BaseDistribution]:
        return self._for(trial).infer_relative_search_space(study, trial)

    def sample_relative(self, study: Study, trial: FrozenTrial, search_space: dict[str, BaseDistribution]) -> dict[str, Any]:
        return self._for(trial).sample_relative(study, trial, search_space)

    def sample_independent(self, study: Study, trial: FrozenTrial, param_name: str, param_distribution: BaseDistribution) -> Any:
        return self._for(trial).sample_independent(study, trial, param_name, param_distribution)

    def before_trial(self, study: Study, trial: FrozenTrial) -> None:
        self._for(trial).before_trial(study, trial)

    def after_trial(self, study: Study, trial: FrozenTrial, state: TrialState, values: Sequence[float] | None) -> None:
        self._for(trial).after_trial(study, trial, state, values)
        self._inner.pop(trial.number, None)

    def reseed_rng(self) -> None:
        """Nothing to do: every trial is seeded from its number."""


class LineSampler(BaseSampler):
    """Line search: one key at a time over its grid, the others fixed.

    Parameters
    ----------
    grids
        Key → values to try, in search order.
    defaults
        Key → value used while another key is varied and no trial has completed.

    Notes
    -----
    Trial ``n`` tries point ``n mod L`` of the concatenated grids (``L`` = :attr:`sweep_length`).
    The keys not varied take the values of the best complete trial so far (the defaults before
    any trial completes), so within one key's sweep only that key changes.
    """

    def __init__(self, grids: Mapping[str, Sequence[Any]], defaults: Mapping[str, Any]) -> None:
        self._plan: list[tuple[str, Any]] = [(key, value) for key, values in grids.items() for value in values]
        if not self._plan:
            raise ValueError("the line search needs at least one key with at least one value")
        self._defaults = dict(defaults)
        self._fallback = RandomSampler(seed=0)

    @property
    def sweep_length(self) -> int:
        """Trials in one sweep over every key."""
        return len(self._plan)

    def point(self, number: int) -> tuple[str, Any]:
        """``(varied key, its value)`` of trial ``number``."""
        return self._plan[number % len(self._plan)]

    def infer_relative_search_space(self, study: Study, trial: FrozenTrial) -> dict[str, BaseDistribution]:
        return {}

    def sample_relative(self, study: Study, trial: FrozenTrial, search_space: dict[str, BaseDistribution]) -> dict[str, Any]:
        return {}

    def sample_independent(self, study: Study, trial: FrozenTrial, param_name: str, param_distribution: BaseDistribution) -> Any:
        key, value = self.point(trial.number)
        if param_name == key:
            return value
        best = _best_trial(study)
        if best is not None and param_name in best.params and best.distributions.get(param_name) == param_distribution:
            return best.params[param_name]
        if param_name in self._defaults:
            return self._defaults[param_name]
        return self._fallback.sample_independent(study, trial, param_name, param_distribution)


def _best_trial(study: Study) -> FrozenTrial | None:
    done = [t for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)) if t.value is not None]
    if not done:
        return None
    pick = max if study.direction == StudyDirection.MAXIMIZE else min
    return pick(done, key=lambda t: float(t.value) if t.value is not None else 0.0)


@SAMPLERS.register("line")
def _line(ctx: SamplerContext) -> BaseSampler:
    grids = {p.key: p.grid(ctx.line_points) for p in ctx.space}
    defaults = {p.key: p.base_point(ctx.base, ctx.line_points) for p in ctx.space}
    return LineSampler(grids, defaults)


@SAMPLERS.register("random")
def _random(ctx: SamplerContext) -> BaseSampler:
    return TrialSeededSampler(lambda seed: RandomSampler(seed=seed), ctx.seed)


@SAMPLERS.register("tpe")
def _tpe(ctx: SamplerContext) -> BaseSampler:
    return TrialSeededSampler(lambda seed: TPESampler(seed=seed), ctx.seed)


def make_sampler(name: str, ctx: SamplerContext) -> BaseSampler:
    """Build the registered sampler ``name`` (``ConfigError`` with a suggestion if unknown)."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return SAMPLERS[name](ctx)
