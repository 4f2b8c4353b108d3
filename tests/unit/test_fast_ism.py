"""Fast-ISM beyond one convolution: the deep fast mode equals the plain mode (within 1e-5) on real architectures."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from biodl.errors import ConfigError
from biodl.explain import saturation_mutagenesis
from biodl.explain.fast_ism import local_plan
from biodl.models import build_model
from toy_models import one_thread, random_onehot  # noqa: F401


def _two_conv(length: int) -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv1d(4, 16, 9, padding=4), nn.ReLU(), nn.MaxPool1d(4),
        nn.Conv1d(16, 16, 5, padding="same"), nn.ReLU(), nn.MaxPool1d(2),
        nn.Flatten(), nn.Linear(16 * (length // 8), 3),
    ).eval()  # fmt: skip


def _dilated() -> nn.Module:
    torch.manual_seed(1)
    net = nn.Sequential(
        nn.Conv1d(4, 12, 5, padding=2), nn.ReLU(),
        nn.Conv1d(12, 12, 3, padding=2, dilation=2), nn.BatchNorm1d(12), nn.ReLU(),
        nn.Conv1d(12, 12, 3, padding=4, dilation=4), nn.ELU(),
        nn.Conv1d(12, 8, 3, stride=2), nn.AvgPool1d(3, padding=1), nn.ConstantPad1d((1, 2), 0.0),
        nn.Conv1d(8, 8, 3, groups=2), nn.AdaptiveMaxPool1d(1), nn.Flatten(), nn.Linear(8, 2),
    )  # fmt: skip
    with torch.no_grad():
        bn = net[3]
        assert isinstance(bn, nn.BatchNorm1d)
        bn.running_mean.normal_()
        bn.running_var.uniform_(0.5, 2.0)
    return net.eval()


def _basset(length: int, rc: bool) -> nn.Module:
    torch.manual_seed(2)
    params = {"filters": [16, 12, 8], "filter_widths": [9, 5, 3], "pool_sizes": [3, 2, 2], "hidden_sizes": [16], "rc_average": rc}
    return build_model("basset", (4, length), 2, params).eval()


def _deepsea(length: int) -> nn.Module:
    torch.manual_seed(3)
    params = {"filters": [8, 8, 8], "filter_widths": [7, 5, 3], "pool_sizes": [2, 2, 1], "dropouts": [0.1] * 3, "dense_size": 8}
    return build_model("deepsea", (4, length), 2, params).eval()


def _deepbind(length: int) -> nn.Module:
    torch.manual_seed(4)
    return build_model("deepbind", (4, length), 1, {"filters": 8, "filter_width": 7, "hidden_sizes": [8]}).eval()


CASES = {
    "two-conv-maxpool": (_two_conv(64), 64),
    "dilated-stack": (_dilated(), 50),
    "basset-rc": (_basset(60, True), 60),
    "basset": (_basset(60, False), 60),
    "deepsea": (_deepsea(48), 48),
    "deepbind": (_deepbind(40), 40),
}


@pytest.mark.parametrize("name", list(CASES))
def test_fast_equals_plain(name: str) -> None:
    model, length = CASES[name]
    X = random_onehot(3, length, seed=5)
    X[1, :, 7] = 0.0  # an N column: every letter is a mutant
    fast = saturation_mutagenesis(model, X, raw_outputs=True, fast=True)
    plain = saturation_mutagenesis(model, X, raw_outputs=True, fast=False)
    assert fast.fast and not plain.fast
    torch.testing.assert_close(fast.reference, plain.reference, atol=1e-5, rtol=0)
    torch.testing.assert_close(fast.mutants, plain.mutants, atol=1e-5, rtol=0)
    assert float(plain.effects.abs().max()) > 1e-4  # the mutants do change the outputs


@pytest.mark.parametrize("name", ["two-conv-maxpool", "basset-rc", "dilated-stack", "deepbind"])
def test_fast_span_equals_plain(name: str) -> None:
    model, length = CASES[name]
    X = random_onehot(2, length, seed=6)
    for start, end in [(0, 5), (length - 6, length), (10, 23), (length // 2, length // 2 + 1), (0, 1)]:
        fast = saturation_mutagenesis(model, X, raw_outputs=True, fast=True, start=start, end=end)
        plain = saturation_mutagenesis(model, X, raw_outputs=True, fast=False, start=start, end=end)
        torch.testing.assert_close(fast.mutants, plain.mutants, atol=1e-5, rtol=0)
        assert torch.all(fast.effects[..., :start] == 0) and torch.all(fast.effects[..., end:] == 0)


def test_plan_stops_at_the_first_global_layer() -> None:
    plan = local_plan(_two_conv(64))
    assert plan is not None
    assert [layer.span for layer in plan.layers] == [9, 4, 5, 2]
    assert local_plan(nn.Sequential(nn.Flatten(), nn.Linear(4 * 20, 1))) is None


def test_fast_true_refuses_models_without_local_layers() -> None:
    model = nn.Sequential(nn.Flatten(), nn.Linear(4 * 20, 1)).eval()
    with pytest.raises(ConfigError, match="fast ISM needs"):
        saturation_mutagenesis(model, random_onehot(1, 20, seed=0), fast=True)
