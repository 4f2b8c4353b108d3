"""Search-space parsing, validation errors, the default space and list-valued keys."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import optuna
import pytest

from biodl.cli.main import build_parser
from biodl.cli.tune import load_search_space, tune_config
from biodl.config import ExperimentConfig
from biodl.errors import ConfigError
from biodl.tune.space import Param, SearchSpace, default_space
from biodl.tune.spec import CategoricalSpec, FloatSpec, IntSpec

BASE: dict[str, Any] = {"data": {"path": ["x.csv"], "task": "classification", "target_columns": ["y"]}}


def with_space(space: Any, **tune: Any) -> ExperimentConfig:
    return ExperimentConfig.from_dict({**BASE, "tune": {"space": space, **tune}})


def test_space_is_parsed_into_typed_specs() -> None:
    cfg = with_space(
        {
            "train.lr": {"type": "float", "low": 1e-4, "high": 0.1, "log": True},
            "model.hidden_sizes": {"type": "int", "low": 16, "high": 64, "step": 16},
            "train.optimizer": ["adam", "sgd"],
            "data.normalize.log1p": {"type": "categorical", "choices": [True, False]},
        }
    )
    space = cfg.tune.space
    assert isinstance(space["train.lr"], FloatSpec) and space["train.lr"].log
    assert isinstance(space["model.hidden_sizes"], IntSpec) and space["model.hidden_sizes"].step == 16
    assert isinstance(space["train.optimizer"], CategoricalSpec) and space["train.optimizer"].choices == ["adam", "sgd"]
    assert list(SearchSpace.from_config(cfg).keys) == list(space)


@pytest.mark.parametrize(
    ("space", "pattern"),
    [
        (
            {"train.lrr": {"type": "float", "low": 0.1, "high": 1}},
            r"tune\.space: unknown key 'train\.lrr' \(did you mean 'train\.lr'\?\)",
        ),
        ({"model.hiden_sizes": [[8]]}, r"unknown key 'model\.hiden_sizes' \(did you mean 'model\.hidden_sizes'\?\)"),
        ({"tune.n_trials": [1, 2]}, r"unknown key 'tune\.n_trials'"),
        ({"train.lr": {"type": "flot", "low": 0.1, "high": 1}}, r"train\.lr: unknown type 'flot' \(did you mean 'float'\?\)"),
        ({"train.lr": {"low": 0.1, "high": 1}}, r"train\.lr: missing 'type'"),
        ({"train.lr": 0.1}, r"train\.lr: expected a mapping"),
        ({"train.lr": {"type": "float", "low": 1, "high": 0.1}}, r"train\.lr: low \(1\) must not exceed high \(0\.1\)"),
        ({"train.lr": {"type": "float", "low": 0, "high": 0.1, "log": True}}, r"train\.lr: log: true needs low > 0"),
        ({"train.lr": {"type": "float", "low": "a", "high": 0.1}}, r"train\.lr\.low: Input should be a valid number"),
        ({"train.lr": {"type": "float", "low": 0.1, "high": 1, "lg": True}}, r"unknown field 'lg' .*did you mean 'log'"),
        ({"train.batch_size": {"type": "int", "low": 8, "high": 64, "step": 2, "log": True}}, r"log: true needs step 1"),
        ({"train.batch_size": {"type": "categorical", "choices": []}}, r"train\.batch_size\.choices"),
        ({"train.batch_size": [16, 16]}, r"choice 16 is listed twice"),
        ({"train.batch_size": [16, "big"]}, r"tune\.space\.train\.batch_size: value 'big' gives an invalid config"),
        ({"model.dropout": {"type": "float", "low": 0.1, "high": 1.5}}, r"tune\.space\.model\.dropout: value 1\.5"),
    ],
)
def test_bad_spaces_name_the_key(space: dict[str, Any], pattern: str) -> None:
    with pytest.raises(ConfigError, match=pattern):
        with_space(space)


def test_bad_tune_settings() -> None:
    with pytest.raises(ConfigError, match=r"tune\.sampler: unknown sampler 'tpee' \(did you mean 'tpe'\?\)"):
        ExperimentConfig.from_dict({**BASE, "tune": {"sampler": "tpee"}})
    with pytest.raises(ConfigError, match=r"unknown key 'tune\.n_trial' \(did you mean 'tune\.n_trials'\?\)"):
        ExperimentConfig.from_dict({**BASE, "tune": {"n_trial": 3}})
    assert ExperimentConfig.from_dict({**BASE, "tune": {"pruner": "successive-halving"}}).tune.pruner == "successive-halving"


def test_default_space_for_mlp_and_width_lists() -> None:
    cfg = ExperimentConfig.from_dict({**BASE, "model": {"name": "mlp", "hidden_sizes": [256, 128]}})
    space = default_space(cfg)
    assert list(space) == ["train.lr", "train.batch_size", "model.dropout", "model.hidden_sizes"]
    search = SearchSpace(space)
    raw = search.apply(cfg.to_dict(), {"model.hidden_sizes": 64, "train.lr": 0.01, "model.dropout": 0.25})
    assert raw["model"]["hidden_sizes"] == [64, 32] and raw["train"]["lr"] == 0.01 and raw["model"]["dropout"] == 0.25
    assert cfg.to_dict()["model"]["hidden_sizes"] == [256, 128]  # the base is not modified
    width = search.params[3]
    assert width.grid(5) == [32, 64, 128, 256, 512]
    assert width.base_point(cfg.to_dict(), 5) == 256
    lr = search.params[0]
    assert lr.base_point(cfg.to_dict(), 5) == pytest.approx(1e-3)  # train.lr null -> Adam's default
    assert lr.grid(4) == pytest.approx([1e-4, 1e-3, 1e-2, 1e-1])


def test_grids_snap_to_steps_and_list_choices_round_trip() -> None:
    assert Param("a", IntSpec(type="int", low=1, high=4)).grid(5) == [1, 2, 3, 4]
    assert Param("a", FloatSpec(type="float", low=0.0, high=1.0, step=0.25)).grid(3) == [0.0, 0.5, 1.0]
    lists = SearchSpace({"model.hidden_sizes": CategoricalSpec(type="categorical", choices=[[8], [16, 8]])})
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=1))
    values = lists.suggest(study.ask())
    decoded = lists.decoded(values)["model.hidden_sizes"]
    assert decoded in ([8], [16, 8])
    raw = lists.apply(ExperimentConfig.from_dict(BASE).to_dict(), values)
    assert raw["model"]["hidden_sizes"] == decoded


def test_search_space_file_forms_and_cli_assembly(tmp_path: Path) -> None:
    bare = tmp_path / "bare.yaml"
    bare.write_text("train.lr: {type: float, low: 1.0e-4, high: 1.0e-2, log: true}\n")
    section = tmp_path / "section.yaml"
    section.write_text("n_trials: 7\nspace:\n  train.batch_size: [32, 64]\n")
    assert load_search_space(bare) == {"space": {"train.lr": {"type": "float", "low": 1e-4, "high": 1e-2, "log": True}}}
    assert load_search_space(section)["n_trials"] == 7
    args = build_parser().parse_args(
        ["tune", "--data-path", "x.csv", "--task", "regression", "--target-columns", "y", "--output-dir", str(tmp_path),
         "--search-space", str(section), "--sampler", "line", "--pruner", "successive-halving", "--n-trials", "3",
         "--storage", "journal:///tmp/x.log", "--study-name", "s1", "--timeout", "60", "--set", "tune.line_points=3"]
    )  # fmt: skip
    cfg = tune_config(args)
    assert (cfg.tune.n_trials, cfg.tune.sampler, cfg.tune.pruner, cfg.tune.study_name) == (3, "line", "successive-halving", "s1")
    assert cfg.tune.storage == "journal:///tmp/x.log" and cfg.tune.timeout == 60 and cfg.tune.line_points == 3
    assert list(cfg.tune.space) == ["train.batch_size"]
    empty = tmp_path / "empty.yaml"
    empty.write_text("space: {}\n")
    with pytest.raises(ConfigError, match="non-empty mapping"):
        load_search_space(empty)
