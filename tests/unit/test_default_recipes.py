"""The data types' default recipes (chosen by cross-validation, docs/defaults-tables.md) reach plain ``biodl train``."""

from __future__ import annotations

import torch

from biodl.config import ExperimentConfig
from biodl.data.tabular import Tabular


def _tabular(task: str, **sections: dict[str, object]) -> ExperimentConfig:
    raw: dict[str, object] = {"data": {"type": "tabular", "task": task, "target_columns": ["y"]}, **sections}
    return ExperimentConfig.from_dict(raw)


def test_multilabel_tables_get_the_cross_validated_recipe() -> None:
    cfg = _tabular("multilabel")
    recipe = Tabular.recipes["multilabel"]
    assert cfg.model.name == "mlp"
    assert cfg.model.params()["hidden_sizes"] == recipe["model.hidden_sizes"]
    assert cfg.train.weight_decay == recipe["train.weight_decay"] and cfg.train.weight_decay > 0
    assert cfg.train.batch_size == recipe["train.batch_size"] and cfg.train.ensemble_size == 1
    # the resolved config re-validates to itself
    assert ExperimentConfig.from_dict(cfg.to_dict()).to_dict() == cfg.to_dict()


def test_classification_tables_get_a_network_robust_to_outlying_cells() -> None:
    """Expression matrices (PBMC): no batch norm, input dropout, weight decay."""
    cfg = _tabular("classification")
    params = cfg.model.params()
    assert params["batch_norm"] is False and params["input_dropout"] > 0 and cfg.train.weight_decay > 0
    from biodl.models import build_model

    net = build_model("mlp", (765,), 10, params)
    assert not any(isinstance(m, torch.nn.BatchNorm1d) for m in net.modules())


def test_user_settings_win_over_the_recipe() -> None:
    cfg = _tabular("multilabel", train={"weight_decay": 0.0, "max_epochs": 3})
    assert cfg.train.weight_decay == 0.0 and cfg.train.max_epochs == 3
    assert cfg.model.params()["hidden_sizes"] == Tabular.recipes["multilabel"]["model.hidden_sizes"]


def test_recipe_is_for_plain_runs_of_the_default_network_only() -> None:
    other = _tabular("multilabel", model={"name": "dnae"})
    assert other.train.weight_decay == 0.0 and other.train.max_epochs != Tabular.recipes["multilabel"]["train.max_epochs"]
    named = _tabular("multilabel", model={"name": "mlp"})  # a named model (example configs) keeps the schema's defaults
    assert named.train.weight_decay == 0.0 and named.model.params()["hidden_sizes"] == [256, 128]
    tuned = _tabular("classification", model={"hidden_sizes": [16]})  # so does a model section the user wrote
    assert tuned.model.params().get("input_dropout", 0.0) == 0.0 and tuned.train.weight_decay == 0.0
    regression = _tabular("regression")
    assert regression.train.weight_decay == 0.0  # no recipe measured for regression tables: the schema's defaults
