"""Console-script behaviour of the issue-8 switches: ``--model dnae``, ``--pretrain``, multi-label
names in ``evaluate.metrics`` (resolved config and one-line errors)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from conftest import run_biodl


def run(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return run_biodl(*args, cwd=cwd)


def test_print_config_shows_the_new_keys() -> None:
    res = run("train", "--task", "multilabel", "--model", "dnae", "--pretrain", "autoencoder", "--pretrain-epochs", "4",
              "--set", "evaluate.metrics=[hamming_loss,precision_at_3,auroc]", "--print-config")  # fmt: skip
    assert res.returncode == 0, res.stderr
    out = res.stdout
    assert "name: dnae" in out and "layers: null" in out and "nonneg: projection" in out and "dnae_epochs: 300" in out
    assert "pretrain: autoencoder" in out and "pretrain_epochs: 4" in out and "pretrain_noise: masking" in out
    assert "- hamming_loss" in out and "- precision_at_3" in out


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--task", "classification", "--set", "evaluate.metrics=[hamming_loss]"],
         "evaluate.metrics: 'hamming_loss' is a multilabel metric and cannot score task classification; "
         "metrics for task classification: accuracy, auprc, auroc"),
        (["--task", "multilabel", "--set", "evaluate.metrics=[rmse]"], "metrics for task multilabel: accuracy"),
        (["--task", "multilabel", "--model", "dnae", "--ensemble-size", "2"], "train.ensemble_size must be 1"),
        (["--task", "regression", "--model", "dnae"], "model 'dnae' does not do regression"),
        (["--data-type", "sequence", "--pretrain", "autoencoder"], "model 'deepbind' has no dense layers to pre-train"),
        (["--task", "multilabel", "--model", "mlp", "--ensemble-size", "2", "--set",
          "train.ensemble_variants=[{}, {numeric_encodng: ple}]"],
         "unknown key 'train.ensemble_variants[1].numeric_encodng' "
         "(did you mean 'train.ensemble_variants[1].numeric_encoding'?)"),
        (["--task", "multilabel", "--model", "mlp", "--set", "train.ensemble_variants=[{numeric_encoding: pl}]"],
         "train.ensemble_variants[0].numeric_encoding: Input should be 'none' or 'ple' (got 'pl')"),
    ],
)  # fmt: skip
def test_config_errors_are_one_line(args: list[str], expected: str, tmp_path: Path) -> None:
    res = run("train", *args, "--print-config", cwd=tmp_path)
    assert res.returncode == 2, res.stdout
    lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in res.stderr
    assert expected in lines[0]
