"""The data types' default recipes (chosen by cross-validation, docs/defaults-tables.md) reach plain ``biodl train``."""

from __future__ import annotations

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


def test_user_settings_win_over_the_recipe() -> None:
    cfg = _tabular("multilabel", train={"weight_decay": 0.0, "max_epochs": 3})
    assert cfg.train.weight_decay == 0.0 and cfg.train.max_epochs == 3
    assert cfg.model.params()["hidden_sizes"] == Tabular.recipes["multilabel"]["model.hidden_sizes"]


def test_recipe_is_for_plain_runs_of_the_default_network_only() -> None:
    other = _tabular("multilabel", model={"name": "dnae"})
    assert other.train.weight_decay == 0.0 and other.train.max_epochs != Tabular.recipes["multilabel"]["train.max_epochs"]
    named = _tabular("multilabel", model={"name": "mlp"})  # a named model (example configs) keeps the schema's defaults
    assert named.train.weight_decay == 0.0 and named.model.params()["hidden_sizes"] == [256, 128]
    tuned = _tabular("multilabel", model={"hidden_sizes": [16]})  # so does a model section the user wrote
    assert tuned.train.weight_decay == 0.0 and tuned.train.max_epochs == 100
    for task in ("regression", "classification"):  # no recipe that wins as a single network: the schema's defaults
        assert _tabular(task).train.weight_decay == 0.0 and _tabular(task).model.params()["hidden_sizes"] == [256, 128]
