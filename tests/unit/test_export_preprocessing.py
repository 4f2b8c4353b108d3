"""The table preprocessing an export manifest spells out, against the normaliser it describes (no training)."""

from __future__ import annotations

import json

import numpy as np

from biodl.config import NormalizeConfig
from biodl.data.normalise import Normaliser
from biodl.export.preprocessing import _tabular_steps, apply_steps


def test_clip_and_rescale_steps_reproduce_the_normaliser_with_constant_features() -> None:
    rng = np.random.default_rng(0)
    X = rng.standard_t(2, size=(300, 6)).astype(np.float32)
    X[:, 2] = 4.0  # constant in training: its scale is infinite, the feature becomes 0
    norm = Normaliser.fit(X, NormalizeConfig(clip=2.5, rescale=True))
    meta, arrays = norm.state()
    steps = _tabular_steps({"normalize": meta}, arrays)
    assert [s["op"] for s in steps] == ["subtract", "multiply", "clip", "subtract", "multiply", "cast"]
    json.dumps(steps, allow_nan=False)  # plain JSON: no infinity
    new = rng.standard_t(2, size=(50, 6)).astype(np.float32) * 3
    np.testing.assert_allclose(apply_steps({"steps": steps}, new), norm.transform(new), rtol=1e-5, atol=1e-5)
    assert np.all(apply_steps({"steps": steps}, new)[:, 2] == 0)


def test_plain_standardisation_keeps_divide() -> None:
    X = np.random.default_rng(1).normal(size=(100, 3)).astype(np.float32)
    norm = Normaliser.fit(X, NormalizeConfig())
    meta, arrays = norm.state()
    steps = _tabular_steps({"normalize": meta}, arrays)
    assert [s["op"] for s in steps] == ["subtract", "divide", "cast"]
    np.testing.assert_allclose(apply_steps({"steps": steps}, X), norm.transform(X), rtol=1e-5, atol=1e-5)
