"""The typed ``tune`` section of the experiment schema: it lives in :mod:`biodl.config_tune` (the config
layer, so that :mod:`biodl.config` imports nothing above it); re-exported here under its former name."""

from __future__ import annotations

from biodl.config_tune import SPEC_TYPES, CategoricalSpec, DistributionSpec, FloatSpec, IntSpec, TuneConfig

__all__ = ["SPEC_TYPES", "CategoricalSpec", "DistributionSpec", "FloatSpec", "IntSpec", "TuneConfig"]
