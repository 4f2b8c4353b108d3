"""The two-step DNAE learner as a registered model (``model.name: dnae``): layers, the two steps,
the decoded outputs, the hierarchy it writes, and the config checks."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from biodl.config import ExperimentConfig
from biodl.errors import ConfigError, DataError
from biodl.models import MODELS, build_model
from biodl.models.twostep import TwoStepDNAE, default_layers


def planted(n: int = 200, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Features that determine 4 planted blocks of 12 labels."""
    rng = np.random.default_rng(seed)
    blocks = [[0, 1, 2], [3, 4, 5], [6, 7, 8, 9], [10, 11]]
    X = rng.normal(size=(n, 6)).astype(np.float32)
    Y = np.zeros((n, 12), dtype=np.float32)
    for b, cols in enumerate(blocks):
        Y[np.ix_(X[:, b] > 0.3, cols)] = 1.0
    return X, Y


def test_default_layers_follow_the_paper_and_compress_few_labels() -> None:
    assert default_layers(14) == [12, 8]
    assert default_layers(100) == [64, 16]
    for p in (2, 3, 7, 30, 64):
        assert default_layers(p)[-1] < p


def test_registered_for_multilabel_only() -> None:
    assert "dnae" in MODELS
    assert MODELS["dnae"].tasks == ("multilabel",)
    with pytest.raises(ConfigError, match="does not do classification"):
        ExperimentConfig.from_dict({"data": {"task": "classification"}, "model": {"name": "dnae"}})
    with pytest.raises(ConfigError, match="ensemble_size must be 1"):
        ExperimentConfig.from_dict({"data": {"task": "multilabel"}, "model": {"name": "dnae"}, "train": {"ensemble_size": 2}})
    cfg = ExperimentConfig.from_dict({"data": {"task": "multilabel"}, "model": {"name": "dnae", "layers": [10, 6]}})
    assert cfg.model.params()["layers"] == [10, 6] and cfg.model.params()["nonneg"] == "projection"
    with pytest.raises(ConfigError, match=r"model\.nonneg"):
        ExperimentConfig.from_dict({"data": {"task": "multilabel"}, "model": {"name": "dnae", "nonneg": "relu"}})


def test_last_layer_must_compress_the_labels() -> None:
    with pytest.raises(ConfigError, match=r"model.layers: the last DNAE layer \(16\).*14"):
        build_model("dnae", (6,), 14, {"layers": [64, 16]})


def test_two_steps_decode_to_label_scores(tmp_path: Path) -> None:
    X, Y = planted()
    model = build_model("dnae", (6,), 12, {"layers": [8, 4], "dnae_epochs": 60, "hidden_sizes": [16]})
    assert isinstance(model, TwoStepDNAE) and model.latent_size == 4
    history = model.fit_label_encoder(Y, seed=0)
    assert history["loss"][-1] < history["loss"][0]
    assert all(float(h.min()) >= 0.0 for h in model.dnae.weights())
    assert not any(p.requires_grad for p in model.dnae.parameters())  # frozen while the network learns
    latent = model.encode_labels(Y)
    assert latent.shape == (200, 4) and latent.min() >= 0.0
    with pytest.raises(DataError, match="complete labels"):
        model.encode_labels(np.where(Y == 1, np.nan, Y))
    model.eval()
    x = torch.from_numpy(X[:5])
    with torch.no_grad():
        scores = torch.sigmoid(model(x))  # the multi-label head recovers the decoded scores
        expected = model.label_scores(x).clamp(1e-6, 1 - 1e-6)
        assert torch.allclose(scores, expected, atol=1e-5)
        assert model.encode(x).shape == (5, 4)
    report = model.label_encoder_report(Y, {"train": np.arange(150), "test": np.arange(150, 200), "val": np.arange(0)})
    assert report["layers"] == [8, 4] and report["min_weight"] >= 0.0
    assert 0.0 < report["reconstruction_relative_error"]["test"] < 0.8 and report["reconstruction_relative_error"]["val"] is None
    names = [f"L{j}" for j in range(12)]
    files = model.write_run_artifacts(tmp_path, names)
    table = pd.read_csv(tmp_path / "label_hierarchy.csv")
    assert len(table) == 8 + 4 and set(table.layer) == {1, 2}
    named = table[table.top_labels.notna()]  # the projection may switch a unit off (all-zero weights)
    assert len(named) >= 9 and named[named.layer == 2].parents.str.startswith("H1:").all()
    assert {"L0", "L1", "L2"} <= set(named.top_labels.str.split(", ").explode())
    assert (tmp_path / "figures" / "label_hierarchy.png").stat().st_size > 1000 and tmp_path / "label_encoder.json" in files


def test_state_dict_holds_both_parts_and_rebuilds() -> None:
    X, Y = planted(80)
    model = build_model("dnae", (6,), 12, {"layers": [8, 4], "dnae_epochs": 5, "hidden_sizes": [16]})
    model.fit_label_encoder(Y, seed=0)
    state = model.state_dict()
    assert {"dnae.raw.0", "dnae.raw.1"} <= set(state) and any(k.startswith("network.") for k in state)
    again = build_model("dnae", (6,), 12, {"layers": [8, 4], "dnae_epochs": 5, "hidden_sizes": [16]})
    again.load_state_dict(state, strict=True)
    model.eval()
    again.eval()
    with torch.no_grad():
        assert torch.equal(model(torch.from_numpy(X)), again(torch.from_numpy(X)))
