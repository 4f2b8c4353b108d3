"""DeepBind-style fast ISM: the fused kernel equals brute-force ISM in float64 and the broadcast tensor path."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from biodl.explain import conv_pool_parts, saturation_mutagenesis
from biodl.explain.conv_pool_ism import _fast_strand, _kernel_strand, conv_pool_ism, kernel_mode
from biodl.models import build_model
from toy_models import one_thread, random_onehot  # noqa: F401


def _deepbind(pooling: str, padding: str, rc: bool, length: int) -> nn.Module:
    torch.manual_seed(0)
    params = {"filters": 12, "filter_width": 9, "pooling": pooling, "padding": padding, "hidden_sizes": [8], "rc_average": rc}
    return build_model("deepbind", (4, length), 2, params).eval()


def _brute_force(model: nn.Module, X: torch.Tensor) -> torch.Tensor:
    """Every single-letter mutant ``(N, T, A, L)`` through the model, in ``X``'s dtype."""
    N, A, L = X.shape
    rows = []
    for n in range(N):
        batch = X[n].repeat(A * L, 1, 1)
        for a in range(A):
            for pos in range(L):
                batch[a * L + pos, :, pos] = 0.0
                batch[a * L + pos, a, pos] = 1.0
        y = model(batch)
        rows.append(y.reshape(A, L, -1).permute(2, 0, 1))
    return torch.stack(rows)


@pytest.mark.parametrize(
    ("pooling", "padding", "rc"), [("max+avg", "valid", True), ("max", "same", False), ("avg", "same", True)]
)
def test_kernel_equals_brute_force_in_float64(pooling: str, padding: str, rc: bool) -> None:
    L = 40
    model = _deepbind(pooling, padding, rc, L).double()
    parts = conv_pool_parts(model)
    assert parts is not None
    X = random_onehot(3, L, seed=5).double()
    X[1, :, 7] = 0.0  # an N column: every letter is a substitution
    assert kernel_mode(parts, X) is True  # ReLU: the fused kernel runs
    with torch.inference_mode():
        ref, mutants = conv_pool_ism(parts, X, 0, L, torch.device("cpu"))
        expected = _brute_force(model, X)
        want_ref = model(X)
    torch.testing.assert_close(ref, want_ref.float(), atol=1e-6, rtol=0)
    assert float((mutants.double() - expected).abs().max()) <= 1e-5


@pytest.mark.parametrize("padding", ["valid", "same"])
def test_kernel_equals_tensor_path_on_a_span(padding: str) -> None:
    L = 50
    model = _deepbind("max+avg", padding, False, L)
    parts = conv_pool_parts(model)
    assert parts is not None
    X = random_onehot(4, L, seed=6)
    X[0, :, 0] = 0.0
    with torch.inference_mode():
        for start, end in ((0, L), (3, 11), (L - 4, L)):
            ref_k, mut_k = _kernel_strand(parts, X, start, end, True)
            ref_t, mut_t = _fast_strand(parts, X, start, end)
            torch.testing.assert_close(ref_k, ref_t)
            torch.testing.assert_close(mut_k, mut_t, atol=1e-5, rtol=1e-5)
            assert torch.equal(mut_k[..., :start], ref_k[:, :, None, None].expand(-1, -1, 4, start))


def test_kernel_linear_and_fallback_point_wise_modules() -> None:
    torch.manual_seed(1)
    X = random_onehot(2, 30, seed=7)
    linear = nn.Sequential(nn.Conv1d(4, 6, 5), nn.AdaptiveAvgPool1d(1), nn.Flatten(), nn.Linear(6, 1)).eval()
    sigmoid = nn.Sequential(nn.Conv1d(4, 6, 5), nn.Sigmoid(), nn.AdaptiveMaxPool1d(1), nn.Flatten(), nn.Linear(6, 1)).eval()
    for model, mode in ((linear, False), (sigmoid, None)):
        parts = conv_pool_parts(model)
        assert parts is not None and kernel_mode(parts, X) is mode
        fast = saturation_mutagenesis(model, X, raw_outputs=True, fast=True)
        plain = saturation_mutagenesis(model, X, raw_outputs=True, fast=False)
        torch.testing.assert_close(fast.mutants, plain.mutants, atol=1e-5, rtol=1e-5)
