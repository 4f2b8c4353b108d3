"""``evaluate.metrics`` per task: multi-label metric names are valid for multi-label targets, and a
name that cannot score the task is a config error naming the valid metrics."""

from __future__ import annotations

import numpy as np
import pytest

from biodl.config import ExperimentConfig
from biodl.errors import ConfigError
from biodl.metrics.compute import task_metric_names
from biodl.metrics.multilabel import multilabel_metric_names, multilabel_task_metrics, split_metric_names

MATRIX = ["hamming_loss", "ranking_loss", "one_error", "coverage", "average_precision", "micro_f1", "macro_f1",
          "precision_at_1", "precision_at_3", "precision_at_5"]  # fmt: skip


def _cfg(task: str, metrics: list[str]) -> ExperimentConfig:
    return ExperimentConfig.from_dict({"data": {"task": task}, "evaluate": {"metrics": metrics}})


def test_multilabel_metric_names_are_valid_for_multilabel_targets() -> None:
    assert set(MATRIX) == set(multilabel_metric_names())
    cfg = _cfg("multilabel", [*MATRIX, "auroc", "f1"])
    assert cfg.evaluate.metrics is not None and len(cfg.evaluate.metrics) == len(MATRIX) + 2
    assert set(MATRIX) | {"auroc", "accuracy"} <= set(task_metric_names("multilabel"))
    assert "rmse" not in task_metric_names("multilabel")


@pytest.mark.parametrize(
    ("task", "name", "kind"),
    [("classification", "hamming_loss", "multilabel"), ("regression", "average_precision", "multilabel"),
     ("multilabel", "rmse", "regression"), ("regression", "auroc", "binary")],
)  # fmt: skip
def test_metric_of_another_task_is_a_config_error_naming_valid_metrics(task: str, name: str, kind: str) -> None:
    with pytest.raises(ConfigError) as info:
        _cfg(task, [name])
    message = str(info.value)
    assert f"'{name}' is a {kind}" in message and f"cannot score task {task}" in message
    for valid in task_metric_names(task):
        assert valid in message.split("metrics for task")[-1]


def test_unknown_metric_suggests_and_lists_the_task_metrics() -> None:
    expected = r"unknown metric 'haming_loss' \(did you mean 'hamming_loss'\?\); metrics for task multilabel: .*ranking_loss"
    with pytest.raises(ConfigError, match=expected):
        _cfg("multilabel", ["haming_loss"])
    with pytest.raises(ConfigError, match="unknown metric"):
        ExperimentConfig.from_dict({"evaluate": {"metrics": ["nope"]}})  # no task: only the name is checked


def test_chosen_metrics_of_both_kinds_are_computed() -> None:
    rng = np.random.default_rng(0)
    Y = (rng.random((60, 5)) < 0.4).astype(float)
    P = np.clip(Y * 0.6 + rng.random((60, 5)) * 0.5, 0, 1)
    assert split_metric_names(None) == (None, None)
    assert split_metric_names(["Hamming-Loss", "auroc"]) == (["auroc"], ["hamming_loss"])
    both = multilabel_task_metrics(Y, P, target_names=list("abcde"), metrics=["hamming_loss", "auroc"])
    assert set(both) == {"hamming_loss", "auroc", "n", "per_task"} and set(both["per_task"]["a"]) == {"auroc"}
    matrix_only = multilabel_task_metrics(Y, P, metrics=["ranking_loss", "precision_at_3"])
    assert set(matrix_only) == {"ranking_loss", "precision_at_3", "n"}
    everything = multilabel_task_metrics(Y, P)
    assert set(MATRIX) | {"auroc", "accuracy", "per_task"} <= set(everything)
