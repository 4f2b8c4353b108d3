"""Region ISM: each position's effects equal plain ISM of the window where it is most central."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from biodl.errors import ConfigError, DataError
from biodl.explain import region_mutagenesis, saturation_mutagenesis
from biodl.explain.region_mutagenesis import region_tiles
from biodl.models import build_model
from toy_models import one_thread, random_onehot  # noqa: F401


def test_tiles_cover_the_region_and_pick_the_most_central_window() -> None:
    starts, window_of = region_tiles(103, 20, 8)
    assert starts[0] == 0 and starts[-1] == 83 and np.all(np.diff(starts) > 0)
    pos = np.arange(103)
    assert np.all((starts[window_of] <= pos) & (pos < starts[window_of] + 20))  # inside its window
    context = np.minimum(pos - starts[window_of], starts[window_of] + 19 - pos)
    for s in starts:  # no other window holding the position gives it more context on both sides
        inside = (s <= pos) & (pos < s + 20)
        assert np.all(np.minimum(pos - s, s + 19 - pos)[inside] <= context[inside])
    assert np.all(np.diff(window_of) >= 0)
    with pytest.raises(DataError, match="shorter"):
        region_tiles(10, 20, 5)
    with pytest.raises(ConfigError, match="step"):
        region_tiles(100, 20, 21)


def _two_conv() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv1d(4, 8, 7, padding=3), nn.ReLU(), nn.MaxPool1d(2),
        nn.Conv1d(8, 8, 5, padding=2), nn.ReLU(), nn.MaxPool1d(2),
        nn.Flatten(), nn.Linear(8 * 10, 2),
    ).eval()  # fmt: skip


@pytest.mark.parametrize("arch", ["deepbind", "two-conv"])
def test_region_equals_plain_ism_of_the_assigned_windows(arch: str) -> None:
    if arch == "deepbind":
        torch.manual_seed(0)
        model: nn.Module = build_model("deepbind", (4, 40), 2, {"filters": 8, "filter_width": 7, "hidden_sizes": [8]}).eval()
    else:
        model = _two_conv()
    L, R = 40, 157
    x = random_onehot(1, R, seed=4)[0]
    x[:, 60] = 0.0  # an N
    res = region_mutagenesis(model, x, step=15, length=L)
    assert res.fast and res.effects.shape == (2, 4, R)
    tiles = torch.stack([x[:, s : s + L] for s in res.starts.tolist()])
    plain = saturation_mutagenesis(model, tiles, raw_outputs=True, fast=False)
    expected = torch.stack([plain.effects[w, :, :, r - res.starts[w]] for r, w in enumerate(res.window_of.tolist())], -1)
    torch.testing.assert_close(res.effects, expected, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(res.reference, plain.reference)
    assert region_mutagenesis(model, x, 1, step=15, length=L).effects.shape == (1, 4, R)
