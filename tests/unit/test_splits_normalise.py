from __future__ import annotations

import numpy as np
import pytest

from biodl.config import NormalizeConfig
from biodl.data.folds import kfold_splits
from biodl.data.normalise import Normaliser, TargetScaler
from biodl.data.splits import group_split, make_split, random_split, stratified_split
from biodl.errors import DataError


def _disjoint_cover(n: int, *parts: np.ndarray) -> None:
    allidx = np.concatenate(parts)
    assert len(allidx) == n and len(np.unique(allidx)) == n


def test_random_split_sizes_and_seed() -> None:
    s = random_split(1000, (0.6, 0.1, 0.3), seed=1)
    assert s.sizes() == {"train": 600, "val": 100, "test": 300}
    _disjoint_cover(1000, s.train, s.val, s.test)
    assert np.array_equal(random_split(1000, (0.6, 0.1, 0.3), seed=1).test, s.test)
    assert not np.array_equal(random_split(1000, (0.6, 0.1, 0.3), seed=2).test, s.test)


def test_stratified_keeps_class_proportions() -> None:
    labels = np.array([0] * 900 + [1] * 100)
    s = stratified_split(labels, (0.6, 0.1, 0.3), seed=0)
    _disjoint_cover(1000, s.train, s.val, s.test)
    for part in (s.train, s.val, s.test):
        assert labels[part].mean() == pytest.approx(0.1, abs=0.01)


def test_group_split_keeps_groups_together() -> None:
    groups = np.repeat(np.arange(40), 25)
    s = group_split(groups, (0.6, 0.1, 0.3), seed=0)
    _disjoint_cover(1000, s.train, s.val, s.test)
    sets = [set(groups[p]) for p in (s.train, s.val, s.test)]
    assert not (sets[0] & sets[1]) and not (sets[0] & sets[2]) and not (sets[1] & sets[2])
    with pytest.raises(DataError, match="group_column"):
        make_split(10, (0.6, 0.1, 0.3), "group", 0)


def test_kfold_each_row_tested_once() -> None:
    labels = np.array([0, 1] * 50)
    folds = kfold_splits(100, 5, (0.6, 0.1, 0.3), seed=0, labels=labels)
    tested = np.concatenate([f.test for f in folds])
    assert sorted(tested.tolist()) == list(range(100))
    for f in folds:
        _disjoint_cover(100, f.train, f.val, f.test)
        assert len(f.val) > 0


def test_too_few_rows() -> None:
    with pytest.raises(DataError, match="too few"):
        random_split(2, (0.6, 0.1, 0.3), seed=0)


def test_normaliser_fitted_on_train_only() -> None:
    rng = np.random.default_rng(0)
    train = rng.normal(5, 3, size=(500, 4)).astype(np.float32)
    test = rng.normal(8, 3, size=(200, 4)).astype(np.float32)
    norm = Normaliser.fit(train, NormalizeConfig())
    np.testing.assert_allclose(norm.transform(train).mean(0), 0, atol=1e-4)
    np.testing.assert_allclose(norm.transform(train).std(0), 1, atol=1e-3)
    assert norm.transform(test).mean() > 0.5  # the test shift is not normalised away
    meta, arrays = norm.state()
    again = Normaliser.from_state(meta, arrays)
    np.testing.assert_array_equal(again.transform(test), norm.transform(test))


@pytest.mark.parametrize("mode", ["pca", "zca"])
def test_whitening_decorrelates(mode: str) -> None:
    rng = np.random.default_rng(0)
    base = rng.normal(size=(2000, 3))
    X = np.column_stack([base[:, 0], base[:, 0] * 0.9 + base[:, 1] * 0.1, base[:, 2]]).astype(np.float32)
    Z = Normaliser.fit(X, NormalizeConfig(whiten=mode)).transform(X)  # type: ignore[arg-type]
    np.testing.assert_allclose(np.cov(Z.T), np.eye(3), atol=0.05)


def test_log1p_rejects_negative_and_target_scaler_roundtrip() -> None:
    with pytest.raises(DataError, match="log1p"):
        Normaliser.fit(np.array([[-1.0, 2.0]]), NormalizeConfig(log1p=True))
    y = np.array([[1.0, np.nan], [3.0, 10.0], [5.0, 20.0]], dtype=np.float32)
    sc = TargetScaler.fit(y)
    np.testing.assert_allclose(sc.inverse(sc.transform(y)), y, rtol=1e-6)


def test_clip_bounds_held_out_z_scores_and_zeroes_constant_features() -> None:
    rng = np.random.default_rng(0)
    train = np.c_[rng.normal(0.0, 1.0, 50), np.full(50, 3.0)]  # a feature without training variance
    held_out = np.array([[40.0, 3.5], [-0.5, 2.0]])
    plain = Normaliser.fit(train, NormalizeConfig()).transform(held_out)
    assert abs(plain[0, 0]) > 30  # the extreme held-out value passes through unclipped
    norm = Normaliser.fit(train, NormalizeConfig(clip=5.0))
    z = norm.transform(held_out)
    assert z[0, 0] == 5.0 and abs(z[1, 0] - plain[1, 0]) < 1e-6  # clipped only where beyond ±5 sd
    assert (z[:, 1] == 0.0).all()  # constant in training → 0, whatever the held-out value
    meta, arrays = norm.state()  # the bundle keeps the clipping
    assert (Normaliser.from_state(meta, arrays).transform(held_out) == z).all()


def test_rescale_standardises_the_clipped_features_again_dense_sparse_and_saved() -> None:
    import scipy.sparse as sp

    rng = np.random.default_rng(0)
    train = rng.exponential(1.0, (300, 4)) * (rng.random((300, 4)) < 0.2)  # sparse, heavy-tailed "genes"
    train[:, 3] = 0.0  # no training variance
    cfg = NormalizeConfig(clip=2.0, rescale=True)
    norm = Normaliser.fit(train, cfg)
    z = norm.transform(train)
    np.testing.assert_allclose(z[:, :3].mean(axis=0), 0.0, atol=1e-5)
    np.testing.assert_allclose(z[:, :3].std(axis=0), 1.0, atol=1e-4)  # unit variance after clipping
    assert (z[:, 3] == 0.0).all()
    clipped_only = Normaliser.fit(train, NormalizeConfig(clip=2.0)).transform(train)
    assert clipped_only[:, :3].std(axis=0).max() < 0.9  # what clipping alone leaves
    held_out = np.array([[100.0, 0.0, 0.0, 5.0]])
    assert np.abs(norm.transform(held_out)).max() < 10  # bounded, whatever the held-out value
    np.testing.assert_allclose(Normaliser.fit(sp.csr_matrix(train), cfg).transform(train), z, atol=1e-5)
    meta, arrays = norm.state()
    assert (Normaliser.from_state(meta, arrays).transform(held_out) == norm.transform(held_out)).all()
    assert NormalizeConfig(rescale=True).clip is None and Normaliser.fit(train, NormalizeConfig(rescale=True)).rescaled is None
