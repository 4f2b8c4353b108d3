"""The line sampler varies one key at a time; seeded samplers; storages and stale trials."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import optuna
import pytest
from optuna.trial import TrialState

from biodl.config import ExperimentConfig
from biodl.errors import ConfigError
from biodl.tune.samplers import SamplerContext, make_sampler
from biodl.tune.space import SearchSpace
from biodl.tune.spec import CategoricalSpec, FloatSpec, IntSpec
from biodl.tune.study import StudyTarget, open_storage, open_study

SPACE = SearchSpace(
    {
        "train.lr": FloatSpec(type="float", low=1e-4, high=1e-1, log=True),
        "train.batch_size": CategoricalSpec(type="categorical", choices=[32, 64, 128]),
        "model.dropout": FloatSpec(type="float", low=0.1, high=0.7),
        "model.hidden_sizes": IntSpec(type="int", low=8, high=64, log=True),
    }
)
BASE = ExperimentConfig.from_dict({"model": {"name": "mlp", "hidden_sizes": [16, 8], "dropout": 0.5}}).to_dict()


def _score(params: dict[str, Any]) -> float:
    """A synthetic objective (maximised) with its optimum at lr 1e-2, batch 64, dropout 0.25, width 32."""
    import math

    return -(
        (math.log10(params["train.lr"]) + 2) ** 2
        + (params["train.batch_size"] != 64)
        + (params["model.dropout"] - 0.25) ** 2
        + (math.log2(params["model.hidden_sizes"]) - 5) ** 2
    )


def test_line_sampler_varies_one_key_at_a_time() -> None:
    sampler = make_sampler("line", SamplerContext(SPACE, BASE, seed=0, line_points=3))
    study = optuna.create_study(direction="maximize", sampler=sampler)
    grids = {p.key: p.grid(3) for p in SPACE}
    sweep = sum(len(g) for g in grids.values())
    assert sweep == 3 + 3 + 3 + 3
    for _ in range(sweep):
        trial = study.ask()
        params = SPACE.suggest(trial)
        study.tell(trial, _score(params))
    trials = study.get_trials()
    blocks = [trials[i : i + 3] for i in range(0, sweep, 3)]
    for key, block in zip(SPACE.keys, blocks):
        # the block's key takes every grid value, in order
        assert [t.params[key] for t in block] == grids[key]
        for t in block:
            others = {k: v for k, v in t.params.items() if k != key}
            assert others == {k: v for k, v in block[0].params.items() if k != key}, f"{key} block varied more than {key}"
    # the first key is swept with the others at the base config (lr null -> Adam's 1e-3 is outside
    # the 3-point grid, so the lr default is the grid's middle; batch 128, dropout 0.5, width 16)
    assert {k: v for k, v in blocks[0][0].params.items() if k != "train.lr"} == {
        "train.batch_size": 128,
        "model.dropout": 0.5,
        "model.hidden_sizes": 16,
    }
    # later keys run at the best values found before them
    best_lr = max(blocks[0], key=lambda t: t.value or 0).params["train.lr"]
    assert {t.params["train.lr"] for t in blocks[1]} == {best_lr}
    assert study.best_value == max(t.value for t in trials if t.value is not None)


def test_seeded_samplers_are_reproducible_per_trial_number() -> None:
    def draws(name: str) -> list[dict[str, Any]]:
        study = optuna.create_study(sampler=make_sampler(name, SamplerContext(SPACE, BASE, seed=3)))
        out = []
        for _ in range(4):
            trial = study.ask()
            out.append(SPACE.suggest(trial))
            study.tell(trial, 0.0)
        return out

    for name in ("random", "tpe"):
        first, again = draws(name), draws(name)
        assert first == again
        assert len({tuple(sorted(d.items())) for d in first}) == 4  # trials differ from each other


def test_storage_errors_are_one_line(tmp_path: Path) -> None:
    with pytest.raises(
        ConfigError, match=r"^cannot open study storage sqlite:////nonexistent_dir_biodl/s\.db: unable to open"
    ) as info:
        open_storage("sqlite:////nonexistent_dir_biodl/s.db", tmp_path)
    assert "\n" not in str(info.value)
    with pytest.raises(ConfigError, match=r"cannot open study storage postgresql://user:\*\*\*@127\.0\.0\.1:9/db") as info:
        open_storage("postgresql://user:secret@127.0.0.1:9/db", tmp_path)
    assert "secret" not in str(info.value)
    with pytest.raises(ConfigError, match=r"cannot open study storage nosuchdb://x"):
        open_storage("nosuchdb://x", tmp_path)
    with pytest.raises(ConfigError, match=r"directory .* does not exist"):
        open_storage(str(tmp_path / "missing" / "study.log"), tmp_path)
    with pytest.raises(ConfigError, match=r"cannot interpret 'study'"):
        open_storage("study", tmp_path)
    journal = open_storage(f"journal://{tmp_path / 'j.log'}", tmp_path)
    assert isinstance(journal, optuna.storages.JournalStorage)


@pytest.mark.filterwarnings("ignore:.*experimental feature", "ignore:Heartbeat of storage")
def test_killed_workers_running_trial_is_marked_failed(tmp_path: Path) -> None:
    """A RUNNING trial whose heartbeat went stale (its worker was killed) becomes FAIL on the next start."""
    url = f"sqlite:///{tmp_path / 'study.db'}"
    storage = optuna.storages.RDBStorage(url, heartbeat_interval=1, grace_period=1)
    study = optuna.create_study(storage=storage, study_name="s", direction="maximize")
    orphan = study.ask()
    storage.record_heartbeat(orphan._trial_id)  # what the killed worker's heartbeat thread last did
    study.tell(study.ask(), 0.5)
    # the storage may compare against a clock with whole-second resolution (SQLite's CURRENT_TIMESTAMP):
    # wait well past the 1-second grace period
    time.sleep(2.5)
    cfg = ExperimentConfig.from_dict({"tune": {"storage": url, "study_name": "s", "heartbeat_interval": 1, "grace_period": 1}})
    joined = open_study(cfg, tmp_path, SPACE, StudyTarget("auroc", "maximize", None), optuna.samplers.RandomSampler())
    states = {t.number: t.state for t in joined.get_trials()}
    assert states == {0: TrialState.FAIL, 1: TrialState.COMPLETE}
    # a worker asking for another metric or direction is refused
    with pytest.raises(ConfigError, match=r"optimises 'auroc', not 'mcc'"):
        open_study(cfg, tmp_path, SPACE, StudyTarget("mcc", "maximize", None), optuna.samplers.RandomSampler())
    with pytest.raises(ConfigError, match=r"was created to maximize"):
        open_study(cfg, tmp_path, SPACE, StudyTarget("rmse", "minimize", None), optuna.samplers.RandomSampler())
