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
    assert cfg.train.ensemble_size == recipe["train.ensemble_size"] and cfg.train.ensemble_size > 1
    assert cfg.train.weight_decay == recipe["train.weight_decay"] and cfg.train.weight_decay > 0
    # the resolved config re-validates to itself
    assert ExperimentConfig.from_dict(cfg.to_dict()).to_dict() == cfg.to_dict()


def test_classification_tables_get_a_network_robust_to_outlying_cells() -> None:
    """Expression matrices (PBMC): no batch norm, input dropout, weight decay, a five-member ensemble."""
    cfg = _tabular("classification")
    params = cfg.model.params()
    assert params["batch_norm"] is False and params["input_dropout"] > 0 and cfg.train.weight_decay > 0
    assert cfg.train.ensemble_size == 5
    from biodl.models import build_model

    net = build_model("mlp", (765,), 10, params)
    assert not any(isinstance(m, torch.nn.BatchNorm1d) for m in net.modules())


def test_user_settings_win_over_the_recipe() -> None:
    cfg = _tabular("multilabel", train={"ensemble_size": 1, "weight_decay": 0.0}, model={"name": "mlp", "dropout": 0.2})
    assert cfg.train.ensemble_size == 1 and cfg.train.weight_decay == 0.0 and cfg.model.params()["dropout"] == 0.2
    assert cfg.model.params()["hidden_sizes"] == Tabular.recipes["multilabel"]["model.hidden_sizes"]


def test_recipe_is_for_the_default_network_only() -> None:
    other = _tabular("multilabel", model={"name": "dnae"})
    assert other.train.ensemble_size == 1 and other.train.weight_decay == 0.0
    regression = _tabular("regression")
    assert regression.train.ensemble_size == 1  # no recipe measured for regression tables: the schema's defaults
