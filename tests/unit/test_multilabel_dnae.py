"""Deep non-negative auto-encoder, NMF baseline, two-step learner, label hierarchy, ARFF/label inputs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from biodl.data.arff import check_label_matrix, label_columns, mulan_labels, read_arff
from biodl.data.targets import encode_targets
from biodl.errors import DataError
from biodl.multilabel import (
    DeepNonNegativeAutoencoder,
    NMFBaseline,
    TwoStepLearner,
    dnae_reconstruct,
    explain_prediction,
    fit_dnae,
    format_explanation,
    hierarchy_table,
    label_weights,
    plot_hierarchy,
    reconstruction_error,
)
from conftest import shared_path


def planted_blocks(n: int = 240, seed: int = 0) -> tuple[np.ndarray, list[list[int]]]:
    """A 0/1 label matrix with 4 planted label blocks (each sample has 1-2 blocks) plus 2 % noise."""
    rng = np.random.default_rng(seed)
    blocks = [[0, 1, 2], [3, 4, 5], [6, 7, 8, 9], [10, 11]]
    V = np.zeros((n, 12), dtype=np.float32)
    for i in range(n):
        for b in rng.choice(4, size=rng.integers(1, 3), replace=False):
            V[i, blocks[b]] = 1.0
    flip = rng.random(V.shape) < 0.02
    V[flip] = 1.0 - V[flip]
    return V, blocks


@pytest.mark.parametrize("nonneg", ["projection", "softplus"])
def test_dnae_weights_stay_non_negative_and_beat_chance(nonneg: str) -> None:
    V, _ = planted_blocks()
    fit = fit_dnae(V[:200], [8, 4], nonneg=nonneg, epochs=80, lr=0.02, seed=0)  # type: ignore[arg-type]
    for h in fit.model.weights():
        assert float(h.detach().min()) >= 0.0
    with torch.no_grad():
        assert float(fit.model.encode(torch.from_numpy(V)).min()) >= 0.0
    test = V[200:]
    err = reconstruction_error(test, dnae_reconstruct(fit, test))["mse"]
    rng = np.random.default_rng(1)
    chance = reconstruction_error(test, rng.permutation(V[:200])[: len(test)])["mse"]  # random training rows
    mean_only = reconstruction_error(test, np.broadcast_to(V[:200].mean(0), test.shape))["mse"]
    assert err < 0.5 * chance and err < mean_only
    assert fit.history["loss"][-1] < fit.history["loss"][0]


def test_hierarchy_recovers_planted_blocks_and_explains() -> None:
    V, blocks = planted_blocks()
    names = [f"L{j}" for j in range(12)]
    fit = fit_dnae(V, [6, 4], epochs=100, lr=0.02, seed=0)
    table = hierarchy_table(fit.model, names, top=4)
    assert list(table.columns) == ["layer", "unit", "top_labels", "weights", "active", "parents"]
    assert (table.layer == 1).sum() == 6 and (table.layer == 2).sum() == 4
    # the 4 units of the last layer are the 4 planted blocks: each unit's strongest labels form one block
    found = set()
    for labels in table[table.layer == 2].top_labels:
        top = labels.split(", ")
        for k, b in enumerate(blocks):
            if set(top[: len(b)]) == {names[j] for j in b}:
                found.add(k)
    assert found == {0, 1, 2, 3}
    expl = explain_prediction(fit.model, fit.model.encode(torch.from_numpy(V[:1])).detach().numpy()[0], names)
    assert expl["units"] and expl["units"][0]["layer"] == 2 and expl["units"][0]["parents"]
    assert "H2, unit" in format_explanation(expl)


def test_plot_and_nmf_baseline(tmp_path: Path) -> None:
    V, _ = planted_blocks()
    fit = fit_dnae(V, [6, 4], epochs=30, seed=0)
    png = plot_hierarchy(fit.model, [f"L{j}" for j in range(12)], tmp_path / "h.png")
    assert png.stat().st_size > 1000
    nmf = NMFBaseline(4).fit(V[:200])
    assert nmf.components.shape == (4, 12) and (nmf.components >= 0).all()
    assert reconstruction_error(V[200:], nmf.reconstruct(V[200:]))["relative"] < 0.6


def test_label_weights_favour_tail_labels() -> None:
    V = np.zeros((100, 3), np.float32)
    V[:50, 0] = 1
    V[:5, 1] = 1
    V[:1, 2] = 1
    w = label_weights(V, "inverse_frequency", 0.5)
    assert w[2] > w[1] > w[0] and w.mean() == pytest.approx(1.0)
    assert (label_weights(V, "none") == 1).all()


def test_two_step_learner_predicts_labels() -> None:
    V, _ = planted_blocks(300)
    rng = np.random.default_rng(0)
    X = np.concatenate([V @ rng.normal(size=(12, 10)), rng.normal(size=(300, 5))], axis=1).astype(np.float32)
    learner = TwoStepLearner(layers=[6, 4], dnae_epochs=80, dnae_lr=0.02, epochs=100, seed=0).fit(X[:240], V[:240])
    P = learner.predict(X[240:])
    assert P.shape == (60, 12) and P.min() >= 0 and P.max() <= 1
    hamming = float(np.mean((P >= 0.5) != V[240:]))
    assert hamming < 0.15
    top = learner.top_labels(X[240:241], [f"L{j}" for j in range(12)], k=3)
    assert len(top[0]) == 3 and all(isinstance(s, float) for _, s in top[0])
    with pytest.raises(DataError, match="smaller than the number of labels"):
        TwoStepLearner(layers=[20]).fit(X, V)
    V0 = V.copy()
    V0[:, 3] = 0.0  # an all-zero (tail) label
    with pytest.raises(DataError, match=r"label column\(s\) \[3\] hold a single value"):
        TwoStepLearner(layers=[4]).fit(X, V0)


def test_dnae_rejects_bad_label_matrices() -> None:
    with pytest.raises(DataError, match="non-negative"):
        fit_dnae(-np.ones((4, 3)), [2], epochs=1)
    with pytest.raises(DataError, match="missing"):
        fit_dnae(np.full((4, 3), np.nan), [2], epochs=1)
    assert DeepNonNegativeAutoencoder(5, [3, 2]).cumulative()[1].shape == (5, 2)


# ------------------------------------------------------------------------ inputs
def test_arff_reader_on_yeast() -> None:
    path = shared_path("multilabel", "yeast", "yeast-train.arff")
    arff = read_arff(path)
    assert arff.frame.shape == (1500, 117) and arff.relation == "MultiLabelData"
    labels = label_columns(arff, 14)
    assert labels == [f"Class{i}" for i in range(1, 15)]
    assert sorted(mulan_labels(path.with_name("yeast.xml"))) == sorted(labels)
    Y = arff.frame[labels].to_numpy()
    assert set(np.unique(Y)) == {0.0, 1.0} and Y.sum(axis=0).min() == 21  # Class14, the tail label
    assert check_label_matrix(Y, labels, "yeast").all()


def test_arff_bad_inputs(tmp_path: Path) -> None:
    head = "@relation t\n@attribute a numeric\n@attribute b {x,y}\n@attribute L1 {0,1}\n@data\n"
    p = tmp_path / "bad.arff"
    p.write_text(head + "1.0,x,1\n2.0,y\n")
    with pytest.raises(DataError, match=r"line 7: 2 values but 3 attributes"):
        read_arff(p)
    p.write_text(head + "1.0,z,1\n")
    with pytest.raises(DataError, match=r"line 6: attribute 'b' has 'z'"):
        read_arff(p)
    p.write_text(head + "one,x,1\n")
    with pytest.raises(DataError, match="numeric"):
        read_arff(p)
    p.write_text(head + "{0 1.5, 2 1}\n?,x,0\n")  # sparse row, missing value
    frame = read_arff(p).frame
    assert frame.loc[0, "a"] == 1.5 and frame.loc[0, "b"] == "x" and frame.loc[0, "L1"] == 1.0
    assert np.isnan(frame.loc[1, "a"])
    p.write_text("@relation t\n@attribute a numeric\n")
    with pytest.raises(DataError, match="no @data"):
        read_arff(p)


def test_label_matrix_checks_and_label_lists() -> None:
    Y = np.array([[0, 1, 0], [1, 2, 0]], dtype=float)
    with pytest.raises(DataError, match=r"'b' must hold 0/1; row 2 has 2"):
        check_label_matrix(Y, ["a", "b", "c"], "t")
    Y = np.array([[0, 1, 0], [1, 0, 0]], dtype=float)
    with pytest.raises(DataError, match=r"'c' is all 0s"):
        check_label_matrix(Y, ["a", "b", "c"], "t")
    assert check_label_matrix(Y, ["a", "b", "c"], "t", all_zero="drop").tolist() == [True, True, False]
    frame = pd.DataFrame({"item": ["g1", "g2", "g3"], "labels": ["kinase;membrane", "membrane", None]})
    t = encode_targets(frame, ["labels"], "multilabel", source="t")
    assert t.names == ["kinase", "membrane"] and t.kind == "binary"
    np.testing.assert_array_equal(t.y[:2], [[1, 1], [0, 1]])
    assert np.isnan(t.y[2]).all()
