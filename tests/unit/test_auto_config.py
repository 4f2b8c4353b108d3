"""``model.name: auto`` and ``train.loss: huber`` in the config: defaults, checks, the masked Huber loss."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from biodl.config import ExperimentConfig
from biodl.data import DATA_TYPES
from biodl.errors import BiodlError
from biodl.experiment.portfolio import candidate_config, tail_kurtosis
from biodl.training.losses import masked_loss


def _cfg(**sections: object) -> ExperimentConfig:
    return ExperimentConfig.from_dict({"data": {"type": "molecule", "task": "regression"}, **sections})


def test_auto_is_the_default_where_a_portfolio_exists() -> None:
    pytest.importorskip("rdkit")
    cfg = _cfg()
    assert DATA_TYPES["molecule"].portfolio and cfg.model.name == "auto"
    assert cfg.data.molecule.featurizer == ["morgan_counts", "rdkit2d"]  # the run's (baseline's) features
    assert cfg.train.time_budget is not None and cfg.train.time_budget > 0
    assert _cfg(model={"name": "ffn"}).model.name == "ffn"  # an explicit model is kept


def test_auto_refuses_parameters_and_ensembles() -> None:
    with pytest.raises((BiodlError, ValueError), match="no model parameters"):
        _cfg(model={"name": "auto", "depth": 3})
    with pytest.raises((BiodlError, ValueError), match="ensemble_size"):
        _cfg(model={"name": "auto"}, train={"ensemble_size": 3})


def test_candidate_config_merges_train_and_data() -> None:
    pytest.importorskip("rdkit")
    base = _cfg(train={"max_epochs": 7})
    cand = candidate_config(base, {"name": "dmpnn", "depth": 4, "train": {"ensemble_size": 2},
                                   "data": {"molecule": {"featurizer": ["graph", "rdkit2d"]}}})  # fmt: skip
    assert cand.model.name == "dmpnn" and cand.model.params()["depth"] == 4
    assert cand.train.ensemble_size == 2 and cand.train.max_epochs == 7
    assert cand.data.molecule.featurizer == ["graph", "rdkit2d"]


def test_huber_is_a_regression_loss() -> None:
    with pytest.raises((BiodlError, ValueError), match="regression loss"):
        ExperimentConfig.from_dict({"data": {"task": "classification"}, "model": {"name": "mlp"}, "train": {"loss": "huber"}})
    scores = torch.tensor([[0.0], [1.0], [5.0]])
    y = torch.tensor([[0.5], [float("nan")], [0.0]])
    got = masked_loss("regression", scores, y, huber_delta=1.0)
    want = F.huber_loss(scores[[0, 2]], y[[0, 2]], delta=1.0)
    assert torch.isclose(got, want)
    full = masked_loss("regression", scores, torch.zeros(3, 1), complete=True, huber_delta=1.0)
    assert torch.isclose(full, F.huber_loss(scores, torch.zeros(3, 1)))


def test_tail_kurtosis_flags_heavy_tails() -> None:
    rng = np.random.default_rng(0)
    assert abs(tail_kurtosis(rng.normal(size=(5000, 1)))) < 0.3
    assert tail_kurtosis(rng.standard_t(3, size=(5000, 1))) > 1.0
    assert tail_kurtosis(np.full((10, 1), np.nan)) == -math.inf


def test_cpu_budget_clock_counts_per_thread_and_is_bounded_by_wall_time() -> None:
    """``time_budget_clock: cpu`` counts CPU seconds per PyTorch thread (so a many-core machine does not spend the
    budget faster than elapsed time) and never lags elapsed time by more than CPU_CLOCK_MAX_STRETCH."""
    import time

    import torch

    from biodl.training.clock import CPU_CLOCK_MAX_STRETCH, budget_clock

    before = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        w0 = time.monotonic()
        clock = budget_clock("cpu")
        t0 = time.process_time()
        while time.process_time() - t0 < 0.3:  # one busy thread: 0.3 CPU-s = 0.15 per PyTorch thread
            pass
        busy, wall = clock(), time.monotonic() - w0
        assert max(0.15, wall / CPU_CLOCK_MAX_STRETCH) - 0.02 <= busy <= max(0.17, wall / CPU_CLOCK_MAX_STRETCH) + 0.02
        time.sleep(1.5)  # idle: no CPU, but elapsed time still moves the clock (at 1 / CPU_CLOCK_MAX_STRETCH)
        assert clock() >= (time.monotonic() - w0) / CPU_CLOCK_MAX_STRETCH - 0.02 > busy + 0.1
    finally:
        torch.set_num_threads(before)
    assert budget_clock("wall") is time.monotonic
