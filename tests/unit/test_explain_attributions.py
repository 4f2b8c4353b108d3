"""Captum attributions of sequence models: completeness/summation rules, strands, targets."""

from __future__ import annotations

import pytest
import torch

from biodl.errors import ConfigError
from biodl.explain import DeepLift, DeepLiftShap, InputXGradient, IntegratedGradients, Saliency, dinucleotide_shuffled
from biodl.models import build_model
from toy_models import conv_max_dense, one_thread, random_onehot  # noqa: F401


def _deepbind(rc: bool) -> torch.nn.Module:
    torch.manual_seed(0)
    return build_model("deepbind", (4, 30), 1, {"filters": 8, "filter_width": 7, "hidden_sizes": [8], "rc_average": rc}).eval()


@pytest.mark.parametrize("model", [conv_max_dense(n_outputs=1), _deepbind(True), _deepbind(False)], ids=["seq", "rc", "norc"])
def test_integrated_gradients_completeness(model: torch.nn.Module) -> None:
    X = random_onehot(3, 30, seed=3)
    attr = IntegratedGradients(model).attribute(X, n_steps=100)
    assert attr.shape == X.shape
    with torch.no_grad():
        delta = (model(X) - model(torch.zeros_like(X)))[:, 0]
    torch.testing.assert_close(attr.sum((1, 2)), delta, atol=2e-3, rtol=1e-2)


@pytest.mark.parametrize("model", [conv_max_dense(n_outputs=1), _deepbind(True)], ids=["seq", "rc"])
def test_deeplift_sums_to_delta_with_shuffled_references(model: torch.nn.Module) -> None:
    X = random_onehot(3, 30, seed=4)
    refs = dinucleotide_shuffled(X, 1, seed=0)[0]
    assert torch.equal(refs.sum(1), torch.ones(3, 30))  # shuffles stay one-hot
    attr = DeepLift(model).attribute(X, baselines=refs)
    with torch.no_grad():
        delta = (model(X) - model(refs))[:, 0]
    torch.testing.assert_close(attr.sum((1, 2)), delta, atol=1e-4, rtol=1e-3)
    shap = DeepLiftShap(model).attribute(X, n_shuffles=4, seed=1)
    many = dinucleotide_shuffled(X, 4, seed=1)
    with torch.no_grad():
        mean_delta = torch.stack([(model(X) - model(r))[:, 0] for r in many]).mean(0)
    torch.testing.assert_close(shap.sum((1, 2)), mean_delta, atol=1e-4, rtol=1e-3)


def test_gradient_methods_and_targets() -> None:
    model = conv_max_dense(n_outputs=2)
    X = random_onehot(2, 20)
    sal = Saliency(model).attribute(X, target=1)
    ixg = InputXGradient(model).attribute(X, target=1)
    torch.testing.assert_close(ixg, sal * X)
    assert torch.all(Saliency(model).attribute(X, target=1, abs=True) >= 0)
    with pytest.raises(ConfigError, match="give target"):
        Saliency(model).attribute(X)
    with pytest.raises(ConfigError, match="target 3 does not exist"):
        IntegratedGradients(model).attribute(X, target=3)
