"""Filter motifs: a planted JASPAR motif is recovered from a model trained on it and matched to JASPAR."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from biodl.errors import ConfigError
from biodl.explain import conv_layers, filter_motifs, jaspar_motifs, match_motifs, motif_matches, trim_motif, write_meme
from biodl.models import build_model
from toy_models import conv_max_dense, one_thread, random_onehot  # noqa: F401

CTCF = "MA0139"


@pytest.fixture(scope="module")
def jaspar() -> object:
    return jaspar_motifs()


def _planted(ppm: np.ndarray, n: int = 400, length: int = 40, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Random sequences; the first half carry one site sampled from ``ppm`` (either strand)."""
    rng = np.random.default_rng(seed)
    codes = rng.integers(0, 4, (n, length))
    w = ppm.shape[1]
    for i in range(n // 2):
        site = np.array([rng.choice(4, p=ppm[:, j]) for j in range(w)])
        if rng.random() < 0.5:
            site = 3 - site[::-1]
        s = rng.integers(0, length - w + 1)
        codes[i, s : s + w] = site
    X = nn.functional.one_hot(torch.from_numpy(codes), 4).permute(0, 2, 1).float()
    y = torch.zeros(n, 1)
    y[: n // 2] = 1
    return X, y


def test_planted_ctcf_is_recovered_and_matched(jaspar: object, tmp_path: Path) -> None:
    db = jaspar_motifs()
    k = next(i for i, m in enumerate(db.ids) if m.startswith(CTCF))
    X, y = _planted(db.ppms[k])
    torch.manual_seed(0)
    width = db.ppms[k].shape[1] + 2
    model = nn.Sequential(nn.Conv1d(4, 6, width), nn.ReLU(), nn.AdaptiveMaxPool1d(1), nn.Flatten(), nn.Linear(6, 1))
    opt = torch.optim.Adam(model.parameters(), lr=0.01)
    for _ in range(120):
        opt.zero_grad()
        nn.functional.binary_cross_entropy_with_logits(model(X), y).backward()
        opt.step()
    model.eval()
    motifs = filter_motifs(model, X)
    assert motifs.layer == "0" and motifs.pfm.shape == (6, 4, db.ppms[k].shape[1] + 2)
    assert np.allclose(motifs.ppm.sum(1), 1.0)
    matches = motif_matches(motifs, db)
    assert {"filter", "rank", "jaspar_id", "jaspar_name", "score", "p_value"} <= set(matches.columns)
    assert matches.groupby("filter").size().max() == 5
    hits = matches[matches["jaspar_id"].str.startswith(CTCF)]
    assert len(hits), matches.head(10)
    assert hits["p_value"].min() < 1e-6
    path = write_meme(motifs, tmp_path / "motifs.meme", trim=0.25)
    text = path.read_text()
    assert text.startswith("MEME version 4") and text.count("MOTIF filter_") == int((motifs.n_sites > 0).sum())


def test_tomtom_matches_itself_on_both_strands() -> None:
    db = jaspar_motifs()
    k = next(i for i, m in enumerate(db.ids) if m.startswith(CTCF))
    q = db.ppms[k][:, 2:14]
    table = match_motifs([q, q[::-1, ::-1]], db, n_top=3, query_names=["fwd", "rev"])
    top = table[table["rank"] == 1].set_index("query")
    assert top.loc["fwd", "target_name"] == "CTCF" and top.loc["rev", "target_name"] == "CTCF"
    assert top.loc["fwd", "strand"] != top.loc["rev", "strand"]
    assert top.loc["fwd", "p_value"] < 1e-8


def test_layers_and_bad_names() -> None:
    torch.manual_seed(0)
    model = build_model("deepsea", (4, 40), 2, {"filters": [4, 5], "filter_widths": [5, 3], "pool_sizes": [2, 1],
                                                 "dropouts": [0.0, 0.0], "dense_size": 8}).eval()  # fmt: skip
    assert conv_layers(model) == ["conv.0.1", "conv.1.1"]
    X = random_onehot(10, 40)
    deep = filter_motifs(model, X, "conv.1.1")
    # conv 5 → max-pool 2 → conv 3: receptive field 5 + 1 + 2·2 = 10 bp, one output per 2 bp, "same" padding 2 + 1·2
    assert deep.pfm.shape == (5, 4, 10) and deep.jump == 2 and deep.offset == -2 - 2
    with pytest.raises(ConfigError, match=r"layer 'conv.9' does not exist .*convolution layers: \['conv.0.1', 'conv.1.1'\]"):
        filter_motifs(model, X, "conv.9")
    with pytest.raises(ConfigError, match="its outputs have no sequence positions"):
        filter_motifs(model, X, "head")


def test_trim_motif() -> None:
    ppm = np.full((4, 10), 0.25)
    ppm[:, 3:6] = np.eye(4)[:, [0, 2, 3]]
    assert trim_motif(ppm, 0.5, min_width=2) == (3, 6)
    assert trim_motif(ppm, 0.5, min_width=5)[1] - trim_motif(ppm, 0.5, min_width=5)[0] == 5
    assert conv_layers(conv_max_dense()) == ["0"]
