"""The experiment schema: one typed description shared by YAML, the CLI and Python.

Sections are ``data``, ``model``, ``train`` and ``evaluate``. Defaults follow Table 2 of
Angermueller et al. (2016): Adam (lr 1e-3; SGD lr 0.01 with momentum 0.9), batch size 128,
Glorot-uniform initialisation, batch normalisation, dropout 0.5, ReLU, learning-rate decay by a
factor 0.5 when the validation loss stops improving, early stopping with restore of the best
weights, and a 60/10/30 train/validation/test split.

Unknown keys are errors that suggest the closest valid key; wrong types and impossible values
are errors naming the key (:class:`biodl.errors.ConfigError`).

One module per section: :mod:`~biodl.config.data` (with the per-data-type options in
:mod:`~biodl.config.modalities`), :mod:`~biodl.config.model`, :mod:`~biodl.config.train`,
:mod:`~biodl.config.evaluate` (and the model card), ``tune`` (:mod:`biodl.config_tune`) and the whole
:mod:`~biodl.config.experiment`; reading YAML and ``--set`` overrides in :mod:`~biodl.config.loading`.
Every public name is importable from ``biodl.config``.
"""

from __future__ import annotations

from biodl.config.base import _Section
from biodl.config.data import DataConfig, InputSpec, NormalizeConfig, Task
from biodl.config.evaluate import CardConfig, EvaluateConfig
from biodl.config.experiment import ExperimentConfig
from biodl.config.loading import PATH_KEYS, apply_overrides, load_yaml, resolve_config_paths, set_nested
from biodl.config.messages import _format_errors
from biodl.config.modalities import (
    BagOptions,
    CpgOptions,
    FilterName,
    ImageOptions,
    MoleculeOptions,
    SequenceOptions,
    VolumeOptions,
)
from biodl.config.model import AUTO, ModelConfig
from biodl.config.train import DEFAULT_LR, DEFAULT_TIME_BUDGET, SEGMENTATION_BATCH_SIZE, TrainConfig
from biodl.config_tune import TuneConfig

__all__ = [
    "AUTO",
    "DEFAULT_LR",
    "DEFAULT_TIME_BUDGET",
    "PATH_KEYS",
    "SEGMENTATION_BATCH_SIZE",
    "BagOptions",
    "CardConfig",
    "CpgOptions",
    "DataConfig",
    "EvaluateConfig",
    "ExperimentConfig",
    "FilterName",
    "ImageOptions",
    "InputSpec",
    "ModelConfig",
    "MoleculeOptions",
    "NormalizeConfig",
    "SequenceOptions",
    "Task",
    "TrainConfig",
    "TuneConfig",
    "VolumeOptions",
    "_Section",
    "_format_errors",
    "apply_overrides",
    "load_yaml",
    "resolve_config_paths",
    "set_nested",
]
