"""Plain ``biodl train`` on a table: ``model.name: auto`` (the tabular portfolio, docs/defaults-tables.md) for
every task; the default network whenever a model is named or a model section is written."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from biodl.config import AUTO, ExperimentConfig
from biodl.data.tabular import Tabular
from biodl.experiment.portfolio import candidate_config


def _tabular(task: str, **sections: dict[str, object]) -> ExperimentConfig:
    raw: dict[str, object] = {"data": {"type": "tabular", "task": task, "target_columns": ["y"]}, **sections}
    return ExperimentConfig.from_dict(raw)


def test_plain_tables_resolve_to_auto() -> None:
    for task in ("classification", "multilabel", "regression"):
        cfg = _tabular(task)
        assert cfg.model.name == AUTO and cfg.train.ensemble_size == 1
        assert ExperimentConfig.from_dict(cfg.to_dict()).model.name == AUTO  # the resolved config re-validates


def test_named_models_and_model_sections_keep_the_single_network() -> None:
    assert _tabular("multilabel", model={"name": "dnae"}).model.name == "dnae"
    named = _tabular("classification", model={"name": "mlp"})  # the example configs: the schema's defaults
    assert named.train.weight_decay == 0.0 and named.model.params()["hidden_sizes"] == [256, 128]
    tuned = _tabular("classification", model={"hidden_sizes": [16]})  # a model section without a name: the network
    assert tuned.model.name == "mlp" and tuned.model.params()["hidden_sizes"] == [16]
    assert _tabular("regression").model.name == AUTO  # regression tables too (diabetes, poll averages)


def _candidate(task: str, index: int) -> dict[str, Any]:
    cands = [dict(c) for c in Tabular.portfolio if task in c.get("tasks", [task])]  # type: ignore[operator]
    cand = cands[index]
    cand.pop("tasks", None)
    return cand


def test_candidates_resolve_and_user_train_settings_win() -> None:
    base = _tabular("multilabel", train={"max_epochs": 3})
    first = candidate_config(base, _candidate("multilabel", 0))
    assert first.model.name == "mlp" and first.model.params()["hidden_sizes"] == [256]
    assert first.train.ensemble_size == 10 and first.train.weight_decay == 1e-4
    assert first.train.ensemble_variants == [{}, {"numeric_encoding": "ple", "init": "torch_default"}]
    assert first.train.max_epochs == 3  # the user's --max-epochs wins over the candidate's 200
    linear = candidate_config(_tabular("classification"), _candidate("classification", 0))
    assert linear.model.params()["hidden_sizes"] == [] and linear.train.weight_decay > 0
    assert linear.train.optimizer == "lbfgs" and linear.data.normalize.clip == 2.5 and linear.data.normalize.rescale
    assert _tabular("classification").data.normalize.clip is None  # the run (and its baseline) keep plain z-scores
    multilabel = [c for c in Tabular.portfolio if "multilabel" in c.get("tasks", ["multilabel"])]  # type: ignore[operator]
    assert all(c.get("train", {}).get("optimizer") != "lbfgs" for c in multilabel)  # type: ignore[union-attr]


def test_tune_on_a_plain_table_searches_the_default_network() -> None:
    from biodl.cli.main import build_parser
    from biodl.cli.tune import tune_config

    base = ["tune", "--data-path", "t.csv", "--task", "classification", "--target-columns", "y", "--output-dir", "o"]
    assert tune_config(build_parser().parse_args(base)).model.name == "mlp"  # auto has no settings to search
    named = tune_config(build_parser().parse_args([*base, "--model", "auto"]))
    assert named.model.name == AUTO  # asked for explicitly: kept


def test_the_encoded_candidate_is_for_narrow_tables_only(capsys: Any) -> None:
    from types import SimpleNamespace

    import numpy as np

    from biodl.experiment.portfolio import candidates_for

    cfg = _tabular("classification")
    inputs = SimpleNamespace(modality=Tabular(cfg.data), targets=SimpleNamespace(kind="multiclass"))

    def offered(features: int) -> list[dict[str, Any]]:
        prepared = SimpleNamespace(in_shape=(features,), y_fit=np.zeros((4, 1)))
        return candidates_for(cfg, inputs, SimpleNamespace(), prepared)  # type: ignore[arg-type]

    narrow, wide = offered(64), offered(765)  # scikit-learn's digits; PBMC's genes
    encoded = [c for c in narrow if c.get("numeric_encoding") == "ple"]
    assert len(encoded) == 1 and encoded[0]["train"]["ensemble_size"] == 5 and "max_features" not in encoded[0]
    assert [c for c in narrow if c.get("numeric_encoding") != "ple"] == wide  # only the encoded one is left out
    assert "left out: 765 input features, it is meant for at most 256" in capsys.readouterr().out
    plain = [c for c in wide if c.get("hidden_sizes") is None]  # the model's own defaults, five of them
    assert len(plain) == 1 and plain[0]["train"] == {"ensemble_size": 5}
    assert all("tasks" not in c for c in narrow)  # the portfolio's filter keys are not model settings


def test_heavy_tailed_regression_adds_a_huber_variant_of_the_first_candidate() -> None:
    """FreeSolv-like targets (excess kurtosis > 1 on the training rows) get the first candidate again with
    the Huber loss, second in the portfolio; light tails, classification, or a loss the user set: none."""
    from types import SimpleNamespace

    import numpy as np
    import pandas as pd

    from biodl.experiment.portfolio import HEAVY_TAIL_KURTOSIS, candidates_for, tail_kurtosis

    esol = pd.read_csv(Path(__file__).parents[1] / "data" / "esol_subset.csv")["logp"].to_numpy()[:, None]
    heavy = np.random.default_rng(0).standard_t(3, size=(400, 1))
    assert tail_kurtosis(esol) < HEAVY_TAIL_KURTOSIS < tail_kurtosis(heavy)

    def offered(y: np.ndarray, kind: str = "regression", **train: object) -> list[dict[str, Any]]:
        cfg = _tabular("regression" if kind == "regression" else "classification", **({"train": train} if train else {}))
        inputs = SimpleNamespace(modality=Tabular(cfg.data), targets=SimpleNamespace(kind=kind))
        prepared = SimpleNamespace(in_shape=(8,), y_fit=y)
        split = SimpleNamespace(train=np.arange(len(y)))
        return candidates_for(cfg, inputs, split, prepared)  # type: ignore[arg-type]

    light = offered(esol)
    with_huber = offered(heavy)
    assert len(with_huber) == len(light) + 1
    first, huber = with_huber[0], with_huber[1]
    assert huber["train"]["loss"] == "huber" and {**huber, "train": first.get("train")} == first
    assert with_huber[2:] == light[1:]
    assert not any((c.get("train") or {}).get("loss") for c in light)
    assert offered(heavy, loss="mse") == light  # the user's loss wins
    # only the training rows decide: the heavy tail in the other rows is not looked at
    mixed = np.concatenate([esol, heavy])
    cfg = _tabular("regression")
    inputs = SimpleNamespace(modality=Tabular(cfg.data), targets=SimpleNamespace(kind="regression"))
    only_esol = SimpleNamespace(train=np.arange(len(esol)))
    got = candidates_for(cfg, inputs, only_esol, SimpleNamespace(in_shape=(8,), y_fit=mixed))  # type: ignore[arg-type]
    assert got == light
