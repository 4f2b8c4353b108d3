"""Piecewise-linear encoding (``mlp`` ``numeric_encoding: ple``) against hand computations, its fit on training
rows only, and the encoded network's state-dict round trip and ONNX parity."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from biodl.errors import DataError
from biodl.models import build_model
from biodl.models.numeric_encoding import PiecewiseLinearEncoding, fit_input_encoders


def _encode(enc: PiecewiseLinearEncoding, x: list[list[float]]) -> np.ndarray:
    with torch.no_grad():
        return enc(torch.tensor(x, dtype=torch.float32)).numpy()


def test_bins_below_read_one_the_bin_holding_x_its_position_and_the_ends_extrapolate() -> None:
    enc = PiecewiseLinearEncoding(1, bins=4)
    enc.fit(np.arange(9, dtype=float)[:, None])  # quantiles 0, 2, 4, 6, 8
    np.testing.assert_allclose(enc.edges(0), [0, 2, 4, 6, 8])
    out = _encode(enc, [[5.0], [0.0], [8.0], [-2.0], [10.0]])
    np.testing.assert_allclose(out[0], [1, 1, 0.5, 0])
    np.testing.assert_allclose(out[1], [0, 0, 0, 0])
    np.testing.assert_allclose(out[2], [1, 1, 1, 1])
    np.testing.assert_allclose(out[3], [-1, 0, 0, 0])  # first bin open below
    np.testing.assert_allclose(out[4], [1, 1, 1, 2])  # last bin open above


def test_repeated_quantiles_merge_binary_features_stay_linear_constant_ones_read_zero() -> None:
    rng = np.random.default_rng(0)
    x = np.stack([rng.integers(0, 2, 200).astype(float), np.full(200, 3.0), rng.integers(0, 3, 200).astype(float)], 1)
    enc = PiecewiseLinearEncoding(3, bins=8)
    enc.fit(x)
    np.testing.assert_allclose(enc.edges(0), [0, 1])
    assert enc.edges(1).size == 0
    np.testing.assert_allclose(enc.edges(2), [0, 1, 2])
    out = _encode(enc, [[1.0, 3.0, 1.5], [3.0, 100.0, -1.0]]).reshape(2, 3, 8)
    np.testing.assert_allclose(out[:, 0], [[1] + [0] * 7, [3] + [0] * 7])  # one bin, open both ways: x itself
    np.testing.assert_allclose(out[:, 1], 0.0)  # no information in a constant feature, whatever the input
    np.testing.assert_allclose(out[:, 2], [[1, 0.5] + [0] * 6, [-1, 0] + [0] * 6])
    assert np.isfinite(out).all()


def test_the_unfitted_encoding_bins_standardised_features_on_normal_quantiles() -> None:
    enc = PiecewiseLinearEncoding(2, bins=16)
    edges = enc.edges(0)
    assert len(edges) == 17 and edges[0] < -1.5 and abs(edges[8]) < 1e-6 and edges[-1] > 1.5
    out = _encode(enc, [[0.0, 0.0]]).reshape(2, 16)
    np.testing.assert_allclose(out[0], [1] * 8 + [0] * 8, atol=1e-6)


def test_nan_is_ignored_in_the_fit() -> None:
    x = np.arange(9, dtype=float)[:, None]
    enc = PiecewiseLinearEncoding(1, bins=4)
    enc.fit(np.vstack([x, [[np.nan]]]))
    np.testing.assert_allclose(enc.edges(0), [0, 2, 4, 6, 8])


def test_only_the_training_rows_fit_the_edges() -> None:
    rng = np.random.default_rng(1)
    x = rng.standard_normal((100, 3)).astype(np.float32)
    tr = np.arange(70)
    poisoned = x.copy()
    poisoned[70:] = 1e6  # validation and test rows: must not move a single edge
    a = build_model("mlp", (3,), 2, {"hidden_sizes": [8], "numeric_encoding": "ple", "encoding_bins": 5})
    b = build_model("mlp", (3,), 2, {"hidden_sizes": [8], "numeric_encoding": "ple", "encoding_bins": 5})
    assert fit_input_encoders(a, x, tr) == 1 and fit_input_encoders(b, poisoned, tr) == 1
    for name, buf in a.state_dict().items():
        if name.startswith("body.1."):
            torch.testing.assert_close(buf, b.state_dict()[name])
    enc = next(m for m in a.modules() if isinstance(m, PiecewiseLinearEncoding))
    np.testing.assert_allclose(enc.edges(2), np.quantile(x[tr, 2].astype(np.float64), np.linspace(0, 1, 6)), rtol=1e-6)


def test_streamed_inputs_are_refused_only_when_an_encoding_needs_them() -> None:
    plain = build_model("mlp", (3,), 2, {"hidden_sizes": [8]})
    assert fit_input_encoders(plain, None, np.arange(3)) == 0
    encoded = build_model("mlp", (3,), 2, {"hidden_sizes": [8], "numeric_encoding": "ple"})
    with pytest.raises(DataError, match="numeric_encoding: ple needs the training features in memory"):
        fit_input_encoders(encoded, None, np.arange(3))


def test_fitted_edges_travel_in_the_state_dict_and_export_to_onnx_with_parity() -> None:
    from biodl.engine import TorchEngine
    from biodl.export.graph import InferenceNet, onnx_runner, to_onnx
    from biodl.export.parity import Sample, check_parity

    rng = np.random.default_rng(2)
    x = (rng.standard_normal((64, 6)) * [1, 2, 3, 1, 1, 1]).astype(np.float32)
    x[:, 5] = rng.integers(0, 2, 64)  # a binary feature: one linear bin, the rest unused
    params = {"hidden_sizes": [16], "numeric_encoding": "ple", "encoding_bins": 8}
    model = build_model("mlp", (6,), 3, params).eval()
    fit_input_encoders(model, x, np.arange(48))
    fresh = build_model("mlp", (6,), 3, params).eval()
    fresh.load_state_dict(model.state_dict())
    with torch.no_grad():
        torch.testing.assert_close(fresh(torch.from_numpy(x)), model(torch.from_numpy(x)))
    net = InferenceNet(model, "binary").eval()
    sample = Sample(x, None, "features with a binary column", real=False)
    report = check_parity(TorchEngine(net).predict, onnx_runner(to_onnx(net, model_name="mlp")), sample)
    assert report.passed, report.summary()


def test_wide_inputs_get_fewer_bins_within_the_column_cap() -> None:
    def bins(features: int, **params: object) -> int:
        model = build_model("mlp", (features,), 2, {"hidden_sizes": [4], "numeric_encoding": "ple", **params})
        return next(m for m in model.modules() if isinstance(m, PiecewiseLinearEncoding)).bins

    assert bins(103) == 16
    assert bins(20_000) == 3  # 65,536 columns at most by default
    assert bins(100, encoding_max_columns=250) == 2
    assert bins(100, encoding_max_columns=50) == 1  # one linear bin per feature
