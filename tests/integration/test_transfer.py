"""Transfer learning on real images (BreastMNIST): pretrained weights are loaded and reported,
``freeze: N`` freezes the first N encoder stages, and frozen batch-norm statistics do not move."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from biodl import Experiment
from biodl.models import build_model
from conftest import shared_path

CNN = {"name": "cnn", "channels": [8, 16, 16], "convs_per_block": 1, "dense_units": 16}


def pretrained_file(tmp_path: Path) -> tuple[Path, dict[str, torch.Tensor]]:
    """A 'pretrained' CNN with non-trivial batch-norm statistics and a 3-class head (the run has 1 output)."""
    torch.manual_seed(1)
    src = build_model("cnn", (1, 28, 28), 3, {k: v for k, v in CNN.items() if k != "name"})
    for m in src.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.copy_(torch.randn_like(m.running_mean) * 0.3)
            m.running_var.copy_(1 + torch.rand_like(m.running_var))
    state = {k: v.contiguous() for k, v in src.state_dict().items()}
    path = tmp_path / "pretrained.safetensors"
    save_file(state, str(path))
    return path, state


def test_frozen_stages_keep_weights_and_batch_norm_statistics(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    npz = shared_path("images", "breastmnist", "breastmnist_train_val.npz")
    weights, state = pretrained_file(tmp_path)
    result = Experiment(
        data={"type": "image", "path": [str(npz)]},
        model={**CNN, "pretrained_weights": str(weights), "freeze": 1},
        train={"max_epochs": 2, "batch_size": 32, "progress_bar": False, "early_stopping": False, "seed": 0},
        evaluate={"baselines": [], "report": False, "plots": False},
    ).fit(tmp_path / "run")
    assert result.bundle is not None
    trained = result.bundle.model.state_dict()
    # stage 1 (blocks.0) is frozen: weights and running statistics as in the file
    for name in ("blocks.0.0.weight", "blocks.0.1.weight", "blocks.0.1.running_mean", "blocks.0.1.running_var"):
        assert torch.equal(trained[name], state[name]), name
    # stage 2 learns, and its batch norm tracks the new data
    assert not torch.equal(trained["blocks.1.0.weight"], state["blocks.1.0.weight"])
    assert not torch.allclose(trained["blocks.1.1.running_mean"], state["blocks.1.1.running_mean"])
    # the record of what was loaded, skipped and frozen
    rec = json.loads((tmp_path / "run" / "transfer.json").read_text())
    assert rec["pretrained"]["weights"] == str(weights)
    assert "blocks.0.0.weight" in rec["pretrained"]["loaded_names"]
    assert any(s.startswith("head.weight (3, 16) → (1, 16)") for s in rec["pretrained"]["skipped"])
    assert rec["frozen_stages"] == [1] and rec["encoder_stages"] == 3
    model = build_model("cnn", (1, 28, 28), 1, {k: v for k, v in CNN.items() if k != "name"})
    n_stage1 = sum(p.numel() for p in model.blocks[0].parameters())
    assert rec["frozen_parameters"] == n_stage1
    assert set(rec["frozen_names"]) == {n for n, _ in model.blocks[0].named_parameters(prefix="blocks.0")}
    out = capsys.readouterr().out
    assert "transfer learning: loaded" in out and "frozen: the first 1 of 3 encoder stage(s)" in out


def test_freeze_counts_stages_from_the_input_side() -> None:
    params = {"encoder": "vgg11", "classifier_width": 8, "pool_size": 1}
    first2 = build_model("vgg", (3, 32, 32), 2, {**params, "freeze": 2})
    stages = first2.encoder_stages()
    assert len(stages) == 5
    assert not any(p.requires_grad for s in stages[:2] for p in s.parameters())
    assert all(p.requires_grad for s in stages[2:] for p in s.parameters())
    rep = first2.transfer_report()
    assert rep["frozen_stages"] == [1, 2]
    assert rep["frozen_parameters"] == sum(p.numel() for s in stages[:2] for p in s.parameters())
    # the former meaning under its own name: train only the top 2 stages
    top2 = build_model("vgg", (3, 32, 32), 2, {**params, "trainable_stages": 2})
    stages = top2.encoder_stages()
    assert not any(p.requires_grad for s in stages[:3] for p in s.parameters())
    assert all(p.requires_grad for s in stages[3:] for p in s.parameters())
    from biodl.errors import ConfigError

    with pytest.raises(ConfigError, match="give one of them"):
        build_model("vgg", (3, 32, 32), 2, {**params, "trainable_stages": 2, "freeze": 1})
