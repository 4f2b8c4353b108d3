"""Sequence architectures: shapes, strand averaging, parameter checks, and a few training steps on real peaks."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
import torch

from biodl.config import DataConfig, ExperimentConfig
from biodl.data.sequence import SequenceModality
from biodl.errors import ConfigError
from biodl.models import MODELS, build_model
from biodl.models.sequence_base import reverse_complement
from biodl.training.losses import masked_loss
from conftest import shared_path

#: Small versions of each architecture (paper sizes are the defaults).
SMALL: dict[str, dict[str, Any]] = {
    "deepbind": {"filters": 32},
    "deepsea": {"filters": [32, 32, 32], "pool_sizes": [4, 4, 1], "dropouts": [0.0, 0.0, 0.0], "dense_size": 32},
    "basset": {"filters": [16, 16, 16], "filter_widths": [11, 7, 5], "pool_sizes": [3, 2, 2], "hidden_sizes": [32, 32]},
    "danq": {"filters": 32, "filter_width": 13, "pool_size": 8, "lstm_hidden": 16, "dense_size": 32},
    "kmer-mlp": {"k": 3, "hidden_sizes": [32]},
}


@pytest.fixture(autouse=True, scope="module")
def one_thread() -> Iterator[None]:
    """Tiny models train fastest on one thread (and do not oversubscribe a shared machine)."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="module")
def peaks() -> tuple[torch.Tensor, torch.Tensor]:
    """256 real GABPA peaks + 256 dinucleotide shuffles, one-hot uint8 (N, 4, 101)."""
    path = shared_path("dna", "deepbind_encode_train", "GABPA_GM12878_GABP_HudsonAlpha_AC.seq.gz")
    mod = SequenceModality(DataConfig(type="sequence", target_columns=["Bound"], sequence={"negatives": "dinucleotide-shuffle"}))
    data = mod.load([str(path)])
    assert data.targets is not None
    idx = np.r_[0:256, 6066 : 6066 + 256]
    x = torch.from_numpy(mod.transform(data.X[idx]))
    y = torch.from_numpy(data.targets.y[idx])
    return x, y


def test_registered_for_sequences() -> None:
    for name in SMALL:
        assert MODELS[name].data_types == ("sequence",)
    cfg = ExperimentConfig.from_dict({"data": {"type": "sequence"}})
    assert cfg.model.name == "deepbind" and cfg.model.params()["filters"] == 128
    with pytest.raises(ConfigError, match=r"unknown key 'model\.filter'"):
        ExperimentConfig.from_dict({"data": {"type": "sequence"}, "model": {"filter": 3}})
    with pytest.raises(ConfigError, match="does not take data type 'tabular'"):
        ExperimentConfig.from_dict({"model": {"name": "danq"}})


@pytest.mark.parametrize("name", list(SMALL))
def test_shapes_and_strand_averaging(name: str) -> None:
    torch.manual_seed(0)
    model = build_model(name, (4, 101), 3, SMALL[name])
    x = torch.nn.functional.one_hot(torch.randint(0, 4, (6, 101)), 4).permute(0, 2, 1).to(torch.uint8)
    model.eval()
    with torch.no_grad():
        out = model(x)
        assert out.shape == (6, 3) and out.dtype == torch.float32
        torch.testing.assert_close(out, model(reverse_complement(x)), rtol=1e-4, atol=1e-5)
        single = build_model(name, (4, 101), 3, {**SMALL[name], "rc_average": False})
        single.load_state_dict(model.state_dict())
        single.eval()
        torch.testing.assert_close(0.5 * (single(x) + single(reverse_complement(x))), out, rtol=1e-4, atol=1e-5)


def test_parameter_checks() -> None:
    with pytest.raises(ConfigError, match="too short"):
        build_model("deepbind", (4, 20), 1, {"filter_width": 24})
    assert build_model("deepbind", (4, 20), 1, {"filter_width": 24, "padding": "same"})(torch.zeros(2, 4, 20)).shape == (2, 1)
    with pytest.raises(ConfigError, match="too short"):
        build_model("deepsea", (4, 30), 1, {"padding": "valid"})
    with pytest.raises(Exception, match="one entry per conv layer"):
        build_model("deepsea", (4, 101), 1, {"filters": [8, 8], "filter_widths": [8]})
    with pytest.raises(ConfigError, match="one-hot sequences"):
        build_model("danq", (101,), 1, {})
    protein = build_model("deepbind", (20, 50), 2, {"filter_width": 8})
    assert not protein.rc_average  # strands only exist for 4-letter alphabets


@pytest.mark.parametrize("name", list(SMALL))
def test_loss_falls_on_real_peaks(name: str, peaks: tuple[torch.Tensor, torch.Tensor]) -> None:
    x, y = peaks
    torch.manual_seed(0)
    model = build_model(name, tuple(x.shape[1:]), 1, SMALL[name])
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)

    def loss() -> float:
        model.eval()
        with torch.no_grad():
            return float(masked_loss("binary", model(x), y))

    before = loss()
    model.train()
    gen = torch.Generator().manual_seed(0)
    for _ in range(50):
        idx = torch.randint(0, len(x), (64,), generator=gen)
        opt.zero_grad()
        masked_loss("binary", model(x[idx]), y[idx]).backward()
        opt.step()
    after = loss()
    assert after < before * 0.97, (name, before, after)
