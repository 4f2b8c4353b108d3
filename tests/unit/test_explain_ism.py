"""Saturation mutagenesis: equals brute-force mutant predictions; the fast mode equals the plain mode."""

from __future__ import annotations

import pytest
import torch

from biodl.errors import ConfigError, DataError
from biodl.explain import conv_pool_parts, saturation_mutagenesis
from biodl.models import build_model
from toy_models import ConvStack, FlattenDense, brute_force_ism, conv_max_dense, one_thread, random_onehot  # noqa: F401


@pytest.mark.parametrize(
    "model",
    [conv_max_dense(), conv_max_dense(pool="avg"), ConvStack(length=20), FlattenDense(length=20)],
    ids=["conv-max", "conv-avg", "conv-stack", "flatten-dense"],
)
def test_ism_equals_brute_force(model: torch.nn.Module) -> None:
    X = random_onehot(3, 20, seed=1)
    X[1, :, 4] = 0.0  # an N column is mutated to every letter
    expected = brute_force_ism(model, X)
    res = saturation_mutagenesis(model, X, raw_outputs=True)
    assert res.effects.shape == expected.shape
    torch.testing.assert_close(res.effects, expected, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(res.mutants - res.reference[:, :, None, None], res.effects)
    # identity substitutions are exactly 0; the N column is not an identity
    assert torch.all(res.effects.permute(0, 2, 3, 1)[X == 1] == 0)
    assert torch.any(res.effects[1, :, :, 4] != 0)


def _deepbind(pooling: str, padding: str, rc: bool, length: int = 30) -> torch.nn.Module:
    params = {"filters": 6, "filter_width": 7, "pooling": pooling, "padding": padding, "hidden_sizes": [8], "rc_average": rc}
    torch.manual_seed(0)
    return build_model("deepbind", (4, length), 2, params).eval()


@pytest.mark.parametrize("pooling", ["max", "avg", "max+avg"])
@pytest.mark.parametrize("padding", ["valid", "same"])
@pytest.mark.parametrize("rc", [True, False])
def test_fast_equals_plain_on_deepbind(pooling: str, padding: str, rc: bool) -> None:
    model = _deepbind(pooling, padding, rc)
    assert conv_pool_parts(model) is not None
    X = random_onehot(4, 30, seed=2)
    X[2, :, 0] = 0.0
    fast = saturation_mutagenesis(model, X, raw_outputs=True, fast=True)
    plain = saturation_mutagenesis(model, X, raw_outputs=True, fast=False)
    assert fast.fast and not plain.fast
    torch.testing.assert_close(fast.mutants, plain.mutants, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(fast.reference, plain.reference)
    # a sub-range of positions
    a = saturation_mutagenesis(model, X, 1, fast=True, start=3, end=11)
    b = saturation_mutagenesis(model, X, 1, fast=False, start=3, end=11)
    assert a.shape == (4, 4, 30)
    torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-4)
    assert torch.all(a[..., :3] == 0) and torch.all(a[..., 11:] == 0)


def test_fast_mode_detection_and_fallback() -> None:
    X = random_onehot(2, 20)
    assert conv_pool_parts(conv_max_dense()) is not None
    assert conv_pool_parts(ConvStack(length=20)) is None
    with pytest.raises(ConfigError, match="fast ISM"):
        saturation_mutagenesis(ConvStack(length=20), X, fast=True)
    assert saturation_mutagenesis(ConvStack(length=20), X, raw_outputs=True).fast is False


def test_targets_and_shapes() -> None:
    model = conv_max_dense(n_outputs=3)
    X = random_onehot(2, 20)
    assert saturation_mutagenesis(model, X).shape == (2, 3, 4, 20)
    assert saturation_mutagenesis(model, X, target=1).shape == (2, 4, 20)
    assert saturation_mutagenesis(model, X, target=[0, 2]).shape == (2, 2, 4, 20)
    assert saturation_mutagenesis(model, X[0]).shape == (1, 3, 4, 20)  # one (A, L) sequence
    with pytest.raises(ConfigError, match="target 5"):
        saturation_mutagenesis(model, X, target=5)


def test_length_mismatch_pads_or_errors() -> None:
    model = _deepbind("max", "valid", True, length=30)
    short = random_onehot(2, 24)
    with pytest.raises(DataError, match="length 24 but the model takes length 30"):
        saturation_mutagenesis(model, short)
    padded = saturation_mutagenesis(model, short, target=0, length_mode="pad")
    assert padded.shape == (2, 4, 30)
    torch.testing.assert_close(padded, saturation_mutagenesis(model, torch.nn.functional.pad(short, (3, 3)), target=0))
