"""Ensembles of per-position and per-pixel networks average class probabilities over the class axis."""

from __future__ import annotations

import torch

from biodl.models.base import build_model
from biodl.models.ensemble import Ensemble


class _Scale(torch.nn.Module):
    """A one-logit "segmentation network": the input times ``w``."""

    def __init__(self, w: float) -> None:
        super().__init__()
        self.w = w
        self.in_shape, self.num_outputs = (1, 16, 16), 1

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.w


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
    members = [_Scale(1.0), _Scale(-2.0)]
    ens = Ensemble.from_members(members, "unet", {}, "segmentation")  # type: ignore[arg-type]
    x = torch.randn(2, 1, 4, 4)
    expected = (torch.sigmoid(x) + torch.sigmoid(-2.0 * x)) / 2
    assert torch.allclose(torch.sigmoid(ens(x)), expected, atol=1e-5)


def test_binary_mask_ensemble_takes_a_chosen_threshold() -> None:
    """``evaluate.select_threshold`` on an ensemble of binary-mask networks: the chosen cut of the mean
    probability becomes the 0.5 cut of the ensemble's output (as for a single network)."""
    import numpy as np

    from biodl.experiment.evaluate import select_threshold

    ens = Ensemble.from_members([_Scale(3.0), _Scale(1.0)], "unet", {}, "segmentation")  # type: ignore[arg-type]
    x = torch.randn(4, 1, 16, 16, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        p = torch.sigmoid(ens(x)).numpy()
    y = (p > 0.3).astype(np.float32)  # the masks a cut of the mean probability at 0.3 gives
    assert (y != (p > 0.5)).mean() > 0.1  # far from the 0.5 cut
    chosen = select_threshold(ens, "dice", "segmentation", y, p)
    assert chosen is not None and chosen["value"] == 0.3
    with torch.no_grad():
        shifted = torch.sigmoid(ens(x)).numpy()
    assert ((shifted > 0.5) == (p > 0.3)).all()
    assert ens.spec()[1]["threshold"] == 0.3  # a bundle rebuilds the ensemble with its threshold
