"""Ensembles of per-position and per-pixel networks average class probabilities over the class axis."""

from __future__ import annotations

import torch

from biodl.models.base import build_model
from biodl.models.ensemble import Ensemble


def _members(n: int) -> list:
    torch.manual_seed(0)
    params = {"channels": 8, "blocks": 2, "per_position": True}
    return [build_model("dilated-cnn", (21, 40), 3, params).eval() for _ in range(n)]


def test_per_position_ensemble_averages_probabilities_per_residue() -> None:
    members = _members(2)
    ens = Ensemble.from_members(members, "dilated-cnn", {"channels": 8, "blocks": 2, "per_position": True}, "positions")
    x = torch.zeros(2, 21, 40)
    x[0, torch.randint(0, 21, (40,)), torch.arange(40)] = 1.0
    x[1, torch.randint(0, 21, (25,)), torch.arange(25)] = 1.0  # a shorter sequence, padded
    with torch.no_grad():
        out = ens(x)
        each = torch.stack([m(x) for m in members])
    assert out.shape == (2, 3, 40)
    expected = torch.softmax(each, dim=2).mean(0)
    assert torch.allclose(torch.softmax(out, dim=1), expected, atol=1e-5)
    # the members disagree, so the average differs from either member alone
    assert not torch.allclose(torch.softmax(out, dim=1), torch.softmax(each[0], dim=1), atol=1e-3)


def test_single_logit_segmentation_ensemble_averages_foreground_probability() -> None:
    class Seg(torch.nn.Module):
        def __init__(self, w: float) -> None:
            super().__init__()
            self.w = w
            self.in_shape, self.num_outputs = (1, 4, 4), 1

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x * self.w

    members = [Seg(1.0), Seg(-2.0)]
    ens = Ensemble.from_members(members, "unet", {}, "segmentation")  # type: ignore[arg-type]
    x = torch.randn(2, 1, 4, 4)
    expected = (torch.sigmoid(x) + torch.sigmoid(-2.0 * x)) / 2
    assert torch.allclose(torch.sigmoid(ens(x)), expected, atol=1e-5)
