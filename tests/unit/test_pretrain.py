"""Layer-wise pre-training of dense layers as denoising auto-encoders (``train.pretrain``)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

from biodl.config import ExperimentConfig, TrainConfig
from biodl.errors import ConfigError
from biodl.models import build_model
from biodl.training.pretrain import pretrain_dense_layers, pretrain_from_config, supports_pretraining
from conftest import PBMC


@pytest.fixture(scope="module")
def pbmc_X() -> np.ndarray:
    """The shipped PBMC expression matrix (700 cells x 765 genes), standardised per gene."""
    import anndata

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        X = np.asarray(anndata.read_h5ad(PBMC).X, dtype=np.float32)
    return (X - X.mean(0)) / np.where(X.std(0) < 1e-8, 1.0, X.std(0))


@pytest.mark.parametrize("batch_norm", [True, False])
def test_pretraining_changes_every_dense_layer_and_lowers_its_loss(pbmc_X: np.ndarray, batch_norm: bool) -> None:
    torch.manual_seed(0)
    model = build_model("mlp", (pbmc_X.shape[1],), 10, {"hidden_sizes": [64, 16], "batch_norm": batch_norm})
    blocks = model.dense_blocks()  # type: ignore[operator]
    before = [b[0].weight.detach().clone() for b in blocks]
    head = model.head.weight.detach().clone()  # type: ignore[union-attr]
    report = pretrain_dense_layers(model, pbmc_X[:500], epochs=3, noise="masking", noise_level=0.2, batch_size=64, seed=0)
    assert [(layer["in"], layer["out"]) for layer in report["layers"]] == [(765, 64), (64, 16)]
    for layer in report["layers"]:
        assert len(layer["loss"]) == 3 and layer["loss"][-1] < layer["loss"][0]
    for b, w0 in zip(blocks, before):
        assert not torch.allclose(b[0].weight, w0)  # the pre-trained weights differ from the random init
    assert torch.equal(model.head.weight, head)  # the output layer is left to supervised training
    assert model.training  # the model's mode is restored
    if batch_norm:
        assert float(blocks[0][1].running_var.mean()) != 1.0  # batch-norm statistics came along


def test_pretraining_is_seeded(pbmc_X: np.ndarray) -> None:
    weights = []
    for _ in range(2):
        torch.manual_seed(1)
        model = build_model("mlp", (765,), 3, {"hidden_sizes": [32]})
        pretrain_from_config(model, pbmc_X[:200], TrainConfig(pretrain="autoencoder", pretrain_epochs=1, seed=5))
        weights.append(model.dense_blocks()[0][0].weight.detach().clone())  # type: ignore[operator]
    assert torch.equal(weights[0], weights[1])


def test_config_switch_and_models_without_dense_layers() -> None:
    cfg = ExperimentConfig.from_dict({"train": {"pretrain": "autoencoder", "pretrain_epochs": 5}})
    assert cfg.train.pretrain == "autoencoder" and cfg.train.pretrain_noise == "masking"
    with pytest.raises(ConfigError, match=r"train\.pretrain"):
        ExperimentConfig.from_dict({"train": {"pretrain": "rbm"}})
    raw = {"data": {"type": "sequence"}, "model": {"name": "deepbind"}, "train": {"pretrain": "autoencoder"}}
    with pytest.raises(ConfigError, match=r"model 'deepbind' has no dense layers to pre-train \(models that have: .*mlp"):
        ExperimentConfig.from_dict(raw)
    assert supports_pretraining(build_model("ffn", (20,), 2, {"hidden_sizes": [8]}))
    assert supports_pretraining(build_model("dnae", (20,), 6, {"hidden_sizes": [8]}))
    with pytest.raises(ConfigError, match="no hidden layers"):
        pretrain_dense_layers(build_model("mlp", (20,), 2, {"hidden_sizes": []}), np.zeros((8, 20), np.float32))
