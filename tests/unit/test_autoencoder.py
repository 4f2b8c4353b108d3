"""Auto-encoders (dense, conv 1-D/2-D, denoising, sparse), reconstruction helpers, layer-wise pre-training."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from biodl.config import ExperimentConfig
from biodl.errors import ConfigError, DataError
from biodl.models import build_model
from biodl.models.autoencoder import (
    L1Penalty,
    corrupt,
    init_from_pretrained,
    pca_reconstruction,
    pretrain_layerwise,
    reconstruction_metrics,
    reconstruction_targets,
)


@pytest.mark.parametrize(
    "name,shape,params",
    [
        ("autoencoder", (20,), {"hidden_sizes": [16, 4]}),
        ("conv_autoencoder", (4, 33), {"channels": [8, 8], "latent_size": 6}),
        ("conv_autoencoder", (1, 15, 12), {"channels": [4], "latent_size": None}),
    ],
)
def test_shapes_and_codes(name: str, shape: tuple[int, ...], params: dict[str, object]) -> None:
    n_out = int(np.prod(shape))
    model = build_model(name, shape, n_out, params)
    x = torch.randn(3, *shape)
    assert model(x).shape == (3, n_out)
    code = model.encode(x)
    assert code.shape[0] == 3 and code.ndim == 2
    assert torch.equal(model.features(x), code)
    with pytest.raises(ConfigError, match="reconstructs its input"):
        build_model(name, shape, n_out + 1, params)


def test_denoising_only_in_training_and_sparsity_gradient() -> None:
    model = build_model("autoencoder", (10,), 10, {"hidden_sizes": [6, 3], "noise": "masking", "noise_level": 0.5})
    x = torch.randn(8, 10)
    model.eval()
    assert torch.equal(model(x), model(x))
    model.train()
    torch.manual_seed(0)
    a = model(x)
    assert not torch.equal(a, model(x))
    z = torch.tensor([[1.0, -2.0, 0.0]], requires_grad=True)
    L1Penalty.apply(z, 0.5).sum().backward()
    assert z.grad is not None and z.grad.tolist() == [[1.5, 0.5, 1.0]]
    g = corrupt(torch.ones(1000), "gaussian", 0.1)
    assert 0.05 < float(g.std()) < 0.2


def test_reconstruction_task_config_and_helpers() -> None:
    cfg = ExperimentConfig.from_dict({"data": {"type": "tabular", "path": ["x.csv"], "task": "reconstruction"}})
    assert cfg.model.name == "autoencoder" and cfg.evaluate.baselines == []
    with pytest.raises(ConfigError, match="does not do classification"):
        ExperimentConfig.from_dict({"data": {"path": ["x.csv"], "task": "classification"}, "model": {"name": "autoencoder"}})
    t = reconstruction_targets(np.arange(12, dtype=np.float32).reshape(2, 2, 3))
    assert t.y.shape == (2, 6) and t.kind == "regression" and t.names[0] == "x0"
    with pytest.raises(DataError, match="numeric"):
        reconstruction_targets(np.array(["CCO", "CCN"], dtype=object))
    rng = np.random.default_rng(0)
    X = rng.normal(size=(50, 3)) @ rng.normal(size=(3, 8))
    P = pca_reconstruction(X[:40], X[:40], X, n_components=3)
    out = reconstruction_metrics(X, P, {"train": np.arange(40), "test": np.arange(40, 50), "val": np.arange(0)})
    assert out["test"]["r2"] > 0.99 and out["test"]["explained_variance"] > 0.99 and out["val"] == {}


def test_layerwise_pretraining_initialises_an_mlp() -> None:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(64, 12)).astype(np.float32)
    layers = pretrain_layerwise(X, [8, 4], epochs=3, batch_size=16)
    assert [tuple(lay.weight.shape) for lay in layers] == [(8, 12), (4, 8)]
    mlp = build_model("mlp", (12,), 2, {"hidden_sizes": [8, 4], "batch_norm": False})
    assert init_from_pretrained(mlp, layers) == 2
    first = next(m for m in mlp.modules() if isinstance(m, torch.nn.Linear))
    assert torch.equal(first.weight, layers[0].weight)
    with pytest.raises(ConfigError, match="shape"):
        init_from_pretrained(build_model("mlp", (12,), 2, {"hidden_sizes": [5]}), layers)
